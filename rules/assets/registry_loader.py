"""Reading and checking an asset registry column by column, in chunks.

A per-row function with a dict per row costs ~20 µs a row in Python: 30 s for the city's
1.4 M components. Checked a column at a time (comprehensions and numpy over 64k rows), the
same checks cost a few µs a row. The CSV is streamed, so the file never sits in memory
whole. Errors still name the file and line of each row, up to 20 at a time.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gridsense.errors import ConfigError
from gridsense.model.geo import CRS, to_wgs84
from gridsense.model.registry import GridRegistry
from gridsense.model.tables import read_rows
from rules.assets.config import AssetTypeConfig
from rules.assets.permits import SHANGHAI, CartPermit, parse_hours, parse_places

COLUMNS = (
    "code",
    "type",
    "name",
    "grid_code",
    "lat",
    "lon",
    "owner",
    "grade",
    "status",
    "interval_h",
    "installed",
    "short_id",
    "permit_id",
    "permit_places",
    "permit_hours",
    "permit_until",
)
STATUSES = ("active", "suspended", "retired")
CHUNK = 65536
MAX_ERRORS = 20
_EXTRA = "__extra__"
_CRS_DIRECTIVE = re.compile(r"^#\s*crs\s*:\s*(\S+)\s*$", re.IGNORECASE)  # as gridsense.model.tables
_SHORT_ID = re.compile(r"^[A-Za-z0-9-]{1,16}\Z")
_PERMIT = ("permit_id", "permit_places", "permit_hours", "permit_until")


@dataclass
class RawChunk:
    """Up to ``CHUNK`` rows: their lines, and every column ('' where a cell is empty)."""

    lines: list[int]
    cols: dict[str, list[Any]]


def _crs(value: str, where: str) -> CRS:
    try:
        return CRS(value.strip().lower())
    except ValueError:
        known = ", ".join(c.value for c in CRS)
        raise ConfigError(f"{where}: unknown coordinate system {value!r} (use one of {known})") from None


def csv_chunks(path: Path) -> tuple[CRS, Iterator[RawChunk]]:
    """The declared CRS and the rows of a registry CSV, streamed in chunks."""
    try:
        f = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    crs: CRS | None = None
    header: list[str] = []
    line = 0
    for raw in f:
        line += 1
        text = raw.strip()
        if not text:
            continue
        if text.startswith("#"):
            m = _CRS_DIRECTIVE.match(text)
            if m:
                crs = _crs(m.group(1), f"{path}:{line}")
            continue
        header = [h.strip() for h in next(csv.reader([raw]))]
        break
    if crs is None:
        f.close()
        raise ConfigError(
            f"{path}:1: no coordinate system declared; start the file with a line "
            "'# crs: wgs84' (or gcj02, bd09)"
        )
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        f.close()
        raise ConfigError(f"{path}:{line}: unknown column(s) {', '.join(unknown)}")
    for required in ("code", "type", "name", "grid_code", "lat", "lon", "owner"):
        if required not in header:
            f.close()
            raise ConfigError(f"{path}:{line}: column {required!r} is missing from the header")
    header_line = line

    def chunks() -> Iterator[RawChunk]:
        with f:
            reader = csv.reader(f)
            width = len(header)
            rows: list[list[str]] = []
            lines: list[int] = []
            for rec in reader:
                if not rec:
                    continue
                lines.append(header_line + reader.line_num)
                if len(rec) < width:
                    rec = rec + [""] * (width - len(rec))
                elif len(rec) > width:
                    rec = [*rec[: width - 1], _EXTRA + ",".join(rec[width - 1 :])]
                rows.append(rec)
                if len(rows) >= CHUNK:
                    yield _transpose(header, rows, lines)
                    rows, lines = [], []
            if rows:
                yield _transpose(header, rows, lines)

    return crs, chunks()


def _transpose(header: list[str], rows: list[list[str]], lines: list[int]) -> RawChunk:
    columns = list(zip(*rows, strict=True))
    cols: dict[str, list[Any]] = {h: list(col) for h, col in zip(header, columns, strict=True)}
    last = header[-1]
    extra = [v[len(_EXTRA) :] if v.startswith(_EXTRA) else "" for v in cols[last]]
    if any(extra):
        cols[last] = [v if not v.startswith(_EXTRA) else "" for v in cols[last]]
        cols[_EXTRA] = ["more fields than the header has" if e else "" for e in extra]
    for name in COLUMNS:
        cols.setdefault(name, [""] * len(rows))
    return RawChunk(lines, cols)


def yaml_chunks(path: Path) -> tuple[CRS, Iterator[RawChunk]]:
    """A YAML registry (``crs:`` and ``rows:``) in the same chunks; structured permits kept."""
    crs, rows = read_rows(path, needs_crs=True)
    assert crs is not None

    def cell(name: str, v: Any) -> Any:
        if v is None:
            return ""
        if isinstance(v, list) and name in ("permit_places", "permit_hours"):
            return v
        return str(v)

    def chunks() -> Iterator[RawChunk]:
        batch: list[Any] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= CHUNK:
                yield _from_dicts(batch, cell)
                batch = []
        if batch:
            yield _from_dicts(batch, cell)

    return crs, chunks()


def _from_dicts(batch: list[Any], cell: Callable[[str, Any], Any]) -> RawChunk:
    cols = {name: [cell(name, r.values.get(name)) for r in batch] for name in COLUMNS}
    extra = [sorted(set(r.values) - set(COLUMNS)) for r in batch]
    cols[_EXTRA] = [f"unknown column(s) {', '.join(e)}" if e else "" for e in extra]
    return RawChunk([r.line for r in batch], cols)


def _is_digits(s: str, n: int) -> bool:
    return len(s) == n and s.isascii() and s.isdigit()


def _day(raw: object, what: str) -> date:
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        raise ValueError(f"{what} {raw!r} must be YYYY-MM-DD") from None


class RegistryLoader:
    """Checks chunks and keeps their columns; ``finish`` sorts them by code."""

    def __init__(
        self, path: Path, crs: CRS, types: dict[str, AssetTypeConfig], grids: GridRegistry | None
    ) -> None:
        self.path = path
        self.crs = crs
        self.types = types
        self.type_names = list(types)
        self.type_index = {name: i for i, name in enumerate(types)}
        self.class_ok = np.zeros((len(types), 10_000), dtype=bool)
        for i, t in enumerate(types.values()):
            for code in t.codes:
                self.class_ok[i, int(code)] = True
        self.known_grids = (
            np.sort(np.array([int(g.grid_code) for g in grids], dtype=np.int64))
            if grids is not None
            else None
        )
        self.parts: dict[str, list[NDArray[Any]]] = {}
        self.names: list[str] = []
        self.owners: dict[str, int] = {}
        self.grades: dict[str, int] = {}
        self.short_ids: dict[int, str] = {}
        self.permits: dict[int, CartPermit] = {}
        self.errors: list[tuple[int, str]] = []
        self.n = 0

    @property
    def full(self) -> bool:
        return len(self.errors) >= MAX_ERRORS

    def convert(self, lat: float, lon: float) -> tuple[float, float]:
        return to_wgs84(lat, lon, self.crs)

    def add(self, chunk: RawChunk) -> None:
        lines, c, n = chunk.lines, chunk.cols, len(chunk.lines)
        ok = np.ones(n, dtype=bool)

        def fail(mask: NDArray[np.bool_], message: Callable[[int], str]) -> None:
            nonlocal ok
            bad = mask & ok
            for i in np.flatnonzero(bad)[: MAX_ERRORS - len(self.errors)].tolist():
                self.errors.append((lines[i], message(i)))
            ok &= ~bad

        def flags(values: Iterator[bool]) -> NDArray[np.bool_]:
            return np.fromiter(values, dtype=bool, count=n)

        if _EXTRA in c:
            extra = c[_EXTRA]
            fail(flags(bool(e) for e in extra), lambda i: str(extra[i]))
        code = [s.strip() for s in c["code"]]
        fail(flags(not s for s in code), lambda i: "code is required")
        good_code = flags(_is_digits(s, 16) for s in code)
        fail(
            ~good_code,
            lambda i: f"code {code[i]!r} must be a 16-digit component code (area 6 + class 4 + serial 6)",
        )
        code_i = np.fromiter(
            (int(s) if g else 0 for s, g in zip(code, good_code.tolist(), strict=True)), np.int64, n
        )
        tname = [s.strip() for s in c["type"]]
        tidx = np.fromiter((self.type_index.get(s, 255) for s in tname), np.int64, n)
        known = ", ".join(self.types)
        fail(
            tidx == 255,
            lambda i: (
                f"type {tname[i]!r} is not configured (known: {known})" if tname[i] else "type is required"
            ),
        )
        tsafe = np.where(tidx == 255, 0, tidx)
        cls = (code_i // 1_000_000) % 10_000
        fail(
            ~self.class_ok[tsafe, cls],
            lambda i: (
                f"code {code[i]}: class {code[i][6:10]} is not a {tname[i]} "
                f"(expected {', '.join(self.types[tname[i]].codes)})"
            ),
        )
        fail(code_i % 1_000_000 == 0, lambda i: f"code {code[i]}: serial 000000 is not a valid serial")
        grid = [s.strip() for s in c["grid_code"]]
        good_grid = flags(_is_digits(s, 15) for s in grid)
        fail(~good_grid, lambda i: f"grid_code {grid[i]!r} must be 15 digits")
        grid_i = np.fromiter(
            (int(s) if g else 0 for s, g in zip(grid, good_grid.tolist(), strict=True)), np.int64, n
        )
        fail(
            code_i // 10**10 != grid_i // 10**9,
            lambda i: f"code {code[i]}: area {code[i][:6]} is not the district of grid {grid[i]}",
        )
        if self.known_grids is not None:
            fail(~np.isin(grid_i, self.known_grids), lambda i: f"grid {grid[i]} is not in the grid registry")
        names = [s.strip() for s in c["name"]]
        owners = [s.strip() for s in c["owner"]]
        for col, label, longest in ((names, "name", 60), (owners, "owner", 80)):
            fail(flags(not s for s in col), lambda i, label=label: f"{label} is required")  # type: ignore[misc]
            fail(
                flags(len(s) > longest for s in col),
                lambda i, label=label, longest=longest: f"{label} is longer than {longest} characters",  # type: ignore[misc]
            )
        lat = self._floats(c["lat"], "lat", 90.0, fail, flags)
        lon = self._floats(c["lon"], "lon", 180.0, fail, flags)
        grade = [s.strip() for s in c["grade"]]
        tlist = tsafe.tolist()
        spec = [self.types[self.type_names[t]] for t in tlist]
        fail(
            flags(bool(g) and g not in s.grades for g, s in zip(grade, spec, strict=True)),
            lambda i: (
                f"grade {grade[i]!r} is not a {tname[i]} grade (known: {', '.join(spec[i].grades) or 'none'})"
            ),
        )
        fail(
            flags(not g and s.grade_required for g, s in zip(grade, spec, strict=True)),
            lambda i: f"grade is required for {tname[i]} ({', '.join(spec[i].grades)})",
        )
        grade_i = np.fromiter(
            (self.grades.setdefault(g, len(self.grades)) if g else -1 for g in grade), np.int16, n
        )
        hours = np.fromiter(
            (s.grades.get(g, s.interval_h) for g, s in zip(grade, spec, strict=True)), np.float64, n
        )
        status = [s.strip() or "active" for s in c["status"]]
        status_i = np.fromiter((STATUSES.index(s) if s in STATUSES else 255 for s in status), np.uint8, n)
        fail(status_i == 255, lambda i: f"status {status[i]!r} must be one of {', '.join(STATUSES)}")
        installed = np.zeros(n, dtype=np.int64)
        for i in [i for i, v in enumerate(c["installed"]) if v]:
            try:
                day = _day(c["installed"][i], "installed")
                installed[i] = int(datetime.combine(day, time(0), SHANGHAI).timestamp() * 1000)
            except ValueError as exc:
                fail(_one(n, i), lambda _i, e=str(exc): e)  # type: ignore[misc]
        for i in [i for i, v in enumerate(c["interval_h"]) if v]:
            raw = c["interval_h"][i]
            try:
                h = float(raw)
            except ValueError:
                fail(_one(n, i), lambda _i, raw=raw: f"interval_h {raw!r} is not a number")  # type: ignore[misc]
                continue
            if not (math.isfinite(h) and 0 < h <= 8760):
                fail(_one(n, i), lambda _i: "interval_h must be in (0, 8760]")
            else:
                hours[i] = h
        for i in [i for i, v in enumerate(c["short_id"]) if v]:
            sid = str(c["short_id"][i]).strip()
            if _SHORT_ID.match(sid):
                self.short_ids[self.n + i] = sid
            else:
                fail(_one(n, i), lambda _i: "short_id must be 1-16 of A-Z, a-z, 0-9 and '-'")
        permit_rows = {i for k in _PERMIT for i, v in enumerate(c[k]) if v != ""}
        for i in sorted(permit_rows):
            if not ok[i]:
                continue
            try:
                permit = self._permit({k: c[k][i] for k in _PERMIT if c[k][i] != ""}, tname[i])
            except ValueError as exc:
                fail(_one(n, i), lambda _i, e=str(exc): e)  # type: ignore[misc]
                continue
            self.permits[self.n + i] = permit
        self.names.extend(names)
        owner_i = np.fromiter((self.owners.setdefault(o, len(self.owners)) for o in owners), np.int32, n)
        columns: dict[str, NDArray[Any]] = {
            "code": code_i,
            "type": tsafe.astype(np.uint8),
            "grid": grid_i,
            "lat": lat,
            "lon": lon,
            "grade": grade_i,
            "status": status_i,
            "interval_s": np.round(hours * 3600).astype(np.int64),
            "installed_ms": installed,
            "owner": owner_i,
            "line": np.asarray(lines, dtype=np.int64),
        }
        for k, v in columns.items():
            self.parts.setdefault(k, []).append(v)
        self.n += n

    @staticmethod
    def _floats(
        col: list[Any],
        what: str,
        bound: float,
        fail: Callable[[NDArray[np.bool_], Callable[[int], str]], None],
        flags: Callable[[Iterator[bool]], NDArray[np.bool_]],
    ) -> NDArray[np.float64]:
        cells = [s.strip() for s in col]
        fail(flags(not s for s in cells), lambda i: f"{what} is required")
        try:
            values = np.array([s or "nan" for s in cells], dtype=np.float64)
        except ValueError:
            values = np.fromiter((_float_or_none(s) for s in cells), np.float64, len(cells))
            fail(
                flags(bool(s) and math.isnan(_float_or_none(s)) and s.lower() != "nan" for s in cells),
                lambda i: f"{what} {cells[i]!r} is not a number",
            )
        fail(~np.isfinite(values), lambda i: f"{what} must be finite")
        fail(np.abs(values) > bound, lambda i: f"{what} {values[i]:g} is out of range ±{bound:g}")
        return values

    def _permit(self, cells: dict[str, Any], tname: str) -> CartPermit:
        if not self.types[tname].mobile:
            raise ValueError(f"{', '.join(cells)}: only mobile types carry a permit, not {tname}")
        if "permit_id" not in cells or "permit_places" not in cells:
            raise ValueError("a permit needs permit_id and permit_places")
        return CartPermit(
            permit_id=str(cells["permit_id"]),
            places=parse_places(cells["permit_places"], self.convert),
            hours=parse_hours(cells["permit_hours"]) if "permit_hours" in cells else (),
            until=_day(cells["permit_until"], "permit_until") if "permit_until" in cells else None,
        )

    def raise_errors(self) -> None:
        if self.errors:
            more = "\n(first 20 errors shown)" if self.full else ""
            raise ConfigError(
                "\n".join(f"{self.path}:{line}: {msg}" for line, msg in sorted(self.errors)) + more
            )


def _float_or_none(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        return math.nan


def _one(n: int, i: int) -> NDArray[np.bool_]:
    mask = np.zeros(n, dtype=bool)
    mask[i] = True
    return mask


def load_columns(path: Path, types: dict[str, AssetTypeConfig], grids: GridRegistry | None) -> RegistryLoader:
    """Read and check a whole registry file; raise ``ConfigError`` listing its bad rows."""
    yaml_file = path.suffix.lower() in {".yaml", ".yml"}
    crs, chunks = yaml_chunks(path) if yaml_file else csv_chunks(path)
    loader = RegistryLoader(path, crs, types, grids)
    for chunk in chunks:
        loader.add(chunk)
        if loader.full:
            break
    loader.raise_errors()
    if loader.n == 0:
        raise ConfigError(f"{path}: no assets")
    return loader
