"""Replay of recorded rain: SWMM 5 input files and CSV logs, as one ``GaugeSeries`` per device.

SWMM (EPA SWMM 5 user's manual, input file format)::

    [RAINGAGES]
    ;;Name  Format      Interval  SCF  Source
    RG1     INTENSITY   0:05      1.0  TIMESERIES  TS1
    [TIMESERIES]
    ;;Name  [Date]      Time   Value ...
    TS1     07/21/2012  14:00  12.0   14:05  30.5
    TS1                 14:10  48.0            ; a continuation row: the date carries over

A value stamped t is the rain of the interval [t, t + Interval), as SWMM reads it; times
with no value are dry. Times are decimal hours or H:MM[:SS]; dates are M/D/Y in local time.
A series without dates counts hours from ``[OPTIONS] START_DATE``/``START_TIME`` (or the
``start`` passed in). Rain gauges reading a ``FILE``, and time series kept in a ``FILE`` that
a gauge reads, are rejected. Depth units follow ``[OPTIONS] FLOW_UNITS`` (US flow units mean
inches) unless ``depth_unit`` says otherwise.

CSV: a header ``timestamp,gauge,value``, then rows with ISO-8601 timestamps (local ``tz`` if
they carry no zone). Unlike SWMM, a CSV timestamp is the *end* of its interval, the time the
gauge reported. ``#`` lines are comments.

Both: INTENSITY is mm/h over the interval, VOLUME mm in the interval, CUMULATIVE mm since
the storm began (a drop restarts the count, as in SWMM's gage.c). Values are multiplied by
the SCF; SWMM applies it to snowfall only, a replay has no temperature to tell, so here it
always applies. Every source gauge must map to a device id. Errors name the file and line.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Literal

from gridsense.errors import ConfigError
from gridsense.model.envelopes import Kind
from simulators.gauge_faults import GaugeSeries

#: Beijing local time: UTC+8 all year (no daylight saving since 1991).
BEIJING_TZ = timezone(timedelta(hours=8), "CST")

_US_FLOW_UNITS = {"CFS", "GPM", "MGD"}
_SI_FLOW_UNITS = {"CMS", "LPS", "MLD"}
_MM_PER = {"mm": 1.0, "in": 25.4}
_TOKEN = re.compile(r'"([^"]*)"|(;.*)|([^\s";]+)')
_HMS = re.compile(r"^(\d+):([0-5]?\d)(?::([0-5]?\d))?$")
_MDY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


class RainFormat(StrEnum):
    """How a recorded rain value is meant."""

    INTENSITY = "INTENSITY"
    VOLUME = "VOLUME"
    CUMULATIVE = "CUMULATIVE"


@dataclass(frozen=True)
class RainPoint:
    """One recorded value: a local date-time (naive) or hours since the start as a timedelta."""

    when: datetime | timedelta
    value: float
    line: int


@dataclass(frozen=True)
class SwmmRainGage:
    """A ``[RAINGAGES]`` row."""

    name: str
    fmt: RainFormat
    interval: timedelta
    scf: float
    series: str
    line: int


@dataclass
class SwmmRain:
    """The rain parts of a SWMM input file."""

    path: Path
    gages: dict[str, SwmmRainGage] = field(default_factory=dict)
    series: dict[str, list[RainPoint]] = field(default_factory=dict)
    series_files: dict[str, int] = field(default_factory=dict)  # series kept in a FILE → its line
    flow_units: str | None = None
    start_date: datetime | None = None  # [OPTIONS] START_DATE, local
    start_time: timedelta = timedelta(0)  # [OPTIONS] START_TIME

    @property
    def start(self) -> datetime | None:
        """The simulation start (local, naive), which undated series count their hours from."""
        return self.start_date + self.start_time if self.start_date is not None else None


def parse_swmm(path: Path) -> SwmmRain:
    """Read ``[OPTIONS] FLOW_UNITS``, ``[RAINGAGES]`` and ``[TIMESERIES]``; other sections are skipped."""
    out = SwmmRain(path)
    last_date: dict[str, datetime | None] = {}  # SWMM carries a series' date over to later rows
    section = ""
    with path.open(encoding="utf-8-sig") as fh:
        for no, raw in enumerate(fh, start=1):
            stripped = raw.strip()
            if stripped.startswith("["):
                section = stripped.split("]", 1)[0].lstrip("[").strip().upper()
                continue
            tokens = _tokens(raw)
            if not tokens:
                continue
            at = f"{path}:{no}"
            if section == "OPTIONS" and len(tokens) >= 2:
                _option(tokens, at, out)
            elif section == "RAINGAGES":
                gage = _raingage(tokens, no, at)
                if gage.name in out.gages:
                    raise ConfigError(f"{at}: rain gage {gage.name!r} is defined twice")
                out.gages[gage.name] = gage
            elif section == "TIMESERIES":
                _timeseries_row(tokens, no, at, out, last_date)
    return out


def swmm_rain_series(
    path: Path,
    gauge_to_device: Mapping[str, str],
    *,
    start: datetime | None = None,
    tz: tzinfo = BEIJING_TZ,
    depth_unit: Literal["mm", "in"] | None = None,
) -> dict[str, GaugeSeries]:
    """Each mapped SWMM rain gage as mm per interval, keyed by device id.

    ``start`` anchors series given in hours since the start (default: the file's
    START_DATE/START_TIME, in ``tz``); ``tz`` is the zone of every date in the file.
    """
    swmm = parse_swmm(path)
    if start is None and swmm.start is not None:
        start = swmm.start.replace(tzinfo=tz)
    if not swmm.gages:
        raise ConfigError(f"{path}: no [RAINGAGES]")
    _check_mapping(path, {g.name: g.line for g in swmm.gages.values()}, gauge_to_device)
    mm_per = _MM_PER[depth_unit or _depth_unit(swmm)]
    out = {}
    for gage in swmm.gages.values():
        at = f"{path}:{gage.line}"
        if gage.series in swmm.series_files:
            raise ConfigError(
                f"{at}: rain gage {gage.name!r} reads time series {gage.series!r}, which is kept in a FILE"
                f" ({path}:{swmm.series_files[gage.series]}); external files are not supported,"
                " put the values in [TIMESERIES] or use a CSV replay"
            )
        points = swmm.series.get(gage.series)
        if not points:
            raise ConfigError(f"{at}: rain gage {gage.name!r} reads series {gage.series!r}, not in the file")
        timed = [(_absolute(p, start, tz, f"{path}:{p.line}", gage.series), p.value, p.line) for p in points]
        first, mm = _interval_mm(timed, gage.fmt, gage.interval, gage.scf * mm_per, path)
        device = gauge_to_device[gage.name]
        out[device] = GaugeSeries(device, Kind.RAIN, first, gage.interval, tuple(mm))
    return out


def csv_rain_series(
    path: Path,
    fmt: RainFormat,
    interval: timedelta,
    gauge_to_device: Mapping[str, str],
    *,
    scf: float = 1.0,
    tz: tzinfo = BEIJING_TZ,
) -> dict[str, GaugeSeries]:
    """Each mapped CSV gauge as mm per interval (timestamps mark interval ends), keyed by device id."""
    if interval <= timedelta(0) or scf <= 0:
        raise ConfigError(f"{path}: interval and SCF must be positive")
    points: dict[str, list[tuple[datetime, float, int]]] = {}
    first_line: dict[str, int] = {}
    header = None
    with path.open(encoding="utf-8-sig", newline="") as fh:
        numbered = list(enumerate(fh, start=1))
    for no, line in numbered:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in next(csv.reader([line]))]
        if header is None:
            header = cells
            if header != ["timestamp", "gauge", "value"]:
                raise ConfigError(f"{path}:{no}: header must be 'timestamp,gauge,value', got {cells}")
            continue
        if len(cells) != 3:
            raise ConfigError(f"{path}:{no}: expected 3 columns, got {len(cells)}")
        ts = _iso_time(cells[0], tz, f"{path}:{no}")
        value = _number(cells[2], f"{path}:{no}", "value")
        points.setdefault(cells[1], []).append((ts, value, no))
        first_line.setdefault(cells[1], no)
    if header is None or not points:
        raise ConfigError(f"{path}: no rows")
    _check_mapping(path, first_line, gauge_to_device)
    out = {}
    for gauge, pts in points.items():
        first, mm = _interval_mm(pts, fmt, interval, scf, path)
        device = gauge_to_device[gauge]
        out[device] = GaugeSeries(device, Kind.RAIN, first - interval, interval, tuple(mm))
    return out


def _tokens(line: str) -> list[str]:
    out = []
    for m in _TOKEN.finditer(line):
        if m.group(2) is not None:  # a ';' comment runs to the end of the line
            break
        out.append(m.group(1) if m.group(1) is not None else m.group(3))
    return out


def _option(tokens: list[str], at: str, out: SwmmRain) -> None:
    key, value = tokens[0].upper(), tokens[1]
    if key == "FLOW_UNITS":
        out.flow_units = value.upper()
    elif key == "START_DATE":
        out.start_date = _mdy(value, at)
    elif key == "START_TIME":
        out.start_time = timedelta(seconds=_hours_to_seconds(value, at, "START_TIME"))


def _raingage(tokens: list[str], no: int, at: str) -> SwmmRainGage:
    if len(tokens) >= 5 and tokens[4].upper() == "FILE":
        raise ConfigError(
            f"{at}: rain gage {tokens[0]!r} reads an external FILE; not supported,"
            " put the values in [TIMESERIES] or use a CSV replay"
        )
    if len(tokens) != 6 or tokens[4].upper() != "TIMESERIES":
        raise ConfigError(f"{at}: expected 'Name Format Interval SCF TIMESERIES Series', got {tokens}")
    name, fmt, interval, scf, _, series = tokens
    try:
        rain_format = RainFormat(fmt.upper())
    except ValueError:
        raise ConfigError(f"{at}: format {fmt!r} is not INTENSITY, VOLUME or CUMULATIVE") from None
    seconds = _hours_to_seconds(interval, at, "interval")
    factor = _number(scf, at, "SCF")
    if seconds <= 0 or factor <= 0:
        raise ConfigError(f"{at}: interval and SCF must be positive")
    return SwmmRainGage(name, rain_format, timedelta(seconds=seconds), factor, series, no)


def _timeseries_row(
    tokens: list[str], no: int, at: str, out: SwmmRain, last_date: dict[str, datetime | None]
) -> None:
    name = tokens[0]
    if len(tokens) >= 2 and tokens[1].upper() == "FILE":
        out.series_files[name] = no
        return
    if len(tokens) < 3:
        raise ConfigError(f"{at}: expected 'Name [Date] Time Value ...', got {tokens}")
    points = out.series.setdefault(name, [])
    date = last_date.get(name)
    k = 1
    while k < len(tokens):
        if "/" in tokens[k]:
            if points and date is None:
                raise ConfigError(f"{at}: series {name!r} mixes dates with hours since the start")
            date = _mdy(tokens[k], at)
            k += 1
        if k + 1 >= len(tokens):
            raise ConfigError(f"{at}: series {name!r}: a time without a value")
        offset = timedelta(seconds=_hours_to_seconds(tokens[k], at, "time"))
        when: datetime | timedelta = date + offset if date is not None else offset
        value = _number(tokens[k + 1], at, "value")
        if points and _not_after(when, points[-1].when):
            raise ConfigError(f"{at}: series {name!r}: {tokens[k]} is not after line {points[-1].line}")
        points.append(RainPoint(when, value, no))
        k += 2
    last_date[name] = date


def _not_after(a: datetime | timedelta, b: datetime | timedelta) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a <= b
    if isinstance(a, timedelta) and isinstance(b, timedelta):
        return a <= b
    return False  # a mix is reported where it happens


def _hours_to_seconds(token: str, at: str, what: str) -> int:
    m = _HMS.match(token)
    if m:
        return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3) or 0)
    try:
        hours = float(token)
    except ValueError:
        raise ConfigError(f"{at}: {what} {token!r} is neither decimal hours nor H:MM") from None
    if not 0 <= hours < 1e6:
        raise ConfigError(f"{at}: {what} {token!r} is out of range")
    return int(hours * 3600 + 0.5)  # SWMM rounds to the second the same way


def _mdy(token: str, at: str) -> datetime:
    m = _MDY.match(token)
    try:
        if not m:
            raise ValueError
        return datetime(int(m.group(3)), int(m.group(1)), int(m.group(2)))
    except ValueError:
        raise ConfigError(f"{at}: date {token!r} is not a valid M/D/YYYY date") from None


def _number(token: str, at: str, what: str) -> float:
    try:
        v = float(token)
    except ValueError:
        raise ConfigError(f"{at}: {what} {token!r} is not a number") from None
    if not math.isfinite(v):
        raise ConfigError(f"{at}: {what} {token!r} is not finite")
    return v


def _iso_time(token: str, tz: tzinfo, at: str) -> datetime:
    try:
        ts = datetime.fromisoformat(token)
    except ValueError:
        raise ConfigError(f"{at}: timestamp {token!r} is not ISO-8601") from None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=tz)


def _absolute(p: RainPoint, start: datetime | None, tz: tzinfo, at: str, series: str) -> datetime:
    if isinstance(p.when, datetime):
        return p.when.replace(tzinfo=tz)
    if start is None:
        raise ConfigError(f"{at}: series {series!r} counts hours from a start: give START_DATE or start=")
    if start.tzinfo is None:
        raise ConfigError(f"{at}: start must carry a timezone")
    return start + p.when


def _depth_unit(swmm: SwmmRain) -> Literal["mm", "in"]:
    if swmm.flow_units in _SI_FLOW_UNITS:
        return "mm"
    if swmm.flow_units in _US_FLOW_UNITS:
        return "in"
    raise ConfigError(
        f"{swmm.path}: no known FLOW_UNITS in [OPTIONS] (SWMM would assume CFS, i.e. inches);"
        " declare it or pass depth_unit='mm' or 'in'"
    )


def _check_mapping(path: Path, gauges: Mapping[str, int], gauge_to_device: Mapping[str, str]) -> None:
    for name, line in gauges.items():
        if name not in gauge_to_device:
            raise ConfigError(f"{path}:{line}: rain gauge {name!r} has no device id in the mapping")
    extra = sorted(set(gauge_to_device) - set(gauges))
    if extra:
        raise ConfigError(f"{path}: the mapping names gauges the file does not have: {extra}")
    devices = [gauge_to_device[name] for name in gauges]
    doubled = sorted({d for d in devices if devices.count(d) > 1})
    if doubled:
        raise ConfigError(f"{path}: several gauges map to the same device: {doubled}")


def _interval_mm(
    points: list[tuple[datetime, float, int]], fmt: RainFormat, interval: timedelta, factor: float, path: Path
) -> tuple[datetime, list[float]]:
    """The time of the first point and mm per interval from it on (dry where nothing is recorded)."""
    first = points[0][0]
    mm: list[float] = []
    accum = 0.0
    for ts, value, no in points:
        at = f"{path}:{no}"
        if value < 0:
            raise ConfigError(f"{at}: negative rain {value}")
        slot, rest = divmod(ts - first, interval)
        if rest:
            raise ConfigError(f"{at}: {ts.isoformat()} is off the {interval} grid of the first value")
        if slot < len(mm):
            raise ConfigError(f"{at}: {ts.isoformat()} does not come after the previous value of this gauge")
        mm.extend([0.0] * (slot - len(mm)))
        if fmt is RainFormat.INTENSITY:
            depth = value * interval.total_seconds() / 3600.0
        elif fmt is RainFormat.VOLUME:
            depth = value
        else:
            depth = value - accum if value >= accum else value  # a drop: the count restarted
            accum = value
        mm.append(depth * factor)
    return first, mm
