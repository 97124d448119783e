"""The asset stage's own tables: accepted pings, last valid scan, suspect scans, incidents.

All writes happen in the caller's transaction (the batch's, or the scheduled job's), so a
ping, the incident it changes and the case the pipeline queues for it commit together.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import datetime
from typing import Any

from gridsense.model.incident import Incident
from gridsense.model.timekeys import epoch_ms
from rules.assets.schema import SCHEMA
from rules.assets.verify import VerifiedPing

__all__ = ["SCHEMA", "AssetIncidents", "PingLog"]


class PingLog:
    """Accepted pings (each once, by dedupe key) and the last valid scan per asset."""

    @staticmethod
    def add(conn: sqlite3.Connection, vp: VerifiedPing, received: datetime) -> bool:
        """Store an accepted ping; False when the same scan was stored before (a replay)."""
        p = vp.ping
        cur = conn.execute(
            "INSERT OR IGNORE INTO asset_pings (dedupe_key, asset_id, maintainer_id, role, ts_ms,"
            " received_ms, condition, flags, key_id, lat, lon, accuracy_m, distance_m, notes, photo_sha256)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                vp.dedupe_key,
                int(vp.asset.asset_id),
                vp.maintainer.maintainer_id,
                vp.maintainer.role,
                epoch_ms(p.ts),
                epoch_ms(received),
                p.condition,
                " ".join(vp.flags),
                vp.key_id,
                vp.lat,
                vp.lon,
                vp.accuracy_m,
                vp.distance_m,
                p.notes,
                vp.photo_sha256,
            ),
        )
        if cur.rowcount == 0:
            return False
        conn.execute(
            "INSERT INTO asset_last_scan (asset_id, last_valid_ms, seq) VALUES (?,?,?)"
            " ON CONFLICT (asset_id) DO UPDATE SET"
            " last_valid_ms = max(last_valid_ms, excluded.last_valid_ms), seq = excluded.seq",
            (int(vp.asset.asset_id), epoch_ms(p.ts), cur.lastrowid),
        )
        return True


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, tuple):
        return list(value)
    return value


def _decode(name: str, value: Any) -> Any:
    if isinstance(value, dict) and "$dt" in value:
        return datetime.fromisoformat(value["$dt"])
    if name == "location" and value is not None:
        return tuple(value)
    return value


class AssetIncidents:
    """The asset rules' incidents: at most one open per (rule, subject), kept whole as JSON."""

    @staticmethod
    def open_for(conn: sqlite3.Connection, rule_id: str, subject: str) -> Incident | None:
        row = conn.execute(
            "SELECT body FROM asset_incidents WHERE rule_id = ? AND subject = ? AND closed_at IS NULL",
            (rule_id, subject),
        ).fetchone()
        if row is None:
            return None
        known = {f.name for f in dataclasses.fields(Incident)}
        doc = json.loads(row[0])
        return Incident(**{k: _decode(k, v) for k, v in doc.items() if k in known})

    @staticmethod
    def save(conn: sqlite3.Connection, inc: Incident) -> None:
        body = json.dumps(
            {f.name: _encode(getattr(inc, f.name)) for f in dataclasses.fields(inc)}, ensure_ascii=False
        )
        conn.execute(
            "INSERT INTO asset_incidents (incident_id, rule_id, subject, updated_at, closed_at, body)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT (incident_id) DO UPDATE SET"
            " updated_at = excluded.updated_at, closed_at = excluded.closed_at, body = excluded.body",
            (
                inc.incident_id,
                inc.rule_id,
                inc.subject,
                inc.updated_at.isoformat(),
                inc.closed_at.isoformat() if inc.closed_at else None,
                body,
            ),
        )

    @staticmethod
    def open_subjects(conn: sqlite3.Connection, rule_id: str) -> list[str]:
        rows = conn.execute(
            "SELECT subject FROM asset_incidents WHERE rule_id = ? AND closed_at IS NULL", (rule_id,)
        )
        return [s for (s,) in rows]
