"""GaugeNormaliser: a decoded sample checked against its topic and the registry, and
tipping-bucket counters and rain rates turned into the rain that fell in the interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridsense.errors import Rejected
from gridsense.model.envelopes import Kind
from gridsense.model.reading import Reading
from gridsense.model.registry import Device, DeviceRegistry
from ingest.gauge_codec import Sample
from ingest.normalise import GaugeNormaliser
from ingest.reading_store import ts_ms
from ingest.topics import Topic, TopicScheme

GRID = "110102012001001"
OTHER_GRID = "110102012001002"
T0 = datetime(2026, 7, 21, 6, 0, tzinfo=UTC)
LATENESS_S = 600.0
SCHEME = TopicScheme()


def device(device_id: str, kind: Kind, grid: str = GRID, interval_s: float = 60) -> Device:
    return Device(
        device_id=device_id, kind=kind, grid_code=grid, lat=39.94, lon=116.38, interval_s=interval_s
    )


DEVICES = DeviceRegistry(
    {
        d.device_id: d
        for d in [
            device("rg-1", Kind.RAIN),
            device("rg-2", Kind.RAIN, interval_s=300),
            device("sd-1", Kind.SNOW),
            device("wl-1", Kind.WATER),
            device("rg-9", Kind.RAIN, grid=OTHER_GRID),
        ]
    }
)


def topic_of(device_id: str, kind: Kind = Kind.RAIN, grid: str = GRID) -> Topic:
    return SCHEME.parse(SCHEME.topic(grid, kind, device_id))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def counter(value: float, minutes: float, device_id: str = "rg-1") -> Sample:
    return Sample(device_id, Kind.RAIN, at(minutes), "counter", value)


@pytest.fixture
def norm() -> GaugeNormaliser:
    return GaugeNormaliser(DEVICES, lateness_s=LATENESS_S)


def rejection(norm: GaugeNormaliser, topic: Topic, sample: Sample) -> Rejected:
    with pytest.raises(Rejected) as info:
        norm.normalise(topic, sample)
    return info.value


def test_an_amount_becomes_a_reading_in_the_registered_grid(norm: GaugeNormaliser) -> None:
    sample = Sample("rg-1", Kind.RAIN, at(0), "amount", 0.5, battery=87.0, update_interval_s=60)
    assert norm.normalise(topic_of("rg-1"), sample) == Reading(
        device_id="rg-1",
        kind=Kind.RAIN,
        grid_code=GRID,
        ts=at(0),
        value=0.5,
        unit="mm",
        counter=None,
        battery=87.0,
        update_interval_s=60,
    )


@pytest.mark.parametrize(("device_id", "kind"), [("sd-1", Kind.SNOW), ("wl-1", Kind.WATER)])
def test_levels_pass_through_in_centimetres(norm: GaugeNormaliser, device_id: str, kind: Kind) -> None:
    r = norm.normalise(topic_of(device_id, kind), Sample(device_id, kind, at(0), "level", 27.0))
    assert (r.kind, r.value, r.unit) == (kind, 27.0, "cm")


def test_payload_naming_another_device_than_the_topic(norm: GaugeNormaliser) -> None:
    exc = rejection(norm, topic_of("rg-1"), Sample("rg-2", Kind.RAIN, at(0), "amount", 1))
    assert exc.reason == "device_mismatch"


def test_device_not_in_the_registry(norm: GaugeNormaliser) -> None:
    exc = rejection(norm, topic_of("rg-404"), Sample("rg-404", Kind.RAIN, at(0), "amount", 1))
    assert exc.reason == "unknown_device"


def test_device_publishing_under_another_grid(norm: GaugeNormaliser) -> None:
    exc = rejection(norm, topic_of("rg-1", grid=OTHER_GRID), Sample("rg-1", Kind.RAIN, at(0), "amount", 1))
    assert exc.reason == "grid_mismatch"
    assert GRID in exc.detail


@pytest.mark.parametrize(
    ("topic_kind", "sample_kind", "measure"),
    [
        (Kind.SNOW, Kind.RAIN, "amount"),  # a rain gauge under a snow topic
        (Kind.RAIN, Kind.WATER, "level"),  # a rain gauge's topic, a water-level payload
        (Kind.SNOW, Kind.SNOW, "level"),  # both agree, the registry says rain
    ],
)
def test_kind_disagreeing_with_the_registry(
    norm: GaugeNormaliser, topic_kind: Kind, sample_kind: Kind, measure: str
) -> None:
    exc = rejection(norm, topic_of("rg-1", topic_kind), Sample("rg-1", sample_kind, at(0), measure, 1))
    assert exc.reason == "kind_mismatch"


def test_reading_older_than_the_watermark_is_late(norm: GaugeNormaliser) -> None:
    topic = topic_of("rg-1")
    norm.normalise(topic, Sample("rg-1", Kind.RAIN, at(60), "amount", 1))
    # exactly the lateness behind the newest is still accepted
    on_edge = norm.normalise(topic, Sample("rg-1", Kind.RAIN, at(50), "amount", 1))
    assert on_edge.value == 1
    exc = rejection(norm, topic, Sample("rg-1", Kind.RAIN, at(50) - timedelta(milliseconds=1), "amount", 1))
    assert exc.reason == "late"
    # the watermark is per device: another gauge's history does not make this one late
    assert norm.normalise(topic_of("rg-2"), Sample("rg-2", Kind.RAIN, at(0), "amount", 1))


def test_a_late_reading_does_not_move_the_watermark(norm: GaugeNormaliser) -> None:
    topic = topic_of("rg-1")
    norm.normalise(topic, Sample("rg-1", Kind.RAIN, at(60), "amount", 1))
    rejection(norm, topic, Sample("rg-1", Kind.RAIN, at(0), "amount", 1))
    assert norm.normalise(topic, Sample("rg-1", Kind.RAIN, at(55), "amount", 1)).value == 1


def test_rejections_leave_counter_state_alone(norm: GaugeNormaliser) -> None:
    topic = topic_of("rg-1")
    norm.normalise(topic, counter(100.0, 0))
    rejection(norm, topic_of("rg-1", grid=OTHER_GRID), counter(500.0, 1))
    rejection(norm, topic, counter(500.0, -20))  # late
    assert norm.normalise(topic, counter(102.0, 2)).value == 2.0


# --- tipping-bucket counters ------------------------------------------------------------


def amounts(norm: GaugeNormaliser, samples: list[Sample]) -> list[float]:
    return [norm.normalise(topic_of(s.device_id), s).value for s in samples]


def test_first_counter_reading_gives_zero_then_differences(norm: GaugeNormaliser) -> None:
    got = amounts(norm, [counter(1000.0, 0), counter(1000.5, 1), counter(1002.0, 2)])
    assert got == [0.0, 0.5, 1.5]


def test_counter_reading_keeps_the_raw_total(norm: GaugeNormaliser) -> None:
    norm.normalise(topic_of("rg-1"), counter(1000.0, 0))
    r = norm.normalise(topic_of("rg-1"), counter(1000.5, 1))
    assert (r.value, r.counter) == (0.5, 1000.5)


def test_counter_reset_counts_from_zero(norm: GaugeNormaliser) -> None:
    # power cycle between minute 1 and 2: the gauge starts again at 0 and has tipped 0.4 mm
    got = amounts(norm, [counter(812.0, 0), counter(812.6, 1), counter(0.4, 2), counter(1.0, 3)])
    assert got == pytest.approx([0.0, 0.6, 0.4, 0.6])


def test_out_of_order_counter_gives_zero_and_keeps_the_next_delta(norm: GaugeNormaliser) -> None:
    got = amounts(
        norm,
        [
            counter(10.0, 0),
            counter(12.0, 2),
            counter(11.0, 1),  # arrives late (within the lateness): no interval of its own
            counter(15.0, 3),  # the delta is still from the newest in-order total, 12
        ],
    )
    assert got == [0.0, 2.0, 0.0, 3.0]


def test_repeated_timestamp_counter_gives_zero(norm: GaugeNormaliser) -> None:
    assert amounts(norm, [counter(10.0, 0), counter(11.0, 0), counter(12.0, 1)]) == [0.0, 0.0, 2.0]


def test_counters_are_kept_per_device(norm: GaugeNormaliser) -> None:
    got = amounts(
        norm,
        [counter(10.0, 0), counter(500.0, 0, "rg-2"), counter(11.0, 1), counter(503.0, 1, "rg-2")],
    )
    assert got == [0.0, 0.0, 1.0, 3.0]


def test_an_amount_between_counters_does_not_forget_the_counter(norm: GaugeNormaliser) -> None:
    got = amounts(
        norm,
        [
            counter(10.0, 0),
            Sample("rg-1", Kind.RAIN, at(1), "amount", 0.2),
            counter(10.5, 2),
        ],
    )
    assert got == [0.0, 0.2, 0.5]


# --- rates ------------------------------------------------------------------------------


def test_rate_over_the_senml_update_interval(norm: GaugeNormaliser) -> None:
    rate = Sample("rg-1", Kind.RAIN, at(0), "rate", 36.0, update_interval_s=120)
    assert norm.normalise(topic_of("rg-1"), rate).value == pytest.approx(1.2)  # 36 mm/h × 2 min


@pytest.mark.parametrize(("device_id", "expected"), [("rg-1", 0.6), ("rg-2", 3.0)])
def test_rate_without_ut_uses_the_registered_interval(
    norm: GaugeNormaliser, device_id: str, expected: float
) -> None:
    rate = Sample(device_id, Kind.RAIN, at(0), "rate", 36.0)
    # rg-1 reports every 60 s, rg-2 every 300 s
    assert norm.normalise(topic_of(device_id), rate).value == pytest.approx(expected)


def test_rate_that_overflows_over_the_interval_is_rejected(norm: GaugeNormaliser) -> None:
    # finite on the wire, infinite once multiplied by the interval: rejected as data,
    # never left to fail the Reading's validation inside the pipeline
    rate = Sample("rg-1", Kind.RAIN, at(0), "rate", 1e308, update_interval_s=7200)
    assert rejection(norm, topic_of("rg-1"), rate).reason == "non_finite"
    # and the rejected sample did not become the device's newest: 20 min before it is not late
    assert norm.normalise(topic_of("rg-1"), counter(5.0, -20)).value == 0.0


# --- restore ----------------------------------------------------------------------------


def test_restore_continues_counters_after_a_restart() -> None:
    norm = GaugeNormaliser(DEVICES, lateness_s=LATENESS_S)
    norm.restore({"rg-1": (ts_ms(at(10)), 250.0)})
    # no double counting of the 250 mm total, and the watermark survives the restart
    assert amounts(norm, [counter(251.5, 11)]) == [1.5]
    assert rejection(norm, topic_of("rg-1"), counter(252.0, -1)).reason == "late"


def test_restore_with_no_counter_treats_the_next_counter_as_first() -> None:
    norm = GaugeNormaliser(DEVICES, lateness_s=LATENESS_S)
    norm.restore({"rg-1": (ts_ms(at(10)), None)})
    assert amounts(norm, [counter(251.5, 11), counter(252.0, 12)]) == [0.0, 0.5]


def test_restore_replaces_what_was_there(norm: GaugeNormaliser) -> None:
    amounts(norm, [counter(10.0, 0), counter(20.0, 60)])
    norm.restore({})
    # the old watermark (minute 60) is gone: minute 0 is not late any more
    assert amounts(norm, [counter(30.0, 0), counter(31.0, 1)]) == [0.0, 1.0]


def test_restore_copies_the_state_it_is_given() -> None:
    state: dict[str, tuple[int, float | None]] = {"rg-1": (ts_ms(at(0)), 10.0)}
    norm = GaugeNormaliser(DEVICES, lateness_s=LATENESS_S)
    norm.restore(state)
    amounts(norm, [counter(12.0, 1)])
    assert state == {"rg-1": (ts_ms(at(0)), 10.0)}


def test_a_reading_carries_the_registrys_own_id_string_not_the_payloads_copy(
    norm: GaugeNormaliser,
) -> None:
    """Every per-device table (windows, last seen, counters) is keyed on the reading's id: the
    registry's string is shared by all of them, where each payload's copy would cost about
    60 bytes a gauge (bench/ingest_throughput.py --memory)."""
    payload_id = "".join(["rg-", "1"])  # equal to the registry's id, but another object
    registered = DEVICES.get("rg-1")
    assert registered is not None and payload_id is not registered.device_id
    reading = norm.normalise(topic_of("rg-1"), Sample(payload_id, Kind.RAIN, at(0), "amount", 0.5))
    assert reading.device_id is registered.device_id
