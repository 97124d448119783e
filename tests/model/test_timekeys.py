"""``epoch_ms``: the integer key every store and sink files a reading under."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from gridsense.model.timekeys import epoch_ms

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.builds(timezone, st.timedeltas(timedelta(hours=-23), timedelta(hours=23))),
    )
)
def test_epoch_ms_is_the_microseconds_since_the_epoch_rounded_half_up(ts: datetime) -> None:
    """Any aware time, any offset, before and after 1970: the field arithmetic ``epoch_ms``
    does equals the exact count of microseconds (timedelta division), rounded half up."""
    us = (ts - EPOCH) // timedelta(microseconds=1)
    assert epoch_ms(ts) == (us + 500) // 1000
