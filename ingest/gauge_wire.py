"""The typed shapes of a gauge payload, for ``decode_gauge``'s fast path (msgspec).

Structs that admit only what the reference decoder accepts without a word: strict types (no
bool for a number, no null for a string), no unknown field; the one exception, a string in a
value field, is refused by ``_fast_json`` (see ``JsonGauge``). ``UNSET`` marks a field that is
absent. JSON has no NaN or infinity, and msgspec refuses a number literal that overflows a
double: every float a struct holds is finite. They hold strings and numbers only, so no
reference cycle can pass through them: ``gc=False`` keeps the collector from tracking them,
and from running a collection for every few hundred of them decoded.

They live apart from ``ingest.gauge_codec`` because that module is compiled (setup.py) and
msgspec builds a struct from its class's annotations, which a compiled class does not keep
as msgspec expects: in a compiled module every JSON payload failed to decode here and took
the slow path (tests/ingest/test_gauge_fast_path.py caught it under scripts/test-compiled).
"""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType


class JsonGauge(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    device_id: str
    ts: str | float
    # A value field also takes a string, which the reference refuses (``_fast_json`` hands it
    # over): a string where the number belongs ("NaN", "12.5") is the commonest bad payload,
    # and admitted here it no longer stops the parse with an exception. The parse goes on to
    # the end, so a payload also cut short is known for not JSON in one parse, not two.
    rain_mm: float | str | UnsetType = UNSET
    rain_counter_mm: float | str | UnsetType = UNSET
    rain_rate_mm_h: float | str | UnsetType = UNSET
    snow_depth_cm: float | str | UnsetType = UNSET
    water_level_cm: float | str | UnsetType = UNSET
    battery: float | None = None  # null: no battery reading, as in the reference
    ut: float | UnsetType = UNSET


class SenmlRecord(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    # vs, vb and vd are left out: a pack carrying them takes the reference path
    bn: str | UnsetType = UNSET
    bt: float | UnsetType = UNSET
    bu: str | UnsetType = UNSET
    bv: float | UnsetType = UNSET
    bs: float | UnsetType = UNSET
    bver: int | UnsetType = UNSET
    n: str | UnsetType = UNSET
    u: str | UnsetType = UNSET
    v: float | UnsetType = UNSET
    s: float | UnsetType = UNSET
    t: float | UnsetType = UNSET
    ut: float | UnsetType = UNSET


TYPED = msgspec.json.Decoder(JsonGauge | list[SenmlRecord])
