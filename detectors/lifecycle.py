"""Detector verdicts → incidents: persistence, one incident per condition, cooldown.

One *track* per (camera, detector, ROI). A condition must be seen in
``persistence_frames`` consecutive evaluated frames before an incident opens; its id is
``incident_id(rule_id, camera_id, first_seen)`` with the first frame's data time, so a
replay of the same frames gives the same id and the outbox files it once. While open,
the track reports ``updated`` only when its measure grows by ``update_growth`` ×; it
clears after ``clear_frames`` consecutive negative frames, then stays quiet for
``cooldown_s``. A frame in which the detector was not evaluated (night, an unusable
frame) changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from detectors.config import CameraConfig
from detectors.contract import Verdict
from detectors.registry import Camera
from gridsense.model.incident import ChangeKind, Incident, incident_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS camera_tracks (
    track_key      TEXT PRIMARY KEY,
    camera_id      TEXT NOT NULL,
    detector       TEXT NOT NULL,
    roi            TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('idle', 'pending', 'open', 'cooldown')),
    hits           INTEGER NOT NULL,
    misses         INTEGER NOT NULL,
    first_seen     TEXT,
    cooldown_until TEXT,
    reported       REAL NOT NULL,
    incident       TEXT
);
CREATE TABLE IF NOT EXISTS camera_events (
    incident_id  TEXT NOT NULL,
    kind         TEXT NOT NULL,
    at           TEXT NOT NULL,
    camera_id    TEXT NOT NULL,
    detector     TEXT NOT NULL,
    roi          TEXT NOT NULL,
    category_ref TEXT NOT NULL,
    measure      REAL NOT NULL,
    evidence     TEXT NOT NULL,
    PRIMARY KEY (incident_id, kind, at)
);
CREATE TABLE IF NOT EXISTS camera_cursor (
    camera_id TEXT PRIMARY KEY,
    last_ts   TEXT NOT NULL
);
"""

State = Literal["idle", "pending", "open", "cooldown"]

SUMMARY: dict[str, tuple[str, str]] = {
    "covered": ("摄像机镜头被遮挡", "the camera lens is covered or occluded"),
    "too_dark": ("摄像机画面过暗", "the camera image is too dark"),
    "overexposed": ("摄像机画面过曝", "the camera image is overexposed"),
    "blurred": ("摄像机画面失焦模糊", "the camera image is out of focus"),
    "moved": ("摄像机视角偏移", "the camera has moved off its view"),
    "frozen": ("摄像机画面冻结", "the camera image is frozen"),
    "stationary_object": ("监控区域出现滞留物体", "an object has been left standing in the watched area"),
    "snow_cover": ("路面积雪", "snow covers the road"),
    "ponding": ("路面积水（实验性检测）", "water is standing on the road (experimental detector)"),
}
UNIT = {
    "covered": "share",
    "too_dark": "ratio",
    "overexposed": "share",
    "blurred": "ratio",
    "moved": "× threshold",
    "frozen": "s",
    "stationary_object": "share",
    "snow_cover": "share",
    "ponding": "share",
}
#: Faults whose measure falls as they worsen (a ratio to the baseline).
FALLING = frozenset({"too_dark", "blurred"})


@dataclass
class Track:
    """Where one (camera, detector, ROI) stands."""

    camera_id: str
    detector: str
    roi: str
    state: State = "idle"
    hits: int = 0
    misses: int = 0
    first_seen: datetime | None = None
    cooldown_until: datetime | None = None
    reported: float = 0.0
    incident: Incident | None = None

    @property
    def key(self) -> str:
        return f"{self.camera_id}|{self.detector}|{self.roi}"

    @property
    def rule_id(self) -> str:
        return f"camera.{self.detector}" + (f".{self.roi}" if self.roi else "")


def _worse(detector: str, measure: float, reported: float, growth: float) -> bool:
    if detector in FALLING:
        return measure * growth <= reported
    return measure >= reported * growth


