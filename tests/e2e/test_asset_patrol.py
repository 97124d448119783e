"""Asset pings end to end through the composition root: a patrol over real Mosquitto (payloads
and photos of real rendered tags, damage reports, a forger, wandering carts) → the pipeline →
cases on the reference platform with the assets' own component codes."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridsense.app import App
from gridsense.config import BridgeConfig, GridsenseConfig, MqttConfig, StoreConfig
from gridsense.embedded_broker import MosquittoBroker
from ingest.topics import TopicScheme
from simulators.patrol import PatrolScenario
from simulators.platform import PlatformServer
from simulators.publisher import MqttPublisher
from tests.assets.harness import asset_config
from tests.assets.test_mqtt import _oracle

pytestmark = pytest.mark.integration


def test_patrol_files_component_cases_on_the_platform(
    mosquitto: MosquittoBroker, platform: PlatformServer, topic_root: str, tmp_path: Path
) -> None:
    cfg = GridsenseConfig(
        mqtt=MqttConfig(
            port=mosquitto.port, topic_root=topic_root, client_id=f"gs-{topic_root}", batch_max=20
        ),
        store=StoreConfig(path=tmp_path / "state.db"),
        bridge=BridgeConfig(url=platform.url, poll_interval_s=0.05),
        assets=asset_config(),
    )
    app = App(cfg)
    stage = app.registries.assets
    assert stage is not None
    app.start()
    try:
        assert app.gateway.wait_connected(10)
        scenario = PatrolScenario(
            stage.registry,
            stage.maintainers,
            stage.keyring,
            datetime.now(UTC) - timedelta(hours=6),
            TopicScheme(topic_root),
            seed=11,
            photo_share=0.3,
            damage_share=0.3,
            forger="m-sch-01",
        )
        plan = list(scenario.scans())
        with MqttPublisher("127.0.0.1", mosquitto.port, f"patrol-{topic_root}") as pub:
            pub.publish((s.topic, s.payload) for s in plan)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if app.gateway.counters["acked"] >= len(plan) and app.delivery.depth() == 0:
                break
            time.sleep(0.1)
    finally:
        app.stop()

    roles = {m.maintainer_id: m.role for m in stage.maintainers}
    mobile = {a.asset_id for a in stage.registry if cfg.assets.types[a.type].mobile}
    damage, carts = _oracle(plan, roles, mobile)
    filed = [pc.case for pc in platform.store.cases()]
    assert all(c.source == "qr" for c in filed)
    db = sqlite3.connect(tmp_path / "state.db")
    rule_of = dict(db.execute("SELECT incident_id, rule_id FROM asset_incidents").fetchall())
    assert {rule_of[c.incident_id] for c in filed} <= {
        "asset_condition",
        "asset_overdue",
        "cart_permit",
        "asset_tamper",
    }
    by_asset = Counter(c.subject for c in filed if rule_of[c.incident_id] == "asset_condition")
    assert by_asset == Counter(dict(damage)), "one component case per damaged asset, no duplicate"
    for c in filed:
        if rule_of[c.incident_id] in ("asset_condition", "asset_overdue"):
            asset = stage.registry.get(c.subject)
            assert asset is not None and asset.asset_id[6:10] == c.category.code  # its own class
    cart_cases = Counter(c.subject for c in filed if c.category.code in ("0504", "0501"))
    assert cart_cases == Counter(dict(carts))
    assert [c.category.code for c in filed if c.category.code == "0601"] == ["0601"], "one tamper case"
