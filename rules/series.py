"""DeviceSeries: a gauge's recent history in fixed-size time buckets, never a list of readings.

Two resolutions cover every rule window: 60 one-minute buckets (windows up to 1 h) and
144 ten-minute buckets (windows up to 24 h). Each statistic a rule needs (sum, count,
max, min, last) is one ring of float32 per resolution, allocated only if some rule uses
it. A rain gauge under the default rule set keeps two sum rings: 816 bytes of buckets.
A sum ring also keeps running totals of its rule windows (``SumRing``).
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
#: Running totals a sum ring keeps; a window beyond them is summed when a rule reads it.
MAX_TOTALS: Final = 4
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
    """One statistic over time buckets of ``bucket_s`` seconds, newest bucket at ``head``."""

    __slots__ = ("bucket_s", "head", "n", "op", "vals")

    def __init__(self, op: Op, bucket_s: int, n: int) -> None:
        self.op, self.bucket_s, self.n = op, bucket_s, n
        self.vals = _empty_vals(op, n)
        self.head = -1

    def _advance(self, b: int) -> None:
        if self.head < 0:  # the first bucket: the ring is as __init__ left it, empty
            self.head = b
            return
        if b - self.head >= self.n:  # every bucket has left the window: start afresh
            self.vals = _empty_vals(self.op, self.n)
            self._restart()
            self.head = b
            return
        empty = _EMPTY[self.op]
        wrapped = False
        n, vals = self.n, self.vals
        for new in range(self.head + 1, b + 1):
            self._leave(new)
            i = new % n
            vals[i] = empty
            wrapped = wrapped or i == 0
        self.head = b
        if wrapped:
            self._resum()

    def _restart(self) -> None:
        """Every bucket was emptied at once (``SumRing`` zeroes its totals)."""

    def _leave(self, new: int) -> None:
        """Bucket ``new`` is about to be reused (``SumRing`` takes what leaves its windows)."""

    def _resum(self) -> None:
        """The ring wrapped (``SumRing`` re-sums its totals exactly)."""

    def add(self, ts_s: float, v: float) -> bool:
        """Put ``v`` into the bucket of ``ts_s``; False if that bucket has left the ring."""
        b = int(ts_s // self.bucket_s)
        if b > self.head:
            self._advance(b)
        elif b <= self.head - self.n:
            return False  # older than the ring
        self._put(b, v)
        return True

    def _put(self, b: int, v: float) -> None:
        """Fold ``v`` into bucket ``b``, which is in the ring."""
        i = b % self.n
        old = self.vals[i]
        if self.op == "count":
            self.vals[i] = old + 1.0
        elif self.op == "max":
            self.vals[i] = v if math.isnan(old) or v > old else old
        elif self.op == "min":
            self.vals[i] = v if math.isnan(old) or v < old else old
        elif b == self.head or math.isnan(old):  # last: the newest bucket takes the newest value
            self.vals[i] = v

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
        return float(sum(self.window(k)))

    def nbytes(self) -> int:
        return self.vals.itemsize * self.n


class SumRing(Ring):
    """A ring of sums that keeps a running total for each of up to ``MAX_TOTALS`` window
    lengths (``spans``, in buckets), so a rule reads its sum in O(1); a longer list's other
    windows are summed when read. The totals are re-summed exactly whenever the ring wraps,
    so float rounding cannot drift.

    The totals are four float attributes, not an ``array``: compiled, each is a C double in
    the object, where an array's every read and write went through the generic item protocol
    (about 700 instructions a window a reading, most of a rain reading's ring cost), and the
    array was an object of its own.
    """

    __slots__ = ("spans", "t0", "t1", "t2", "t3")

    def __init__(self, bucket_s: int, n: int, spans: tuple[int, ...] = ()) -> None:
        super().__init__("sum", bucket_s, n)
        # shared by every ring of a kind and resolution; t<j> is the sum of the newest spans[j]
        self.spans = spans[:MAX_TOTALS]
        self.t0 = self.t1 = self.t2 = self.t3 = 0.0

    def _restart(self) -> None:
        self.t0 = self.t1 = self.t2 = self.t3 = 0.0

    def _leave(self, new: int) -> None:
        n, vals = self.n, self.vals
        for j, k in enumerate(self.spans):  # bucket new-k leaves (k == n: the slot being reused)
            self._add_total(j, -vals[(new - k) % n])

    def _resum(self) -> None:
        for j, k in enumerate(self.spans):
            self._set_total(j, float(sum(self.window(k))))

    def _put(self, b: int, v: float) -> None:
        self.vals[b % self.n] += v
        head = self.head
        for j, k in enumerate(self.spans):
            if b > head - k:
                self._add_total(j, v)

    def total(self, k: int) -> float:
        """Sum of the newest k buckets."""
        if k in self.spans:
            return self.total_at(self.spans.index(k))
        return float(sum(self.window(k)))

    def total_at(self, j: int) -> float:
        """The running total of window ``spans[j]``."""
        if j == 0:
            return self.t0
        if j == 1:
            return self.t1
        if j == 2:
            return self.t2
        return self.t3

    def _set_total(self, j: int, x: float) -> None:
        if j == 0:
            self.t0 = x
        elif j == 1:
            self.t1 = x
        elif j == 2:
            self.t2 = x
        else:
            self.t3 = x

    def _add_total(self, j: int, x: float) -> None:
        self._set_total(j, self.total_at(j) + x)


def make_ring(op: Op, bucket_s: int, n: int, spans: tuple[int, ...] = ()) -> Ring:
    """A ring for one statistic: a ``SumRing`` (with running totals of ``spans``) for sums."""
    return SumRing(bucket_s, n, spans) if op == "sum" else Ring(op, bucket_s, n)


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
            make_ring(op, res, FINE_N if res == FINE_S else COARSE_N, spans.get(res, ()))
            for res, op in self.keys
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
