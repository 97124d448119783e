"""QR-tagged city assets (报刊亭, 古树名木, 早餐车, 井盖): signed tags, scans, and the cases they file.

Flow: ``ping_codec`` (wire JSON, QR in a photo) → ``verify`` (tag signature via ``tags``,
``registry``, ``maintainers``, place and permit) → ``handler`` (``KindHandler`` for the
``asset`` topic kind) → rules ``condition_rule``, ``permit_rule``, ``tamper`` and the
scheduled ``overdue`` sweep → ``IncidentChange`` for the bridge. ``labels`` prints the tags;
``stage`` builds it all from ``config.AssetConfig``; ``schema.SCHEMA`` holds the tables.
"""
