"""Gauge payload decoding: plain JSON and SenML (RFC 8428), normalised to canonical units.

JSON (one reading per message)::

    {"device_id": "rg-0001", "ts": "2026-07-21T14:05:00+08:00", "rain_mm": 0.5, "battery": 87}

``ts`` is ISO-8601 with a zone, or Unix seconds. The value field names its unit:
``rain_mm`` (amount in the interval), ``rain_counter_mm`` (tipping-bucket total, may reset),
``rain_rate_mm_h``, ``snow_depth_cm``, ``water_level_cm``.

SenML (a pack, possibly several readings)::

    [{"bn": "urn:dev:rg-0001:", "bt": 1784613900, "n": "rain", "u": "mm", "v": 0.5},
     {"n": "battery", "u": "%EL", "v": 87}]

Record names: ``rain`` (``v`` = interval depth; ``s`` = cumulative sum, i.e. the counter;
units ``m`` or ``mm``/``cm``; or a rate in ``m/s`` or ``mm/h``), ``snow_depth`` and
``water_level`` (``m``, ``cm``, ``mm``), ``battery`` (``%EL``, ``%`` or ``/``). ``ut``, the
longest the sensor will stay silent, is kept as the device's staleness contract.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple, cast

import msgspec
import orjson
from msgspec import UNSET, UnsetType
from msgspec.structs import astuple

from gridsense.errors import Rejected
from gridsense.model.envelopes import Kind
from ingest.gauge_wire import TYPED, JsonGauge, SenmlRecord

# RFC 8428 §4.5.3: times below 2**28 are relative to now.
_SENML_RELATIVE_LIMIT: Final = 2**28

# Compiled (gridsense/hot_path.py), a module-level name marked Final is a C static; any other
# is a dict lookup in the module's globals at every use, and an enum member (``Kind.RAIN``)
# one more attribute read through the enum class's ``__getattr__`` hook (about 600
# instructions under callgrind). The per-reading code reads these instead.
_RAIN: Final = Kind.RAIN
_SNOW: Final = Kind.SNOW
_WATER: Final = Kind.WATER
_UNSET: Final[Any] = UNSET
_UTC: Final = UTC
_fromtimestamp: Final = datetime.fromtimestamp
_fromisoformat: Final = datetime.fromisoformat
_TYPED: Final = TYPED
#: Says whether a payload is JSON at all, and if not, where it breaks: in C, where orjson's
#: error is a ``json.JSONDecodeError`` built by interpreted Python (a malformed message cost
#: the batch handler 71,300 instructions with it, 61,000 without). It refuses no document
#: orjson takes (tests/ingest/test_gauge_fast_path.py); what is JSON, the reference still
#: parses with orjson, its own parser.
_SYNTAX: Final = msgspec.json.Decoder()

_DEPTH_TO_MM: Final = {"m": 1000.0, "cm": 10.0, "mm": 1.0}
_LEVEL_TO_CM: Final = {"m": 100.0, "cm": 1.0, "mm": 0.1}
_RATE_TO_MM_H: Final = {"m/s": 1000.0 * 3600.0, "mm/h": 1.0}
_JSON_FIELDS: Final = {
    "rain_mm": (_RAIN, "amount"),
    "rain_counter_mm": (_RAIN, "counter"),
    "rain_rate_mm_h": (_RAIN, "rate"),
    "snow_depth_cm": (_SNOW, "level"),
    "water_level_cm": (_WATER, "level"),
}
_JSON_KEYS = {"device_id", "ts", "battery", "ut", *_JSON_FIELDS}


class Sample(NamedTuple):
    """One decoded measurement before stateful normalisation (counters and rates).

    A NamedTuple, not a frozen dataclass: built once per reading, it costs half as much.
    """

    device_id: str
    kind: Kind
    ts: datetime
    measure: str  # "amount" | "counter" | "rate" | "level"
    value: float  # mm for rain amount/counter, mm/h for rate, cm for levels
    battery: float | None = None
    update_interval_s: float | None = None


#: ``Sample(...)`` runs the NamedTuple's generated ``__new__``, an interpreted frame (about
#: 2,000 instructions under callgrind); the tuple constructor it ends in, called directly,
#: builds the same object for a fraction of that. The fast paths build their samples with
#: it, every field given in order.
_new_sample: Final = cast(
    Callable[[type[Sample], tuple[str, Kind, datetime, str, float, float | None, float | None]], Sample],
    tuple.__new__,
)


def _finite_number(v: Any, what: str) -> float:
    if type(v) is float:  # the common case first (JSON numbers arrive as float or int)
        if v - v == 0.0:  # false for inf and NaN
            return v
    elif type(v) is int:
        return float(v)  # orjson's integers are 64-bit: always finite as a float
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise Rejected("schema", f"{what} must be a number, got {type(v).__name__}")
    f = float(v)
    if not math.isfinite(f):
        raise Rejected("non_finite", f"{what} is {v!r}")
    return f


def _timestamp(v: Any) -> datetime:
    if isinstance(v, str):
        try:
            ts = _fromisoformat(v)
        except ValueError:
            raise Rejected("schema", f"ts {v!r} is not ISO-8601") from None
        if ts.tzinfo is None:
            raise Rejected("schema", f"ts {v!r} has no timezone")
        try:
            return ts.astimezone(_UTC)
        except OverflowError:  # year 1 or 9999 with an offset that leaves the datetime range
            raise Rejected("schema", f"ts {v!r} is out of range") from None
    secs = _finite_number(v, "ts")
    try:
        return _fromtimestamp(secs, _UTC)
    except (OverflowError, OSError, ValueError):
        raise Rejected("schema", f"ts {v!r} is out of range") from None


def _battery(v: Any, unit: str = "%EL") -> float:
    b = _finite_number(v, "battery")
    if unit == "/":
        b *= 100.0
    elif unit not in {"%EL", "%"}:
        raise Rejected("unsupported_unit", f"battery unit {unit!r}")
    if not 0 <= b <= 100:
        raise Rejected("out_of_range", f"battery {b} is not within 0–100 %")
    return b


def _check(sample: Sample, now: datetime, max_future: timedelta) -> Sample:
    if not math.isfinite(sample.value):  # finite inputs can overflow in bv + v or unit scaling
        raise Rejected("non_finite", f"{sample.kind} {sample.measure} is {sample.value}")
    if sample.ts - now > max_future:
        raise Rejected("future_timestamp", f"{sample.ts.isoformat()} is more than {max_future} ahead")
    if sample.kind is _RAIN and sample.value < 0:
        raise Rejected("negative_rain", f"rain {sample.measure} {sample.value} < 0")
    if sample.measure == "level" and sample.value < -1000:
        raise Rejected("out_of_range", f"{sample.kind} level {sample.value} cm")
    return sample


def decode_gauge(payload: bytes, now: datetime, max_future: timedelta) -> list[Sample]:
    """Decode a JSON object or a SenML pack into samples; raise ``Rejected`` with a reason.

    The typed fast path parses and type-checks a payload in one C pass (msgspec) and takes
    it only if nothing about it needs a word of explanation. Anything else (a wrong type, an
    unknown field, a value out of range) goes to ``decode_gauge_reference``, which decides
    and says why. tests/ingest/test_gauge_fast_path.py holds the two to the same result.
    """
    verdict = try_decode_gauge(payload, now, max_future)
    if isinstance(verdict, Rejected):
        raise verdict
    return verdict


def try_decode_gauge(payload: bytes, now: datetime, max_future: timedelta) -> list[Sample] | Rejected:
    """``decode_gauge`` with the rejection returned, not raised: the batch handler's call.

    Compiled, every frame an exception passes adds a traceback entry (a code object and a
    frame, about 2,000 instructions under callgrind). A malformed payload raised through this
    function and two of the handler's frames took six; returned, it takes the two where
    msgspec and orjson raise theirs.
    """
    try:
        doc = _TYPED.decode(payload)
    except msgspec.ValidationError:  # JSON, but not what a gauge sends: the reference says why
        return _reference_verdict(payload, now, max_future)
    except msgspec.DecodeError as exc:
        # Not JSON at all. On an ASCII payload the typed parse stops where the reference's
        # untyped one does, with the same words (tests/ingest/test_gauge_fast_path.py), so
        # its verdict is known without a second parse and a second exception (a payload cut
        # short: 20,700 → 13,000 instructions under callgrind).
        # The typed parse matches field names as bytes, so on other bytes the two can differ.
        if payload.isascii():
            return Rejected("malformed", f"not JSON: {exc}")
        return _reference_verdict(payload, now, max_future)
    samples = _fast_senml(doc, now) if isinstance(doc, list) else _fast_json(doc)
    if samples is None:
        return _reference_verdict(payload, now, max_future)
    try:
        return [_check(s, now, max_future) for s in samples]
    except Rejected as exc:
        return exc


def decode_gauge_reference(payload: bytes, now: datetime, max_future: timedelta) -> list[Sample]:
    """``decode_gauge`` on plain dicts, every check spelled out: the reference, and the path
    that gives each rejected payload its reason."""
    verdict = _reference_verdict(payload, now, max_future)
    if isinstance(verdict, Rejected):
        raise verdict
    return verdict


def _reference_verdict(payload: bytes, now: datetime, max_future: timedelta) -> list[Sample] | Rejected:
    """The reference's samples, or its rejection returned (see ``try_decode_gauge``)."""
    try:
        _SYNTAX.decode(payload)
    except msgspec.DecodeError as exc:
        return Rejected("malformed", f"not JSON: {exc}")
    except RecursionError:
        pass  # nested deeper than msgspec follows: orjson decides
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:  # JSON msgspec takes and orjson does not (1e400)
        return Rejected("malformed", f"not JSON: {exc}")
    try:
        if isinstance(doc, dict):
            samples = [_decode_json(doc)]
        elif isinstance(doc, list):
            samples = _decode_senml(doc, now)
        else:
            return Rejected("schema", "payload must be a JSON object or a SenML array")
        return [_check(s, now, max_future) for s in samples]
    except Rejected as exc:
        return exc


