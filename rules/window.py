"""Fixed-size rolling windows: a ring of time buckets, never a list of every reading."""

from __future__ import annotations

from array import array


class BucketWindow:
    """Sum over a rolling window of ``window_s`` seconds, kept in ``window_s // bucket_s`` buckets.

    Memory is one float per bucket whatever the reading rate. A value older than the
    window (relative to the newest bucket) is refused.
    """

    __slots__ = ("_bucket_s", "_buckets", "_head", "_n", "_total")

    def __init__(self, window_s: int, bucket_s: int) -> None:
        if window_s % bucket_s:
            raise ValueError("window_s must be a multiple of bucket_s")
        self._n = window_s // bucket_s
        self._bucket_s = bucket_s
        self._buckets = array("d", bytes(8 * self._n))
        self._head = -1  # absolute index of the newest bucket
        self._total = 0.0

    def add(self, ts_s: float, value: float) -> bool:
        """Add ``value`` at ``ts_s`` (Unix seconds); False if it falls before the window."""
        b = int(ts_s // self._bucket_s)
        if b > self._head:
            self._advance(b)
        elif b <= self._head - self._n:
            return False
        self._buckets[b % self._n] += value
        self._total += value
        return True

    def advance_to(self, ts_s: float) -> None:
        """Move the window's end to ``ts_s`` so that old buckets fall out."""
        b = int(ts_s // self._bucket_s)
        if b > self._head:
            self._advance(b)

    def _advance(self, b: int) -> None:
        steps = b - self._head if self._head >= 0 else self._n
        if steps >= self._n:
            for i in range(self._n):
                self._buckets[i] = 0.0
            self._total = 0.0
        else:
            for k in range(self._head + 1, b + 1):
                i = k % self._n
                self._total -= self._buckets[i]
                self._buckets[i] = 0.0
            # Re-sum now and then would hide drift; a clamp is enough for non-negative series.
            if self._total < 1e-9:
                self._total = 0.0
        self._head = b

    @property
    def total(self) -> float:
        return self._total

    def series(self) -> list[tuple[float, float]]:
        """(bucket start in Unix seconds, value) for non-empty buckets, oldest first."""
        out = []
        for k in range(self._head - self._n + 1, self._head + 1):
            v = self._buckets[k % self._n]
            if v:
                out.append((float(k * self._bucket_s), v))
        return out
