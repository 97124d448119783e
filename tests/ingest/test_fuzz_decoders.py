"""Fuzzing the gauge decoder: whatever arrives, it returns samples or raises ``Rejected``.

Anything else (an ``OverflowError``, a ``KeyError``, a sample carrying ``inf``) would escape
the pipeline's dead-letter path and stop the ingest worker on one bad message.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gridsense.errors import Rejected
from ingest.gauge_codec import Sample, decode_gauge

NOW = datetime(2026, 7, 21, 6, 5, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)

JSON_KEYS = [
    "device_id",
    "ts",
    "battery",
    "ut",
    "rain_mm",
    "rain_counter_mm",
    "rain_rate_mm_h",
    "snow_depth_cm",
    "water_level_cm",
]
SENML_KEYS = ["bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut"]

# Numbers that sit on the edges: zero, signs, huge, tiny, around 2**28 (SenML's relative-time
# limit), around the datetime range, and big integers.
edge_numbers = st.sampled_from(
    [
        0,
        -0.0,
        1,
        -1,
        0.5,
        -0.5,
        1e308,
        -1e308,
        1.7976931348623157e308,
        5e-324,
        2**28,
        2**28 - 1,
        -(2**28),
        2**31,
        2**53 + 1,
        2**63 - 1,
        -(2**63),
        253402300799,
        253402300800,
        -62135596800,
        1784613900,
        86400,
        100,
        101,
    ]
)
numbers = st.one_of(
    edge_numbers,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)
timestamp_strings = st.one_of(
    st.sampled_from(
        [
            "2026-07-21T14:05:00+08:00",
            "2026-07-21T14:05:00",
            "2026-07-21T14:05:00Z",
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:00:00+01:00",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999+00:00",
            "2026-13-01T00:00:00Z",
            "",
            "now",
        ]
    ),
    st.datetimes(timezones=st.sampled_from([UTC, None])).map(lambda d: d.isoformat()),
    st.text(max_size=40),
)
units = st.sampled_from(["m", "cm", "mm", "m/s", "mm/h", "%EL", "%", "/", "Cel", "", "in"])
names = st.sampled_from(
    ["rain", "snow_depth", "water_level", "battery", "temp", "", ":", "urn:dev:rg-1:rain"]
)
base_names = st.sampled_from(["urn:dev:rg-1:", "rg-1:", "urn:dev:", "", "urn:dev:rg-1", ":"])
scalars = st.one_of(
    st.none(), st.booleans(), numbers, st.text(max_size=20), st.lists(st.integers(), max_size=2)
)


def _json_value(key: str) -> st.SearchStrategy[Any]:
    if key == "ts":
        return st.one_of(timestamp_strings, numbers, scalars)
    if key == "device_id":
        return st.one_of(st.sampled_from(["rg-1", ""]), scalars)
    return st.one_of(numbers, scalars)


json_objects = st.lists(st.sampled_from([*JSON_KEYS, "extra"]), unique=True, max_size=6).flatmap(
    lambda keys: st.fixed_dictionaries({k: _json_value(k) for k in keys})
)


def _senml_value(key: str) -> st.SearchStrategy[Any]:
    if key == "bn":
        return st.one_of(base_names, scalars)
    if key == "n":
        return st.one_of(names, scalars)
    if key in {"u", "bu"}:
        return st.one_of(units, scalars)
    return st.one_of(numbers, scalars)


senml_records = st.lists(st.sampled_from([*SENML_KEYS, "x"]), unique=True, min_size=0, max_size=7).flatmap(
    lambda keys: st.fixed_dictionaries({k: _senml_value(k) for k in keys})
)

# Records close to valid: a base name that resolves, a known name, a unit that may fit,
# and a value from the edges, so the fuzzing reaches the unit and time arithmetic.
near_valid_records = st.fixed_dictionaries(
    {"n": names, "u": units},
    optional={
        "bn": base_names,
        "bt": numbers,
        "t": numbers,
        "v": numbers,
        "s": numbers,
        "bv": numbers,
        "bs": numbers,
        "ut": numbers,
    },
)
senml_packs = st.lists(st.one_of(near_valid_records, senml_records, scalars), min_size=0, max_size=5)


def _dumps(doc: Any) -> bytes:
    # The standard library serialises integers of any size (and NaN), which orjson refuses.
    return json.dumps(doc, ensure_ascii=False).encode()


def _decode_or_reject(payload: bytes) -> list[Sample] | None:
    try:
        samples = decode_gauge(payload, NOW, MAX_FUTURE)
    except Rejected as exc:
        assert isinstance(exc.reason, str) and exc.reason
        return None
    for s in samples:
        # What comes out can be stored: finite, in range, never further ahead than allowed.
        assert isinstance(s, Sample)
        assert math.isfinite(s.value)
        assert s.ts.tzinfo is not None
        assert s.ts - NOW <= MAX_FUTURE
        assert s.battery is None or 0 <= s.battery <= 100
        assert s.update_interval_s is None or s.update_interval_s > 0
    return samples


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
@example(b"")
@example(b"\xff\xfe\x00")
@example(b"[" * 5000)
@example(b'{"a":' * 1000)
@example(b"NaN")
@example(b"1e999")
def test_arbitrary_bytes_are_decoded_or_rejected(payload: bytes) -> None:
    _decode_or_reject(payload)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(json_objects)
@example({"device_id": "rg-1", "ts": "9999-12-31T23:59:59-01:00", "rain_mm": 1})
@example({"device_id": "rg-1", "ts": "0001-01-01T00:00:00+01:00", "rain_mm": 1})
@example({"device_id": "rg-1", "ts": 2**63 - 1, "rain_mm": 1})
def test_wrong_json_objects_are_decoded_or_rejected(doc: dict[str, Any]) -> None:
    _decode_or_reject(_dumps(doc))


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(senml_packs)
@example([{"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "v": 1e308, "bv": 1e308}])
@example([{"bn": "urn:dev:rg-1:", "n": "rain", "u": "m", "s": 1e306}])
@example([{"bn": "urn:dev:rg-1:", "n": "rain", "u": "m/s", "v": 1e306}])
@example([{"bn": "urn:dev:rg-1:", "n": "water_level", "u": "m", "v": 1e307}])
@example([{"bn": "urn:dev:rg-1:", "bt": 1e308, "n": "rain", "u": "mm", "v": 1, "t": 1e308}])
def test_wrong_senml_packs_are_decoded_or_rejected(pack: list[Any]) -> None:
    _decode_or_reject(_dumps(pack))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from([*SENML_KEYS, *JSON_KEYS]), inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_nested_structures_are_decoded_or_rejected(doc: Any) -> None:
    _decode_or_reject(_dumps(doc))