class Lifecycle:
    """All tracks in memory; every changed track is written in the caller's transaction."""

    def __init__(self, cfg: CameraConfig) -> None:
        self._cfg = cfg
        self._tracks: dict[str, Track] = {}
        self._dirty: dict[str, Track] = {}

    def track(self, camera_id: str, detector: str, roi: str) -> Track:
        key = f"{camera_id}|{detector}|{roi}"
        if key not in self._tracks:
            self._tracks[key] = Track(camera_id, detector, roi)
        return self._tracks[key]

    def open_incidents(self) -> list[Incident]:
        return [t.incident for t in self._tracks.values() if t.state == "open" and t.incident is not None]

    def observe(
        self, camera: Camera, detector: str, roi: str, verdict: Verdict | None, ts: datetime
    ) -> tuple[ChangeKind, Incident] | None:
        """Feed one evaluated frame's verdict (None = absent); return the change it causes."""
        t = self.track(camera.camera_id, detector, roi)
        cfg = self._cfg
        if t.state == "cooldown" and t.cooldown_until is not None and ts >= t.cooldown_until:
            t.state, t.cooldown_until = "idle", None
            self._dirty[t.key] = t
        if t.state == "open":
            assert t.incident is not None
            inc = t.incident
            if verdict is None:
                t.misses += 1
                self._dirty[t.key] = t
                if t.misses < cfg.clear_frames:
                    return None
                inc.closed_at = inc.updated_at = ts
                t.state, t.hits, t.misses, t.incident = "cooldown", 0, 0, None
                t.cooldown_until = ts + timedelta(seconds=cfg.cooldown_s)
                return "cleared", inc
            t.misses = 0
            inc.updated_at = ts
            better = (
                verdict.measure < inc.peak_value if detector in FALLING else verdict.measure > inc.peak_value
            )
            if better:
                inc.peak_value = verdict.measure
            self._dirty[t.key] = t
            if _worse(detector, verdict.measure, t.reported, cfg.update_growth):
                t.reported = verdict.measure
                return "updated", inc
            return None
        if t.state == "cooldown":
            return None
        if verdict is None:
            if t.hits:
                t.state, t.hits, t.first_seen = "idle", 0, None
                self._dirty[t.key] = t
            return None
        t.hits += 1
        if t.hits == 1:
            t.first_seen = ts
        t.state = "pending"
        self._dirty[t.key] = t
        if t.hits < cfg.persistence_frames:
            return None
        assert t.first_seen is not None
        zh, en = SUMMARY[detector]
        where_zh = f"（{roi}）" if roi else ""
        where_en = f" ({roi})" if roi else ""
        t.incident = Incident(
            incident_id=incident_id(t.rule_id, camera.camera_id, t.first_seen),
            rule_id=t.rule_id,
            category_ref=verdict.category,
            grid_code=camera.grid_code,
            opened_at=t.first_seen,
            updated_at=ts,
            level=None,
            peak_value=verdict.measure,
            unit=UNIT[detector],
            window_s=int((ts - t.first_seen).total_seconds()),
            subject=camera.camera_id,
            source="camera",
            summary_zh=f"摄像机 {camera.camera_id} 发现{zh}{where_zh}",
            summary_en=f"camera {camera.camera_id}: {en}{where_en}",
            location=camera.position,
        )
        t.state, t.misses, t.reported = "open", 0, verdict.measure
        return "opened", t.incident

    # --- persistence -------------------------------------------------------------------

    def flush(self, conn: sqlite3.Connection) -> None:
        """Write changed tracks (inside the batch transaction)."""
        for t in self._dirty.values():
            conn.execute(
                "INSERT INTO camera_tracks (track_key, camera_id, detector, roi, state, hits, misses,"
                " first_seen, cooldown_until, reported, incident) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (track_key) DO UPDATE SET state=excluded.state, hits=excluded.hits,"
                " misses=excluded.misses, first_seen=excluded.first_seen,"
                " cooldown_until=excluded.cooldown_until, reported=excluded.reported,"
                " incident=excluded.incident",
                (
                    t.key,
                    t.camera_id,
                    t.detector,
                    t.roi,
                    t.state,
                    t.hits,
                    t.misses,
                    t.first_seen.isoformat() if t.first_seen else None,
                    t.cooldown_until.isoformat() if t.cooldown_until else None,
                    t.reported,
                    _dump_incident(t.incident) if t.incident else None,
                ),
            )
        self._dirty.clear()

    def discard_changes(self) -> None:
        self._dirty.clear()

    def load(self, conn: sqlite3.Connection) -> None:
        """Rebuild the tracks from the store (after a restart or a rolled-back batch)."""
        self._tracks.clear()
        self._dirty.clear()
        rows = conn.execute(
            "SELECT camera_id, detector, roi, state, hits, misses, first_seen, cooldown_until, reported,"
            " incident FROM camera_tracks"
        )
        for cam, det, roi, state, hits, misses, first, cool, reported, inc in rows:
            t = Track(
                cam,
                det,
                roi,
                state,
                hits,
                misses,
                datetime.fromisoformat(first) if first else None,
                datetime.fromisoformat(cool) if cool else None,
                reported,
                _load_incident(inc) if inc else None,
            )
            self._tracks[t.key] = t


_DATES = ("opened_at", "updated_at", "closed_at")


def _dump_incident(inc: Incident) -> str:
    d = dict(vars(inc))
    for k in _DATES:
        d[k] = d[k].isoformat() if d[k] is not None else None
    return json.dumps(d, ensure_ascii=False)


def _load_incident(raw: str) -> Incident:
    d = json.loads(raw)
    for k in _DATES:
        d[k] = datetime.fromisoformat(d[k]) if d[k] is not None else None
    if d.get("location") is not None:
        d["location"] = tuple(d["location"])
    return Incident(**d)
