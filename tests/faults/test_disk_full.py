"""Disk full on the state store (spool and outbox live in it): the pipeline stops
acknowledging, keeps nothing half-done, says so in the log and a counter, and recovers by
itself when space returns; nothing is lost or doubled.

The disk is made "full" with SQLite's own size limit (``PRAGMA max_page_count``), which fails
writes with the same SQLITE_FULL error a full disk gives: filling the real disk of a shared
machine is not an option.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridsense import db
from gridsense.app import App
from gridsense.config import BridgeConfig, GridsenseConfig, MqttConfig, RulesConfig, StoreConfig
from gridsense.embedded_broker import MosquittoBroker
from ingest.topics import TopicScheme
from simulators.platform import PlatformServer
from simulators.publisher import MqttPublisher
from simulators.storm import StormScenario, to_messages
from tests.e2e.oracle import RULES_1H, expected_grid_levels

pytestmark = pytest.mark.integration


def wait_for(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_full_store_holds_acks_and_recovers_when_space_returns(
    mosquitto: MosquittoBroker,
    platform: PlatformServer,
    topic_root: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = GridsenseConfig(
        mqtt=MqttConfig(
            port=mosquitto.port, topic_root=topic_root, client_id=f"gs-{topic_root}", batch_max=50
        ),
        store=StoreConfig(path=tmp_path / "state.db"),
        rules=RulesConfig(file=RULES_1H, tick_s=3600),
        bridge=BridgeConfig(url=platform.url, poll_interval_s=0.05),
    )
    app = App(cfg)
    app.start()
    devices = list(app.registries.devices)
    start = (datetime.now(UTC) - timedelta(minutes=90)).replace(second=0, microsecond=0)
    storm = StormScenario(
        start=start, minutes=90, hit_grids=frozenset({"110102012001001", "110102003001002"})
    )
    expected = expected_grid_levels(storm, devices, storm.counter_gauges(devices))
    messages = list(
        to_messages(storm.samples(devices), {d.device_id: d for d in devices}, TopicScheme(topic_root))
    )
    first, second = messages[:600], messages[600:]
    reader = db.connect(cfg.store.path, create=False)
    stored = lambda: int(reader.execute("SELECT COUNT(*) FROM readings").fetchone()[0])  # noqa: E731
    try:
        assert app.gateway.wait_connected(10)
        with MqttPublisher(mosquitto.host, mosquitto.port, f"pub-{topic_root}") as pub:
            pub.publish(first)
            wait_for(lambda: stored() == len(first) and app.gateway.backlog == 0, 30, "the first part")
            time.sleep(0.3)  # the worker is idle: the writer connection is free
            pages = app.conn.execute("PRAGMA page_count").fetchone()[0]
            app.conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is now "full"
            acked_before = app.gateway.counters["acked"]
            with caplog.at_level(logging.ERROR, logger="gridsense.pipeline"):
                pub.publish(second)
                wait_for(lambda: app.pipeline.store_full_events >= 2, 30, "writes failing on the full store")
            # The store had room left inside its pages: some batches fit before it was full.
            held_stored, held_acked = stored(), app.gateway.counters["acked"]
            time.sleep(1.0)
            # Backpressure: nothing more stored, nothing more acknowledged, and it says why.
            assert stored() == held_stored < len(messages)
            assert app.gateway.counters["acked"] == held_acked < acked_before + len(second)
            assert any("state store is full" in r.message for r in caplog.records)
            app.conn.execute("PRAGMA max_page_count = 1073741823")  # space returns
        wait_for(lambda: stored() == len(messages) and app.delivery.depth() == 0, 60, "recovery")
    finally:
        app.stop()
        reader.close()
    grids = sorted(
        pc.case.place.grid_code for pc in platform.store.cases() if pc.case.routing_level == "community"
    )
    assert grids == sorted(expected), "every expected case once, none doubled by the retries"