def _decode_json(doc: dict[str, Any]) -> Sample:
    if not _JSON_KEYS.issuperset(doc):
        raise Rejected("schema", f"unknown fields {sorted(set(doc) - _JSON_KEYS)}")
    device = doc.get("device_id")
    if not isinstance(device, str) or not device:
        raise Rejected("schema", "device_id must be a non-empty string")
    if "ts" not in doc:
        raise Rejected("schema", "ts is required")
    present = [f for f in _JSON_FIELDS if f in doc]
    if len(present) != 1:
        raise Rejected("schema", f"exactly one value field expected, got {present or 'none'}")
    kind, measure = _JSON_FIELDS[present[0]]
    ut = _finite_number(doc["ut"], "ut") if "ut" in doc else None
    if ut is not None and ut <= 0:
        raise Rejected("out_of_range", "ut must be > 0")
    return Sample(
        device_id=device,
        kind=kind,
        ts=_timestamp(doc["ts"]),
        measure=measure,
        value=_finite_number(doc[present[0]], present[0]),
        battery=_battery(doc["battery"]) if doc.get("battery") is not None else None,
        update_interval_s=ut,
    )


_SENML_KEYS = {
    "bn",
    "bt",
    "bu",
    "bv",
    "bs",
    "bver",
    "n",
    "u",
    "v",
    "vs",
    "vb",
    "vd",
    "s",
    "t",
    "ut",
}


