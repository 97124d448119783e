"""Case delivery in a process of its own (as ``App`` runs it), against the real reference
platform over a socket: it drains the outbox it shares with the pipeline through the store
file, publishes its counts and its breaker, polls status when asked, shrugs off the Ctrl-C
its process group receives, stops when asked, and stops on its own when its parent dies."""

from __future__ import annotations

import os
import signal
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.config import MqttPlatformConfig
from bridge.delivery_process import DeliveryProcess
from gridsense.config import BridgeConfig
from gridsense.embedded_broker import MosquittoBroker, free_port
from gridsense.model.worktime import WorkCalendar
from simulators.platform import PlatformServer
from tests.bridge.conftest import ALL_GRIDS, StartPlatform, build_cases, enqueue
from tests.faults.harness import wait_for
from tests.fixtures.orphans import assert_orphan_stops

pytestmark = pytest.mark.integration


def config(url: str) -> BridgeConfig:
    return BridgeConfig(
        url=url, timeout_s=5.0, backoff_initial_s=0.05, backoff_max_s=0.5, poll_interval_s=0.05
    )


def statuses(conn: sqlite3.Connection) -> list[str]:
    return [s for (s,) in conn.execute("SELECT status FROM cases ORDER BY case_key")]


def test_delivers_from_its_own_process_polls_when_asked_and_stops_when_asked(
    platform_factory: StartPlatform, state_db: sqlite3.Connection, tmp_path: Path
) -> None:
    platform = platform_factory()
    enqueue(state_db, build_cases(5))
    delivery = DeliveryProcess(tmp_path / "state.db", config(platform.url), WorkCalendar.default())
    delivery.start()
    try:
        # Counts cross at the end of each pass, a moment after the outbox records it.
        wait_for(lambda: delivery.stats.delivered == 5, 60, "the outbox to drain")
        assert delivery.depth() == 0 and not delivery.breaker_open
        assert delivery.pid not in (None, os.getpid())
        assert len(platform.store.cases()) == 5
        # The platform walks each case on; a poll asked for now brings its status home.
        wait_for(
            lambda: all(c.status(datetime.now(UTC)) != "立案" for c in platform.store.cases()),
            30,
            "cases dispatched",
        )
        assert delivery.poll_status()
        assert "立案" not in statuses(state_db) and "queued" not in statuses(state_db)
        # Ctrl-C reaches the whole process group; the parent stops delivery, in order.
        os.kill(delivery.pid, signal.SIGINT)  # type: ignore[arg-type]
        enqueue(state_db, build_cases(8)[5:])  # the pipeline goes on filing meanwhile
        wait_for(lambda: delivery.stats.delivered == 8, 30, "cases filed after the SIGINT")
        assert delivery.exitcode is None
    finally:
        delivery.stop()
    assert delivery.exitcode == 0
    assert sorted(c.case.place.grid_code for c in platform.store.cases()) == sorted(ALL_GRIDS[:8])


def test_the_breaker_shows_while_the_platform_is_away_and_the_backlog_goes_when_it_returns(
    platform_factory: StartPlatform, state_db: sqlite3.Connection, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens there yet
    enqueue(state_db, build_cases(6))
    delivery = DeliveryProcess(
        tmp_path / "state.db", config(f"http://127.0.0.1:{port}"), WorkCalendar.default()
    )
    delivery.start()
    try:
        wait_for(lambda: delivery.breaker_open, 60, "the breaker to open")
        assert delivery.stats.retried >= 5 and delivery.stats.delivered == 0
        assert delivery.depth() == 6
        platform: PlatformServer = platform_factory(port=port)
        wait_for(lambda: delivery.stats.delivered == 6, 60, "the backlog to go")
        assert delivery.depth() == 0 and not delivery.breaker_open
        assert len(platform.store.cases()) == 6
    finally:
        delivery.stop()


PARENT = """
import sys, time
from pathlib import Path
from bridge.delivery_process import DeliveryProcess
from gridsense.config import BridgeConfig
from gridsense.model.worktime import WorkCalendar

delivery = DeliveryProcess(Path(sys.argv[1]), BridgeConfig(url=sys.argv[2]), WorkCalendar.default())
delivery.start()
print(delivery.pid, flush=True)
time.sleep(600)
"""


def test_a_delivery_whose_parent_was_killed_stops_on_its_own(
    platform_factory: StartPlatform, state_db: sqlite3.Connection, tmp_path: Path
) -> None:
    """A pipeline SIGKILLed and restarted must not leave a second delivery on its outbox."""
    platform = platform_factory()
    assert_orphan_stops(PARENT, str(tmp_path / "state.db"), platform.url, what="delivery")


def test_a_stopped_delivery_process_closes_its_adapter(
    mosquitto: MosquittoBroker, state_db: sqlite3.Connection, tmp_path: Path
) -> None:
    """The MQTT adapter's client disconnects cleanly at stop, rather than its socket just
    closing with the process (the broker logs the two differently)."""
    client_id = "bridge-" + uuid.uuid4().hex[:8]
    cfg = BridgeConfig(
        adapter="mqtt",
        mqtt_platform=MqttPlatformConfig(port=mosquitto.port, client_id=client_id, topic_prefix=client_id),
        poll_interval_s=0.05,
    )
    broker_log = mosquitto.data_dir / "mosquitto.log"
    delivery = DeliveryProcess(tmp_path / "state.db", cfg, WorkCalendar.default())
    delivery.start()
    try:
        wait_for(lambda: f"as {client_id}" in broker_log.read_text(), 30, "the adapter to connect")
    finally:
        delivery.stop()
    assert delivery.exitcode == 0
    wait_for(lambda: f"Client {client_id} disconnected." in broker_log.read_text(), 30, "a clean disconnect")
    assert f"Client {client_id} closed its connection." not in broker_log.read_text()
