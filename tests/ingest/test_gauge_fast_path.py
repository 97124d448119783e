"""The typed fast path of ``decode_gauge`` against ``decode_gauge_reference``.

Whatever arrives, the two must agree exactly: the same samples (compared by ``repr``, so a
``-0.0`` or a time zone counts), or the same reason and detail; and ``try_decode_gauge``,
which returns the rejection the other two raise, must give the same verdict. The fast path may hand any
payload to the reference, so the last tests check it does take the payloads gauges send.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gridsense.errors import Rejected
from ingest.gauge_codec import (
    _SYNTAX,
    Sample,
    _fast_json,
    _fast_senml,
    _one_reading,
    decode_gauge,
    decode_gauge_reference,
    encode_json,
    encode_senml,
    try_decode_gauge,
)
from ingest.gauge_wire import TYPED, JsonGauge
from tests.ingest.test_fuzz_decoders import (
    MAX_FUTURE,
    NOW,
    _dumps,
    json_objects,
    near_valid_records,
    numbers,
    senml_packs,
    units,
)
from tests.ingest.test_gauge_codec import samples


@st.composite
def gauge_packs(draw: st.DrawFn) -> list[Any]:
    """A gauge's own SenML pack, then base and record fields changed or added: mostly valid."""
    pack: list[Any] = orjson.loads(encode_senml(draw(samples())))
    extra = st.fixed_dictionaries(
        {},
        optional={
            "t": numbers | st.sampled_from([-60, 60, 3600]),
            "bv": numbers,
            "bs": numbers,
            "ut": numbers,
            "u": units,
            "s": numbers,
        },
    )
    for rec in pack:
        rec.update(draw(extra))
    if draw(st.booleans()):  # a second reading of the same gauge, a minute later
        pack.append({**pack[0], "t": pack[0].get("t", 0) + 60})
        del pack[-1]["bn"]
    return pack


BATTERY = {"n": "battery", "u": "%EL", "v": 80}
FUZZ = settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])


def outcome(decoder: Any, payload: bytes) -> str:
    try:
        return repr(decoder(payload, NOW, MAX_FUTURE))
    except Rejected as exc:
        return repr(("rejected", exc.reason, exc.detail))


def verdict(payload: bytes) -> str:
    """``outcome`` for ``try_decode_gauge``, whose rejection is its return value."""
    got = try_decode_gauge(payload, NOW, MAX_FUTURE)
    return repr(("rejected", got.reason, got.detail)) if isinstance(got, Rejected) else repr(got)


def agree(payload: bytes) -> None:
    fast = outcome(decode_gauge, payload)
    assert fast == outcome(decode_gauge_reference, payload)
    assert verdict(payload) == fast


@FUZZ
@given(json_objects)
@example({"device_id": "rg-1", "ts": "2026-07-21T14:05:00+08:00", "rain_mm": -0.0})
@example({"device_id": "rg-1", "ts": 1784613900, "rain_mm": 1, "battery": None, "ut": 60})
@example({"device_id": "rg-1", "ts": 2**63 - 1, "rain_mm": 1})
@example({"device_id": "rg-1", "ts": "9999-12-31T23:59:59-01:00", "rain_mm": 1})
@example({"device_id": "rg-1", "ts": 1784613900, "rain_mm": "12.5"})  # a string the wire struct admits
@example({"device_id": "rg-1", "ts": 1784613900, "water_level_cm": "NaN", "snow_depth_cm": 1})
def test_json_objects_decode_alike(doc: dict[str, Any]) -> None:
    agree(_dumps(doc))


