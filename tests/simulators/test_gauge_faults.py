"""Gauge series to samples: encodings, injected faults and their ground truth, publishable as-is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from gridsense.model.envelopes import Kind
from gridsense.model.registry import Device
from ingest.gauge_codec import decode_gauge
from ingest.topics import TopicScheme
from simulators.design_storm import BEIJING_UNVERIFIED, ChicagoStorm, StormTrack, gauge_hyetographs
from simulators.gauge_faults import (
    ClockSkew,
    Duplicate,
    Fault,
    GaugeSeries,
    OutOfOrder,
    SilentGap,
    Spike,
    interleave,
    level_samples,
    rain_samples,
)
from simulators.snow import SnowStorm
from simulators.storm import to_messages
from simulators.underpass import UnderpassPonding

T0 = datetime(2026, 7, 21, 6, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
GRID = "110102012001001"
RAIN = (0.0, 0.5, 1.0, 2.0, 1.5, 0.5, 0.2, 0.0, 0.3, 0.1)


def rain(device_id: str = "rg-1", values: tuple[float, ...] = RAIN) -> GaugeSeries:
    return GaugeSeries(device_id, Kind.RAIN, T0, MIN, values)


def at(minute: int) -> datetime:
    return T0 + minute * MIN


def test_amounts_one_sample_per_step_stamped_at_the_step_end() -> None:
    sent = rain_samples(rain())
    assert [s.ts for s in sent.samples] == [at(i + 1) for i in range(10)]
    assert [s.value for s in sent.samples] == list(RAIN)
    assert {(s.measure, s.kind, s.update_interval_s) for s in sent.samples} == {("amount", Kind.RAIN, 60.0)}
    assert sent.faults == ()


def test_counter_with_a_reset_records_the_reset() -> None:
    sent = rain_samples(rain(), measure="counter", counter_start=250.0, counter_reset_at=6)
    values = [s.value for s in sent.samples]
    assert values[:6] == pytest.approx([250.0, 250.5, 251.5, 253.5, 255.0, 255.5])
    assert values[6:] == pytest.approx([0.2, 0.2, 0.5, 0.6])
    (reset,) = sent.faults
    assert (reset.kind, reset.at, reset.value) == ("counter_reset", at(7), pytest.approx(0.2))
    assert _rain_from_counters(values) == pytest.approx(sum(RAIN[1:]))


def test_an_undetectable_reset_is_refused() -> None:
    with pytest.raises(ValueError, match="not be detectable"):
        rain_samples(rain(values=(1.0, 5.0)), measure="counter", counter_start=0.0, counter_reset_at=1)


def test_duplicate_is_sent_twice_in_a_row() -> None:
    sent = rain_samples(rain(), faults=[Duplicate(3)])
    assert len(sent.samples) == 11
    assert sent.samples[3] == sent.samples[4]
    assert [(f.kind, f.at, f.value) for f in sent.faults] == [("duplicate", at(4), 2.0)]
    assert sum(s.value for s in sent.samples) - 2.0 == pytest.approx(sum(RAIN))  # what must be stored


def test_out_of_order_reading_arrives_after_its_successor() -> None:
    sent = rain_samples(rain(), faults=[OutOfOrder(4)])
    stamps = [s.ts for s in sent.samples]
    assert stamps[4:6] == [at(6), at(5)]
    assert sent.send_at[5] == at(6)  # held back until the next reading left
    assert [(f.kind, f.at) for f in sent.faults] == [("out_of_order", at(5))]
    assert sorted(stamps) == [at(i + 1) for i in range(10)]


def test_silent_gap_drops_readings_and_records_the_rain_in_it() -> None:
    sent = rain_samples(rain(), faults=[SilentGap(2, minutes=3)])
    assert [s.ts for s in sent.samples] == [at(1), at(2), at(6), at(7), at(8), at(9), at(10)]
    (gap,) = sent.faults
    assert (gap.kind, gap.at, gap.until) == ("gap", at(3), at(6))
    assert gap.value == pytest.approx(1.0 + 2.0 + 1.5)


def test_silent_gap_on_a_counter_gauge_is_carried_by_the_next_reading() -> None:
    sent = rain_samples(rain(), measure="counter", faults=[SilentGap(2, minutes=3)])
    values = [s.value for s in sent.samples]
    assert values[2] - values[1] == pytest.approx(1.0 + 2.0 + 1.5 + 0.5)  # the gap, then minute 6
    assert _rain_from_counters(values) == pytest.approx(sum(RAIN[1:]))


def test_spike_replaces_one_reading() -> None:
    sent = rain_samples(rain(), faults=[Spike(5, 80.0)])
    assert sent.samples[5].value == 80.0
    assert [(f.kind, f.at, f.value) for f in sent.faults] == [("spike", at(6), 80.0)]
    counter = rain_samples(rain(), measure="counter", counter_start=0.0, faults=[Spike(5, 80.0)])
    assert counter.samples[-1].value == pytest.approx(sum(RAIN) - RAIN[5] + 80.0)


def test_clock_skew_shifts_the_stamps_but_not_the_sending() -> None:
    sent = rain_samples(rain(), faults=[ClockSkew(90)])
    assert [s.ts for s in sent.samples] == [at(i + 1) + timedelta(seconds=90) for i in range(10)]
    assert list(sent.send_at) == [at(i + 1) for i in range(10)]
    assert [(f.kind, f.value) for f in sent.faults] == [("clock_skew", 90)]


def test_faults_combine_and_are_listed_in_data_time() -> None:
    faults: list[Fault] = [Spike(8), Duplicate(1), SilentGap(4, 2), OutOfOrder(6), ClockSkew(30)]
    sent = rain_samples(rain(), faults=faults)
    assert [(f.kind, f.at) for f in sent.faults] == [
        ("clock_skew", at(1)),
        ("duplicate", at(2)),
        ("gap", at(5)),
        ("out_of_order", at(7)),
        ("spike", at(9)),
    ]
    assert len(sent.samples) == 10 - 2 + 1
    stamps = [s.ts - timedelta(seconds=30) for s in sent.samples]
    assert stamps == [at(m) for m in (1, 2, 2, 3, 4, 8, 7, 9, 10)]


@pytest.mark.parametrize("fault", [Duplicate(3), OutOfOrder(3)], ids=["duplicate", "out_of_order"])
def test_a_fault_on_a_reading_that_is_not_sent_is_refused(fault: Duplicate | OutOfOrder) -> None:
    with pytest.raises(ValueError, match="not sent"):
        rain_samples(rain(), faults=[SilentGap(2, 5), fault])


def test_bad_steps_are_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        rain_samples(rain(), faults=[Spike(10)])
    with pytest.raises(ValueError, match="no later reading"):
        rain_samples(rain(), faults=[OutOfOrder(9)])
    with pytest.raises(ValueError, match="not rain"):
        rain_samples(GaugeSeries("wl-1", Kind.WATER, T0, MIN, (1.0,)))


def test_levels_for_snow_and_water() -> None:
    snow = GaugeSeries("sd-1", Kind.SNOW, T0, 5 * MIN, tuple(SnowStorm().depths_cm(5.0)))
    sent = level_samples(snow, faults=[Spike(10, 250.0)])
    assert {(s.kind, s.measure) for s in sent.samples} == {(Kind.SNOW, "level")}
    assert sent.samples[10].value == 250.0
    assert sent.samples[-1].value == pytest.approx(18.3)


def test_a_storm_over_the_fleet_publishes_and_decodes_to_what_was_sent() -> None:
    """Design storm → gauges and an underpass → samples → the existing to_messages → the decoder."""
    gauges = [_device("rg-1", Kind.RAIN, 116.36), _device("rg-2", Kind.RAIN, 116.40)]
    water = _device("wl-1", Kind.WATER, 116.40)
    storm = ChicagoStorm(BEIJING_UNVERIFIED.idf(10), 60)
    per_gauge = gauge_hyetographs(storm, StormTrack(39.94, 116.36, speed_km_h=20, jitter=0.0), gauges, 1.0)
    rg1 = rain(values=tuple(per_gauge["rg-1"].depths_mm))
    rg2 = rain("rg-2", tuple(per_gauge["rg-2"].depths_mm))
    levels = UnderpassPonding().levels_cm(rg2.values, 1.0)
    streams = [
        rain_samples(rg1, faults=[Spike(20), Duplicate(30)]),
        rain_samples(rg2, measure="counter", counter_reset_at=40),
        level_samples(GaugeSeries("wl-1", Kind.WATER, T0, MIN, tuple(levels)), faults=[ClockSkew(45)]),
    ]
    samples = list(interleave(streams))
    assert len(samples) == sum(len(s.samples) for s in streams)
    assert [s.ts for s in samples if s.device_id == "rg-1"] == [s.ts for s in streams[0].samples]

    devices = {d.device_id: d for d in [*gauges, water]}
    messages = list(to_messages(iter(samples), devices, TopicScheme()))
    now = at(24 * 60)
    decoded = [d for _, payload in messages for d in decode_gauge(payload, now, timedelta(minutes=5))]
    assert [(d.device_id, d.ts, d.measure) for d in decoded] == [
        (s.device_id, s.ts, s.measure) for s in samples
    ]
    assert [d.value for d in decoded] == pytest.approx([s.value for s in samples], abs=1e-9)
    assert max(levels) > 27.0  # a 10-year hour over a 35 mm/h underpass passes the red line


def _device(device_id: str, kind: Kind, lon: float) -> Device:
    return Device(device_id=device_id, kind=kind, grid_code=GRID, lat=39.94, lon=lon, interval_s=60)


def _rain_from_counters(values: list[float]) -> float:
    """Rain after the first reading, as a receiver reads counters: differences, a drop restarts."""
    return sum(b - a if b >= a else b for a, b in pairwise(values))
