"""Corroboration from the gauges: rain or water-level readings in the same grid."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gridsense.model.timekeys import epoch_ms


@dataclass(frozen=True)
class GaugeCorroboration:
    """Agrees when the grid had ``rain_mm`` within ``window_s`` or a water level ≥ ``water_cm``.

    Reads the ingest stage's ``readings`` table (rain in mm, water level in cm).
    """

    rain_mm: float = 5.0
    water_cm: float = 5.0
    window_s: float = 3600.0

    def __call__(self, conn: sqlite3.Connection, grid_code: str, at: datetime) -> dict[str, Any] | None:
        lo = epoch_ms(at - timedelta(seconds=self.window_s))
        hi = epoch_ms(at)
        rain, water = conn.execute(
            "SELECT COALESCE(SUM(CASE WHEN kind='rain' THEN value END), 0),"
            " MAX(CASE WHEN kind='water' THEN value END)"
            " FROM readings WHERE grid_code=? AND ts_ms BETWEEN ? AND ? AND suspect=0",
            (grid_code, lo, hi),
        ).fetchone()
        if rain >= self.rain_mm or (water is not None and water >= self.water_cm):
            return {"grid_code": grid_code, "rain_mm": rain, "max_water_cm": water, "window_s": self.window_s}
        return None
