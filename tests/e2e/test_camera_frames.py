"""Camera frames end to end through the composition root: a simulated camera publishes JPEG
frames (MQTT 5 user properties) to real Mosquitto; the pipeline decodes and runs the
detectors; the covered lens becomes one component case (0704 视频监控设备) on the reference
platform with an annotated snapshot as evidence; bad frames are dead-lettered."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from detectors.config import CameraConfig
from gridsense.app import App
from gridsense.config import BridgeConfig, GridsenseConfig, MqttConfig, StoreConfig
from gridsense.embedded_broker import MosquittoBroker
from simulators.platform import PlatformServer
from simulators.street_scene import CameraPublisher, SceneEvent, SimFrame, StreetScene, frame_properties

pytestmark = pytest.mark.integration


def test_covered_lens_files_one_camera_fault_case_with_a_snapshot(
    mosquitto: MosquittoBroker, platform: PlatformServer, topic_root: str, tmp_path: Path
) -> None:
    cfg = GridsenseConfig(
        mqtt=MqttConfig(
            port=mosquitto.port, topic_root=topic_root, client_id=f"gs-{topic_root}", batch_max=20
        ),
        store=StoreConfig(path=tmp_path / "state.db"),
        bridge=BridgeConfig(url=platform.url, poll_interval_s=0.05),
        cameras=CameraConfig.model_validate({"evidence_dir": tmp_path / "evidence"}),
    )
    app = App(cfg)
    app.start()
    try:
        assert app.gateway.wait_connected(10)
        scene = StreetScene(frames=50, seed=21, events=[SceneEvent("lens_covered", 36, 50, strength=0.8)])
        scene.start = datetime.now(UTC).replace(microsecond=0) - (scene.ts(50) - scene.start)
        topic = app.scheme.topic(scene.grid_code, "camera", scene.camera_id)
        frames: list[SimFrame] = list(scene)
        good = frames[0]
        bad = [
            (good.jpeg[: len(good.jpeg) // 3], frame_properties(good)),  # truncated
            (b"not a jpeg", frame_properties(good)),
            (good.jpeg, None),  # no ts user property
        ]
        pub = CameraPublisher(mosquitto.host, mosquitto.port, f"cam-{topic_root}")
        try:
            pub.publish(topic, frames[:36], bad)
            pub.publish(topic, frames[36:])
        finally:
            pub.close()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if app.gateway.counters["acked"] >= 53 and app.delivery.depth() == 0 and platform.store.cases():
                break
            time.sleep(0.1)
    finally:
        app.stop()
    reasons = sorted(
        r for (r,) in sqlite3.connect(tmp_path / "state.db").execute("SELECT reason FROM dead_letters")
    )
    assert reasons == ["bad_timestamp", "not_jpeg", "truncated_jpeg"]
    [pc] = platform.store.cases()
    case = pc.case
    assert (case.source, case.category.kind, case.category.code) == ("camera", "component", "0704")
    assert case.subject == scene.camera_id and case.place.grid_code == scene.grid_code
    snapshots = [e for e in case.evidence if e.kind == "snapshot"]
    assert snapshots and all(len(e.sha256) == 64 and e.url for e in snapshots)
