"""DeviceSeries: a gauge's recent history in fixed-size time buckets, never a list of readings.

Two resolutions cover every rule window: 60 one-minute buckets (windows up to 1 h) and
144 ten-minute buckets (windows up to 24 h). Each statistic a rule needs (sum, count,
max, min, last) is one ring of float32 per resolution, allocated only if some rule uses
it. A rain gauge under the default rule set keeps two sum rings: 816 bytes of buckets.
Windows longer than 1 h are therefore exact to 10 minutes at their old edge.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from typing import Final, Literal

Op = Literal["sum", "count", "max", "min", "last"]
# Final: constants the compiled module reads as C statics, not as lookups in its globals.
FINE_S: Final = 60
FINE_N: Final = 60
COARSE_S: Final = 600
COARSE_N: Final = 144
_NO_TOTALS: Final = array("d")  # shared by every ring that keeps no running total; never written
_EMPTY: Final = {"sum": 0.0, "count": 0.0, "max": math.nan, "min": math.nan, "last": math.nan}

#: Which rings each aggregate reads.
NEEDS: dict[str, tuple[Op, ...]] = {
    "sum": ("sum",),
    "mean": ("sum", "count"),
    "max": ("max",),
    "last": ("last",),
    "rise": ("min", "last"),
    "rate": ("last",),
}


def resolution(window_s: int) -> int:
    """Bucket size used for a window."""
    return FINE_S if window_s <= FINE_S * FINE_N else COARSE_S


_EMPTY_VALS: dict[tuple[str, int], array[float]] = {}


def _empty_vals(op: Op, n: int) -> array[float]:
    """A fresh ring of n empty buckets: a copy of a shared template (a memcpy), about 80 times
    cheaper than building the array from a list, which every first reading of a gauge did."""
    template = _EMPTY_VALS.get((op, n))
    if template is None:
        template = _EMPTY_VALS[(op, n)] = array("f", [_EMPTY[op]] * n)
    return template.__copy__()


class Ring:
    """One statistic over time buckets of ``bucket_s`` seconds, newest bucket at ``head``.

    A sum ring also keeps a running total for each window length it serves, so a rule
    reads its aggregate in O(1); the totals are re-summed exactly whenever the ring wraps,
    so float rounding cannot drift.
    """

    __slots__ = ("bucket_s", "head", "n", "op", "spans", "totals", "vals")

    def __init__(self, op: Op, bucket_s: int, n: int, spans: tuple[int, ...] = ()) -> None:
        self.op, self.bucket_s, self.n = op, bucket_s, n
        self.vals = _empty_vals(op, n)
        self.head = -1
        # spans is shared by every ring of a kind and resolution; totals[j] is the sum of the
        # newest spans[j] buckets.
        self.spans = spans if op == "sum" else ()
        self.totals = array("d", bytes(8 * len(self.spans))) if self.spans else _NO_TOTALS

    def _advance(self, b: int) -> None:
        if self.head < 0:  # the first bucket: the ring is as __init__ left it, empty
            self.head = b
            return
        if b - self.head >= self.n:  # every bucket has left the window: start afresh
            self.vals = _empty_vals(self.op, self.n)
            if self.spans:
                self.totals = array("d", bytes(8 * len(self.spans)))
            self.head = b
            return
        empty = _EMPTY[self.op]
        wrapped = False
        n, vals, spans, totals = self.n, self.vals, self.spans, self.totals
        for new in range(self.head + 1, b + 1):
            for j, k in enumerate(spans):  # bucket new-k leaves (k == n: the slot being reused)
                totals[j] -= vals[(new - k) % n]
            i = new % n
            vals[i] = empty
            wrapped = wrapped or i == 0
        self.head = b
        if wrapped:
            for j, k in enumerate(self.spans):
                self.totals[j] = float(sum(self.window(k)))

    def add(self, ts_s: float, v: float) -> bool:
        b = int(ts_s // self.bucket_s)
        if b > self.head:
            self._advance(b)
        elif b <= self.head - self.n:
            return False  # older than the ring
        i = b % self.n
        old = self.vals[i]
        if self.op == "sum":
            self.vals[i] = old + v
            totals, head = self.totals, self.head
            for j, k in enumerate(self.spans):
                if b > head - k:
                    totals[j] += v
        elif self.op == "count":
            self.vals[i] = old + 1.0
        elif self.op == "max":
            self.vals[i] = v if math.isnan(old) or v > old else old
        elif self.op == "min":
            self.vals[i] = v if math.isnan(old) or v < old else old
        elif b == self.head or math.isnan(old):  # last: the newest bucket takes the newest value
            self.vals[i] = v
        return True

    def window(self, k: int) -> list[float]:
        """The k newest buckets, oldest first."""
        k = min(k, self.n)
        start = (self.head - k + 1) % self.n
        end = start + k
        if end <= self.n:
            return list(self.vals[start:end])
        return list(self.vals[start:]) + list(self.vals[: end - self.n])

    def total(self, k: int) -> float:
        """Sum of the newest k buckets."""
        try:
            return self.totals[self.spans.index(k)]
        except ValueError:
            return float(sum(self.window(k)))

    def nbytes(self) -> int:
        return self.vals.itemsize * self.n


class DeviceSeries:
    """All rings of one device, and what the quality checks need about its previous reading.

    ``keys`` is the kind's sorted ``(resolution, statistic)`` tuple, shared by every device
    of the kind; ``rings`` holds the rings in that order (a tuple, not a dict: a city has
    hundreds of thousands of these).
    """

    __slots__ = ("keys", "prev_ts", "prev_value", "rings")

    def __init__(
        self, ops: Iterable[tuple[int, Op]], spans: dict[int, tuple[int, ...]] | None = None
    ) -> None:
        spans = spans or {}
        self.keys: tuple[tuple[int, Op], ...] = ops if isinstance(ops, tuple) else tuple(ops)
        self.rings: tuple[Ring, ...] = tuple(
            Ring(op, res, FINE_N if res == FINE_S else COARSE_N, spans.get(res, ())) for res, op in self.keys
        )
        self.prev_ts: float | None = None
        self.prev_value: float | None = None

    def ring(self, key: tuple[int, Op]) -> Ring:
        """The ring of one (resolution, statistic); KeyError if the kind keeps none."""
        try:
            return self.rings[self.keys.index(key)]
        except ValueError:
            raise KeyError(key) from None

    def add(self, ts_s: float, value: float) -> None:
        for ring in self.rings:
            ring.add(ts_s, value)
        if self.prev_ts is None or ts_s >= self.prev_ts:
            self.prev_ts, self.prev_value = ts_s, value

    def advance_to(self, ts_s: float) -> None:
        for ring in self.rings:
            b = int(ts_s // ring.bucket_s)
            if b > ring.head:
                ring._advance(b)

    def recent_sum(self, seconds: int) -> float:
        """Sum over the newest ``seconds`` at 1-minute resolution (needs the fine sum ring)."""
        return self.ring((FINE_S, "sum")).total(max(1, seconds // FINE_S))

    def aggregate(self, how: str, window_s: int) -> float | None:
        """The rule aggregate over the window ending at the newest bucket; None if no data."""
        res = resolution(window_s)
        k = window_s // res
        if how == "sum":
            return self.ring((res, "sum")).total(k)
        if how == "mean":
            n = sum(self.ring((res, "count")).window(k))
            return float(sum(self.ring((res, "sum")).window(k)) / n) if n else None
        values = [v for v in self.ring((res, "max" if how == "max" else "last")).window(k) if v == v]
        if not values:
            return None
        if how == "max":
            return max(values)
        if how == "last":
            return values[-1]
        if how == "rise":
            lows = [v for v in self.ring((res, "min")).window(k) if v == v]
            return values[-1] - min(lows)
        # rate: change per hour between the oldest and newest value in the window
        return (values[-1] - values[0]) * 3600.0 / window_s

    def nbytes(self) -> int:
        return sum(r.nbytes() for r in self.rings)
