"""Deadlines in working time (处置时限), on China's official holiday calendar kept as data.

The calendar is one YAML file per year (``gridsense/data/calendar/cn-YYYY.yaml`` ships
with the package; a city may load its own). Weekday arithmetic is wrong around every
public holiday because of 调休, so a year the calendar does not hold is an error, never a
silent fallback.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from importlib import resources
from importlib.resources.abc import Traversable
from os import PathLike, fspath
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from gridsense.errors import ConfigError

log = logging.getLogger(__name__)

Loc = tuple[str | int, ...]
CalendarSource = str | PathLike[str] | Traversable


class LimitUnit(StrEnum):
    """The unit a handling limit is given in."""

    CLOCK_HOURS = "clock_hours"
    WORKING_HOURS = "working_hours"
    WORKING_DAYS = "working_days"


class CalendarFileError(ConfigError):
    """A calendar file is invalid; ``problems`` holds (line, message) pairs, 1-based lines."""

    def __init__(self, source: str, problems: Sequence[tuple[int, str]]) -> None:
        self.source = source
        self.problems = sorted(problems)
        super().__init__("\n".join(f"{source}:{line}: {msg}" for line, msg in self.problems))

    @property
    def line(self) -> int:
        """The line of the first problem."""
        return self.problems[0][0]


class CalendarNotCovered(ConfigError):
    """A working-time computation needs a year no loaded calendar file holds."""

    def __init__(self, year: int, covered: Sequence[int]) -> None:
        self.year = year
        have = ", ".join(str(y) for y in covered) or "none"
        super().__init__(
            f"no working calendar for {year} (loaded: {have}); add a calendar file for "
            f"{year} (holidays and 调休 from the State Council notice) — deadlines in "
            "working time cannot be computed by weekday arithmetic"
        )


# --- file schema -------------------------------------------------------------------------

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SPAN_RE = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")


def _iso_date(value: Any) -> date:
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        raise ValueError(f"expected a date written YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid date: {exc}") from None


def _work_span(value: Any) -> tuple[time, time]:
    m = _SPAN_RE.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"expected a span written HH:MM-HH:MM, got {value!r}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    try:
        begin, end = time(h1, m1), time(h2, m2)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid span: {exc}") from None
    if end <= begin:
        raise ValueError(f"span {value!r} must end after it starts (spans stay within a day)")
    return begin, end


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
WorkSpan = Annotated[tuple[time, time], BeforeValidator(_work_span)]


class HolidayEntry(BaseModel):
    """Days off: one day, or an inclusive range that may include weekend days."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="the holiday's name, e.g. 春节")
    start: IsoDate = Field(description="first day off")
    end: IsoDate | None = Field(default=None, description="last day off; omit for one day")

    @model_validator(mode="after")
    def _ordered(self) -> HolidayEntry:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    @property
    def last(self) -> date:
        return self.end or self.start

    def days(self) -> list[date]:
        return [self.start + timedelta(d) for d in range((self.last - self.start).days + 1)]


class MakeupWorkday(BaseModel):
    """A Saturday or Sunday that is worked (调休上班)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="why it is worked, e.g. 春节调休")
    date: IsoDate = Field(description="the weekend date that is a working day")


class CalendarFile(BaseModel):
    """One year's working calendar, as written in a ``cn-YYYY.yaml`` file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    year: int = Field(ge=1970, le=2200, description="every date in the file lies in this year")
    timezone: str = Field(description="IANA zone deadlines are computed in: Asia/Shanghai")
    provisional: bool = Field(
        default=False, description="true until the official schedule is published; logs a warning"
    )
    working_hours: list[WorkSpan] = Field(
        min_length=1, description="HH:MM-HH:MM spans of a working day, not overlapping"
    )
    holidays: list[HolidayEntry] = Field(default_factory=list)
    makeup_workdays: list[MakeupWorkday] = Field(default_factory=list)


