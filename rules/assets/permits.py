"""A breakfast cart's trading permit: where (circles or polygons) and when it may trade.

Registry cell formats, so a permit fits one CSV row:

- ``permit_places``: places separated by ``|``; a circle is ``lat lon r<metres>``
  (``39.9381 116.3890 r30``), a polygon is ``lat lon;lat lon;lat lon[;…]``. Coordinates are in
  the registry file's declared system and converted to WGS-84 at load.
- ``permit_hours``: local (Asia/Shanghai) windows separated by ``,``: ``06:00-10:00,16:30-19:00``;
  a window may run past midnight (``22:00-02:00``).
- ``permit_until``: last valid day, ``YYYY-MM-DD`` (local); empty = open-ended.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from gridsense.model.geo import EARTH_RADIUS_M, distance_m, point_in_polygon

SHANGHAI = ZoneInfo("Asia/Shanghai")
Convert = Callable[[float, float], tuple[float, float]]


@dataclass(frozen=True, slots=True)
class Circle:
    lat: float
    lon: float
    radius_m: float

    def distance_outside(self, lat: float, lon: float) -> float:
        return max(0.0, distance_m(self.lat, self.lon, lat, lon) - self.radius_m)


@dataclass(frozen=True, slots=True)
class Polygon:
    ring: tuple[tuple[float, float], ...]

    def distance_outside(self, lat: float, lon: float) -> float:
        if point_in_polygon(lat, lon, list(self.ring)):
            return 0.0
        # Local equirectangular metres: places are a few hundred metres across at most.
        kx = math.radians(1) * EARTH_RADIUS_M * math.cos(math.radians(lat))
        ky = math.radians(1) * EARTH_RADIUS_M
        pts = [((lo - lon) * kx, (la - lat) * ky) for la, lo in self.ring]
        best = math.inf
        for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1], strict=True):
            dx, dy = x2 - x1, y2 - y1
            seg = dx * dx + dy * dy
            t = 0.0 if seg == 0 else max(0.0, min(1.0, -(x1 * dx + y1 * dy) / seg))
            best = min(best, math.hypot(x1 + t * dx, y1 + t * dy))
        return best


Place = Circle | Polygon


@dataclass(frozen=True, slots=True)
class Window:
    """Minutes after local midnight; ``end < start`` runs past midnight."""

    start: int
    end: int

    def contains(self, minute: int) -> bool:
        if self.start <= self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end


@dataclass(frozen=True, slots=True)
class CartPermit:
    """Where and when one cart may trade."""

    permit_id: str
    places: tuple[Place, ...]
    hours: tuple[Window, ...]
    until: date | None = None

    def check(self, lat: float, lon: float, accuracy_m: float, ts: datetime) -> tuple[list[str], float]:
        """Flags for a cart seen at (lat, lon) WGS-84 at ``ts``, and metres outside its places."""
        flags: list[str] = []
        local = ts.astimezone(SHANGHAI)
        if self.until is not None and local.date() > self.until:
            flags.append("permit_expired")
        if self.hours and not any(w.contains(local.hour * 60 + local.minute) for w in self.hours):
            flags.append("outside_permit_hours")
        outside = min((p.distance_outside(lat, lon) for p in self.places), default=math.inf)
        if outside > accuracy_m:  # the benefit of the doubt goes to the vendor
            flags.append("outside_permit_zone")
        return flags, outside


def _number(text: str, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{what} must be finite")
    return v


def _point(text: str, convert: Convert) -> tuple[float, float]:
    fields = text.split()
    if len(fields) != 2:
        raise ValueError(f"expected 'lat lon', got {text!r}")
    lat, lon = _number(fields[0], "latitude"), _number(fields[1], "longitude")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"point {text!r} is out of range")
    return convert(lat, lon)


def parse_places(cell: object, convert: Convert) -> tuple[Place, ...]:
    """Places from a registry cell (string) or a YAML list of ``{lat, lon, radius_m}`` / ``{polygon}``."""
    if isinstance(cell, list):
        return tuple(_place_from_mapping(item, convert) for item in cell)
    places: list[Place] = []
    for chunk in str(cell).split("|"):
        chunk = chunk.strip()
        if not chunk:
            raise ValueError("empty place in permit_places")
        if ";" in chunk:
            ring = tuple(_point(p, convert) for p in chunk.split(";"))
            if len(ring) < 3:
                raise ValueError("a polygon place needs at least 3 points")
            places.append(Polygon(ring))
            continue
        fields = chunk.split()
        if len(fields) != 3 or not fields[2].startswith("r"):
            raise ValueError(f"place {chunk!r}: expected 'lat lon r<metres>' or 'lat lon;lat lon;…'")
        radius = _number(fields[2][1:], "radius")
        if not 1 <= radius <= 2000:
            raise ValueError("a permit circle's radius must be 1-2000 m")
        lat, lon = _point(" ".join(fields[:2]), convert)
        places.append(Circle(lat, lon, radius))
    return tuple(places)


def _place_from_mapping(item: object, convert: Convert) -> Place:
    if not isinstance(item, dict):
        raise ValueError("each permit place must be a mapping")
    if "polygon" in item:
        ring = tuple(convert(float(a), float(b)) for a, b in item["polygon"])
        if len(ring) < 3:
            raise ValueError("a polygon place needs at least 3 points")
        return Polygon(ring)
    lat, lon = convert(float(item["lat"]), float(item["lon"]))
    radius = float(item["radius_m"])
    if not 1 <= radius <= 2000:
        raise ValueError("a permit circle's radius must be 1-2000 m")
    return Circle(lat, lon, radius)


def _minute(text: str) -> int:
    hh, _, mm = text.strip().partition(":")
    if not (hh.isdigit() and mm.isdigit() and len(mm) == 2):
        raise ValueError(f"time {text!r} must be HH:MM")
    h, m = int(hh), int(mm)
    if h == 24 and m == 0:
        return 24 * 60
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(f"time {text!r} is not a time of day")
    return h * 60 + m


def parse_hours(cell: object) -> tuple[Window, ...]:
    """Trading windows from ``06:00-10:00,16:30-19:00`` (or a YAML list of such strings)."""
    items = cell if isinstance(cell, list) else str(cell).split(",")
    windows = []
    for item in items:
        start, sep, end = str(item).partition("-")
        if not sep:
            raise ValueError(f"trading window {item!r} must be HH:MM-HH:MM")
        w = Window(_minute(start), _minute(end))
        if w.start == w.end:
            raise ValueError(f"trading window {item!r} is empty")
        windows.append(w)
    return tuple(windows)