@FUZZ
@given(gauge_packs() | st.lists(near_valid_records, min_size=1, max_size=4) | senml_packs)
@example([{"bn": "urn:dev:rg-1:", "bt": -0.0, "n": "rain", "u": "mm", "v": -0.0}])
@example([{"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "v": 1, "vs": "x"}])
@example([{"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "v": 1, "bver": "10"}])
@example([{"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "s": None}])
@example([{"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "v": 1, "t": 60}, {"n": "rain", "u": "mm", "v": 2}])
# The one-reading shape (``_one_reading``) at its edges: whose battery, which zero, which name.
@example([{"bn": "urn:dev:rg-1", "bt": 1784613900, "n": ":rain", "u": "m", "v": 0.001}, BATTERY])
@example([{"bn": "urn:dev:", "bt": 1784613900, "n": "rg-1:rain", "u": "m", "v": 0.001}, BATTERY])
@example(
    [{"bn": "urn:dev:rg-1:", "bt": 1784613900, "n": "rain", "u": "m", "v": 0.001}, {**BATTERY, "v": -0.0}]
)
@example([{"bn": "urn:dev:rg-1:", "bt": -0.0, "n": "rain", "u": "m", "v": 0.001}])
@example([{"bn": "urn:dev:rg-1:", "bt": 1784613900, "n": "battery", "u": "%EL", "v": 50}, BATTERY])
@example([{"bn": "urn:dev:rg-1:", "bt": 1784613900, "n": "rain", "u": "m", "v": 0.001, "ut": 0}])
@example(
    [{"bn": "urn:dev:rg-1:", "bt": 1784613900, "n": "rain", "u": "m", "v": 0.001}, {**BATTERY, "u": "V"}]
)
def test_senml_packs_decode_alike(pack: list[Any]) -> None:
    agree(_dumps(pack))


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
@example(b'{"device_id": "rg-1", "ts": 1784613900, "rain_mm": 1, "rain_mm": 2}')
@example(b'{"device_id": "\\ud800", "ts": 1784613900, "rain_mm": 1}')
@example(b'[{"v": 1e999}]')
def test_arbitrary_bytes_decode_alike(payload: bytes) -> None:
    agree(payload)


def orjson_takes(payload: bytes) -> bool:
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return True


def syntax_refuses(payload: bytes) -> bool:
    """``_SYNTAX`` says "not JSON" (nested too deep for it, it leaves the question to orjson)."""
    try:
        _SYNTAX.decode(payload)
    except msgspec.DecodeError:
        return True
    except RecursionError:
        return False
    return False


def _broken(doc: Any, cut: int, junk: bytes) -> list[bytes]:
    """A document, cut short, and with junk put in at the cut."""
    text = _dumps(doc)
    return [text, text[:cut], text[:cut] + junk + text[cut:]]


@FUZZ
@given(
    st.binary(max_size=80)
    | st.builds(_broken, json_objects | senml_packs, st.integers(0, 60), st.binary(max_size=3)).flatmap(
        st.sampled_from
    )
)
@example(b'"\\ud800"')
@example(b"99999999999999999999999999999")
@example(b"1.0e-400")
@example(b"\xef\xbb\xbf{}")
@example(b"[" * 1000 + b"]" * 1000)  # orjson takes 1,024 levels; msgspec leaves it to orjson
def test_the_syntax_check_rejects_no_document_the_reference_parser_takes(payload: bytes) -> None:
    """The reference says "malformed" when msgspec's untyped decoder (``_SYNTAX``, cheap to
    fail) refuses a payload, before orjson parses it: it may refuse only what orjson does."""
    if orjson_takes(payload):
        assert not syntax_refuses(payload)


@FUZZ
@given(
    st.builds(
        _broken,
        json_objects | senml_packs,
        st.integers(0, 60),
        st.text(alphabet=st.characters(max_codepoint=127), max_size=3).map(str.encode),
    ).flatmap(st.sampled_from)
)
@example(b'{"device_i')
@example(b'{"device_id": "rg-1" "ts": 1784613900, "rain_mm": 1}')
@example(b'[{"bn": "urn:dev:rg-1:", "n": "rain", "u": "mm", "v": 1},]')
# A string for the value, then cut short (the ingest bench's bad payload): not JSON, in one parse.
@example(b'{"device_id": "rg-1", "ts": 1784613900, "rain_mm": "NaN?"')
# Not ASCII: msgspec's typed parse matches the name as bytes and says "expected ':'", its
# untyped parse says "Invalid UTF-8": the reference's words are kept.
@example(b'{"device_\x80d" "rg-1", "ts": 1784613900, "rain_mm": 1}')
def test_broken_json_is_rejected_alike_without_a_second_parse(payload: bytes) -> None:
    """JSON cut short or with junk in it: the typed parse's own rejection of an ASCII payload
    (no second parse) is the reference's, word for word."""
    agree(payload)


@settings(max_examples=300)
@given(samples(), st.booleans())
def test_what_gauges_send_takes_the_fast_path(sample: Sample, senml: bool) -> None:
    payload = encode_senml(sample) if senml else encode_json(sample)
    doc = TYPED.decode(payload)
    fast = _fast_json(doc) if isinstance(doc, JsonGauge) else _fast_senml(doc, NOW)
    assert fast is not None
    if not isinstance(doc, JsonGauge):  # one measurement and its battery: the shortest way
        assert _one_reading(doc, NOW) == fast
    agree(payload)
