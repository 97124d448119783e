"""``gridsense demo``: the whole chain on one machine, with nothing to install or configure.

An embedded broker (Mosquitto if installed, else amqtt), the reference case platform,
the pipeline with its SQLite store, and a simulated storm replayed at its real timestamps.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gridsense.app import App, load_registries
from gridsense.config import BridgeConfig, GridsenseConfig, MqttConfig, StoreConfig
from gridsense.embedded_broker import (
    AmqttBroker,
    MosquittoBroker,
    start_embedded_broker,
)
from gridsense.model.case import CaseUpdate
from gridsense.model.envelopes import Kind
from gridsense.model.registry import DeviceRegistry
from gridsense.ops.config import OpsConfig
from ingest.topics import TopicScheme
from simulators.platform import PlatformConfig, PlatformServer, WorkflowConfig
from simulators.publisher import MqttPublisher
from simulators.storm import StormScenario, to_messages

#: Messages a demo broker is asked to carry per second at most (amqtt is not a load broker).
DEMO_RATE = 800

STORM_GRIDS = frozenset({"110102012001001", "110102012001002", "110102003001002"})


def bad_messages(scheme: TopicScheme) -> list[tuple[str, bytes]]:
    """Input a real fleet sends now and then; each must end in the dead letter with a reason."""
    grid = "110102012001001"
    dev = "rg-012001001-1"
    topic = scheme.topic(grid, Kind.RAIN, dev)
    now = datetime.now(UTC).isoformat()
    return [
        (topic, b'{"device_id": "rg-012001001-1", "ts": '),  # truncated JSON
        (topic, f'{{"device_id": "{dev}", "ts": "{now}", "rain_mm": -3}}'.encode()),
        (topic, f'{{"device_id": "rg-other", "ts": "{now}", "rain_mm": 1}}'.encode()),
        (
            scheme.topic(grid, Kind.RAIN, "rg-unknown-9"),
            f'{{"device_id": "rg-unknown-9", "ts": "{now}", "rain_mm": 1}}'.encode(),
        ),
        (topic, f'{{"device_id": "{dev}", "ts": "{now}", "rain_mm": "heavy"}}'.encode()),
    ]


def run_demo(minutes: int = 90, out: Callable[[str], None] = print, workdir: Path | None = None) -> int:
    tmp = None if workdir else tempfile.TemporaryDirectory(prefix="gridsense-demo-")
    work = workdir or Path(tmp.name)  # type: ignore[union-attr]
    broker = start_embedded_broker()
    out(f"broker      {type(broker).__name__} on 127.0.0.1:{broker.port} (MQTT {broker.protocol})")
    platform = PlatformServer(PlatformConfig(workflow=WorkflowConfig(step_delay_s=(1.0, 2.5), seed=1)))
    platform.start()
    out(f"platform    reference case platform at {platform.url}")
    cfg = GridsenseConfig(
        mqtt=MqttConfig(
            port=broker.port, protocol="5" if broker.protocol == "5" else "3.1.1", client_id="gridsense-demo"
        ),
        store=StoreConfig(path=work / "gridsense.db"),
        bridge=BridgeConfig(url=platform.url, status_poll_s=1.0, poll_interval_s=0.2),
        ops=OpsConfig(enabled=True, port=0),
    )
    registries = load_registries(cfg)
    app = App(cfg, registries)
    app.start()
    if not app.gateway.wait_connected(15):
        out("the pipeline could not connect to the embedded broker")
        return 1
    if app.ops is not None:
        out(f"ops page    {app.ops.url}/  (live while the demo runs)")
    n_grids, n_devices = len(registries.grids), len(registries.devices)
    out(f"pipeline    store {cfg.store.path}; {n_grids} grids, {n_devices} devices")
    try:
        return _play(app, cfg, registries.devices, broker, minutes, out)
    finally:
        app.stop()
        platform.stop()
        broker.cleanup()
        if tmp is not None:
            tmp.cleanup()


def _play(
    app: App,
    cfg: GridsenseConfig,
    devices: DeviceRegistry,
    broker: MosquittoBroker | AmqttBroker,
    minutes: int,
    out: Callable[[str], None],
) -> int:
    scheme = app.scheme
    start = (datetime.now(UTC) - timedelta(minutes=minutes)).replace(second=0, microsecond=0)
    storm = StormScenario(start=start, minutes=minutes, hit_grids=STORM_GRIDS)
    device_list = list(devices)
    by_id = {d.device_id: d for d in device_list}
    messages = list(to_messages(storm.samples(device_list), by_id, scheme)) + bad_messages(scheme)
    out(
        f"simulator   replaying a {minutes}-minute storm over {len(STORM_GRIDS)} grids: "
        f"{len(messages)} messages, at most {DEMO_RATE}/s"
    )
    seen: set[str] = set()
    reader = sqlite3.connect(str(cfg.store.path))
    with MqttPublisher(broker.host, broker.port, "gridsense-demo-sim", window=200) as pub:
        for i in range(0, len(messages), 200):
            t0 = time.monotonic()
            pub.publish(messages[i : i + 200])
            _report_cases(reader, seen, out)
            time.sleep(max(0.0, 200 / DEMO_RATE - (time.monotonic() - t0)))
        sent = pub.sent
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        c = app.gateway.counters
        if c["readings"] + c["duplicates"] + c["dead_letters"] >= sent and app.delivery.depth() == 0:
            break
        _report_cases(reader, seen, out)
        time.sleep(0.3)
    time.sleep(3)  # let the platform walk the cases a few steps, and the status poll catch up
    app.delivery.poll_status()
    _report_cases(reader, seen, out)
    return _summary(reader, app, sent, out)


def _report_cases(reader: sqlite3.Connection, seen: set[str], out: Callable[[str], None]) -> None:
    rows = reader.execute(
        "SELECT c.case_key, c.platform_case_id, c.grid_code, c.category_code, c.title, c.deadline"
        " FROM cases c WHERE c.platform_case_id IS NOT NULL ORDER BY c.filed_at"
    ).fetchall()
    for key, pid, grid, cat, title, deadline in rows:
        if key in seen:
            continue
        seen.add(key)
        out(f"CASE FILED  {pid}  grid {grid}  {cat}  {title}  deadline {deadline}")
    updates = reader.execute(
        "SELECT o.message_key, c.platform_case_id, o.body FROM outbox o JOIN cases c USING (case_key)"
        " WHERE o.op = 'update' AND o.status = 'delivered' ORDER BY o.seq"
    ).fetchall()
    for key, pid, body in updates:
        if key in seen:
            continue
        seen.add(key)
        out(f"UPDATE      {pid}  {CaseUpdate.model_validate_json(body).note_zh}")


def _summary(reader: sqlite3.Connection, app: App, sent: int, out: Callable[[str], None]) -> int:
    readings = reader.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
    incidents = reader.execute("SELECT COUNT(*) FROM incidents").fetchone()[0]
    updates = reader.execute(
        "SELECT COUNT(*) FROM outbox WHERE op = 'update' AND status = 'delivered'"
    ).fetchone()[0]
    delivered = reader.execute("SELECT COUNT(*) FROM cases WHERE platform_case_id IS NOT NULL").fetchone()[0]
    statuses = reader.execute("SELECT status, COUNT(*) FROM cases GROUP BY status").fetchall()
    dead = reader.execute(
        "SELECT reason, COUNT(*) FROM dead_letters GROUP BY reason ORDER BY reason"
    ).fetchall()
    out("")
    out("summary")
    out(f"  messages published   {sent}")
    out(f"  readings stored      {readings}")
    out(f"  incidents            {incidents}")
    out(
        f"  cases delivered      {delivered} (+{updates} updates); platform status: "
        + ", ".join(f"{s} {n}" for s, n in statuses)
    )
    out(f"  dead letters         {sum(n for _, n in dead)}: " + ", ".join(f"{r} {n}" for r, n in dead))
    return 0 if delivered else 1
