"""The integer time key every store and sink files a reading under.

A module of its own, with no pydantic in it, so that the build compiles it with the ingest
hot path (``gridsense/hot_path.py``): every reading needs its key twice, in the normaliser
and in the store row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(ts: datetime) -> int:
    """``ts`` as integer milliseconds since the epoch, rounded to the nearest (exact).

    Integer arithmetic on purpose: a float detour (as influxdb-client's own conversion
    takes) is one millisecond short for about 1 in 8 timestamps. The store and the sink
    both key readings on this value.
    """
    since: timedelta = ts - _EPOCH
    # The timedelta's own fields in integer arithmetic, which is what
    # ``(since // timedelta(microseconds=1) + 500) // 1000`` works out (the days and seconds
    # are whole milliseconds), without the generic division that costs about three times the
    # instructions, and with every product small enough for the compiled fast path.
    return since.days * 86_400_000 + since.seconds * 1000 + (since.microseconds + 500) // 1000