def _device_from_name(name: str) -> tuple[str, str]:
    """Split a resolved SenML name ``[urn:dev:]<device-id>:<measure>``."""
    if name.startswith("urn:dev:"):
        name = name[len("urn:dev:") :]
    device, sep, measure = name.rpartition(":")
    if not sep or not device or not measure:
        raise Rejected("schema", f"SenML name {name!r} must be '<device-id>:<measure>'")
    return device, measure


def _decode_senml(pack: list[Any], now: datetime) -> list[Sample]:
    if not pack:
        raise Rejected("schema", "empty SenML pack")
    bn, bt, bu, bv, bs = "", 0.0, None, 0.0, 0.0
    readings: dict[tuple[str, datetime], dict[str, Any]] = {}
    for i, rec in enumerate(pack):
        if not isinstance(rec, dict):
            raise Rejected("schema", f"SenML record {i} is not an object")
        if not _SENML_KEYS.issuperset(rec):
            unknown = sorted(set(rec) - _SENML_KEYS)
            raise Rejected("schema", f"SenML record {i}: unknown fields {unknown}")
        if "bn" in rec:
            if not isinstance(rec["bn"], str):
                raise Rejected("schema", "bn must be a string")
            bn = rec["bn"]
        if "bt" in rec:
            bt = _finite_number(rec["bt"], "bt")
        if "bu" in rec:
            bu = rec["bu"]
        if "bv" in rec:
            bv = _finite_number(rec["bv"], "bv")
        if "bs" in rec:
            bs = _finite_number(rec["bs"], "bs")
        name = bn + str(rec.get("n", ""))
        device, measure = _device_from_name(name)
        t = bt + (_finite_number(rec["t"], "t") if "t" in rec else 0.0)
        ts = now + timedelta(seconds=t) if abs(t) < _SENML_RELATIVE_LIMIT else _timestamp(t)
        unit = rec.get("u", bu)
        if not isinstance(unit, str):
            raise Rejected("schema", f"SenML record {i} ({measure}) has no unit")
        entry = readings.setdefault((device, ts), {})
        if "ut" in rec:
            ut = _finite_number(rec["ut"], "ut")
            if ut <= 0:
                raise Rejected("out_of_range", "ut must be > 0")
            entry["ut"] = ut
        if measure == "battery":
            entry["battery"] = _battery(bv + _finite_number(rec.get("v"), "battery v"), unit)
            continue
        entry["value"] = _senml_value(measure, unit, rec.get("v"), rec.get("s", UNSET), bv, bs, i)
    return _senml_samples(readings)


