"""Deadlines in working time on the official holiday calendar.

Every expected deadline below is worked out by hand from the 2026 State Council notice
(国务院办公厅关于2026年部分节假日安排的通知) and the default working hours
09:00-12:00 + 13:30-17:30 (7 h a day); the arithmetic is in the comment beside each.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridsense.errors import ConfigError
from gridsense.model.worktime import (
    CalendarFileError,
    CalendarNotCovered,
    LimitUnit,
    WorkCalendar,
)

SH = ZoneInfo("Asia/Shanghai")
WD, WH, CH = LimitUnit.WORKING_DAYS, LimitUnit.WORKING_HOURS, LimitUnit.CLOCK_HOURS


@functools.cache
def cal() -> WorkCalendar:
    return WorkCalendar.default()


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


# --- deadlines around holidays, written out by hand --------------------------------------

CASES = [
    # National Day: Oct 1 (Thu) - Oct 7 (Wed) off. Filed after hours on Sep 30, counting
    # starts Oct 8 09:00; 7 h -> Oct 8 17:30.
    ("before National Day, after hours", sh(2026, 9, 30, 18), 1, WD, sh(2026, 10, 8, 17, 30)),
    # Sep 30 15:00-17:30 = 2.5 h; Oct 8 09:00-12:00 = 3 h; 1.5 h more from 13:30 -> 15:00.
    ("before National Day, 15:00", sh(2026, 9, 30, 15), 1, WD, sh(2026, 10, 8, 15)),
    # Plain Friday: Fri 15:00-17:30 2.5 h, Mon 09-12 3 h, 13:30 + 1.5 h -> Mon 15:00.
    ("Friday 15:00, one working day", sh(2026, 3, 6, 15), 1, WD, sh(2026, 3, 9, 15)),
    # Oct 9 (Fri) 15:00; Oct 10 is a make-up Saturday -> Sat Oct 10 15:00.
    ("Friday before a make-up Saturday", sh(2026, 10, 9, 15), 1, WD, sh(2026, 10, 10, 15)),
    # Filed on the make-up Saturday Oct 10 at 10:00: 10-12 = 2 h, 13:30 + 3 h -> 16:30.
    ("on a make-up Saturday", sh(2026, 10, 10, 10), 5, WH, sh(2026, 10, 10, 16, 30)),
    # Feb 14 (Sat) is worked, Feb 15-23 is 春节: Sat 10-12 2 h + 13:30-17:30 4 h = 6 h,
    # then Tue Feb 24 09:00 + 1 h -> 10:00.
    ("make-up Saturday before 春节", sh(2026, 2, 14, 10), 1, WD, sh(2026, 2, 24, 10)),
    # Dirty road, 5 working hours, filed at 17:30 on Tue Mar 10: Wed 09-12 3 h,
    # 13:30 + 2 h -> Wed 15:30.
    ("5 working hours filed at 17:30", sh(2026, 3, 10, 17, 30), 5, WH, sh(2026, 3, 11, 15, 30)),
    # Same on a Friday: the weekend does not count -> Mon Mar 9 15:30.
    ("5 working hours Friday 17:30", sh(2026, 3, 6, 17, 30), 5, WH, sh(2026, 3, 9, 15, 30)),
    # Filed in the lunch break: counting starts 13:30 -> 14:30.
    ("filed in the lunch break", sh(2026, 3, 10, 12, 30), 1, WH, sh(2026, 3, 10, 14, 30)),
    # A deadline that uses up the morning span ends at 12:00, not at 13:30.
    ("ends at the end of a span", sh(2026, 3, 10, 9), 3, WH, sh(2026, 3, 10, 12)),
    ("a whole day ends at 17:30", sh(2026, 3, 10, 9), 1, WD, sh(2026, 3, 10, 17, 30)),
    # Half a working day is 3.5 h: 09-12 3 h, 13:30 + 0.5 h -> 14:00.
    ("half a working day", sh(2026, 3, 10, 9), 0.5, WD, sh(2026, 3, 10, 14)),
    # Accumulated garbage, 4 working days = 28 h, filed Thu Apr 30 10:00 before 劳动节
    # (May 1-5 off, May 9 Sat worked): Apr 30 6 h; May 6, 7, 8 21 h (27 h);
    # Sat May 9 09:00 + 1 h -> 10:00.
    ("4 working days across 劳动节", sh(2026, 4, 30, 10), 4, WD, sh(2026, 5, 9, 10)),
    # 元旦: Jan 1-3 off, Sun Jan 4 worked. Wed Dec 31 is in 2025, so start on Jan 2 (Fri,
    # holiday) 10:00 -> counting starts Sun Jan 4 09:00 -> 1 working day -> Jan 4 17:30.
    ("filed on a holiday", sh(2026, 1, 2, 10), 1, WD, sh(2026, 1, 4, 17, 30)),
    # Urgent, clock hours: 23:50 + 2 h -> 01:50 on National Day itself.
    ("urgent clock hours at 23:50", sh(2026, 9, 30, 23, 50), 2, CH, sh(2026, 10, 1, 1, 50)),
    # Manhole cover: repaired within 6 h, clock time, through the night.
    ("clock hours on a holiday", sh(2026, 2, 17, 22), 6, CH, sh(2026, 2, 18, 4)),
]


@pytest.mark.parametrize(
    ("start", "amount", "unit", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_deadline(start: datetime, amount: float, unit: LimitUnit, expected: datetime) -> None:
    got = cal().add(start, amount, unit)
    assert got == expected
    assert got.tzinfo == SH


def test_start_in_another_zone_is_computed_in_shanghai_time() -> None:
    # 07:00 UTC on Fri 2026-03-06 is 15:00 in Beijing -> Mon 15:00 Beijing.
    got = cal().add(datetime(2026, 3, 6, 7, 0, tzinfo=UTC), 1, "working_days")
    assert got == sh(2026, 3, 9, 15)
    assert got.utcoffset() == timedelta(hours=8)
    # 15:50 UTC on Sep 30 is 23:50 Beijing; 2 clock hours -> 01:50 Beijing on Oct 1.
    got = cal().add(datetime(2026, 9, 30, 15, 50, tzinfo=UTC), 2, "clock_hours")
    assert (got.date(), got.time(), got.tzinfo) == (date(2026, 10, 1), time(1, 50), SH)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 2, 14), True),  # Saturday, 春节 make-up day
        (date(2026, 2, 16), False),  # Monday, 除夕, holiday
        (date(2026, 2, 21), False),  # Saturday inside 春节
        (date(2026, 2, 24), True),  # Tuesday after 春节
        (date(2026, 9, 20), True),  # Sunday, National Day make-up day
        (date(2026, 10, 7), False),  # Wednesday, last day of National Day
        (date(2026, 3, 7), False),  # ordinary Saturday
        (date(2026, 3, 9), True),  # ordinary Monday
        (date(2026, 6, 19), False),  # Friday, 端午节
        (date(2027, 2, 5), False),  # Friday, 除夕 2027 (provisional file)
    ],
)
def test_is_working_day(day: date, working: bool) -> None:
    assert cal().is_working_day(day) is working


# --- coverage: no silent fallback to weekday arithmetic ----------------------------------


def test_missing_year_raises() -> None:
    with pytest.raises(CalendarNotCovered) as err:
        cal().add(sh(2028, 3, 1, 10), 1, WD)
    assert isinstance(err.value, ConfigError)
    assert err.value.year == 2028
    assert "2028" in str(err.value)
    with pytest.raises(CalendarNotCovered):
        cal().is_working_day(date(2025, 12, 31))


def test_running_into_a_missing_year_raises() -> None:
    # Fri 2027-12-31 16:00 + 1 working day needs Jan 2028, which no file holds.
    with pytest.raises(CalendarNotCovered) as err:
        cal().add(sh(2027, 12, 31, 16), 1, WD)
    assert err.value.year == 2028


def test_clock_hours_need_no_calendar() -> None:
    assert cal().add(sh(2030, 1, 1, 23), 2, CH) == sh(2030, 1, 2, 1)


def test_covers_and_missing_years() -> None:
    c = cal()
    assert c.covers(2026) and c.covers(2027) and not c.covers(2025)
    assert c.missing_years(sh(2026, 6, 1)) == []
    assert c.missing_years(sh(2027, 6, 1)) == [2028]
    assert c.missing_years(sh(2029, 6, 1)) == [2029, 2030]
    # 2025-12-31 17:00 UTC is already 2026-01-01 01:00 in Beijing.
    assert c.missing_years(datetime(2025, 12, 31, 17, tzinfo=UTC)) == []


def test_provisional_year_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gridsense.model.worktime"):
        c = WorkCalendar.default()
    assert c.is_provisional(2027) and not c.is_provisional(2026)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2027" in warnings[0] and "cn-2027.yaml" in warnings[0]


def test_naive_start_and_negative_amount_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cal().add(datetime(2026, 3, 10, 9), 1, WD)
    with pytest.raises(ValueError):
        cal().add(sh(2026, 3, 10, 9), -1, WH)


def test_zero_amount_returns_start() -> None:
    assert cal().add(sh(2026, 3, 7, 3), 0, WH) == sh(2026, 3, 7, 3)


# --- a city's own file --------------------------------------------------------------------

VALID = """\
year: 2026
timezone: Asia/Shanghai
working_hours:
  - "09:00-12:00"
  - "13:30-17:30"
