"""DeviceRateLimit: a token bucket per device, so one flooding device cannot starve the rest;
FeedBudget: one bucket for a best-effort feed, so a flood of bad input is not echoed in full.

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


class FeedBudget:
    """At most ``per_s`` items a second, in bursts of up to ``per_s`` (at least one): how many
    of a batch a best-effort feed may send now (the live dead-letter feed). ``now_s``: a
    monotonic clock.

    The feed echoes each dead letter back through the broker. When a gateway starts sending
    garbage at thousands of messages a second, echoing every one would double the broker's
    load while nobody can read the feed anyway; the store keeps every letter regardless.
    """

    __slots__ = ("_at", "_burst", "_per_s", "_tokens")

    def __init__(self, per_s: float) -> None:
        self._per_s = per_s
        self._burst = max(per_s, 1.0)  # below one a second, a bucket of per_s would never hold one
        self._tokens = self._burst
        self._at = -1.0  # no batch yet: the bucket starts full

    def admit(self, n: int, now_s: float) -> int:
        """Spend up to ``n`` tokens; return how many were there to spend."""
        if self._at >= 0.0:
            self._tokens = min(self._burst, self._tokens + (now_s - self._at) * self._per_s)
        self._at = now_s
        k = min(n, int(self._tokens + 1e-9))  # 0.3 s at 10/s is 2.9999999999999716 tokens
        self._tokens -= k
        return k
