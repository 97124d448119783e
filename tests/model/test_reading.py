"""``Reading``: the record the hot path carries: its time key, equality and suspect copy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridsense.model.envelopes import CANONICAL_UNIT, GAUGE_KINDS, Kind
from gridsense.model.reading import FIELDS, Reading
from gridsense.model.timekeys import epoch_ms
from ingest.reading_store import reading_from_row, reading_row

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
fields = st.fixed_dictionaries(
    {
        "device_id": st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,20}\Z"),
        "kind": st.sampled_from(sorted(GAUGE_KINDS)),
        "grid_code": st.from_regex(r"\A[0-9]{15}\Z"),
        "ts": st.datetimes(
            min_value=datetime(2000, 1, 1),
            max_value=datetime(2100, 1, 1),
            timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]),
        ),
        "value": finite,
        "counter": st.none() | finite,
        "battery": st.none() | st.floats(0, 100),
        "update_interval_s": st.none() | st.floats(0.5, 86400),
        "suspect": st.booleans(),
    }
)


def build(f: dict) -> Reading:
    return Reading(**f, unit=CANONICAL_UNIT[f["kind"]])


@given(fields)
def test_fields_key_and_equality(f: dict) -> None:
    r = build(f)
    assert r.fields() == {**f, "unit": CANONICAL_UNIT[f["kind"]]}
    assert list(r.fields()) == list(FIELDS)
    assert r.ts_ms == epoch_ms(f["ts"])
    twin = build(f)
    assert r == twin and hash(r) == hash(twin) and r is not twin
    assert repr(r).startswith(f"Reading(device_id={f['device_id']!r}, kind=")


@given(fields)
def test_a_stored_row_reads_back_as_the_same_reading(f: dict) -> None:
    """The store keeps milliseconds: a reading on a millisecond reads back equal, key and all."""
    f = {
        **f,
        "ts": f["ts"].replace(microsecond=f["ts"].microsecond // 1000 * 1000),
        "update_interval_s": None,
    }
    r = build(f)
    back = reading_from_row(*reading_row(r))
    assert back == r and back.ts_ms == r.ts_ms


def test_a_given_time_key_is_kept_and_a_missing_one_worked_out() -> None:
    ts = datetime(2026, 7, 21, 6, 0, 0, 1500, tzinfo=UTC)
    worked_out = Reading("rg-1", Kind.RAIN, "110101000000001", ts, 1.0, "mm")
    assert worked_out.ts_ms == epoch_ms(ts)
    given_key = Reading("rg-1", Kind.RAIN, "110101000000001", ts, 1.0, "mm", ts_ms=epoch_ms(ts))
    assert given_key.ts_ms == epoch_ms(ts) and given_key == worked_out
    wrong_key = Reading("rg-1", Kind.RAIN, "110101000000001", ts, 1.0, "mm", ts_ms=42)
    assert wrong_key.ts_ms == 42
    assert wrong_key != worked_out  # the normaliser's tests compare whole readings: a wrong key shows


def test_a_timestamp_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="must carry a timezone"):
        Reading("rg-1", Kind.RAIN, "110101000000001", datetime(2026, 7, 21, 6), 1.0, "mm")


def test_as_suspect_flags_a_copy_and_leaves_the_original_alone() -> None:
    ts = datetime(2026, 7, 21, 6, tzinfo=UTC)
    a = Reading("rg-1", Kind.RAIN, "110101000000001", ts, 1.5, "mm", None, 80.0, 60.0)
    flagged = a.as_suspect()
    assert flagged.suspect and not a.suspect
    assert flagged.fields() == {**a.fields(), "suspect": True}
    assert flagged.ts_ms == a.ts_ms
    assert flagged != a


def test_a_reading_is_never_equal_to_another_type() -> None:
    r = Reading("rg-1", Kind.RAIN, "110101000000001", datetime(2026, 7, 21, 6, tzinfo=UTC), 1.5, "mm")
    assert r != r.fields() and r != tuple(r.fields().values())
