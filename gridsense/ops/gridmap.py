"""The grid map: registry polygons drawn as inline SVG, and each grid's state as one character.

No tiles and no map library: polygons (WGS-84) go through a plain equirectangular
projection (longitude scaled by the cosine of the mean latitude) onto integer
coordinates in a ``size``-unit box, written as relative path commands. The SVG is built
once per registry; what changes is the state string, one character per grid in registry
(= document) order, which the page's script applies by index.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass

from gridsense.model.registry import Grid, GridRegistry
from gridsense.ops.cases import open_case_grids
from gridsense.ops.html import Safe, el, join
from gridsense.ops.rain import RecentData

#: State per grid: index into this tuple; a grid with an open case uses the upper-case letter.
STATES = ("nodata", "normal", "fault", "blue", "yellow", "orange", "red")
_LEVEL_STATE = {"blue": 3, "yellow": 4, "orange": 5, "red": 6}
_PLAIN = "0123456"
_WITH_CASE = "ABCDEFG"
#: Half the side (degrees) of the square drawn for a grid that has a centroid but no polygon.
_POINT_HALF_DEG = 0.0008
#: Streets are labelled when there are at most this many (a city-wide map would be a blur).
MAX_LABELS = 400


@dataclass(frozen=True)
class Projection:
    """WGS-84 (lat, lon) → integer map units; y grows southwards."""

    min_lon: float
    max_lat: float
    kx: float
    scale: float
    width: int
    height: int

    @classmethod
    def fit(cls, points: list[tuple[float, float]], size: int) -> Projection:
        lats = [p[0] for p in points]
        lons = [p[1] for p in points]
        min_lat, max_lat, min_lon, max_lon = min(lats), max(lats), min(lons), max(lons)
        kx = math.cos(math.radians((min_lat + max_lat) / 2))
        span = max((max_lon - min_lon) * kx, max_lat - min_lat, 1e-6)
        pad = span * 0.02
        scale = size / (span + 2 * pad)
        width = math.ceil(((max_lon - min_lon) * kx + 2 * pad) * scale)
        height = math.ceil((max_lat - min_lat + 2 * pad) * scale)
        return cls(min_lon - pad / kx, max_lat + pad, kx, scale, width, height)

    def xy(self, lat: float, lon: float) -> tuple[int, int]:
        return round((lon - self.min_lon) * self.kx * self.scale), round((self.max_lat - lat) * self.scale)


def _ring(grid: Grid) -> tuple[tuple[float, float], ...]:
    if len(grid.polygon) >= 3:
        return grid.polygon
    h = _POINT_HALF_DEG
    la, lo = grid.lat, grid.lon
    return ((la + h, lo - h), (la + h, lo + h), (la - h, lo + h), (la - h, lo - h))


def path_d(ring: tuple[tuple[float, float], ...], proj: Projection) -> str:
    """``M x y l dx dy …z`` in integer units: relative steps keep the numbers short."""
    pts = [proj.xy(la, lo) for la, lo in ring]
    x0, y0 = pts[0]
    steps = []
    px, py = x0, y0
    for x, y in pts[1:]:
        if x != px or y != py:
            steps.append(f"{x - px} {y - py}")
        px, py = x, y
    return f"M{x0} {y0}l" + " ".join(steps).replace(" -", "-") + "z"


@dataclass(frozen=True)
class GridMap:
    """The built map: the SVG and the grid codes in the order of its paths."""

    codes: tuple[str, ...]
    index: dict[str, int]
    svg: Safe
    build_s: float


def build_map(grids: GridRegistry, size: int = 20000) -> GridMap:
    t0 = time.perf_counter()
    all_grids = list(grids)
    rings = [_ring(g) for g in all_grids]
    proj = Projection.fit([p for r in rings for p in r], size)
    # Grid codes are validated as 15 digits on load, so they need no escaping here.
    paths = "".join(
        f'<path id="g{g.grid_code}" d="{path_d(r, proj)}"/>' for g, r in zip(all_grids, rings, strict=True)
    )
    streets: dict[str, list[int]] = {}
    for i, g in enumerate(all_grids):
        streets.setdefault(g.street_code, []).append(i)
    svg = Safe(
        f'<svg id="map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {proj.width} {proj.height}"'
        f' data-w="{proj.width}" data-h="{proj.height}" preserveAspectRatio="xMidYMid meet"'
        ' role="img" aria-label="grid map">'
        f"{_street_areas(streets, rings, proj)}"
        f'<g id="grids">{paths}</g>{_street_labels(streets, all_grids, proj)}</svg>'
    )
    codes = tuple(g.grid_code for g in all_grids)
    return GridMap(codes, {c: i for i, c in enumerate(codes)}, svg, time.perf_counter() - t0)


def convex_hull(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Andrew's monotone chain; counter-clockwise, no repeated first point."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return pts

    def cross(o: tuple[int, int], a: tuple[int, int], b: tuple[int, int]) -> int:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[int, int]] = []
    upper: list[tuple[int, int]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def _street_areas(
    streets: dict[str, list[int]], rings: list[tuple[tuple[float, float], ...]], proj: Projection
) -> Safe:
    """Each street's territory as a faint hull behind its grids (few streets only)."""
    if len(streets) > MAX_LABELS:
        return Safe("")
    pad = max(proj.width, proj.height) / 150
    out = []
    for members in streets.values():
        hull = convex_hull([proj.xy(la, lo) for i in members for la, lo in rings[i]])
        if len(hull) < 3:
            continue
        cx = sum(x for x, _ in hull) / len(hull)
        cy = sum(y for _, y in hull) / len(hull)
        grown = []
        for x, y in hull:
            d = math.hypot(x - cx, y - cy) or 1.0
            grown.append(f"{x + (x - cx) / d * pad:.0f},{y + (y - cy) / d * pad:.0f}")
        out.append(f'<polygon points="{" ".join(grown)}"/>')
    return Safe('<g id="streets" aria-hidden="true">' + "".join(out) + "</g>")