def _senml_samples(readings: dict[tuple[str, datetime], dict[str, Any]]) -> list[Sample]:
    """One sample per (device, instant) of a resolved pack."""
    samples = []
    for (device, ts), entry in readings.items():
        if "value" not in entry:
            raise Rejected("schema", f"SenML pack for {device} at {ts.isoformat()} has no measurement")
        kind, m, value = entry["value"]
        samples.append(Sample(device, kind, ts, m, value, entry.get("battery"), entry.get("ut")))
    return samples


def _senml_value(
    measure: str, unit: str, v: Any, s: Any, bv: float, bs: float, i: int
) -> tuple[Kind, str, float]:
    """A record's measurement in canonical units; ``v`` is None and ``s`` UNSET when absent."""
    if measure == "rain":
        if unit in _RATE_TO_MM_H:
            return (
                _RAIN,
                "rate",
                (bv + _finite_number(v, "rain v")) * _RATE_TO_MM_H[unit],
            )
        if unit not in _DEPTH_TO_MM:
            raise Rejected("unsupported_unit", f"rain unit {unit!r}")
        if s is not _UNSET:
            return (
                _RAIN,
                "counter",
                (bs + _finite_number(s, "rain s")) * _DEPTH_TO_MM[unit],
            )
        return (
            _RAIN,
            "amount",
            (bv + _finite_number(v, "rain v")) * _DEPTH_TO_MM[unit],
        )
    if measure == "snow_depth" or measure == "water_level":
        if unit not in _LEVEL_TO_CM:
            raise Rejected("unsupported_unit", f"{measure} unit {unit!r}")
        kind = _SNOW if measure == "snow_depth" else _WATER
        return (
            kind,
            "level",
            (bv + _finite_number(v, f"{measure} v")) * _LEVEL_TO_CM[unit],
        )
    raise Rejected("schema", f"SenML record {i}: unknown measurement {measure!r}")


