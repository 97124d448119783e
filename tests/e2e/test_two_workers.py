"""Two pipeline workers, partitioned by district, file exactly the cases one worker files.

Mosquitto's shared subscriptions are round-robin, which would split a device's state, so the
workers partition by topic prefix (one district each), from config. Each worker keeps its
own SQLite store here; the platform sees the union.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from detectors.config import CameraConfig
from gridsense.app import App
from gridsense.config import (
    BridgeConfig,
    GridsenseConfig,
    MqttConfig,
    RegistryConfig,
    RulesConfig,
    StoreConfig,
)
from gridsense.embedded_broker import MosquittoBroker
from gridsense.model.registry import DeviceRegistry, GridRegistry
from ingest.topics import TopicScheme
from simulators.platform import PlatformConfig, PlatformServer, WorkflowConfig
from simulators.publisher import MqttPublisher
from simulators.storm import StormScenario, to_messages
from tests.e2e.oracle import RULES_1H

pytestmark = pytest.mark.integration

DISTRICTS = ("110101", "110102")


def registry(tmp: Path) -> tuple[Path, Path]:
    grids = ["# crs: wgs84", "grid_code,street_name,community_name,lat,lon"]
    devices = ["# crs: wgs84", "device_id,kind,grid_code,lat,lon,interval_s"]
    for d, district in enumerate(DISTRICTS):
        for street in (1, 2):
            for g in (1, 2, 3):
                code = f"{district}{street:03d}001{g:03d}"
                grids.append(f"{code},街道{street},社区1,{39.9 + d * 0.05:.4f},{116.4 + g * 0.001:.4f}")
                for k in (1, 2):
                    devices.append(f"rg-{code[-12:]}-{k},rain,{code},39.9,116.4,60")
    (tmp / "grids.csv").write_text("\n".join(grids) + "\n")
    (tmp / "devices.csv").write_text("\n".join(devices) + "\n")
    return tmp / "grids.csv", tmp / "devices.csv"


def run(broker: MosquittoBroker, tmp: Path, partitions: list[list[str] | None], root: str) -> list[tuple]:  # type: ignore[type-arg]
    grids_csv, devices_csv = registry(tmp)
    platform = PlatformServer(PlatformConfig(workflow=WorkflowConfig(step_delay_s=(60, 61))))
    platform.start()
    apps = []
    for i, part in enumerate(partitions):
        cfg = GridsenseConfig(
            mqtt=MqttConfig(port=broker.port, topic_root=root, client_id=f"{root}-w{i}", partition=part),
            registry=RegistryConfig(grids=grids_csv, devices=devices_csv),
            cameras=CameraConfig(enabled=False),  # this fleet has no cameras
            store=StoreConfig(path=tmp / f"w{i}.db"),
            rules=RulesConfig(file=RULES_1H),
            bridge=BridgeConfig(url=platform.url, poll_interval_s=0.05),
        )
        app = App(cfg)
        app.start()
        assert app.gateway.wait_connected(10)
        apps.append(app)
    devices = list(DeviceRegistry.load(devices_csv, GridRegistry.load(grids_csv)))
    start = (datetime.now(UTC) - timedelta(minutes=90)).replace(second=0, microsecond=0)
    hit = frozenset(d.grid_code for d in devices if d.grid_code.endswith(("001001", "001002", "001003")))
    storm = StormScenario(start=start, minutes=90, hit_grids=hit, seed=3)
    msgs = list(to_messages(storm.samples(devices), {d.device_id: d for d in devices}, TopicScheme(root)))
    with MqttPublisher(broker.host, broker.port, f"{root}-pub") as pub:
        pub.publish(msgs)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        handled = sum(a.gateway.counters["readings"] for a in apps)
        if handled >= len(msgs) and all(a.delivery.depth() == 0 for a in apps):
            break
        time.sleep(0.1)
    for a in apps:
        a.stop()
    assert sum(a.gateway.counters["readings"] for a in apps) == len(msgs), "every reading once, by one worker"
    cases = platform.store.cases()
    platform.stop()
    keys = [pc.external_id for pc in cases]
    assert len(keys) == len(set(keys))
    order = ["blue", "yellow", "orange", "red"]

    def peak(pc) -> str:  # type: ignore[no-untyped-def]
        levels = [pc.case.warning_level] + [u.warning_level for u in pc.updates.values() if u.warning_level]
        return max(levels, key=order.index)

    return sorted((pc.case.routing_level, pc.case.subject, pc.case.category.code, peak(pc)) for pc in cases)


def test_two_district_workers_file_the_same_cases_as_one(
    mosquitto: MosquittoBroker, tmp_path: Path, topic_root: str
) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = run(mosquitto, tmp_path / "one", [None], topic_root + "a")
    two = run(mosquitto, tmp_path / "two", [[f"{topic_root}b/{d}/#"] for d in DISTRICTS], topic_root + "b")
    assert one == two
    assert {c[0] for c in one} >= {"community", "street", "district"}
