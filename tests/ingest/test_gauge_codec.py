"""Gauge payloads (plain JSON and SenML, RFC 8428) decoded to samples in canonical units.

Every bad payload is rejected with the reason that is stored with its dead letter; a
rejection never surfaces as any other exception. ``now`` is passed in, so no test
depends on the wall clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridsense.app import App
from gridsense.config import GridsenseConfig, StoreConfig
from gridsense.errors import Rejected
from gridsense.model.envelopes import Kind
from ingest.contract import InboundMessage
from ingest.gauge_codec import Sample, decode_gauge, encode_json, encode_senml

NOW = datetime(2026, 7, 21, 6, 5, tzinfo=UTC)  # 14:05 in Beijing
NOW_S = 1784613900  # NOW as Unix seconds
MAX_FUTURE = timedelta(days=1)
CST = timezone(timedelta(hours=8))


def decode(payload: bytes | dict[str, Any] | list[Any]) -> list[Sample]:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return decode_gauge(raw, NOW, MAX_FUTURE)


def rejected(payload: bytes | dict[str, Any] | list[Any]) -> Rejected:
    """The rejection a payload gets; any other exception fails the test."""
    with pytest.raises(Rejected) as info:
        decode(payload)
    return info.value


def reading(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"device_id": "rg-1", "ts": "2026-07-21T14:05:00+08:00"}
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not ...}


# --- plain JSON ---------------------------------------------------------------------------


def test_json_reading_is_decoded_to_utc_and_millimetres() -> None:
    [s] = decode(reading(rain_mm=0.5, battery=87, ut=300))
    assert s == Sample(
        device_id="rg-1",
        kind=Kind.RAIN,
        ts=NOW,
        measure="amount",
        value=0.5,
        battery=87.0,
        update_interval_s=300.0,
    )
    assert s.ts.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("field", "kind", "measure"),
    [
        ("rain_mm", Kind.RAIN, "amount"),
        ("rain_counter_mm", Kind.RAIN, "counter"),
        ("rain_rate_mm_h", Kind.RAIN, "rate"),
        ("snow_depth_cm", Kind.SNOW, "level"),
        ("water_level_cm", Kind.WATER, "level"),
    ],
)
def test_json_value_field_names_kind_and_measure(field: str, kind: Kind, measure: str) -> None:
    [s] = decode(reading(**{field: 12.5}))
    assert (s.kind, s.measure, s.value) == (kind, measure, 12.5)


def test_json_unix_seconds_and_z_suffix_are_timestamps() -> None:
    assert decode(reading(ts=NOW_S, rain_mm=1))[0].ts == NOW
    assert decode(reading(ts="2026-07-21T06:05:00Z", rain_mm=1))[0].ts == NOW


def test_json_battery_null_means_no_battery() -> None:
    assert decode(reading(rain_mm=1, battery=None))[0].battery is None


def test_water_level_may_be_below_the_reference_point() -> None:
    assert decode(reading(water_level_cm=-30))[0].value == -30.0


@pytest.mark.parametrize(
    "payload",
    [
        b'{"device_id": "rg-1", "ts": "2026-07-21T14:05:00+08:00", "rain_mm": 0.5',  # truncated
        b'{"device_id": "rg-1", "ts": "2026-07-21T14:05:00+08:00", "rain_mm": 0.5}}',
        b"",
        b"\xff\xfe{}",  # not UTF-8
        # RFC 8259: these literals are not JSON at all.
        b'{"device_id": "rg-1", "ts": 1784613900, "rain_mm": NaN}',
        b'{"device_id": "rg-1", "ts": 1784613900, "rain_mm": Infinity}',
        b'{"device_id": "rg-1", "ts": 1784613900, "rain_mm": -Infinity}',
        # A number literal that overflows a double is refused by the parser too.
        b'{"device_id": "rg-1", "ts": 1784613900, "rain_mm": 1e999}',
        b'{"device_id": "rg-1", "ts": 1784613900, "rain_mm": -1e999}',
        b'[{"bn": "urn:dev:rg-1:", "bt": 1e999, "n": "rain", "u": "mm", "v": 1}]',
    ],
)
def test_malformed_payloads_are_rejected_as_malformed(payload: bytes) -> None:
    assert rejected(payload).reason == "malformed"


@pytest.mark.parametrize(
    ("doc", "detail"),
    [
        (reading(rain_mm="0.5"), "rain_mm must be a number, got str"),
        (reading(rain_mm=True), "rain_mm must be a number, got bool"),
        (reading(rain_mm=None), "rain_mm must be a number, got NoneType"),
        (reading(rain_mm=[1]), "rain_mm must be a number, got list"),
        (reading(rain_mm=1, battery=True), "battery must be a number, got bool"),
        (reading(rain_mm=1, ts=True), "ts must be a number, got bool"),
        (reading(rain_mm=1, ut="60"), "ut must be a number, got str"),
        (reading(rain_mm=1, device_id=7), "device_id must be a non-empty string"),
        (reading(rain_mm=1, device_id=""), "device_id must be a non-empty string"),
        (reading(rain_mm=1, ts=...), "ts is required"),
        (reading(rain_mm=1, colour="red"), "unknown fields ['colour']"),
        (reading(rain_mm=1, Rain_mm=1), "unknown fields ['Rain_mm']"),
        (reading(), "exactly one value field expected, got none"),
        (
            reading(rain_mm=1, snow_depth_cm=2),
            "exactly one value field expected, got ['rain_mm', 'snow_depth_cm']",
        ),
        (reading(rain_mm=1, rain_counter_mm=3), "exactly one value field expected"),
        (reading(rain_mm=1, ts="2026-07-21T14:05:00"), "has no timezone"),
        (reading(rain_mm=1, ts="2026-07-21 14h05"), "is not ISO-8601"),
        (reading(rain_mm=1, ts="yesterday"), "is not ISO-8601"),
        (reading(rain_mm=1, ts=1e300), "is out of range"),
        (reading(rain_mm=1, ts=-1e20), "is out of range"),
        # An offset that moves the instant out of the datetime range (used to raise
        # OverflowError out of the decoder).
        (reading(rain_mm=1, ts="9999-12-31T23:59:59-01:00"), "is out of range"),
        (reading(rain_mm=1, ts="0001-01-01T00:00:00+01:00"), "is out of range"),
    ],
)
def test_json_schema_violations_are_rejected_as_schema(doc: dict[str, Any], detail: str) -> None:
    exc = rejected(doc)
    assert exc.reason == "schema"
    assert detail in exc.detail


@pytest.mark.parametrize("payload", [b"1", b"null", b'"rain"', b"true"])
def test_a_payload_that_is_neither_object_nor_pack_is_a_schema_error(payload: bytes) -> None:
    exc = rejected(payload)
    assert exc.reason == "schema"
    assert "JSON object or a SenML array" in exc.detail


@pytest.mark.parametrize("field", ["rain_mm", "rain_counter_mm", "rain_rate_mm_h"])
def test_negative_rain_is_rejected(field: str) -> None:
    assert rejected(reading(**{field: -0.1})).reason == "negative_rain"


def test_negative_zero_rain_is_zero_not_negative() -> None:
    assert decode(reading(rain_mm=-0.0))[0].value == 0.0


def test_a_timestamp_more_than_a_day_ahead_is_rejected() -> None:
    ahead = NOW + MAX_FUTURE + timedelta(seconds=1)
    exc = rejected(reading(rain_mm=1, ts=ahead.isoformat()))
    assert exc.reason == "future_timestamp"
    # exactly the limit ahead is still accepted (a gauge clock a little fast is normal)
    [s] = decode(reading(rain_mm=1, ts=(NOW + MAX_FUTURE).isoformat()))
    assert s.ts == NOW + MAX_FUTURE


def test_a_timestamp_far_in_the_past_is_not_the_decoders_business() -> None:
    # lateness is judged against the device's newest reading, by the normaliser
    [s] = decode(reading(rain_mm=1, ts="2020-01-01T00:00:00+08:00"))
    assert s.ts == datetime(2019, 12, 31, 16, tzinfo=UTC)


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (reading(rain_mm=1, battery=101), "out_of_range"),
        (reading(rain_mm=1, battery=-1), "out_of_range"),
        (reading(rain_mm=1, ut=0), "out_of_range"),
        (reading(rain_mm=1, ut=-60), "out_of_range"),
        (reading(water_level_cm=-1000.5), "out_of_range"),
        (reading(snow_depth_cm=-2000), "out_of_range"),
    ],
)
def test_values_out_of_range_are_rejected(doc: dict[str, Any], reason: str) -> None:
    assert rejected(doc).reason == reason


# --- SenML ----------------------------------------------------------------------------------


def senml(*records: Any) -> list[Any]:
    return list(records)


def test_senml_example_from_the_codec_docs() -> None:
    [s] = decode(
        senml(
            {"bn": "urn:dev:rg-0001:", "bt": NOW_S, "n": "rain", "u": "mm", "v": 0.5},
            {"n": "battery", "u": "%EL", "v": 87},
        )
    )
    assert s == Sample("rg-0001", Kind.RAIN, NOW, "amount", 0.5, battery=87.0)


def test_empty_senml_pack_is_rejected() -> None:
    exc = rejected([])
    assert (exc.reason, exc.detail) == ("schema", "empty SenML pack")


@pytest.mark.parametrize(
    ("pack", "reason", "detail"),
    [
        (
            senml({"bn": "urn:dev:rg-1:", "n": "temperature", "u": "Cel", "v": 21}),
            "schema",
            "unknown measurement 'temperature'",
        ),
        (
            senml({"bn": "urn:dev:rg-1:", "n": "rain", "u": "in", "v": 1}),
            "unsupported_unit",
            "rain unit 'in'",
        ),
        (
            senml({"bn": "urn:dev:rg-1:", "n": "snow_depth", "u": "mm/h", "v": 1}),
            "unsupported_unit",
            "snow_depth unit 'mm/h'",
        ),
        (
            senml({"bn": "urn:dev:rg-1:", "n": "water_level", "u": "ft", "v": 1}),
            "unsupported_unit",
            "water_level unit 'ft'",
        ),
        (
            senml(
                {"bn": "urn:dev:rg-1:", "n": "battery", "u": "V", "v": 3.3}, {"n": "rain", "u": "mm", "v": 1}
            ),
            "unsupported_unit",
            "battery unit 'V'",
        ),
        (senml({"bn": "urn:dev:rg-1:", "n": "rain", "v": 1}), "schema", "has no unit"),
        (senml({"bn": "urn:dev:rg-1:", "n": "rain", "u": 5, "v": 1}), "schema", "has no unit"),
        (
            senml({"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "vs": "wet"}),
            "schema",
            "rain v must be a number, got NoneType",
        ),
        (
            senml({"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "v": "1"}),
            "schema",
            "rain v must be a number, got str",
        ),
        (
            senml({"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "v": 1, "colour": "red"}),
            "schema",
            "SenML record 0: unknown fields ['colour']",
        ),
        (
            senml({"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "v": 1}, 7),
            "schema",
            "SenML record 1 is not an object",
        ),
        (senml({"bn": 7, "n": "rain", "u": "mm", "v": 1}), "schema", "bn must be a string"),
        (senml({"bn": "urn:dev:rg-1:", "n": "battery", "u": "%EL", "v": 80}), "schema", "has no measurement"),
        (
            senml({"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "v": -1}),
            "negative_rain",
            "rain amount -1.0 < 0",
        ),
        (
            senml({"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "s": -1}),
            "negative_rain",
            "rain counter -1.0 < 0",
        ),
        (
            senml({"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "v": 1, "ut": 0}),
            "out_of_range",
            "ut must be > 0",
        ),
        (
            senml(
                {"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "v": 1}, {"n": "battery", "u": "/", "v": 1.5}
            ),
            "out_of_range",
            "battery 150.0",
        ),
    ],
)
def test_senml_bad_packs_are_rejected(pack: list[Any], reason: str, detail: str) -> None:
    exc = rejected(pack)
    assert exc.reason == reason
    assert detail in exc.detail


@pytest.mark.parametrize(
    "pack",
    [
        # bv + v and bs + s overflow a double although each is finite
        senml({"bn": "urn:dev:rg-1:", "bv": 1e308, "n": "rain", "u": "mm", "v": 1e308}),
        senml({"bn": "urn:dev:rg-1:", "bs": 1e308, "n": "rain", "u": "mm", "s": 1e308}),
        # unit scaling overflows: metres to millimetres, m/s to mm/h, metres to centimetres
        senml({"bn": "urn:dev:rg-1:", "n": "rain", "u": "m", "v": 1e306}),
        senml({"bn": "urn:dev:rg-1:", "n": "rain", "u": "m/s", "v": 1e306}),
        senml({"bn": "urn:dev:rg-1:", "n": "water_level", "u": "m", "v": 1e307}),
        # bt + t overflows to an infinite time
        senml({"bn": "urn:dev:rg-1:", "bt": 1e308, "t": 1e308, "n": "rain", "u": "mm", "v": 1}),
    ],
)
def test_senml_arithmetic_that_overflows_is_rejected_as_non_finite(pack: list[Any]) -> None:
    assert rejected(pack).reason == "non_finite"


@pytest.mark.parametrize(
    ("records", "device"),
    [
        ([{"bn": "urn:dev:rg-1:", "n": "rain"}], "rg-1"),
        ([{"bn": "rg-1:", "n": "rain"}], "rg-1"),  # the urn:dev: prefix is optional
        ([{"n": "urn:dev:rg-1:rain"}], "rg-1"),  # the full name in n alone
        ([{"bn": "urn:dev:", "n": "rg-1:rain"}], "rg-1"),  # split across bn and n
        ([{"bn": "urn:dev:x.y_z-9:", "n": "rain"}], "x.y_z-9"),
    ],
)
def test_senml_name_is_base_name_plus_name(records: list[dict[str, Any]], device: str) -> None:
    records[0].update(bt=NOW_S, u="mm", v=1)
    [s] = decode(records)
    assert s.device_id == device


@pytest.mark.parametrize(
    "rec",
    [
        {"bn": "urn:dev:rg-1", "n": "rain"},  # no separator between device and measure
        {"n": "rain"},  # no device at all
        {"bn": "urn:dev:rg-1:"},  # no measure
        {"bn": "urn:dev::", "n": "rain"},  # empty device
    ],
)
def test_senml_name_without_device_and_measure_is_rejected(rec: dict[str, Any]) -> None:
    exc = rejected([{**rec, "u": "mm", "v": 1}])
    assert exc.reason == "schema"
    assert "must be '<device-id>:<measure>'" in exc.detail


def test_senml_base_name_changes_mid_pack() -> None:
    samples = decode(
        senml(
            {"bn": "urn:dev:rg-1:", "bt": NOW_S, "n": "rain", "u": "mm", "v": 1},
            {"bn": "urn:dev:rg-2:", "n": "rain", "u": "mm", "v": 2},
        )
    )
    assert [(s.device_id, s.value) for s in samples] == [("rg-1", 1.0), ("rg-2", 2.0)]


@pytest.mark.parametrize(
    ("rec", "measure", "value"),
    [
        # rain depth: millimetres, whatever the unit
        ({"n": "rain", "u": "mm", "v": 2.5}, "amount", 2.5),
        ({"n": "rain", "u": "cm", "v": 2.5}, "amount", 25.0),
        ({"n": "rain", "u": "m", "v": 0.0025}, "amount", 2.5),
        # s, the SenML sum, is the tipping-bucket counter
        ({"n": "rain", "u": "mm", "s": 123.4}, "counter", 123.4),
        ({"n": "rain", "u": "m", "s": 0.1234}, "counter", 123.4),
        ({"n": "rain", "u": "cm", "s": 12.34}, "counter", 123.4),
        # rain rate: mm/h
        ({"n": "rain", "u": "mm/h", "v": 36.0}, "rate", 36.0),
        ({"n": "rain", "u": "m/s", "v": 1e-5}, "rate", 36.0),
    ],
)
def test_senml_rain_units_are_normalised_to_millimetres(
    rec: dict[str, Any], measure: str, value: float
) -> None:
    [s] = decode([{"bn": "urn:dev:rg-1:", "bt": NOW_S, **rec}])
    assert (s.kind, s.measure) == (Kind.RAIN, measure)
    assert s.value == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize(("name", "kind"), [("snow_depth", Kind.SNOW), ("water_level", Kind.WATER)])
@pytest.mark.parametrize(("unit", "v"), [("m", 0.27), ("cm", 27.0), ("mm", 270.0)])
def test_senml_levels_are_normalised_to_centimetres(name: str, kind: Kind, unit: str, v: float) -> None:
    [s] = decode([{"bn": "urn:dev:wl-1:", "bt": NOW_S, "n": name, "u": unit, "v": v}])
    assert (s.kind, s.measure) == (kind, "level")
    assert s.value == pytest.approx(27.0, rel=1e-12)


def test_senml_base_unit_value_and_sum_apply_to_records() -> None:
    [level] = decode(
        [{"bn": "urn:dev:wl-1:", "bt": NOW_S, "bu": "m", "bv": 0.2, "n": "water_level", "v": 0.07}]
    )
    assert level.value == pytest.approx(27.0, rel=1e-12)  # (0.2 + 0.07) m
    [counter] = decode([{"bn": "urn:dev:rg-1:", "bt": NOW_S, "bs": 100, "n": "rain", "u": "mm", "s": 2.5}])
    assert (counter.measure, counter.value) == ("counter", 102.5)


@pytest.mark.parametrize(("unit", "v"), [("%EL", 87), ("%", 87), ("/", 0.87)])
def test_senml_battery_units(unit: str, v: float) -> None:
    [s] = decode(
        senml(
            {"bn": "urn:dev:rg-1:", "bt": NOW_S, "n": "rain", "u": "mm", "v": 1},
            {"n": "battery", "u": unit, "v": v},
        )
    )
    assert s.battery == pytest.approx(87.0)


def test_senml_ut_is_kept_as_the_update_interval() -> None:
    [s] = decode([{"bn": "urn:dev:rg-1:", "bt": NOW_S, "n": "rain", "u": "mm", "v": 1, "ut": 300}])
    assert s.update_interval_s == 300.0


def test_senml_times_below_2_pow_28_are_relative_to_now() -> None:
    [ago] = decode([{"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "v": 1, "t": -60}])
    assert ago.ts == NOW - timedelta(seconds=60)
    [untimed] = decode([{"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "v": 1}])
    assert untimed.ts == NOW  # no bt, no t: "now"
    [far] = decode([{"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "v": 1, "t": -(2**28 - 1)}])
    assert far.ts == NOW - timedelta(seconds=2**28 - 1)


def test_senml_relative_time_sums_base_time_and_time() -> None:
    [s] = decode([{"bn": "urn:dev:rg-1:", "bt": -120, "n": "rain", "u": "mm", "v": 1, "t": 60}])
    assert s.ts == NOW - timedelta(seconds=60)


def test_senml_times_from_2_pow_28_are_absolute() -> None:
    [s] = decode([{"bn": "urn:dev:rg-1:", "bt": 2**28, "n": "rain", "u": "mm", "v": 1}])
    assert s.ts == datetime(1978, 7, 4, 21, 24, 16, tzinfo=UTC)


def test_senml_relative_time_ahead_of_the_limit_is_a_future_timestamp() -> None:
    exc = rejected([{"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "v": 1, "t": 86401}])
    assert exc.reason == "future_timestamp"


def test_senml_absolute_time_out_of_range_is_rejected() -> None:
    exc = rejected([{"bn": "urn:dev:rg-1:", "bt": 1e15, "n": "rain", "u": "mm", "v": 1}])
    assert exc.reason == "schema"
    assert "out of range" in exc.detail


def test_senml_pack_with_several_readings_at_different_times() -> None:
    samples = decode(
        senml(
            {"bn": "urn:dev:rg-1:", "bt": NOW_S - 120, "bu": "mm", "n": "rain", "v": 0.2, "t": 0},
            {"n": "rain", "v": 0.4, "t": 60},
            {"n": "battery", "u": "%EL", "v": 80, "t": 60},
            {"n": "rain", "v": 0.6, "t": 120},
        )
    )
    assert [(s.ts, s.value, s.battery) for s in samples] == [
        (NOW - timedelta(seconds=120), 0.2, None),
        (NOW - timedelta(seconds=60), 0.4, 80.0),  # the battery belongs to its own instant
        (NOW, 0.6, None),
    ]


def test_senml_battery_alone_at_an_instant_is_rejected() -> None:
    exc = rejected(
        senml(
            {"bn": "urn:dev:rg-1:", "bt": NOW_S, "n": "rain", "u": "mm", "v": 1},
            {"n": "battery", "u": "%EL", "v": 80, "t": 60},
        )
    )
    assert exc.reason == "schema"
    assert "has no measurement" in exc.detail


def test_one_bad_record_rejects_the_whole_pack() -> None:
    exc = rejected(
        senml(
            {"bn": "urn:dev:rg-1:", "bt": NOW_S, "n": "rain", "u": "mm", "v": 1},
            {"n": "rain", "u": "mm", "v": -1, "t": -60},
        )
    )
    assert exc.reason == "negative_rain"


# --- round trip ---------------------------------------------------------------------------

device_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,30}\Z")
# Timestamps from 2001 (SenML: above 2**28, so absolute) up to the future limit, to the
# microsecond, in UTC or Beijing time.
timestamps = st.datetimes(
    min_value=datetime(2001, 1, 1),
    max_value=(NOW + MAX_FUTURE).replace(tzinfo=None),
    timezones=st.sampled_from([UTC, CST]),
).filter(lambda ts: ts - NOW <= MAX_FUTURE)
# Gauge resolution: 0.001 mm (rain) or 0.001 cm (levels).
depths = st.integers(min_value=0, max_value=10**7).map(lambda n: n / 1000)
levels = st.integers(min_value=-(10**6), max_value=10**7).map(lambda n: n / 1000)
kind_measure = st.sampled_from(
    [
        (Kind.RAIN, "amount"),
        (Kind.RAIN, "counter"),
        (Kind.RAIN, "rate"),
        (Kind.SNOW, "level"),
        (Kind.WATER, "level"),
    ]
)


@st.composite
def samples(draw: st.DrawFn) -> Sample:
    kind, measure = draw(kind_measure)
    return Sample(
        device_id=draw(device_ids),
        kind=kind,
        ts=draw(timestamps),
        measure=measure,
        value=draw(levels if measure == "level" else depths),
        battery=draw(st.none() | st.floats(min_value=0, max_value=100)),
        update_interval_s=draw(st.none() | st.floats(min_value=0.001, max_value=86400)),
    )


@settings(max_examples=300)
@given(samples())
def test_json_round_trip_gives_the_same_sample(sample: Sample) -> None:
    assert decode(encode_json(sample)) == [sample]


@settings(max_examples=300)
@given(samples())
def test_senml_round_trip_gives_the_same_sample(sample: Sample) -> None:
    [back] = decode(encode_senml(sample))
    # SenML carries primary units (m, m/s): the value goes through a division and back,
    # which may move it by an ulp or two; everything else is exact.
    assert math.isclose(back.value, sample.value, rel_tol=1e-14, abs_tol=1e-12)
    assert back == Sample(
        sample.device_id,
        sample.kind,
        sample.ts,
        sample.measure,
        back.value,
        sample.battery,
        sample.update_interval_s,
    )


def test_senml_encoding_uses_primary_units() -> None:
    pack = orjson.loads(encode_senml(Sample("rg-1", Kind.RAIN, NOW, "rate", 36.0)))
    assert pack == [{"bn": "urn:dev:rg-1:", "bt": NOW_S, "n": "rain", "u": "m/s", "v": 1e-5}]
    level = orjson.loads(encode_senml(Sample("wl-1", Kind.WATER, NOW, "level", 27.0)))
    assert level[0]["u"] == "m"
    assert level[0]["v"] == pytest.approx(0.27)


# --- through the pipeline: the size limit and dead letters --------------------------------
#
# The size limit is enforced by GaugePipeline before decoding. These tests build the real
# application (demo registries, a real SQLite state file) without starting it: nothing
# connects until App.start().

RAIN_TOPIC = "city/110102/110102012001001/rain/rg-012001001-1"
OTHER_RAIN_TOPIC = "city/110102/110102012001001/rain/rg-012001001-2"
LIMIT = 8192  # LimitsConfig.max_gauge_bytes default


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    application = App(GridsenseConfig(store=StoreConfig(path=tmp_path / "s.db")))
    try:
        yield application
    finally:
        application.stop()


def message(topic: str, payload: bytes) -> InboundMessage:
    return InboundMessage(topic=topic, payload=payload, received_at=NOW)


def good_payload(device: str = "rg-012001001-2", pad_to: int = 0) -> bytes:
    # A fixed past time: the pipeline judges the future limit against the wall clock.
    doc = {"device_id": device, "ts": "2024-07-21T14:05:00+08:00", "rain_mm": 0.5}
    return orjson.dumps(doc).ljust(pad_to)  # JSON allows trailing whitespace


def stored(app: App) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    readings = app.conn.execute("SELECT device_id, ts_ms, value FROM readings").fetchall()
    dead = app.conn.execute("SELECT topic, device_id, reason, length(payload) FROM dead_letters").fetchall()
    return readings, dead


def test_oversized_payload_is_dead_lettered_and_the_good_one_stored(app: App) -> None:
    too_big = message(RAIN_TOPIC, good_payload("rg-012001001-1", pad_to=LIMIT + 1))
    out = app.pipeline.handle([too_big, message(OTHER_RAIN_TOPIC, good_payload())])

    assert out.readings == 1
    assert [d.reason for d in out.dead_letters] == ["too_large"]
    readings, dead = stored(app)
    assert readings == [("rg-012001001-2", 1721541900000, 0.5)]
    assert dead == [(RAIN_TOPIC, "rg-012001001-1", "too_large", LIMIT + 1)]


def test_payload_of_exactly_the_limit_is_accepted(app: App) -> None:
    out = app.pipeline.handle([message(OTHER_RAIN_TOPIC, good_payload(pad_to=LIMIT))])
    assert (out.readings, out.dead_letters) == (1, [])


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"device_id": "rg-012001001-1", "ts": "9999-12-31T23:59:59-01:00", "rain_mm": 1}', "schema"),
        (
            b'{"device_id": "rg-012001001-1", "ts": "2024-07-21T14:05:00+08:00",'
            b' "rain_rate_mm_h": 1e308, "ut": 7200}',
            "non_finite",
        ),
        (
            b'[{"bn": "urn:dev:rg-012001001-1:", "bt": 1721541900, "bv": 1e308, "n": "rain",'
            b' "u": "mm", "v": 1e308}]',
            "non_finite",
        ),
    ],
)
def test_payloads_that_used_to_escape_the_dead_letter_path(app: App, payload: bytes, reason: str) -> None:
    # Each once raised something other than Rejected (OverflowError, a pydantic error),
    # which would have stopped the ingest worker instead of dead-lettering one message.
    out = app.pipeline.handle([message(RAIN_TOPIC, payload), message(OTHER_RAIN_TOPIC, good_payload())])
    assert out.readings == 1
    readings, dead = stored(app)
    assert [r[0] for r in readings] == ["rg-012001001-2"]
    assert [(d[0], d[2]) for d in dead] == [(RAIN_TOPIC, reason)]
