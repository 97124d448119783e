"""The ingest hot path: the modules every reading runs through, which ``pip install .``
compiles with mypyc (``setup.py`` reads ``MODULES`` from this file without importing the
package), and whether this installation runs them compiled.

Every reading passes through these. The batch handler alone (bench/ingest_throughput.py)
ran at 1.19 times its plain-Python rate with the first nine compiled; the gateway, the
message contract, dead letters, transactions and the incident book added about 4 %; the
reading's time key (``gridsense.model.timekeys``), which ran interpreted twice a reading,
and the ``Reading`` record itself (``gridsense.model.reading``: a C struct once compiled,
where it had been a pydantic model) are the last two before ``ingest.line_protocol``, which
the InfluxDB forwarder runs for every reading in a process of its own.
"""

from __future__ import annotations

MODULES = (
    "ingest.topics",
    "ingest.rate_limit",
    "ingest.gauge_codec",
    "ingest.normalise",
    "ingest.reading_store",
    "ingest.paho_fast_path",
    "ingest.gateway",
    "ingest.contract",
    "ingest.deadletter",
    "gridsense.txn",
    "gridsense.model.timekeys",
    "gridsense.model.reading",
    "rules.incidents",
    "rules.escalation",
    "rules.series",
    "rules.engine",
    "gridsense.pipeline",
    "ingest.line_protocol",
)


def plain_modules() -> list[str]:
    """The hot-path modules this installation runs as plain Python (imports each of them)."""
    import importlib

    return [m for m in MODULES if str(importlib.import_module(m).__file__).endswith(".py")]


def describe() -> str:
    """One line for people: compiled, plain, or which part is plain."""
    plain = plain_modules()
    if not plain:
        return f"compiled with mypyc ({len(MODULES)} modules)"
    if len(plain) == len(MODULES):
        return "plain Python"
    return f"partly plain Python: {', '.join(plain)}"
