"""``gridsense doctor`` against real servers: what it says when things work, and when they do not."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from gridsense import db
from gridsense.config import BridgeConfig, GridsenseConfig, MqttConfig, StoreConfig
from gridsense.doctor import check_broker, check_platform, check_store, platform_clock, run_doctor
from gridsense.embedded_broker import MosquittoBroker, free_port
from gridsense.model.envelopes import Kind
from ingest.topics import TopicScheme
from simulators.platform import PlatformServer
from simulators.publisher import MqttPublisher

pytestmark = pytest.mark.integration


def config(broker_port: int, platform_url: str, store: Path, root: str = "city") -> GridsenseConfig:
    return GridsenseConfig(
        mqtt=MqttConfig(port=broker_port, topic_root=root),
        store=StoreConfig(path=store),
        bridge=BridgeConfig(url=platform_url, timeout_s=3),
    )


def test_all_green(
    mosquitto: MosquittoBroker, platform: PlatformServer, topic_root: str, tmp_path: Path
) -> None:
    db.connect(tmp_path / "state.db").close()
    lines: list[str] = []
    code = run_doctor(
        config(mosquitto.port, platform.url, tmp_path / "state.db", topic_root), lines.append, 0.3
    )
    text = "\n".join(lines)
    assert code == 0, text
    assert "[FAIL]" not in text
    for check in ("registry", "store", "broker", "platform", "clock"):
        assert f"[ ok ] {check}" in text, text
    assert "QoS 1 round trip" in text


def test_broker_and_platform_down_fail_with_a_fix(platform: PlatformServer, tmp_path: Path) -> None:
    platform.set_down(True)
    lines: list[str] = []
    code = run_doctor(config(free_port(), platform.url, tmp_path / "new.db"), lines.append, 0.1)
    text = "\n".join(lines)
    assert code == 1
    assert "[FAIL] broker" in text and "fix: nothing listens on 127.0.0.1:" in text
    assert "[FAIL] platform" in text and "503" in text and "fix:" in text
    assert "will be created" in text  # a missing store in a writable folder is fine


def test_unreachable_platform(tmp_path: Path) -> None:
    cfg = config(1883, f"http://127.0.0.1:{free_port()}", tmp_path / "s.db")
    (finding,) = check_platform(cfg)
    assert finding.status == "fail" and "bridge.url" in (finding.fix or "")


def test_store_problems(tmp_path: Path) -> None:
    (missing,) = check_store(config(1883, "http://x", tmp_path / "no" / "such" / "dir" / "s.db"))
    assert missing.status == "fail" and "mkdir -p" in (missing.fix or "")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 200)
    (bad,) = check_store(config(1883, "http://x", junk))
    assert bad.status == "fail"
    store = tmp_path / "state.db"
    db.connect(store).close()
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        (locked,) = check_store(config(1883, "http://x", store))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert locked.status == "fail" and "locked" in locked.message and "pipeline stuck" in (locked.fix or "")
    ok = check_store(config(1883, "http://x", store))
    assert ok[0].status == "ok" and "wal" in ok[0].message


def test_a_device_clock_running_ahead_is_reported(
    mosquitto: MosquittoBroker, topic_root: str, tmp_path: Path
) -> None:
    cfg = config(mosquitto.port, "http://x", tmp_path / "s.db", topic_root)
    topic = TopicScheme(topic_root).topic("110102012001001", Kind.RAIN, "rg-012001001-1")
    ahead = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    payload = f'{{"device_id": "rg-012001001-1", "ts": "{ahead}", "rain_mm": 0.2}}'.encode()

    def publish_soon() -> None:
        time.sleep(0.6)
        with MqttPublisher(mosquitto.host, mosquitto.port, f"dev-{topic_root}") as pub:
            pub.publish([(topic, payload)])

    t = threading.Thread(target=publish_soon)
    t.start()
    findings = check_broker(cfg, listen_s=2.0)
    t.join()
    clock = [f for f in findings if f.check == "clock"]
    assert clock and clock[0].status == "warn", findings
    assert "rg-012001001-1 +300 s" in clock[0].message or "rg-012001001-1 +299 s" in clock[0].message
    assert "NTP" in (clock[0].fix or "")


def test_platform_clock_from_the_date_header() -> None:
    now = time.time()
    ahead = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    (f,) = platform_clock(ahead, now - 0.01, now + 0.01)
    assert f.status == "warn" and ("+29." in f.message or "+30." in f.message)  # whole seconds
    same = format_datetime(datetime.fromtimestamp(now, UTC), usegmt=True)
    (g,) = platform_clock(same, now - 0.01, now + 0.01)
    assert g.status == "ok"
