"""gridsense: sensor-side automatic problem discovery for grid-based city management.

This package holds what every stage shares (the domain vocabulary in ``gridsense.model``,
the error types) and the wiring: config, CLI and the composition root (``gridsense.app``).
Nothing starts at import time.
"""

__version__ = "0.1.0"
