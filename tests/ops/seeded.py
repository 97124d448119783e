"""A state store with known content, written through the stages' own stores and case builder.

Readings for one gauge at known minutes (one suspect), a grid incident with a case, a
silent gauge, a camera fault whose case carries a snapshot, and dead letters. Names and
a rule label carry ``<script>``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.case_builder import CaseBuilder
from bridge.outbox import CaseOutbox
from gridsense import db
from gridsense.config import BridgeConfig, packaged
from gridsense.model.case import Evidence
from gridsense.model.catalog import Catalog
from gridsense.model.envelopes import Kind
from gridsense.model.incident import Incident, IncidentChange, incident_id
from gridsense.model.reading import Reading
from gridsense.model.registry import Device, DeviceRegistry, GridRegistry
from gridsense.model.worktime import WorkCalendar
from gridsense.txn import transaction
from ingest.deadletter import DeadLetter, DeadLetterStore
from ingest.reading_store import ReadingStore
from rules.incidents import IncidentBook

GRID = "110102012001001"
GAUGE = "rg-012001001-1"
SILENT = "rg-012002001-2"
CAMERA = "cam-012001002-1"
CAMERA_GRID = "110102012001002"
SCRIPT = "<script>window.__pwned=1</script>"


def _snapshot_jpeg() -> bytes:
    """A small real JPEG (a grey street with a dark blot where the lens is covered)."""
    import cv2
    import numpy as np

    img = np.full((90, 160, 3), (70, 80, 90), np.uint8)
    cv2.rectangle(img, (0, 55), (160, 90), (50, 50, 55), -1)
    cv2.circle(img, (95, 40), 30, (15, 15, 15), -1)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return bytes(buf.tobytes())


JPEG = _snapshot_jpeg()
#: (minutes before now, mm, suspect) for GAUGE: 1 h = 5+3 = 8 (the suspect 40 left out);
#: 3 h adds 2 (at 100 min) = 10; 24 h adds 7 (at 10 h) = 17; 30 h ago is outside every window.
RAIN = (
    (1, 5.0, False),
    (20, 3.0, False),
    (30, 40.0, True),
    (100, 2.0, False),
    (600, 7.0, False),
    (1800, 9.0, False),
)


@dataclass
class Seeded:
    store: Path
    evidence: Path
    grids: GridRegistry
    devices: DeviceRegistry
    grid_case: str
    camera_case: str
    snapshot_rel: str


def registries() -> tuple[GridRegistry, DeviceRegistry]:
    grids = GridRegistry.load(packaged("demo", "grids.csv"))
    devices = DeviceRegistry.load(packaged("demo", "devices.csv"), grids)
    renamed = {
        d.device_id: d.model_copy(update={"name": f"{SCRIPT}雨量计"}) if d.device_id == GAUGE else d
        for d in devices
    }
    return grids, DeviceRegistry(renamed)


def seed(folder: Path, now: datetime | None = None) -> Seeded:
    now = now or datetime.now(UTC)
    grids, devices = registries()
    evidence = folder / "evidence"
    rel = f"{CAMERA}/20260721/snap.jpg"
    (evidence / CAMERA / "20260721").mkdir(parents=True)
    (evidence / rel).write_bytes(JPEG)
    store = folder / "state.db"
    conn = db.connect(store)
    builder = CaseBuilder(BridgeConfig(), Catalog.default(), grids, WorkCalendar.default())
    outbox = CaseOutbox(conn)
    book = IncidentBook()
    with transaction(conn):
        rs = ReadingStore(conn)
        for minutes, mm, suspect in RAIN:
            rs.insert(_reading(devices.get(GAUGE), now - timedelta(minutes=minutes), mm, suspect))
        for d in devices:  # every other gauge reported once, ten minutes ago
            if d.kind is Kind.RAIN and d.device_id not in (GAUGE, SILENT):
                rs.insert(_reading(d, now - timedelta(minutes=10), 0.1, False))
        rain = _incident("event:0111", GRID, GRID, now - timedelta(minutes=20), "orange", 88.0, "mm")
        rain.summary_zh = f"{GAUGE} {SCRIPT}近1小时降雨 88 mm，达到橙色等级"
        silent = _incident(
            "rain_gauge_silent", SILENT, "110102012002001", now - timedelta(minutes=5), None, 12.0, "min"
        )
        silent.category_ref = "component:0701"
        cam = _incident("camera_covered", CAMERA, CAMERA_GRID, now - timedelta(minutes=3), None, 1.0, "")
        cam.category_ref = "component:0704"
        cam.summary_zh = "摄像机被遮挡"
        cam.source = "camera"
        for inc in (rain, silent, cam):
            book.add(inc)
        book.flush(conn)
        grid_case = builder.case(IncidentChange("opened", rain, rain.opened_at))
        snap = Evidence.of_file(
            "snapshot", f"camera {CAMERA}: covered", JPEG, (evidence / rel).resolve().as_uri()
        )
        cam_case = builder.case(IncidentChange("opened", cam, cam.opened_at, (snap,)))
        outbox.enqueue_case(grid_case)
        outbox.enqueue_case(cam_case)
        DeadLetterStore(conn).add(
            [
                DeadLetter("city/110102/x/rain/rg-012001001-1", b"{", "malformed", "not JSON", now, GAUGE),
                DeadLetter("city/110102/x/rain/rg-012001001-1", b"{}", "schema", "no ts", now, GAUGE),
                DeadLetter("city/110102/x/rain/rg-zz", b"[]", "unknown_device", "?", now, "rg-zz"),
            ]
        )
    outbox.delivered(outbox.due()[0], "BJ-000001")
    outbox.set_status(grid_case.case_key, "派遣", 3)
    conn.close()
    return Seeded(store, evidence, grids, devices, grid_case.case_key, cam_case.case_key, rel)


def _reading(d: Device | None, ts: datetime, mm: float, suspect: bool) -> Reading:
    assert d is not None
    return Reading(
        device_id=d.device_id, kind=d.kind, grid_code=d.grid_code, ts=ts, value=mm, unit="mm", suspect=suspect
    )


def _incident(
    rule: str, subject: str, grid: str, at: datetime, level: str | None, peak: float, unit: str
) -> Incident:
    return Incident(
        incident_id=incident_id(rule, subject, at),
        rule_id=rule,
        category_ref=rule if ":" in rule else "event:0111",
        grid_code=grid,
        opened_at=at,
        updated_at=at,
        level=level,
        peak_value=peak,
        unit=unit,
        window_s=3600,
        subject=subject,
        summary_zh=f"{rule} {subject}",
    )


def add_asset_rows(store: Path) -> None:
    """One overdue inspection (saved as the asset stage saves it) and one scan."""
    from rules.assets.store import AssetIncidents

    at = datetime(2026, 7, 21, 8, 0, tzinfo=UTC)
    inc = _incident("asset_overdue", "1101020121000001", GRID, at, None, 31.0, "d")
    inc.category_ref, inc.source = "component:0121", "qr"
    inc.summary_zh = "西海北沿报刊亭 超过 30 天未巡查"
    conn = sqlite3.connect(store, isolation_level=None)
    AssetIncidents.save(conn, inc)
    conn.execute(
        "INSERT INTO asset_pings (dedupe_key, asset_id, maintainer_id, role, ts_ms, received_ms, condition,"
        " flags, key_id, notes) VALUES ('k1', 1101020121000002, 'm-xjk-01', 'maintainer', 1784600000000,"
        " 1784600000000, 'damaged', 'photo', 'key-1', '')"
    )
    conn.close()


def add_camera_track(store: Path, camera: str = CAMERA, grid: str = CAMERA_GRID) -> str:
    """An open camera-health track, its incident JSON as ``detectors.lifecycle`` writes it."""
    from detectors.lifecycle import SCHEMA

    at = datetime.now(UTC) - timedelta(minutes=7)
    inc = _incident("camera.too_dark", camera, grid, at, None, 0.05, "ratio")
    inc.category_ref, inc.source, inc.summary_zh = "component:0704", "camera", "摄像机画面过暗"
    doc = dict(vars(inc))
    for k in ("opened_at", "updated_at", "closed_at"):
        doc[k] = doc[k].isoformat() if doc[k] is not None else None
    conn = sqlite3.connect(store, isolation_level=None)
    conn.executescript(SCHEMA)
    conn.execute(
        "INSERT INTO camera_tracks (track_key, camera_id, detector, roi, state, hits, misses, first_seen,"
        " cooldown_until, reported, incident) VALUES (?, ?, 'too_dark', '', 'open', 5, 0, ?, NULL, 0.05, ?)",
        (f"{camera}|too_dark|", camera, at.isoformat(), json.dumps(doc, ensure_ascii=False)),
    )
    conn.close()
    return inc.incident_id
