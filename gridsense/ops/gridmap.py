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
from gridsense.ops.incidents import open_incidents
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

    def ring(self, ring: tuple[tuple[float, float], ...]) -> list[tuple[int, int]]:
        """``xy`` over a ring, with the constants hoisted (35,000 rings are projected at start-up)."""
        min_lon, max_lat, fx, fy = self.min_lon, self.max_lat, self.kx * self.scale, self.scale
        return [(round((lo - min_lon) * fx), round((max_lat - la) * fy)) for la, lo in ring]


def _ring(grid: Grid) -> tuple[tuple[float, float], ...]:
    if len(grid.polygon) >= 3:
        return grid.polygon
    h = _POINT_HALF_DEG
    la, lo = grid.lat, grid.lon
    return ((la + h, lo - h), (la + h, lo + h), (la - h, lo + h), (la - h, lo - h))


def path_d(pts: list[tuple[int, int]]) -> str:
    """``M x y l dx dy …z`` in integer units: relative steps keep the numbers short."""
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
    projected = [proj.ring(r) for r in rings]
    # Grid codes are validated as 15 digits on load, so they need no escaping here.
    paths = "".join(
        f'<path id="g{g.grid_code}" d="{path_d(r)}"/>' for g, r in zip(all_grids, projected, strict=True)
    )
    streets: dict[str, list[int]] = {}
    for i, g in enumerate(all_grids):
        streets.setdefault(g.street_code, []).append(i)
    svg = Safe(
        f'<svg id="map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {proj.width} {proj.height}"'
        f' data-w="{proj.width}" data-h="{proj.height}" preserveAspectRatio="xMidYMid meet"'
        ' role="img" aria-label="grid map">'
        f"{_street_areas(streets, projected, proj)}"
        f'<g id="grids">{paths}</g>{_street_labels(streets, all_grids, projected, proj)}</svg>'
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


def _extremes(points: list[tuple[int, int]], bins: int = 48) -> list[tuple[int, int]]:
    """The points lowest and highest in each of ``bins`` columns and rows: the hull's candidates."""
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    x0, y0 = min(xs), min(ys)
    wx = max((max(xs) - x0) / bins, 1e-9)
    wy = max((max(ys) - y0) / bins, 1e-9)
    cols: dict[int, list[tuple[int, int]]] = {}
    rows: dict[int, list[tuple[int, int]]] = {}
    for p in points:
        c = cols.setdefault(int((p[0] - x0) / wx), [p, p])
        if p[1] < c[0][1]:
            c[0] = p
        elif p[1] > c[1][1]:
            c[1] = p
        r = rows.setdefault(int((p[1] - y0) / wy), [p, p])
        if p[0] < r[0][0]:
            r[0] = p
        elif p[0] > r[1][0]:
            r[1] = p
    return [p for pair in (*cols.values(), *rows.values()) for p in pair]


def _street_areas(
    streets: dict[str, list[int]], projected: list[list[tuple[int, int]]], proj: Projection
) -> Safe:
    """Each street's territory as a faint hull behind its grids (few streets only).

    The hull is taken over each grid's bounding box corners: exact for the usual
    rectangular grids, a little generous for others, and a quarter of the work.
    """
    if len(streets) > MAX_LABELS:
        return Safe("")
    pad = max(proj.width, proj.height) / 250
    out = []
    for members in streets.values():
        corners = []
        for i in members:
            xs = [x for x, _ in projected[i]]
            ys = [y for _, y in projected[i]]
            x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
            corners += [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        hull = convex_hull(_extremes(corners))
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


def _street_labels(
    streets: dict[str, list[int]],
    all_grids: list[Grid],
    projected: list[list[tuple[int, int]]],
    proj: Projection,
) -> Safe:
    """Street names at their grids' centre, sized to fit the street's width."""
    if len(streets) > MAX_LABELS:
        return Safe("")
    biggest = max(proj.width, proj.height) / 45
    labels = []
    for idx in streets.values():
        xs = [x for i in idx for x, _ in projected[i]]
        name = all_grids[idx[0]].street_name
        font = min(biggest, (max(xs) - min(xs)) * 0.8 / max(len(name), 3))
        lat = sum(all_grids[i].lat for i in idx) / len(idx)
        lon = sum(all_grids[i].lon for i in idx) / len(idx)
        x, y = proj.xy(lat, lon)
        labels.append(el("text", name, x=x, y=y, font_size=f"{max(font, 1):.0f}"))
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
    for inc in open_incidents(conn, "coalesce(routing, '') NOT IN ('street', 'district')"):
        i = index.get(inc.grid_code)
        if i is not None:
            state[i] = max(state[i], _LEVEL_STATE.get(inc.level or "", 2))
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
