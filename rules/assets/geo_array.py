"""``gridsense.model.geo`` conversions over numpy arrays, for registries of a million points.

The formulas are those of ``gridsense.model.geo`` term for term; a test holds the two to
agreement far below a millimetre.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gridsense.model.geo import _A, _EE, _X_PI, CRS

F64 = NDArray[np.float64]


def _outside_china(lat: F64, lon: F64) -> NDArray[np.bool_]:
    return ~((lon > 73.66) & (lon < 135.05) & (lat > 3.86) & (lat < 53.55))


def _d_lat(x: F64, y: F64) -> F64:
    pi = np.pi
    r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    r += (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    r += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    r += (160.0 * np.sin(y / 12.0 * pi) + 320 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    return r


def _d_lon(x: F64, y: F64) -> F64:
    pi = np.pi
    r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    r += (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    r += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    r += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    return r


def wgs84_to_gcj02(lat: F64, lon: F64) -> tuple[F64, F64]:
    dlat = _d_lat(lon - 105.0, lat - 35.0)
    dlon = _d_lon(lon - 105.0, lat - 35.0)
    rad = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad) * np.pi)
    out = _outside_china(lat, lon)
    return np.where(out, lat, lat + dlat), np.where(out, lon, lon + dlon)


def gcj02_to_wgs84(lat: F64, lon: F64, tol_deg: float = 1e-10) -> tuple[F64, F64]:
    """Fixed-point inversion, every point iterated until all have converged (≤ 30 steps)."""
    out = _outside_china(lat, lon)
    wlat, wlon = lat.copy(), lon.copy()
    for _ in range(30):
        glat, glon = wgs84_to_gcj02(wlat, wlon)
        dlat, dlon = glat - lat, glon - lon
        wlat -= dlat
        wlon -= dlon
        if (
            float(np.max(np.abs(dlat), initial=0.0)) < tol_deg
            and float(np.max(np.abs(dlon), initial=0.0)) < tol_deg
        ):
            break
    return np.where(out, lat, wlat), np.where(out, lon, wlon)


def bd09_to_gcj02(lat: F64, lon: F64) -> tuple[F64, F64]:
    x, y = lon - 0.0065, lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.sin(theta), z * np.cos(theta)


def to_wgs84(lat: F64, lon: F64, crs: CRS) -> tuple[F64, F64]:
    """Arrays of points in ``crs`` converted to the internal system."""
    if crs is CRS.WGS84:
        return lat, lon
    if crs is CRS.GCJ02:
        return gcj02_to_wgs84(lat, lon)
    return gcj02_to_wgs84(*bd09_to_gcj02(lat, lon))
