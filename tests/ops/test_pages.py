"""The ops app over a real socket, against a store with known content (``tests/ops/seeded.py``)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridsense.ops.app import create_ops_app
from gridsense.ops.config import OpsConfig
from gridsense.ops.server import OpsServer
from gridsense.ops.source import StoreSource
from tests.ops.seeded import (
    CAMERA,
    CAMERA_GRID,
    GAUGE,
    GRID,
    JPEG,
    SILENT,
    Seeded,
    add_asset_rows,
    add_camera_track,
    seed,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def seeded(tmp_path: Path) -> Seeded:
    return seed(tmp_path)


@pytest.fixture
def served(seeded: Seeded) -> Iterator[tuple[httpx.Client, Seeded]]:
    cfg = OpsConfig(poll_s=0.2, evidence_dir=seeded.evidence)
    source = StoreSource(seeded.grids, seeded.devices, seeded.store, cfg)
    with (
        OpsServer(create_ops_app(source, cfg)) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        yield http, seeded


def test_the_wall_shows_cases_health_and_rain_with_names_escaped(served: tuple[httpx.Client, Seeded]) -> None:
    http, s = served
    resp = http.get("/")
    assert resp.status_code == 200
    page = resp.text
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    assert page.count('<path id="g') == len(s.grids)
    assert s.grid_case in page and s.camera_case in page
    assert "派遣" in page  # the platform status of the grid case
    assert SILENT in page  # silent devices
    assert CAMERA in page  # cameras in fault
    assert "malformed" in page and "unknown_device" in page  # dead letters by device
    assert "none overdue" in page  # the asset tables are there, and empty
    assert "<script>window.__pwned" not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;雨量计" in page  # the device name, as text
    assert "<script" not in page.replace('<script src="/static/ops.js" defer></script>', "")


def test_case_page_shows_description_escaped_and_the_snapshot(served: tuple[httpx.Client, Seeded]) -> None:
    http, s = served
    page = http.get(f"/case/{s.grid_case}").text
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;近1小时降雨" in page
    assert "<script>window" not in page
    cam = http.get(f"/frag/case/{s.camera_case}").text
    href = f"/evidence/{s.snapshot_rel}"
    assert f'src="{href}"' in cam
    img = http.get(href)
    assert img.status_code == 200 and img.content == JPEG and img.headers["content-type"] == "image/jpeg"
    assert 'class="thumb"' in http.get("/frag/cases").text  # the list shows the thumbnail too


def test_unknown_grid_and_case_ids_give_a_404_page(served: tuple[httpx.Client, Seeded]) -> None:
    http, _ = served
    for url in ("/grid/110102999999999", "/grid/<script>alert(1)</script>", "/case/gs-nope", "/case/BJ-404"):
        resp = http.get(url, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
        assert resp.status_code == 404, url
        assert resp.headers["content-type"].startswith("text/html")
        assert "404" in resp.text and "Traceback" not in resp.text
        assert "<script>alert" not in resp.text
    lost = http.get("/no/such/page", headers={"Accept": "text/html,*/*"})
    assert lost.status_code == 404 and lost.headers["content-type"].startswith("text/html")
    assert http.get("/no/such/api").json() == {"error": "Not Found"}
    assert http.get("/frag/grid/110102999999999").status_code == 404
    assert http.get("/api/cases/gs-nope").json() == {"error": "no case gs-nope"}


def test_case_found_by_platform_id(served: tuple[httpx.Client, Seeded]) -> None:
    http, s = served
    doc = http.get("/api/cases/BJ-000001").json()
    assert doc["case_key"] == s.grid_case and doc["status"] == "派遣" and doc["level"] == "orange"


@pytest.mark.parametrize(
    "path",
    [
        "/evidence/../state.db",
        "/evidence/%2e%2e/state.db",
        "/evidence/..%2fstate.db",
        "/evidence/%2e%2e%2fstate.db",
        "/evidence/cam-012001002-1/..%2f..%2fstate.db",
        "/evidence//etc/passwd",
        "/evidence/%2fetc%2fpasswd",
        "/evidence/cam-012001002-1/20260721/..\\..\\..\\state.db",
        "/evidence/escape.jpg",  # a symlink pointing out of the folder
        "/evidence/notes.txt",  # inside, but not an image
        "/evidence/cam-012001002-1/20260721/missing.jpg",
        "/evidence/cam-012001002-1%00.jpg",
    ],
)
def test_evidence_cannot_leave_its_folder(served: tuple[httpx.Client, Seeded], path: str) -> None:
    http, s = served
    secret = s.evidence.parent / "secret.jpg"
    secret.write_bytes(JPEG)
    link = s.evidence / "escape.jpg"
    if not link.exists():
        os.symlink(secret, link)
    (s.evidence / "notes.txt").write_text("not an image")
    # httpx would normalise "../" away before sending: send the raw path.
    resp = http.request("GET", httpx.URL(http.base_url.join("/"), raw_path=path.encode()))
    assert resp.status_code == 404, (path, resp.status_code)
    assert resp.content != JPEG


def test_rain_totals_from_readings_leave_suspect_ones_out(served: tuple[httpx.Client, Seeded]) -> None:
    http, _ = served
    doc = http.get(f"/api/gauges/{GAUGE}/rain").json()
    assert doc["totals_mm"] == {"1h": 8.0, "3h": 10.0, "24h": 17.0}
    assert sum(v for _, v in doc["bars"]) == pytest.approx(10.0)  # the hyetograph spans 3 h
    frag = http.get(f"/frag/rain?device={GAUGE}").text
    assert "<svg" in frag and 'class="bar"' in frag and "8.0" in frag
    assert http.get("/api/gauges/rg-nope/rain").status_code == 404


def test_grid_detail_lists_devices_and_cases(served: tuple[httpx.Client, Seeded]) -> None:
    http, s = served
    frag = http.get(f"/frag/grid/{GRID}").text
    for dev in ("rg-012001001-1", "rg-012001001-2", "wl-012001001-1", "sd-012001001-1"):
        assert dev in frag
    assert f'data-case="{s.grid_case}"' in frag
    assert "2 dead letters" in frag
    cam = http.get(f"/frag/grid/{CAMERA_GRID}").text
    assert f'data-case="{s.camera_case}"' in cam and "camera_covered" in cam


def test_assets_panel_not_configured_without_the_tables_or_the_stage(tmp_path: Path) -> None:
    from bridge.outbox import SCHEMA as OUTBOX
    from gridsense.ops.assets import assets_panel

    conn = sqlite3.connect(tmp_path / "old.db")
    conn.executescript(OUTBOX)  # a store from before the asset stage
    assert "not configured" in assets_panel(conn)
    assert "not configured" in assets_panel(sqlite3.connect(":memory:"), enabled=False)


def test_assets_panel_shows_overdue_inspections_and_scans(served: tuple[httpx.Client, Seeded]) -> None:
    http, s = served
    add_asset_rows(s.store)
    frag = http.get("/frag/assets").text
    assert "1101020121000001" in frag and "超过 30 天未巡查" in frag
    assert "1101020121000002" in frag and "damaged" in frag


def test_camera_and_asset_incidents_are_read_from_their_own_stages(
    served: tuple[httpx.Client, Seeded],
) -> None:
    http, s = served
    add_camera_track(s.store, "cam-003001002-1", "110102003001002")
    add_asset_rows(s.store)
    health = http.get("/frag/health").text
    assert "cam-003001002-1" in health and "摄像机画面过暗" in health
    detail = http.get("/frag/grid/110102003001002").text
    assert "camera.too_dark" in detail
    assert "asset_overdue" in http.get(f"/frag/grid/{GRID}").text
    codes = [g.grid_code for g in s.grids]
    for _ in range(50):  # the feed picks the commit up within a poll or two
        state = http.get("/api/state").json()
        if state["map"][codes.index("110102003001002")] == "2":
            break
        time.sleep(0.1)
    assert state["map"][codes.index("110102003001002")] == "2"  # a device fault in that grid
    assert state["kpi"]["open_incidents"] == 5  # rain, silent gauge, camera (rules), camera (track), asset
    metrics = http.get("/metrics").text
    assert (
        'gridsense_incidents_open{category="component:0704",rule="camera.too_dark",source="camera"} 1.0'
        in metrics
    )
    assert (
        'gridsense_incidents_open{category="component:0121",rule="asset_overdue",source="qr"} 1.0' in metrics
    )


def test_map_state_and_live_events(served: tuple[httpx.Client, Seeded]) -> None:
    http, s = served
    state = http.get("/api/state").json()
    chars = state["map"]
    codes = [g.grid_code for g in s.grids]
    assert len(chars) == len(codes)
    # Orange incident and an open case; camera fault with a case; a silent gauge's grid: fault.
    assert chars[codes.index(GRID)] == "F"
    assert chars[codes.index(CAMERA_GRID)] == "C"
    assert chars[codes.index("110102012002001")] == "2"
    assert state["kpi"]["open_cases"] == 2 and state["kpi"]["silent_devices"] == 1
    with closing(sqlite3.connect(s.store)) as db:
        (newest,) = db.execute("SELECT MAX(ts_ms) FROM readings").fetchone()
    assert newest is not None and state["kpi"]["newest_reading_ms"] == newest

    with http.stream("GET", "/api/events", timeout=15) as stream:
        events = _events(stream.iter_lines())
        first = next(events)
        conn = sqlite3.connect(s.store, isolation_level=None)
        conn.execute(
            "UPDATE cases SET status = '结案', status_at_ms = status_at_ms + 1 WHERE case_key = ?",
            (s.grid_case,),
        )
        conn.close()
        for doc in events:
            if doc["versions"]["cases"] > first["versions"]["cases"]:
                break
        assert doc["kpi"]["open_cases"] == 1
        if "map" in doc:
            assert doc["map"][codes.index(GRID)] == "5"  # still orange, no open case any more


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.startswith("data: "):
            yield json.loads(line[6:])


def test_probes(served: tuple[httpx.Client, Seeded]) -> None:
    http, _ = served
    assert http.get("/healthz").json() == {"ok": True}
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["store_readable"]["ok"] is True


def test_routers_mount_beside_the_page(seeded: Seeded) -> None:
    from fastapi import APIRouter

    router = APIRouter()

    @router.post("/bridge/status")
    def status() -> dict[str, str]:
        return {"outcome": "changed"}

    source = StoreSource(seeded.grids, seeded.devices, seeded.store)
    with OpsServer(create_ops_app(source, routers=[router])) as server:
        assert httpx.post(server.url + "/bridge/status").json() == {"outcome": "changed"}
        assert httpx.get(server.url + "/bridge/status").status_code == 405


def test_the_store_is_never_written(seeded: Seeded) -> None:
    source = StoreSource(seeded.grids, seeded.devices, seeded.store)
    with source.read() as conn, pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only"):
        conn.execute("DELETE FROM cases")
