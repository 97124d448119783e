"""The bucket rings: running totals always equal the plain sum of their window."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.series import (
    COARSE_N,
    COARSE_S,
    FINE_N,
    FINE_S,
    MAX_TOTALS,
    DeviceSeries,
    SumRing,
    make_ring,
    resolution,
)
from rules.spec import WINDOWS

events = st.lists(
    st.tuples(st.integers(min_value=0, max_value=3 * 86400), st.floats(min_value=0, max_value=20)),
    min_size=1,
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(events=events, coarse=st.booleans())
def test_running_totals_equal_the_window_sum(events: list[tuple[int, float]], coarse: bool) -> None:
    bucket, n = (COARSE_S, COARSE_N) if coarse else (FINE_S, FINE_N)
    # one window more than the ring keeps a running total for: that one is summed when read
    spans = (1, 5, 10, n // 2, n) if not coarse else (6, 18, 36, 72, n)
    ring = SumRing(bucket, n, spans)
    assert ring.spans == spans[:MAX_TOTALS]
    t = 0
    for dt, v in events:
        t += dt // 50  # mostly forward, with gaps; sometimes a big jump
        ring.add(t, v)
        for j, k in enumerate(spans):
            assert abs(ring.total(k) - sum(ring.window(k))) < 1e-3
            if j < MAX_TOTALS:
                assert ring.total_at(j) == ring.total(k)


def test_a_value_older_than_the_ring_is_refused() -> None:
    ring = SumRing(FINE_S, FINE_N, (60,))
    assert ring.add(10_000, 1.0)
    assert not ring.add(10_000 - FINE_S * FINE_N, 1.0)
    assert ring.total(60) == 1.0


def test_new_rings_start_empty_and_share_no_buckets() -> None:
    """Rings are copied from a template per statistic: writing one leaves the others alone."""
    ops = ((FINE_S, "sum"), (FINE_S, "max"), (COARSE_S, "sum"))
    a, b = DeviceSeries(ops), DeviceSeries(ops)
    a.add(6_000, 4.0)
    assert a.ring((FINE_S, "sum")).window(1) == [4.0]
    assert a.ring((FINE_S, "max")).window(1) == [4.0]
    b.add(6_000, 1.0)
    assert b.ring((FINE_S, "sum")).window(1) == [1.0]
    assert a.ring((FINE_S, "sum")).window(1) == [4.0]
    fresh = DeviceSeries(ops)
    assert list(fresh.ring((FINE_S, "sum")).vals) == [0.0] * FINE_N
    assert all(math.isnan(v) for v in fresh.ring((FINE_S, "max")).vals)


def test_a_gap_longer_than_the_ring_leaves_only_the_new_value() -> None:
    for op, empty in (("sum", 0.0), ("max", math.nan)):
        ring = make_ring(op, FINE_S, FINE_N, (5, FINE_N) if op == "sum" else ())  # type: ignore[arg-type]
        for minute in range(10):
            ring.add(minute * FINE_S, 2.0)
        ring.add((10 + FINE_N) * FINE_S, 3.0)  # an hour of silence: every old bucket has left
        window = ring.window(FINE_N)
        assert window[-1] == 3.0
        assert all(v == empty or (math.isnan(v) and math.isnan(empty)) for v in window[:-1]), op
        if op == "sum":
            assert ring.total(5) == ring.total(FINE_N) == 3.0


def test_every_sum_window_a_rule_file_can_name_has_a_running_total() -> None:
    """A rule reads its sum from a running total (``SumRing.total_at``): the windows a rule
    file may choose, with the spike check's 5 minutes, fit in the totals a ring keeps at
    each resolution."""
    for res in (FINE_S, COARSE_S):
        spans = {w // res for w in WINDOWS.values() if resolution(w) == res}
        if res == FINE_S:
            spans.add(5)  # the spike check
        assert len(spans) <= MAX_TOTALS, res