def _semantic_problems(f: CalendarFile) -> list[tuple[Loc, str]]:
    """Checks across entries that the schema alone cannot express."""
    out: list[tuple[Loc, str]] = []
    try:
        ZoneInfo(f.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        out.append((("timezone",), f"unknown time zone {f.timezone!r}"))

    spans = f.working_hours
    for j, (b2, e2) in enumerate(spans):
        for i, (b1, e1) in enumerate(spans[:j]):
            if b1 < e2 and b2 < e1:
                out.append((("working_hours", j), f"working-hour span overlaps span #{i + 1}"))

    holiday_days: dict[date, int] = {}
    for j, h in enumerate(f.holidays):
        loc: Loc = ("holidays", j)
        if h.start.year != f.year or h.last.year != f.year:
            out.append((loc, f"dates must lie in the file's year {f.year}"))
        for d in h.days():
            if d in holiday_days:
                i = holiday_days[d]
                out.append((loc, f"{d} is already in entry #{i + 1} ({f.holidays[i].name})"))
                break
        for d in h.days():
            holiday_days.setdefault(d, j)

    makeup_days: dict[date, int] = {}
    for j, m in enumerate(f.makeup_workdays):
        loc = ("makeup_workdays", j)
        if m.date.year != f.year:
            out.append((loc, f"date must lie in the file's year {f.year}"))
        if m.date.weekday() < 5:
            out.append((loc, f"{m.date} is a {m.date:%A}; a make-up working day is a weekend day"))
        if m.date in makeup_days:
            out.append((loc, f"{m.date} is listed twice (entry #{makeup_days[m.date] + 1})"))
        makeup_days.setdefault(m.date, j)
        if m.date in holiday_days:
            name = f.holidays[holiday_days[m.date]].name
            out.append((loc, f"{m.date} is both a make-up day and a holiday ({name})"))
    return out


# --- YAML with line numbers --------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that leaves dates as strings, so the schema reports malformed ones."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _node_at(root: yaml.Node, loc: Loc) -> yaml.Node:
    """The deepest node along a pydantic ``loc`` path (stops where the path leaves the YAML)."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    node = value
                    break
            else:
                return node
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def _duplicate_keys(node: yaml.Node) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    out.append((_line(key), f"duplicate key {key.value!r}"))
                seen.add(key.value)
            out.extend(_duplicate_keys(value))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            out.extend(_duplicate_keys(item))
    return out


def _read_source(source: CalendarSource) -> tuple[str, str]:
    if isinstance(source, str | PathLike):
        path = Path(fspath(source))
        name = str(path)
        reader: Traversable = path
    else:
        name, reader = str(source), source
    try:
        return name, reader.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarFileError(name, [(1, f"cannot read calendar file: {exc}")]) from exc


def parse_calendar_file(text: str, name: str) -> tuple[CalendarFile, yaml.Node]:
    """Parse and validate one calendar file; raise CalendarFileError naming file and line."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise CalendarFileError(name, [(line, f"not valid YAML: {exc.problem}")]) from exc
    except yaml.YAMLError as exc:
        raise CalendarFileError(name, [(1, f"not valid YAML: {exc}")]) from exc
    finally:
        loader.dispose()
    if root is None or not isinstance(data, dict):
        raise CalendarFileError(name, [(1, "a calendar file is a mapping (year, holidays, ...)")])

    dupes = _duplicate_keys(root)
    if dupes:
        raise CalendarFileError(name, dupes)
    try:
        parsed = CalendarFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            where = ".".join(str(p) for p in loc) or "file"
            problems.append((_line(_node_at(root, loc)), f"{where}: {err['msg']}"))
        raise CalendarFileError(name, problems) from exc
    semantic = _semantic_problems(parsed)
    if semantic:
        raise CalendarFileError(
            name,
            [
                (_line(_node_at(root, loc)), f"{'.'.join(str(p) for p in loc)}: {msg}")
                for loc, msg in semantic
            ],
        )
    return parsed, root


# --- the calendar ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Year:
    holidays: Mapping[date, str]
    makeup_workdays: Mapping[date, str]
    provisional: bool
    source: str


class WorkCalendar:
    """Working days and hours for the years whose calendar files were loaded.

    ``add`` semantics (all in the calendar's local time zone, Asia/Shanghai):

    - ``clock_hours``: plain elapsed time; holidays and nights count. Needs no calendar.
    - ``working_hours``: only time inside the working-hour spans of working days counts.
      A case filed outside them starts counting at the start of the next span. A deadline
      that uses up a span exactly falls at that span's end (17:30, not 09:00 next day).
    - ``working_days``: ``amount`` × the length of a working day (7 h by default), counted
      as working hours; filed Friday 15:00 with 1 working day → next working day 15:00.

    A working day is a weekday that is not a holiday, or a make-up working day (调休).
    Working-time arithmetic on wall-clock time; Asia/Shanghai has no daylight saving.
    """

    def __init__(
        self,
        tz: ZoneInfo,
        working_hours: Sequence[tuple[time, time]],
        years: Mapping[int, _Year],
    ) -> None:
        self._tz = tz
        self._spans = tuple(sorted(working_hours))
        self._years = dict(years)
        self._day_length = sum(
            (datetime.combine(date.min, e) - datetime.combine(date.min, b) for b, e in self._spans),
            timedelta(),
        )

    @classmethod
    def load(cls, paths: Iterable[CalendarSource]) -> WorkCalendar:
        """Load calendar files (one per year, sharing time zone and working hours)."""
        tz_name: str | None = None
        spans: list[tuple[time, time]] | None = None
        years: dict[int, _Year] = {}
        for source in paths:
            name, text = _read_source(source)
            f, root = parse_calendar_file(text, name)
            problem: tuple[str, str] | None = None
            if f.year in years:
                problem = ("year", f"year {f.year} is already loaded from {years[f.year].source}")
            elif tz_name is not None and f.timezone != tz_name:
                problem = ("timezone", f"{f.timezone} differs from {tz_name} in the other files")
            elif spans is not None and sorted(f.working_hours) != spans:
                problem = ("working_hours", "working_hours differ from the other calendar files")
            if problem is not None:
                key, msg = problem
                raise CalendarFileError(name, [(_line(_node_at(root, (key,))), msg)])
            tz_name, spans = f.timezone, sorted(f.working_hours)
            years[f.year] = _Year(
                holidays={d: h.name for h in f.holidays for d in h.days()},
                makeup_workdays={m.date: m.name for m in f.makeup_workdays},
                provisional=f.provisional,
                source=name,
            )
            if f.provisional:
                log.warning(
                    "calendar_provisional year=%d file=%s: the official holiday schedule "
                    "is not in this file yet; working-time deadlines near holidays may be "
                    "wrong until it is replaced",
                    f.year,
                    name,
                )
        if tz_name is None or spans is None:
            raise ConfigError("no calendar files were given to load")
        return cls(ZoneInfo(tz_name), spans, years)

    @classmethod
    def default(cls) -> WorkCalendar:
        """The calendar files shipped in ``gridsense/data/calendar/``."""
        folder = resources.files("gridsense") / "data" / "calendar"
        files = sorted((p for p in folder.iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name)
        return cls.load(files)

    @property
    def timezone(self) -> ZoneInfo:
        return self._tz

    @property
    def working_hours(self) -> tuple[tuple[time, time], ...]:
        return self._spans

    @property
    def working_day_length(self) -> timedelta:
        return self._day_length

    @property
    def years(self) -> list[int]:
        return sorted(self._years)

    def covers(self, year: int) -> bool:
        return year in self._years

    def is_provisional(self, year: int) -> bool:
        return self._year(year).provisional

    def missing_years(self, around: datetime) -> list[int]:
        """Of the local year of ``around`` and the next one, those with no calendar."""
        local = around.astimezone(self._tz) if around.tzinfo is not None else around
        return [y for y in (local.year, local.year + 1) if not self.covers(y)]

    def is_working_day(self, day: date) -> bool:
        year = self._year(day.year)
        if day in year.makeup_workdays:
            return True
        return day.weekday() < 5 and day not in year.holidays

    def add(self, start: datetime, amount: float, unit: LimitUnit | str) -> datetime:
        """The deadline ``amount`` ``unit`` after ``start``, aware, in the calendar's zone.

        ``start`` must be timezone-aware. A zero amount returns ``start`` (converted).
        Raises CalendarNotCovered if working time runs into a year with no calendar.
        """
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("start must be a timezone-aware datetime")
        if not math.isfinite(amount) or amount < 0:
            raise ValueError(f"amount must be a finite number >= 0, got {amount!r}")
        unit = LimitUnit(unit)
        if unit is LimitUnit.CLOCK_HOURS:
            return (start.astimezone(UTC) + timedelta(hours=amount)).astimezone(self._tz)
        needed = timedelta(hours=amount) if unit is LimitUnit.WORKING_HOURS else self._day_length * amount
        return self._add_working(start.astimezone(self._tz), needed)

    def _year(self, year: int) -> _Year:
        try:
            return self._years[year]
        except KeyError:
            raise CalendarNotCovered(year, self.years) from None

    def _add_working(self, start: datetime, needed: timedelta) -> datetime:
        if needed <= timedelta():
            return start
        cursor = start.replace(tzinfo=None)
        while True:
            day = cursor.date()
            if self.is_working_day(day):
                for begin_t, end_t in self._spans:
                    span_end = datetime.combine(day, end_t)
                    if cursor >= span_end:
                        continue
                    begin = max(cursor, datetime.combine(day, begin_t))
                    available = span_end - begin
                    if needed <= available:
                        return (begin + needed).replace(tzinfo=self._tz)
                    needed -= available
                    cursor = span_end
            cursor = datetime.combine(day + timedelta(days=1), time())