def _street_labels(streets: dict[str, list[int]], all_grids: list[Grid], proj: Projection) -> Safe:
    if len(streets) > MAX_LABELS:
        return Safe("")
    font = max(proj.width, proj.height) / 45
    labels = []
    for idx in streets.values():
        members = [all_grids[i] for i in idx]
        lat = sum(g.lat for g in members) / len(members)
        lon = sum(g.lon for g in members) / len(members)
        x, y = proj.xy(lat, lon)
        labels.append(el("text", members[0].street_name, x=x, y=y, font_size=f"{font:.0f}"))
    return el("g", join(labels), id="labels", aria_hidden="true")


@dataclass(frozen=True)
class MapState:
    """One character per grid (see ``STATES``) and how many grids are in each state."""

    chars: str
    counts: dict[str, int]
    open_case_grids: int
    build_s: float


def map_state(conn: sqlite3.Connection, gm: GridMap, recent: RecentData) -> MapState:
    """State per grid: open case > warning level > device fault > reporting > no data."""
    t0 = time.perf_counter()
    state = [0] * len(gm.codes)
    index = gm.index
    for grid in recent.reporting:
        i = index.get(grid)
        if i is not None:
            state[i] = 1
    rows = conn.execute(
        "SELECT grid_code, level FROM incidents WHERE closed_at IS NULL"
        " AND coalesce(json_extract(state, '$.routing_level'), '') NOT IN ('street', 'district')"
    )
    for grid, level in rows:
        i = index.get(grid)
        if i is not None:
            state[i] = max(state[i], _LEVEL_STATE.get(level, 2))
    cased = open_case_grids(conn)
    chars = [_PLAIN[s] for s in state]
    for grid in cased:
        i = index.get(grid)
        if i is not None:
            chars[i] = _WITH_CASE[state[i]]
    counts = Counter(STATES[s] for s in state)
    return MapState(
        "".join(chars),
        {name: counts.get(name, 0) for name in STATES},
        sum(1 for g in cased if g in index),
        time.perf_counter() - t0,
    )


def legend() -> Safe:
    names = {
        "nodata": "no data",
        "normal": "reporting",
        "fault": "device fault",
        "blue": "blue",
        "yellow": "yellow",
        "orange": "orange",
        "red": "red",
    }
    items = [
        el("li", el("i", class_=f"sw s{i}"), names[s], el("b", "", data_count=s))
        for i, s in enumerate(STATES)
    ]
    items.append(el("li", el("i", class_="sw sw-case"), "open case", el("b", "", data_count="case")))
    return el("ul", items, class_="legend")
