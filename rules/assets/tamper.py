"""Suspected tampering: repeated forged or invalid scans of one asset, or at one place.

A forged, copied, swapped or pasted-over tag shows up as rejections of a few kinds
(``tamper_reasons``: bad signature, unknown or retired key, a QR of another system, a tag of
another asset, a genuine tag scanned far from its asset). Each such rejection is still
dead-lettered; it is also kept here as a *suspect scan*, keyed by the asset the ping names
(when it is registered) or else by the square cell of ``tamper_cell_m`` it was made in.
``tamper_threshold`` suspect scans of one key within ``tamper_window_s`` open a security
case in ``tamper_category``; ``TamperQuiet`` clears it after ``tamper_quiet_s`` without one.

Suspect scans are recorded idempotently (by a digest of topic and payload), so a broker
redelivering the batch counts nothing twice.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from gridsense.model.case import Evidence
from gridsense.model.geo import EARTH_RADIUS_M
from gridsense.model.incident import IncidentChange
from gridsense.model.registry import GridRegistry
from gridsense.model.timekeys import epoch_ms
from rules.assets.casefile import asset_label_zh, new_incident
from rules.assets.config import AssetConfig
from rules.assets.registry import Asset
from rules.assets.store import AssetIncidents

RULE_ID = "asset_tamper"
_M_PER_DEG = math.radians(1) * EARTH_RADIUS_M


@dataclass(frozen=True, slots=True)
class SuspectScan:
    """A rejected scan that looks like a forged or moved tag."""

    digest: str
    reason: str
    detail: str
    asset: Asset | None  # the registered asset the ping names, if any
    grid_code: str  # from the topic
    lat: float | None  # WGS-84
    lon: float | None
    at: datetime  # when the server saw it (a forger controls the ping's own ts)

    @staticmethod
    def digest_of(topic: str, payload: bytes) -> str:
        h = hashlib.sha256(topic.encode())
        h.update(b"\0")
        h.update(payload)
        return h.hexdigest()


def cell_of(lat: float, lon: float, cell_m: float) -> tuple[str, tuple[float, float]]:
    """The cell key of a point and the cell's centre (WGS-84)."""
    dlat = cell_m / _M_PER_DEG
    row = math.floor(lat / dlat)
    centre_lat = (row + 0.5) * dlat
    dlon = cell_m / (_M_PER_DEG * math.cos(math.radians(centre_lat)))
    col = math.floor(lon / dlon)
    return f"cell-{row}-{col}", (centre_lat, (col + 0.5) * dlon)


