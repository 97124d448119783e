"""The integer time key every store and sink files a reading under.

A module of its own, with no pydantic in it, so that the build compiles it with the ingest
hot path (``gridsense/hot_path.py``): every reading needs its key twice, in the normaliser
and in the store row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)


def epoch_ms(ts: datetime) -> int:
    """``ts`` as integer milliseconds since the epoch, rounded to the nearest (exact).

    Integer arithmetic on purpose: a float detour (as influxdb-client's own conversion
    takes) is one millisecond short for about 1 in 8 timestamps. The store and the sink
    both key readings on this value.
    """
    us: int = (ts - _EPOCH) // _ONE_US
    return (us + 500) // 1000
