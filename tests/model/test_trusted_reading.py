"""``trusted_reading`` builds the same ``Reading`` that pydantic's own constructors build."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gridsense.model.envelopes import CANONICAL_UNIT, GAUGE_KINDS, Kind, Reading
from gridsense.model.trusted import trusted_reading

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
fields = st.fixed_dictionaries(
    {
        "device_id": st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,20}\Z"),
        "kind": st.sampled_from(sorted(GAUGE_KINDS)),
        "grid_code": st.from_regex(r"\A[0-9]{15}\Z"),
        "ts": st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
        ),
        "value": finite,
        "counter": st.none() | finite,
        "battery": st.none() | st.floats(0, 100),
        "update_interval_s": st.none() | st.floats(0.5, 86400),
        "suspect": st.booleans(),
    }
)


@given(fields)
def test_same_reading_as_validation(f: dict) -> None:
    unit = CANONICAL_UNIT[f["kind"]]
    validated = Reading.model_validate({**f, "unit": unit})
    fast = trusted_reading(
        f["device_id"],
        f["kind"],
        f["grid_code"],
        f["ts"],
        f["value"],
        unit,
        f["counter"],
        f["battery"],
        f["update_interval_s"],
        f["suspect"],
    )
    constructed = Reading.model_construct(**{**f, "unit": unit})
    assert fast == validated == constructed
    assert fast.model_dump() == validated.model_dump()
    assert fast.model_dump_json() == validated.model_dump_json()
    assert fast.model_fields_set == constructed.model_fields_set
    assert hash(fast) == hash(validated)


def test_copies_do_not_share_state() -> None:
    """``model_copy(update=...)`` (the quality check's suspect flag) leaves the original alone."""
    ts = datetime(2026, 7, 21, 6, tzinfo=UTC)
    a = trusted_reading("rg-1", Kind.RAIN, "110101000000001", ts, 1.5, "mm", None, 80.0, None)
    b = trusted_reading("rg-1", Kind.RAIN, "110101000000001", ts, 1.5, "mm", None, 80.0, None)
    flagged = a.model_copy(update={"suspect": True, "ts": ts + timedelta(minutes=1)})
    assert flagged.suspect and not a.suspect and not b.suspect
    assert a.ts == ts and a == b
    assert a.model_fields_set is not b.model_fields_set