class TamperWatch:
    """Records suspect scans (in the batch transaction) and opens or updates security cases."""

    rule_id = RULE_ID

    def __init__(self, cfg: AssetConfig, grids: GridRegistry) -> None:
        self.cfg = cfg
        self.grids = grids
        self._window_ms = int(cfg.tamper_window_s * 1000)
        self._update_gap = timedelta(seconds=cfg.tamper_update_min_s)

    def record(self, conn: sqlite3.Connection, scans: list[SuspectScan]) -> list[IncidentChange]:
        changes: list[IncidentChange] = []
        for s in scans:
            subject, location, grid = self._subject(s)
            if subject is None or location is None:
                continue  # no registered asset and no position: counted, not attributable
            cur = conn.execute(
                "INSERT OR IGNORE INTO asset_suspect_scans"
                " (digest, subject, grid_code, reason, at_ms, lat, lon) VALUES (?,?,?,?,?,?,?)",
                (s.digest, subject, grid, s.reason, epoch_ms(s.at), s.lat, s.lon),
            )
            if cur.rowcount == 0:
                continue
            changes.extend(self._evaluate(conn, s, subject, location, grid))
        return changes

    def _subject(self, s: SuspectScan) -> tuple[str | None, tuple[float, float] | None, str]:
        if s.asset is not None:
            return s.asset.asset_id, (s.asset.lat, s.asset.lon), s.asset.grid_code
        if s.lat is None or s.lon is None or s.grid_code not in self.grids:
            return None, None, s.grid_code  # a case needs a known grid to be filed in
        key, centre = cell_of(s.lat, s.lon, self.cfg.tamper_cell_m)
        return key, centre, s.grid_code

    def _evaluate(
        self, conn: sqlite3.Connection, s: SuspectScan, subject: str, location: tuple[float, float], grid: str
    ) -> list[IncidentChange]:
        since = epoch_ms(s.at) - self._window_ms
        rows = conn.execute(
            "SELECT reason, COUNT(*) FROM asset_suspect_scans"
            " WHERE subject = ? AND at_ms > ? GROUP BY reason",
            (subject, since),
        ).fetchall()
        count = sum(n for _, n in rows)
        reasons = ", ".join(f"{r}×{n}" for r, n in sorted(rows))
        hours = self.cfg.tamper_window_s / 3600
        if s.asset is not None:
            what = asset_label_zh(s.asset, self.cfg.types[s.asset.type].name_zh)
        else:
            what = f"网格 {grid} 内同一地点（约 {self.cfg.tamper_cell_m:g} 米范围）"
        zh = f"{what}{hours:g} 小时内 {count} 次无效或伪造二维码扫描（{reasons}），疑似标识被伪造、调换或覆盖"
        en = f"tag tampering suspected: {count} bad scans of {subject} in {hours:g} h ({reasons})"
        evidence = Evidence.of_data(
            "ping",
            f"可疑扫码：{s.reason}",
            {
                "reason": s.reason,
                "detail": s.detail,
                "subject": subject,
                "grid_code": s.grid_code,
                "lat": s.lat,
                "lon": s.lon,
                "crs": "wgs84",
                "at": s.at.isoformat(),
                "message_digest": s.digest,
                "count_in_window": count,
            },
        )
        inc = AssetIncidents.open_for(conn, RULE_ID, subject)
        if inc is None:
            if count < self.cfg.tamper_threshold:
                return []
            inc = new_incident(
                rule_id=RULE_ID,
                category_ref=self.cfg.tamper_category,
                subject=subject,
                grid_code=grid,
                opened_at=s.at,
                summary_zh=zh,
                summary_en=en,
                peak_value=count,
                unit="scans",
                window_s=int(self.cfg.tamper_window_s),
                location=location,
            )
            AssetIncidents.save(conn, inc)
            return [IncidentChange("opened", inc, s.at, (evidence,))]
        inc.peak_value = max(inc.peak_value, count)
        inc.summary_zh, inc.summary_en = zh, en
        due_update = s.at - inc.updated_at >= self._update_gap
        if due_update:
            inc.updated_at = s.at
        AssetIncidents.save(conn, inc)
        return [IncidentChange("updated", inc, s.at, (evidence,))] if due_update else []


class TamperQuiet:
    """``ingest.contract.ScheduledJob``: clears tamper cases quiet for ``tamper_quiet_s``.

    It also forgets suspect scans too old to count for anything, so a flood of forgeries
    cannot grow the table without bound.
    """

    name = "asset_tamper_quiet"

    def __init__(self, cfg: AssetConfig, interval_s: float = 3600) -> None:
        self.cfg = cfg
        self.interval_s = interval_s

    def run(self, conn: sqlite3.Connection, now: datetime) -> list[IncidentChange]:
        quiet_since = epoch_ms(now) - int(self.cfg.tamper_quiet_s * 1000)
        keep_ms = int(max(self.cfg.tamper_window_s, self.cfg.tamper_quiet_s) * 1000)
        conn.execute("DELETE FROM asset_suspect_scans WHERE at_ms < ?", (epoch_ms(now) - keep_ms,))
        changes = []
        for subject in AssetIncidents.open_subjects(conn, RULE_ID):
            (last,) = conn.execute(
                "SELECT MAX(at_ms) FROM asset_suspect_scans WHERE subject = ?", (subject,)
            ).fetchone()
            if last is not None and last > quiet_since:
                continue
            inc = AssetIncidents.open_for(conn, RULE_ID, subject)
            assert inc is not None
            days = self.cfg.tamper_quiet_s / 86400
            inc.closed_at = inc.updated_at = now
            inc.summary_zh = f"{days:g} 天内未再出现无效或伪造二维码扫描，可疑情况解除"
            inc.summary_en = f"no forged or invalid scans for {days:g} days"
            AssetIncidents.save(conn, inc)
            changes.append(IncidentChange("cleared", inc, now))
        return changes
