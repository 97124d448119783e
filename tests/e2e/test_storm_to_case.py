"""The spine, end to end on real parts: Mosquitto → gateway → store → rule → outbox → platform.

Counts are checked against the simulator's own record of what it sent and against an
independent oracle of which grids must get a case.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridsense.app import App
from gridsense.config import BridgeConfig, GridsenseConfig, MqttConfig, RulesConfig, StoreConfig
from gridsense.demo import STORM_GRIDS, bad_messages
from gridsense.embedded_broker import MosquittoBroker
from simulators.platform import PlatformServer
from simulators.publisher import MqttPublisher
from simulators.storm import StormScenario, to_messages
from tests.e2e.oracle import RULES_1H, expected_grid_levels, margin

pytestmark = pytest.mark.integration

SHANGHAI_OFFSET = timedelta(hours=8)


def wait_for(cond, timeout: float = 60.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def make_config(broker: MosquittoBroker, platform: PlatformServer, root: str, store: Path) -> GridsenseConfig:
    return GridsenseConfig(
        mqtt=MqttConfig(port=broker.port, topic_root=root, client_id=f"gs-{root}", batch_max=200),
        store=StoreConfig(path=store),
        rules=RulesConfig(file=RULES_1H),
        bridge=BridgeConfig(url=platform.url, poll_interval_s=0.05, status_poll_s=0.5),
    )


def test_storm_files_one_case_per_grid_with_codes_and_deadline(
    mosquitto: MosquittoBroker, platform: PlatformServer, topic_root: str, tmp_path: Path
) -> None:
    cfg = make_config(mosquitto, platform, topic_root, tmp_path / "state.db")
    app = App(cfg)
    app.start()
    try:
        assert app.gateway.wait_connected(10)
        devices = list(app.registries.devices)
        start = (datetime.now(UTC) - timedelta(minutes=90)).replace(second=0, microsecond=0)
        storm = StormScenario(start=start, minutes=90, hit_grids=STORM_GRIDS)
        counters = storm.counter_gauges(devices)
        assert margin(storm, devices, counters) > 0.2, "scenario too close to a threshold for an exact oracle"
        expected = expected_grid_levels(storm, devices, counters)
        good = list(to_messages(storm.samples(devices), {d.device_id: d for d in devices}, app.scheme))
        bad = bad_messages(app.scheme)
        with MqttPublisher(mosquitto.host, mosquitto.port, f"pub-{topic_root}") as pub:
            pub.publish(good + bad)

        c = app.gateway.counters
        wait_for(
            lambda: c["readings"] + c["duplicates"] + c["dead_letters"] >= len(good) + len(bad),
            what="all messages handled",
        )
        wait_for(lambda: app.delivery.depth() == 0, what="outbox drained")
    finally:
        app.stop()

    db = sqlite3.connect(tmp_path / "state.db")
    assert db.execute("SELECT COUNT(*) FROM readings").fetchone()[0] == len(good)
    reasons = dict(db.execute("SELECT reason, COUNT(*) FROM dead_letters GROUP BY reason").fetchall())
    assert reasons == {
        "malformed": 1,
        "negative_rain": 1,
        "device_mismatch": 1,
        "unknown_device": 1,
        "schema": 1,
    }

    cases = [pc for pc in platform.store.cases() if pc.case.routing_level == "community"]
    summaries = [pc.case for pc in platform.store.cases() if pc.case.routing_level != "community"]
    assert [(s.routing_level, s.subject) for s in summaries] == [("district", "110102")]
    by_grid: dict[str, list] = {}  # type: ignore[type-arg]
    for pc in cases:
        by_grid.setdefault(pc.case.place.grid_code, []).append(pc)
    assert set(by_grid) == set(expected), "one case for exactly the grids the oracle names"
    levels = {"blue": 0, "yellow": 1, "orange": 2, "red": 3}
    for grid, filed in by_grid.items():
        assert len(filed) == 1, f"grid {grid} got {len(filed)} cases"
        pc = filed[0]
        case = pc.case
        assert case.category.kind == "event" and case.category.code == "0111"
        assert case.category.name_zh == "道路积水"
        assert case.place.grid_code == grid and case.place.street_code == grid[:9]
        # 道路积水 counts 2 clock hours from filing, in Asia/Shanghai local time.
        assert case.deadline - case.filed_at == timedelta(hours=2)
        assert case.deadline.utcoffset() == SHANGHAI_OFFSET
        reached = [case.warning_level] + [u.warning_level for u in pc.updates.values() if u.warning_level]
        assert max(reached, key=lambda lv: levels[lv]) == expected[grid]
