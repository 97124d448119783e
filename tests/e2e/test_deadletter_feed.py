"""Every dead letter is stored, counted and published on <root>/deadletter, all three agreeing."""

from __future__ import annotations

import base64
import time
from datetime import datetime
from pathlib import Path

import orjson

from gridsense.app import App
from gridsense.embedded_broker import MosquittoBroker
from simulators.platform import PlatformServer
from simulators.publisher import MqttPublisher
from tests.e2e.test_storm_to_case import make_config
from tests.fixtures.mosquitto import subscribed

GRID = "110102012001001"


def test_bad_input_reaches_the_store_the_counters_and_the_live_feed(
    mosquitto: MosquittoBroker, platform: PlatformServer, topic_root: str, tmp_path: Path
) -> None:
    app = App(make_config(mosquitto, platform, topic_root, tmp_path / "state.db"))
    sent = {
        f"{topic_root}/110102/{GRID}/rain/rg-012001001-1": b'{"device_id": "rg-012001001-1", "ts": 1',
        f"{topic_root}/110102/{GRID}/rain/rg-012001001-2": b"[]",
        f"{topic_root}/110102/{GRID}/rain/rg-nobody": b'{"device_id": "rg-nobody"}',
    }
    app.start()
    try:
        with subscribed(mosquitto, app.scheme.deadletter) as sub:
            assert app.gateway.wait_connected(15)
            with MqttPublisher(mosquitto.host, mosquitto.port, f"pub-{topic_root}") as pub:
                pub.publish(list(sent.items()))
            feed = [orjson.loads(payload) for _, payload in sub.wait_for(len(sent), 15)]
        rows = app.conn.execute("SELECT topic, reason FROM dead_letters ORDER BY topic").fetchall()
        stored_at = dict(app.conn.execute("SELECT topic, at FROM dead_letters").fetchall())
    finally:
        app.stop()
    by_topic = {str(d["topic"]): d for d in feed}
    assert set(by_topic) == set(sent)
    for topic, payload in sent.items():
        assert base64.b64decode(str(by_topic[topic]["payload_b64"])) == payload
        assert by_topic[topic]["at"] == stored_at[topic]  # the same instant, in ISO 8601 with its zone
        assert datetime.fromisoformat(str(stored_at[topic])).utcoffset() is not None
    assert sorted((str(d["topic"]), str(d["reason"])) for d in feed) == rows
    reasons = [str(d["reason"]) for d in feed]
    assert {r: reasons.count(r) for r in reasons} == dict(app.gateway.dead_letter_reasons)
    assert app.gateway.counters["dead_letters"] == len(sent)


def test_a_flood_of_bad_input_is_stored_in_full_and_echoed_on_the_feed_only_to_its_budget(
    mosquitto: MosquittoBroker, platform: PlatformServer, topic_root: str, tmp_path: Path
) -> None:
    """A gateway spewing garbage: every letter is stored and counted, the live feed carries
    no more than its budget (``mqtt.deadletter_feed_per_s``, here 1 a second, so a burst of
    30 cannot all pass unless handling them took half a minute), and what it leaves off is
    counted, so feed + suppressed = letters."""
    cfg = make_config(mosquitto, platform, topic_root, tmp_path / "state.db")
    cfg = cfg.model_copy(update={"mqtt": cfg.mqtt.model_copy(update={"deadletter_feed_per_s": 1.0})})
    app = App(cfg)
    topic = f"{topic_root}/110102/{GRID}/rain/rg-012001001-1"
    sent = [(topic, b'{"device_id": "rg-012001001-1", "ts": %d' % i) for i in range(30)]
    app.start()
    try:
        with subscribed(mosquitto, app.scheme.deadletter) as sub:
            assert app.gateway.wait_connected(15)
            with MqttPublisher(mosquitto.host, mosquitto.port, f"pub-{topic_root}") as pub:
                pub.publish(sent)
            c = app.gateway.counters
            deadline = time.monotonic() + 15
            while c["dead_letters"] < len(sent) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert c["dead_letters"] == len(sent)
            suppressed = c["deadletter_feed_suppressed"]
            feed = sub.wait_for(len(sent) - suppressed, 15)
            time.sleep(0.3)  # a letter published beyond the budget would arrive by now
            feed = sub.messages
        stored = app.conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
    finally:
        app.stop()
    assert stored == len(sent)
    assert suppressed > 0
    assert len(feed) + suppressed == len(sent)
    payloads = {base64.b64decode(str(orjson.loads(p)["payload_b64"])) for _, p in feed}
    assert payloads <= {p for _, p in sent} and len(payloads) == len(feed)
