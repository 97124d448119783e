"""A real pipeline for the ops tests: App + Mosquitto + the reference platform + a storm.

The registry and the rule file carry ``<script>`` in a device name and in a rule label,
so the case description does too: the page must show both as text.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gridsense.app import App
from gridsense.config import (
    BridgeConfig,
    GridsenseConfig,
    MqttConfig,
    RegistryConfig,
    RulesConfig,
    StoreConfig,
    packaged,
)
from gridsense.demo import STORM_GRIDS, bad_messages
from gridsense.embedded_broker import MosquittoBroker
from simulators.platform import PlatformServer
from simulators.publisher import MqttPublisher
from simulators.storm import StormScenario, to_messages

HOSTILE_DEVICE = "rg-012001001-1"
DEVICE_SCRIPT = "<script>window.__pwned='device'</script>"
RULE_SCRIPT = "<script>window.__pwned='rule'</script>"
E2E_RULES = Path(__file__).resolve().parents[1] / "e2e" / "rules_1h.yaml"


def wait_for(cond: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def hostile_registry(folder: Path) -> tuple[Path, Path, Path]:
    """Demo grids; demo devices with a script in one name; 1 h rules with a script in a label."""
    grids = folder / "grids.csv"
    grids.write_text(packaged("demo", "grids.csv").read_text(encoding="utf-8"), encoding="utf-8")
    devices = folder / "devices.csv"
    lines = []
    for line in packaged("demo", "devices.csv").read_text(encoding="utf-8").splitlines():
        if line.startswith(HOSTILE_DEVICE + ","):
            line = line.rsplit(",", 1)[0] + f",{DEVICE_SCRIPT}雨量计"
        lines.append(line)
    devices.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rules = folder / "rules.yaml"
    rules.write_text(
        E2E_RULES.read_text(encoding="utf-8").replace(
            'unit: mm,\n     category: "event:0111"',
            f'unit: mm, label_zh: "{RULE_SCRIPT}近1小时降雨",\n     category: "event:0111"',
        ),
        encoding="utf-8",
    )
    assert RULE_SCRIPT in rules.read_text(encoding="utf-8"), "the rule file template changed"
    return grids, devices, rules


def make_config(
    broker: MosquittoBroker, platform: PlatformServer, root: str, folder: Path
) -> GridsenseConfig:
    grids, devices, rules = hostile_registry(folder)
    return GridsenseConfig(
        mqtt=MqttConfig(port=broker.port, topic_root=root, client_id=f"gs-{root}", batch_max=200),
        registry=RegistryConfig(grids=grids, devices=devices),
        store=StoreConfig(path=folder / "state.db"),
        rules=RulesConfig(file=rules),
        bridge=BridgeConfig(url=platform.url, poll_interval_s=0.05, status_poll_s=0.5),
    )


def filed_cases(store: Path) -> list[tuple[str, str]]:
    """(case key, grid) of cases the platform has accepted."""
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT case_key, grid_code FROM cases WHERE platform_case_id IS NOT NULL ORDER BY filed_at"
        ).fetchall()
    finally:
        conn.close()
    return [(k, g) for k, g in rows]


@contextmanager
def running_pipeline(
    broker: MosquittoBroker, platform: PlatformServer, root: str, folder: Path
) -> Iterator[App]:
    app = App(make_config(broker, platform, root, folder))
    app.start()
    try:
        assert app.gateway.wait_connected(10), "the pipeline did not connect to Mosquitto"
        yield app
    finally:
        app.stop()


def queue_camera_case(app: App, evidence_dir: Path) -> str:
    """Queue a camera-fault case with a snapshot, the way the camera stage does (through the outbox)."""
    from bridge.case_builder import CaseBuilder
    from bridge.outbox import CaseOutbox
    from gridsense import db
    from gridsense.model.case import Evidence
    from gridsense.model.incident import Incident, IncidentChange, incident_id
    from gridsense.txn import transaction
    from tests.ops.seeded import JPEG

    camera = app.registries.devices.get("cam-012001002-1")
    assert camera is not None
    rel = Path(camera.device_id) / "snap_covered.jpg"
    (evidence_dir / rel).parent.mkdir(parents=True, exist_ok=True)
    (evidence_dir / rel).write_bytes(JPEG)
    at = datetime.now(UTC) - timedelta(minutes=2)
    inc = Incident(
        incident_id=incident_id("camera.covered", camera.device_id, at),
        rule_id="camera.covered",
        category_ref="component:0704",
        grid_code=camera.grid_code,
        opened_at=at,
        updated_at=at,
        level=None,
        peak_value=0.93,
        unit="",
        window_s=60,
        subject=camera.device_id,
        source="camera",
        summary_zh=f"摄像机 {camera.device_id} 镜头被遮挡",
        summary_en=f"camera {camera.device_id} covered",
        location=(camera.lat, camera.lon),
    )
    snap = Evidence.of_file(
        "snapshot", f"camera {camera.device_id}: covered", JPEG, (evidence_dir / rel).resolve().as_uri()
    )
    reg = app.registries
    case = CaseBuilder(app.cfg.bridge, reg.catalog, reg.grids, reg.calendar).case(
        IncidentChange("opened", inc, at, (snap,))
    )
    conn = db.connect(app.cfg.store.path, create=False)
    try:
        with transaction(conn):
            CaseOutbox(conn).enqueue_case(case)
    finally:
        conn.close()
    return case.case_key


def publish_storm(app: App, broker: MosquittoBroker, minutes: int = 90) -> int:
    """A storm over the demo's storm grids ending now, plus the usual bad messages; returns how many."""
    devices = list(app.registries.devices)
    start = (datetime.now(UTC) - timedelta(minutes=minutes)).replace(second=0, microsecond=0)
    storm = StormScenario(start=start, minutes=minutes, hit_grids=STORM_GRIDS)
    good = list(to_messages(storm.samples(devices), {d.device_id: d for d in devices}, app.scheme))
    bad = bad_messages(app.scheme)
    with MqttPublisher(broker.host, broker.port, f"pub-{app.cfg.mqtt.client_id}") as pub:
        pub.publish(good + bad)
    return len(good) + len(bad)
