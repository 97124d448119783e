"""DeviceRateLimit: a token bucket per device, so one flooding device cannot starve the rest.

Messages over a device's rate are dead-lettered as ``rate_limited`` (and so acknowledged
and counted); every other device's messages flow as before. Time is a monotonic clock,
so a wall-clock step can neither throttle a device nor release a flood.
"""

from __future__ import annotations

from gridsense.errors import Rejected


class DeviceRateLimit:
    """``per_minute`` messages a minute per device, with bursts up to ``burst``."""

    __slots__ = ("_buckets", "_burst", "_rate")

    def __init__(self, per_minute: float, burst: float) -> None:
        self._rate = per_minute / 60.0
        self._burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # device → (tokens, at)

    def take(self, device_id: str, now_s: float) -> None:
        """Spend one token, or raise ``Rejected('rate_limited')``."""
        tokens, at = self._buckets.get(device_id, (self._burst, now_s))
        tokens = min(self._burst, tokens + max(0.0, now_s - at) * self._rate)
        if tokens < 1.0:
            self._buckets[device_id] = (tokens, now_s)
            raise Rejected(
                "rate_limited",
                f"{device_id} sends more than {self._rate * 60:g} messages a minute (burst {self._burst:g})",
            )
        self._buckets[device_id] = (tokens - 1.0, now_s)
