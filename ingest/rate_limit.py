"""DeviceRateLimit: a token bucket per device, so one flooding device cannot starve the rest.

Messages over a device's rate are dead-lettered as ``rate_limited`` (and so acknowledged
and counted); every other device's messages flow as before. Time is a monotonic clock,
so a wall-clock step can neither throttle a device nor release a flood.

The bucket is kept in its GCRA form (the generic cell rate algorithm, equivalent to a
token bucket): one float per device, the time at which its bucket will be full again, so a
city's fleet costs 24 bytes a device instead of a (tokens, time) pair.
"""

from __future__ import annotations

from gridsense.errors import Rejected


class DeviceRateLimit:
    """``per_minute`` messages a minute per device, with bursts up to ``burst``."""

    __slots__ = ("_burst", "_full_at", "_interval", "_per_minute", "_tolerance")

    def __init__(self, per_minute: float, burst: float) -> None:
        self._per_minute, self._burst = per_minute, burst
        self._interval = 60.0 / per_minute  # one token comes back every interval
        self._tolerance = (burst - 1.0) * self._interval  # how far ahead of time a burst may run
        self._full_at: dict[str, float] = {}  # device → when its bucket is full again

    def take(self, device_id: str, now_s: float) -> None:
        """Spend one token, or raise ``Rejected('rate_limited')``."""
        due = max(self._full_at.get(device_id, now_s), now_s)
        if due - now_s > self._tolerance:
            raise Rejected(
                "rate_limited",
                f"{device_id} sends more than {self._per_minute:g} messages a minute (burst {self._burst:g})",
            )
        self._full_at[device_id] = due + self._interval
