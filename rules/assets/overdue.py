"""Overdue inspections: no valid scan of an asset within its interval files a component case.

The sweep is one pass of numpy over the registry's columns. It keeps the last valid scan of
every asset in an array and brings it up to date from ``asset_last_scan`` rows whose ``seq``
(the id of the ping that set them) is past the last one it read, so a sweep after the first
reads only what changed. An asset is due one interval after its last valid scan or its
``installed`` day, whichever is later; one with neither is due one interval after the first
sweep this store ever ran (kept in ``asset_sweep_state``), so switching the sweep on does not
file a case for every asset at once.

A valid scan of the asset clears its case (``clear_on_scan``, called by the handler).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from gridsense.model.incident import IncidentChange
from gridsense.model.timekeys import epoch_ms
from rules.assets.casefile import asset_label_zh, new_incident, scan_evidence
from rules.assets.config import AssetConfig
from rules.assets.permits import SHANGHAI
from rules.assets.registry import AssetRegistry
from rules.assets.store import AssetIncidents
from rules.assets.verify import VerifiedPing

RULE_ID = "asset_overdue"
DAY_MS = 86_400_000


def _fmt(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(SHANGHAI).strftime("%Y-%m-%d")


class OverdueInspections:
    """``ingest.contract.ScheduledJob``: opens one case per asset whose inspection is overdue."""

    name = "asset_overdue"

    def __init__(self, cfg: AssetConfig, registry: AssetRegistry) -> None:
        self.cfg = cfg
        self.registry = registry
        self.interval_s = cfg.overdue_every_s
        self._last_ms: NDArray[np.int64] = np.zeros(len(registry), dtype=np.int64)
        self._seq = 0

    def _sync(self, conn: sqlite3.Connection) -> None:
        rows = conn.execute(
            "SELECT asset_id, last_valid_ms, seq FROM asset_last_scan WHERE seq > ?", (self._seq,)
        ).fetchall()
        if not rows:
            return
        data = np.array(rows, dtype=np.int64)
        idx = self.registry.indices_of(data[:, 0])
        known = idx >= 0
        np.maximum.at(self._last_ms, idx[known], data[known, 1])
        self._seq = int(data[:, 2].max())

    def _first_sweep_ms(self, conn: sqlite3.Connection, now_ms: int) -> int:
        conn.execute(
            "INSERT OR IGNORE INTO asset_sweep_state (key, value) VALUES ('first_sweep_ms', ?)", (now_ms,)
        )
        (value,) = conn.execute("SELECT value FROM asset_sweep_state WHERE key = 'first_sweep_ms'").fetchone()
        return int(value)

    def overdue(self, conn: sqlite3.Connection, now: datetime) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Rows of active assets past due with no open overdue case, most overdue first; their due ms."""
        now_ms = epoch_ms(now)
        self._sync(conn)
        reg = self.registry
        first = self._first_sweep_ms(conn, now_ms)
        known = np.maximum(self._last_ms, reg.installed_ms)  # 0 where neither is known
        since = np.where(known > 0, known, first)
        due = since + reg.interval_s * 1000
        late = np.flatnonzero(reg.active & (due < now_ms))
        open_ids = AssetIncidents.open_subjects(conn, RULE_ID)
        if open_ids and len(late):
            open_rows = reg.indices_of(np.array([int(s) for s in open_ids], dtype=np.int64))
            late = late[~np.isin(late, open_rows)]
        late = late[np.argsort(due[late], kind="stable")]
        return late, due[late]

    def run(self, conn: sqlite3.Connection, now: datetime) -> list[IncidentChange]:
        rows, due = self.overdue(conn, now)
        changes = []
        now_ms = epoch_ms(now)
        for i, due_ms in zip(rows[: self.cfg.overdue_max_new].tolist(), due.tolist(), strict=False):
            changes.append(self._open(conn, i, int(due_ms), now, now_ms))
        return changes

    def _open(
        self, conn: sqlite3.Connection, i: int, due_ms: int, now: datetime, now_ms: int
    ) -> IncidentChange:
        asset = self.registry.asset(i)
        atype = self.cfg.types[asset.type]
        last = int(self._last_ms[i])
        days = (now_ms - due_ms) / DAY_MS
        interval_d = asset.interval_s / 86400
        installed = int(self.registry.installed_ms[i])
        last_zh = _fmt(last) if last else (f"无，标签安装于 {_fmt(installed)}" if installed else "无")
        zh = (
            f"{asset_label_zh(asset, atype.name_zh)}超过巡检周期 {interval_d:g} 天未扫码巡检"
            f"（上次有效扫码：{last_zh}），已逾期 {days:.1f} 天；责任单位：{asset.owner}"
        )
        en = (
            f"{atype.name_en} {asset.asset_id} not inspected within its {interval_d:g}-day interval; "
            f"{days:.1f} days overdue"
        )
        inc = new_incident(
            rule_id=RULE_ID,
            category_ref=asset.category_ref,
            subject=asset.asset_id,
            grid_code=asset.grid_code,
            opened_at=now,
            summary_zh=zh,
            summary_en=en,
            peak_value=round(days, 2),
            unit="d",
            window_s=asset.interval_s,
            location=(asset.lat, asset.lon),
            routing_level=atype.grade_routing.get(asset.grade or ""),
        )
        AssetIncidents.save(conn, inc)
        return IncidentChange("opened", inc, now)


def clear_on_scan(conn: sqlite3.Connection, vp: VerifiedPing) -> list[IncidentChange]:
    """A valid scan is the inspection: it clears the asset's overdue case."""
    inc = AssetIncidents.open_for(conn, RULE_ID, vp.asset.asset_id)
    if inc is None:
        return []
    p = vp.ping
    inc.updated_at = max(inc.updated_at, p.ts)
    inc.closed_at = max(p.ts, inc.opened_at)
    inc.summary_zh = f"{vp.maintainer.name}（{vp.maintainer.unit}）已扫码巡检，逾期巡检解除"
    inc.summary_en = f"{vp.maintainer.maintainer_id} scanned the asset: inspection done"
    AssetIncidents.save(conn, inc)
    return [IncidentChange("cleared", inc, p.ts, (scan_evidence(vp, inc.summary_zh, "scan"),))]
