"""InfluxDB-compatible server down while a stream runs: readings spool to disk and MQTT acks
go on; the spool replays in order when the server returns; a full spool holds acks back
(backpressure) and nothing is dropped.

The outage lasts a few seconds here rather than the issue's 60 s: what matters is that the
stream outlives the server's absence, and a short outage keeps CI fast.
"""

from __future__ import annotations

import subprocess
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridsense import db
from gridsense.app import App
from gridsense.config import BridgeConfig, GridsenseConfig, MqttConfig, RulesConfig, StoreConfig
from gridsense.embedded_broker import MosquittoBroker, free_port, wait_port
from gridsense.ops.source import AppSource, Check
from ingest.influx_sink import InfluxSinkConfig
from ingest.spool import spool_depth
from ingest.topics import TopicScheme
from simulators.platform import PlatformServer
from simulators.publisher import MqttPublisher
from simulators.storm import StormScenario, to_messages
from tests.e2e.oracle import RULES_1H
from tests.fixtures.victoria import BASE_FLAGS, VictoriaMetrics, victoria_binary

pytestmark = pytest.mark.integration


def start_vm(port: int, data: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [victoria_binary(), f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={data}", *BASE_FLAGS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port, 30)
    return proc


def wait_for(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def make_app(
    broker: MosquittoBroker,
    platform: PlatformServer,
    tmp: Path,
    vm_port: int,
    spool_max: int,
    root: str,
    url: str | None = None,
) -> App:
    cfg = GridsenseConfig(
        mqtt=MqttConfig(
            port=broker.port, topic_root=root, client_id=f"gs-{root}", batch_max=50, inflight=100
        ),
        store=StoreConfig(path=tmp / "state.db"),
        rules=RulesConfig(file=RULES_1H, tick_s=1),
        sink=InfluxSinkConfig(
            url=url or f"http://127.0.0.1:{vm_port}",
            org="o",
            bucket="b",
            token="t",  # type: ignore[arg-type]
            timeout_s=1,
            batch_size=200,
            spool_max_rows=spool_max,
        ),
        bridge=BridgeConfig(url=platform.url, poll_interval_s=0.05),
    )
    return App(cfg)


def storm_messages(app: App, root: str, minutes: int) -> list[tuple[str, bytes]]:
    devices = list(app.registries.devices)
    start = (datetime.now(UTC) - timedelta(minutes=minutes)).replace(second=0, microsecond=0)
    storm = StormScenario(start=start, minutes=minutes, hit_grids=frozenset({"110102012001001"}))
    return list(to_messages(storm.samples(devices), {d.device_id: d for d in devices}, TopicScheme(root)))


def checks(app: App) -> dict[str, Check]:
    return {c.name: c for c in AppSource(app).readiness()}


def count(app: App, table: str) -> int:
    with closing(db.connect(app.cfg.store.path, create=False)) as reader:
        return int(reader.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def stored(app: App) -> int:
    return count(app, "readings")


def spooled(app: App) -> int:
    with closing(db.connect(app.cfg.store.path, create=False)) as reader:
        return spool_depth(reader)


def test_outage_spools_and_replays_without_holding_acks(
    mosquitto: MosquittoBroker, platform: PlatformServer, topic_root: str, tmp_path: Path
) -> None:
    vm_port = free_port()
    app = make_app(mosquitto, platform, tmp_path, vm_port, spool_max=100_000, root=topic_root)
    app.start()
    vm = None
    try:
        assert app.gateway.wait_connected(10)
        messages = storm_messages(app, topic_root, 20)
        with MqttPublisher(mosquitto.host, mosquitto.port, f"pub-{topic_root}") as pub:
            pub.publish(messages)
        # The server is down, yet every reading is stored and acknowledged: the spool takes them.
        wait_for(lambda: app.gateway.counters["acked"] >= len(messages), 30, "acks during the outage")
        assert stored(app) == len(messages)
        assert spooled(app) == len(messages)
        assert app.forwarder is not None
        wait_for(lambda: app.forwarder.failures > 0, 10, "a failed write")  # type: ignore[union-attr]
        # An outage is not a fault of the forwarder: it keeps retrying and stays ready.
        assert checks(app)["influx_forwarder"].ok
        # The server returns: the spool drains, in order, and every reading is there once.
        vm = start_vm(vm_port, tmp_path / "vm")
        wait_for(lambda: spooled(app) == 0, 30, "the spool to drain")
    finally:
        app.stop()
    server = VictoriaMetrics(f"http://127.0.0.1:{vm_port}", tmp_path / "vm", tmp_path / "vm.log", vm)  # type: ignore[arg-type]
    series = server.wait_for_samples('{__name__="reading_value"}', len(messages), timeout_s=20)
    assert sum(len(s.samples) for s in series) == len(messages)
    assert vm is not None
    vm.terminate()
    vm.wait(10)


def test_full_spool_holds_acks_back_and_loses_nothing(
    mosquitto: MosquittoBroker, platform: PlatformServer, topic_root: str, tmp_path: Path
) -> None:
    vm_port = free_port()
    app = make_app(mosquitto, platform, tmp_path, vm_port, spool_max=120, root=topic_root)
    app.start()
    vm = None
    try:
        assert app.gateway.wait_connected(10)
        messages = storm_messages(app, topic_root, 15)  # 24 gauges × 15 min = 360 readings
        with MqttPublisher(mosquitto.host, mosquitto.port, f"pub-{topic_root}") as pub:
            pub.publish(messages)
        wait_for(lambda: stored(app) > 0, 20, "the first batches")
        time.sleep(2.0)
        # Backpressure: the spool is at its limit and the rest waits, unacknowledged, on the broker.
        assert spooled(app) <= 120
        assert stored(app) <= 120
        assert app.gateway.counters["acked"] <= 120
        vm = start_vm(vm_port, tmp_path / "vm")
        wait_for(lambda: stored(app) == len(messages) and spooled(app) == 0, 60, "everything to flow")
    finally:
        app.stop()
    server = VictoriaMetrics(f"http://127.0.0.1:{vm_port}", tmp_path / "vm", tmp_path / "vm.log", vm)  # type: ignore[arg-type]
    series = server.wait_for_samples('{__name__="reading_value"}', len(messages), timeout_s=20)
    assert sum(len(s.samples) for s in series) == len(messages)
    assert vm is not None
    vm.terminate()
    vm.wait(10)


def test_a_sink_refusing_every_write_stops_forwarding_and_readiness_says_so(
    mosquitto: MosquittoBroker,
    platform: PlatformServer,
    topic_root: str,
    tmp_path: Path,
    victoria_metrics: VictoriaMetrics,
) -> None:
    """A misconfigured sink (here a wrong URL, answered 400) will not heal by retrying: the
    forwarder stops, readiness turns false and says why, and ingest goes on into the spool."""
    url = f"{victoria_metrics.url}/no-such-prefix"
    app = make_app(mosquitto, platform, tmp_path, 0, spool_max=100_000, root=topic_root, url=url)
    app.start(stages_ready_s=60)  # ready before the first write: the refusal is what ends it
    try:
        assert app.gateway.wait_connected(10)
        assert app.forwarder is not None and checks(app)["influx_forwarder"].ok
        messages = storm_messages(app, topic_root, 5)
        with MqttPublisher(mosquitto.host, mosquitto.port, f"pub-{topic_root}") as pub:
            pub.publish(messages)
        wait_for(lambda: app.gateway.counters["acked"] >= len(messages), 30, "acks")
        wait_for(lambda: app.forwarder.exitcode is not None, 30, "the forwarder to stop")  # type: ignore[union-attr]
        check = checks(app)["influx_forwarder"]
        assert not check.ok and "exit code 2" in check.detail
        assert stored(app) == spooled(app) == len(messages)
        # A restart would only fail again: however long it waits, the forwarder stays down.
        stage, later = app.stages["influx_forwarder"], time.monotonic() + 3600
        assert not stage.check(later) and not stage.check(later + 3600)
        assert app.forwarder.exitcode == 2 and stage.restarts == 0  # type: ignore[union-attr]
    finally:
        app.stop()