# --- the typed fast path ---------------------------------------------------------------------
#
# The payload's typed shapes live in ingest/gauge_wire.py (see there why).

# A struct's fields are read all at once, with ``astuple`` (one C call), instead of one
# attribute read each (some 200 instructions apiece, 32 for a SenML pack of two records).
# The readers below unpack them by position: these are the positions they expect.
_JSON_ORDER: Final = ("device_id", "ts", *_JSON_FIELDS, "battery", "ut")
_SENML_ORDER: Final = ("bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "s", "t", "ut")
if JsonGauge.__struct_fields__ != _JSON_ORDER or SenmlRecord.__struct_fields__ != _SENML_ORDER:
    raise ImportError("ingest.gauge_wire's fields moved: update the positions in ingest.gauge_codec")
#: The (kind, measure) of each value field, in the struct's order.
_JSON_MEANING: Final = tuple(_JSON_FIELDS.values())


def _fast_json(doc: JsonGauge) -> list[Sample] | None:
    """``_decode_json`` for a payload with nothing to explain; None to ask the reference."""
    fields = astuple(doc)
    found = -1
    value = 0.0
    for i in range(5):
        v = fields[2 + i]
        if v is not _UNSET:
            if found >= 0 or type(v) is str:
                return None  # two value fields, or a string (ingest.gauge_wire.JsonGauge)
            found, value = i, v
    device_id: str = fields[0]
    battery, ut = fields[7], fields[8]
    if found < 0 or not device_id or (ut is not _UNSET and ut <= 0):
        return None
    kind, measure = _JSON_MEANING[found]
    try:
        ts = _timestamp(fields[1])
        level = _battery(battery) if battery is not None else None
    except Rejected:
        return None
    return [_new_sample(Sample, (device_id, kind, ts, measure, value, level, None if ut is _UNSET else ut))]


def _fast_senml(pack: list[SenmlRecord], now: datetime) -> list[Sample] | None:
    """``_decode_senml`` (RFC 8428 §4.6 resolution) over typed records; None to ask the reference."""
    if not pack:
        return None
    if len(pack) <= 2:
        try:
            one = _one_reading(pack, now)
        except Rejected:
            return None
        if one is not None:
            return one
    bn, bt, bv, bs = "", 0.0, 0.0, 0.0
    bu: str | UnsetType = UNSET
    readings: dict[tuple[str, datetime], dict[str, Any]] = {}
    last_t, ts = math.nan, now
    try:
        for i, rec in enumerate(pack):
            if rec.bn is not UNSET:
                bn = rec.bn
            if rec.bt is not UNSET:
                bt = rec.bt
            if rec.bu is not UNSET:
                bu = rec.bu
            if rec.bv is not UNSET:
                bv = rec.bv
            if rec.bs is not UNSET:
                bs = rec.bs
            device, measure = _device_from_name(bn if rec.n is UNSET else bn + rec.n)
            t = bt + (0.0 if rec.t is UNSET else rec.t)
            if t != last_t:  # records of one instant share its datetime
                ts = now + timedelta(seconds=t) if abs(t) < _SENML_RELATIVE_LIMIT else _timestamp(t)
                last_t = t
            unit = bu if rec.u is UNSET else rec.u
            if unit is UNSET or (rec.ut is not UNSET and rec.ut <= 0):
                return None
            entry = readings.setdefault((device, ts), {})
            if rec.ut is not UNSET:
                entry["ut"] = rec.ut
            v = None if rec.v is UNSET else rec.v
            if measure == "battery":
                entry["battery"] = _battery(bv + _finite_number(v, "battery v"), unit)
                continue
            entry["value"] = _senml_value(measure, unit, v, rec.s, bv, bs, i)
        return _senml_samples(readings)
    except Rejected:
        return None


def _one_reading(pack: list[SenmlRecord], now: datetime) -> list[Sample] | None:
    """The pack nearly every gauge sends, one measurement and perhaps its battery::

        [{"bn": "urn:dev:<id>:", "bt": <time>, "n": <measure>, "u": <unit>, "v"|"s": <value>[, "ut": <s>]},
         {"n": "battery", "u": <unit>, "v": <percent>}]

    resolved without the general loop's bookkeeping (no base value or sum, one instant; a
    relative ``bt`` is resolved against ``now`` as RFC 8428 §4.5.3 asks); None for any other
    shape, which the general loop takes."""
    bn, bt, bu, bv, bs, _, n, u, v, s, t, ut = astuple(pack[0])
    if (
        bn is _UNSET
        or bt is _UNSET
        or n is _UNSET
        or u is _UNSET
        or t is not _UNSET
        or bu is not _UNSET
        or bv is not _UNSET
        or bs is not _UNSET
        or (ut is not _UNSET and ut <= 0)
    ):
        return None
    base: str = bn
    name: str = n
    battery = None
    if len(pack) == 2:
        t_bn, t_bt, t_bu, t_bv, t_bs, _, t_n, t_u, t_v, t_s, t_t, t_ut = astuple(pack[1])
        if (
            t_n != "battery"
            or t_u is _UNSET
            or t_v is _UNSET
            or t_bn is not _UNSET
            or t_bt is not _UNSET
            or t_t is not _UNSET
            or t_ut is not _UNSET
            or t_s is not _UNSET
            or t_bu is not _UNSET
            or t_bv is not _UNSET
            or t_bs is not _UNSET
        ):
            return None
        if not base.endswith(":") or ":" in name:
            return None  # the battery record might name another device: the loop tells
        battery = _battery(0.0 + t_v, t_u)  # 0.0 +: a -0.0 resolves as the loop's does
    device, measure = _device_from_name(base + name)
    if measure == "battery":
        return None
    at: float = bt + 0.0
    ts = now + timedelta(seconds=at) if abs(at) < _SENML_RELATIVE_LIMIT else _timestamp(at)
    kind, m, value = _senml_value(measure, u, None if v is _UNSET else v, s, 0.0, 0.0, 0)
    return [_new_sample(Sample, (device, kind, ts, m, value, battery, None if ut is _UNSET else ut))]


def encode_json(sample: Sample) -> bytes:
    """The JSON wire form of one sample (used by simulators and tests)."""
    field = {
        "amount": "rain_mm",
        "counter": "rain_counter_mm",
        "rate": "rain_rate_mm_h",
    }.get(sample.measure) or ("snow_depth_cm" if sample.kind is Kind.SNOW else "water_level_cm")
    doc: dict[str, Any] = {
        "device_id": sample.device_id,
        "ts": sample.ts.isoformat(),
        field: sample.value,
    }
    if sample.battery is not None:
        doc["battery"] = sample.battery
    if sample.update_interval_s is not None:
        doc["ut"] = sample.update_interval_s
    return orjson.dumps(doc)


def encode_senml(sample: Sample) -> bytes:
    """The SenML wire form of one sample, in RFC 8428 primary units."""
    name = {Kind.RAIN: "rain", Kind.SNOW: "snow_depth", Kind.WATER: "water_level"}[sample.kind]
    rec: dict[str, Any] = {
        "bn": f"urn:dev:{sample.device_id}:",
        "bt": sample.ts.timestamp(),
        "n": name,
    }
    if sample.measure == "rate":
        rec.update(u="m/s", v=sample.value / (1000.0 * 3600.0))
    elif sample.measure == "counter":
        rec.update(u="m", s=sample.value / 1000.0)
    elif sample.measure == "amount":
        rec.update(u="m", v=sample.value / 1000.0)
    else:
        rec.update(u="m", v=sample.value / 100.0)
    if sample.update_interval_s is not None:
        rec["ut"] = sample.update_interval_s
    pack = [rec]
    if sample.battery is not None:
        pack.append({"n": "battery", "u": "%EL", "v": sample.battery})
    return orjson.dumps(pack)