holidays:
  - {name: 元旦, start: 2026-01-01, end: 2026-01-03}
  - {name: 春节, start: 2026-02-15, end: 2026-02-23}
makeup_workdays:
  - {name: 元旦调休, date: 2026-01-04}
  - {name: 春节调休, date: 2026-02-14}
"""


def write(tmp_path: Path, text: str, name: str = "city-2026.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_city_file_with_its_own_hours(tmp_path: Path) -> None:
    text = VALID.replace("09:00-12:00", "08:30-12:00").replace("13:30-17:30", "14:00-18:00")
    c = WorkCalendar.load([str(write(tmp_path, text))])
    assert c.working_day_length == timedelta(hours=7, minutes=30)
    # Fri 15:00-18:00 = 3 h; Mon 08:30-12:00 = 3.5 h; 14:00 + 1 h -> Mon 15:00.
    assert c.add(sh(2026, 3, 6, 15), 1, WD) == sh(2026, 3, 9, 15)
    assert c.years == [2026]


def line_of(text: str, needle: str) -> int:
    [n] = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return n


def mutate(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new)


BAD_FILES = [
    # (id, file text, text on the offending line, fragment of the message)
    ("malformed date", mutate("start: 2026-02-15", "start: 2026-02-30"), "2026-02-30", "date"),
    ("date not ISO", mutate("start: 2026-02-15", "start: 2026/02/15"), "2026/02/15", "YYYY"),
    (
        "holiday and make-up day",
        mutate("date: 2026-02-14", "date: 2026-02-15"),
        "春节调休",
        "both a make-up day and a holiday",
    ),
    ("overlapping spans", mutate('"13:30-17:30"', '"11:30-17:30"'), "11:30-17:30", "overlaps"),
    ("span ends first", mutate('"09:00-12:00"', '"12:00-09:00"'), "12:00-09:00", "end after"),
    ("span format", mutate('"09:00-12:00"', '"9-12"'), '"9-12"', "HH:MM-HH:MM"),
    ("make-up not a weekend", mutate("date: 2026-02-14", "date: 2026-02-13"), "春节调休", "Friday"),
    (
        "overlapping holidays",
        mutate("春节, start: 2026-02-15", "春节, start: 2026-01-03"),
        "春节, start",
        "already in entry #1",
    ),
    (
        "duplicate holiday",
        mutate(
            "  - {name: 春节, start: 2026-02-15, end: 2026-02-23}\n",
            "  - {name: 元旦, start: 2026-01-01, end: 2026-01-03}\n",
        ),
        "{name: 元旦, start: 2026-01-01, end: 2026-01-03}",  # the 2nd occurrence
        "already in entry #1",
    ),
    (
        "duplicate make-up day",
        mutate("春节调休, date: 2026-02-14", "春节调休, date: 2026-01-04"),
        "春节调休",
        "listed twice",
    ),
    (
        "holiday outside the year",
        mutate("start: 2026-01-01", "start: 2025-12-31"),
        "2025-12-31",
        "year 2026",
    ),
    (
        "make-up day outside the year",
        mutate("date: 2026-01-04", "date: 2027-01-02"),
        "2027-01-02",
        "year 2026",
    ),
    ("end before start", mutate("end: 2026-02-23", "end: 2026-02-01"), "2026-02-01", "before"),
    (
        "unknown field",
        mutate("date: 2026-01-04}", "date: 2026-01-04, note: x}"),
        "note",
        "Extra inputs",
    ),
    ("missing name", mutate("{name: 春节, start", "{start"), "{start: 2026-02-15", "name"),
    ("unknown time zone", mutate("Asia/Shanghai", "Mars/Olympus"), "Mars/Olympus", "time zone"),
    ("year not a number", mutate("year: 2026", "year: twenty"), "year: twenty", "year"),
    ("tab in YAML", mutate('  - "09:00-12:00"', '\t- "09:00-12:00"'), "09:00-12:00", "YAML"),
    ("duplicate key", VALID + "timezone: Asia/Shanghai\n", None, "duplicate key"),
]


@pytest.mark.parametrize(
    ("text", "needle", "fragment"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES]
)
def test_bad_file_is_rejected_with_file_and_line(
    tmp_path: Path, text: str, needle: str | None, fragment: str
) -> None:
    if needle is None:  # the last line of the file
        expected_line = len(text.splitlines())
    elif text.count(needle) > 1:  # a duplicated entry: the second occurrence is the culprit
        expected_line = [i for i, ln in enumerate(text.splitlines(), 1) if needle in ln][1]
    else:
        expected_line = line_of(text, needle)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        WorkCalendar.load([path])
    assert isinstance(err.value, CalendarFileError)
    assert err.value.line == expected_line, str(err.value)
    assert f"{path}:{expected_line}:" in str(err.value)
    assert fragment in str(err.value)


def test_line_numbers_are_the_ones_a_person_would_read(tmp_path: Path) -> None:
    # Guard the helper above with literal numbers: the bad make-up day is on line 11.
    path = write(tmp_path, mutate("date: 2026-02-14", "date: 2026-02-13"))
    with pytest.raises(CalendarFileError) as err:
        WorkCalendar.load([path])
    assert err.value.line == 11
    assert str(err.value).startswith(f"{path}:11: ")


def test_same_year_twice_is_rejected(tmp_path: Path) -> None:
    a = write(tmp_path, VALID, "a.yaml")
    b = write(tmp_path, VALID, "b.yaml")
    with pytest.raises(CalendarFileError) as err:
        WorkCalendar.load([a, b])
    assert err.value.source == str(b) and err.value.line == 1
    assert str(a) in str(err.value)


def test_files_must_share_working_hours(tmp_path: Path) -> None:
    a = write(tmp_path, VALID, "a.yaml")
    other = 'year: 2027\ntimezone: Asia/Shanghai\nworking_hours: ["09:00-12:00", "14:00-17:30"]\n'
    b = write(tmp_path, other, "b.yaml")
    with pytest.raises(CalendarFileError) as err:
        WorkCalendar.load([a, b])
    assert err.value.source == str(b) and err.value.line == 3


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(CalendarFileError) as err:
        WorkCalendar.load([write(tmp_path, "")])
    assert err.value.line == 1


def test_no_files_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        WorkCalendar.load([])


# --- properties, against an oracle written from the notice, not from the code ------------

SPANS = [(time(9), time(12)), (time(13, 30), time(17, 30))]
HOLIDAYS_2026 = {
    date(2026, 1, 1) + timedelta(n)
    for first, days in [
        (date(2026, 1, 1), 3),
        (date(2026, 2, 15), 9),
        (date(2026, 4, 4), 3),
        (date(2026, 5, 1), 5),
        (date(2026, 6, 19), 3),
        (date(2026, 9, 25), 3),
        (date(2026, 10, 1), 7),
    ]
    for n in range((first - date(2026, 1, 1)).days, (first - date(2026, 1, 1)).days + days)
}
MAKEUP_2026 = {date(2026, m, d) for m, d in [(1, 4), (2, 14), (2, 28), (5, 9), (9, 20), (10, 10)]}


def oracle_working_day(d: date) -> bool:
    return d in MAKEUP_2026 or (d.weekday() < 5 and d not in HOLIDAYS_2026)


def oracle_working_time(a: datetime, b: datetime) -> timedelta:
    """Working time between two Beijing wall-clock instants, by intersecting day spans."""
    a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
    total, day = timedelta(), a.date()
    while day <= b.date():
        if oracle_working_day(day):
            for s, e in SPANS:
                lo = max(a, datetime.combine(day, s))
                hi = min(b, datetime.combine(day, e))
                total += max(hi - lo, timedelta())
        day += timedelta(days=1)
    return total


def test_oracle_agrees_with_the_shipped_file_on_every_2026_day() -> None:
    d = date(2026, 1, 1)
    while d.year == 2026:
        assert cal().is_working_day(d) is oracle_working_day(d), d
        d += timedelta(days=1)


starts_2026 = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 10), timezones=st.just(SH)
)


@settings(max_examples=300, deadline=None)
@given(start=starts_2026, minutes=st.integers(min_value=1, max_value=60 * 60))
def test_working_hours_land_inside_a_span_and_count_exactly(start: datetime, minutes: int) -> None:
    hours = minutes / 60
    end = cal().add(start, hours, WH)
    assert end > start
    local = end.astimezone(SH)
    assert oracle_working_day(local.date())
    assert any(s < local.time() <= e for s, e in SPANS), local
    counted = oracle_working_time(start.astimezone(SH), local)
    assert abs(counted - timedelta(minutes=minutes)) < timedelta(milliseconds=1)


@settings(max_examples=200, deadline=None)
@given(start=starts_2026, a=st.integers(1, 30 * 60), b=st.integers(1, 30 * 60))
def test_working_hours_add_up(start: datetime, a: int, b: int) -> None:
    one_go = cal().add(start, (a + b) / 60, WH)
    two_steps = cal().add(cal().add(start, a / 60, WH), b / 60, WH)
    assert abs(one_go - two_steps) < timedelta(milliseconds=1)


@settings(max_examples=200, deadline=None)
@given(start=starts_2026, days=st.integers(1, 5))
def test_working_days_are_seven_working_hours_each(start: datetime, days: int) -> None:
    assert cal().add(start, days, WD) == cal().add(start, 7 * days, WH)
