"""Coordinate systems used in China, and the one internal system (WGS-84).

GCJ-02 is the obfuscated system that Chinese web maps must use; BD-09 is Baidu's
shift on top of it. Everything is converted to WGS-84 at load or ingest time,
before any distance, radius or point-in-polygon test.

The forward WGS-84 → GCJ-02 transform is the published one (Krasovsky ellipsoid
parameters). Its inverse has no closed form, so it is solved by fixed-point
iteration to well under a millimetre.
"""

from __future__ import annotations

import math
from enum import StrEnum


class CRS(StrEnum):
    """A coordinate reference system a registry file or a message may declare."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


_A = 6378245.0  # Krasovsky 1940 semi-major axis, as the transform uses it
_EE = 0.00669342162296594323  # its eccentricity squared
_X_PI = math.pi * 3000.0 / 180.0
EARTH_RADIUS_M = 6371008.8


def _outside_china(lat: float, lon: float) -> bool:
    return not (73.66 < lon < 135.05 and 3.86 < lat < 53.55)


def _d_lat(x: float, y: float) -> float:
    r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    r += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return r


def _d_lon(x: float, y: float) -> float:
    r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    r += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return r


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """The published forward transform; points outside China are returned unchanged."""
    if _outside_china(lat, lon):
        return lat, lon
    dlat = _d_lat(lon - 105.0, lat - 35.0)
    dlon = _d_lon(lon - 105.0, lat - 35.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * math.cos(rad) * math.pi)
    return lat + dlat, lon + dlon


def gcj02_to_wgs84(lat: float, lon: float, tol_deg: float = 1e-10) -> tuple[float, float]:
    """Invert the forward transform by fixed-point iteration (converges in a few steps)."""
    if _outside_china(lat, lon):
        return lat, lon
    wlat, wlon = lat, lon
    for _ in range(30):
        glat, glon = wgs84_to_gcj02(wlat, wlon)
        dlat, dlon = glat - lat, glon - lon
        wlat, wlon = wlat - dlat, wlon - dlon
        if abs(dlat) < tol_deg and abs(dlon) < tol_deg:
            break
    return wlat, wlon


def gcj02_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def bd09_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    x, y = lon - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.sin(theta), z * math.cos(theta)


def to_wgs84(lat: float, lon: float, crs: CRS) -> tuple[float, float]:
    """Convert a point in ``crs`` to the internal system."""
    if crs is CRS.WGS84:
        return lat, lon
    if crs is CRS.GCJ02:
        return gcj02_to_wgs84(lat, lon)
    return gcj02_to_wgs84(*bd09_to_gcj02(lat, lon))


def from_wgs84(lat: float, lon: float, crs: CRS) -> tuple[float, float]:
    """Convert an internal point to ``crs`` (for a platform that declares another system)."""
    if crs is CRS.WGS84:
        return lat, lon
    gcj = wgs84_to_gcj02(lat, lon)
    return gcj if crs is CRS.GCJ02 else gcj02_to_bd09(*gcj)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def point_in_polygon(lat: float, lon: float, ring: list[tuple[float, float]]) -> bool:
    """Even-odd ray casting over a ring of (lat, lon) vertices."""
    inside = False
    j = len(ring) - 1
    for i, (yi, xi) in enumerate(ring):
        yj, xj = ring[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside
