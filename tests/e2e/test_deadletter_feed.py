"""Every dead letter is stored, counted and published on <root>/deadletter, all three agreeing."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gridsense.app import App
from gridsense.embedded_broker import MosquittoBroker
from simulators.platform import PlatformServer
from tests.e2e.test_storm_to_case import make_config, wait_for

GRID = "110102012001001"


def test_bad_input_reaches_the_store_the_counters_and_the_live_feed(
    mosquitto: MosquittoBroker, platform: PlatformServer, topic_root: str, tmp_path: Path
) -> None:
    app = App(make_config(mosquitto, platform, topic_root, tmp_path / "state.db"))
    feed: list[dict[str, object]] = []
    ready = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_connect = lambda c, *_: c.subscribe(app.scheme.deadletter, qos=1)
    sub.on_subscribe = lambda *_: ready.set()
    sub.on_message = lambda _c, _u, m: feed.append(orjson.loads(m.payload))
    sub.connect(mosquitto.host, mosquitto.port)
    sub.loop_start()
    app.start()
    try:
        assert ready.wait(10) and app.gateway.wait_connected(15)
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        pub.connect(mosquitto.host, mosquitto.port)
        pub.loop_start()
        sent = {
            f"{topic_root}/110102/{GRID}/rain/rg-012001001-1": b'{"device_id": "rg-012001001-1", "ts": 1',
            f"{topic_root}/110102/{GRID}/rain/rg-012001001-2": b"[]",
            f"{topic_root}/110102/{GRID}/rain/rg-nobody": b'{"device_id": "rg-nobody"}',
        }
        for topic, payload in sent.items():
            pub.publish(topic, payload, qos=1).wait_for_publish(5)
        pub.disconnect()
        pub.loop_stop()
        wait_for(lambda: len(feed) == len(sent), 15, "the dead-letter feed")
        rows = app.conn.execute("SELECT topic, reason FROM dead_letters ORDER BY topic").fetchall()
    finally:
        app.stop()
        sub.disconnect()
        sub.loop_stop()
    by_topic = {str(d["topic"]): d for d in feed}
    assert set(by_topic) == set(sent)
    for topic, payload in sent.items():
        assert base64.b64decode(str(by_topic[topic]["payload_b64"])) == payload
    assert sorted((str(d["topic"]), str(d["reason"])) for d in feed) == rows
    reasons = [str(d["reason"]) for d in feed]
    assert {r: reasons.count(r) for r in reasons} == dict(app.gateway.dead_letter_reasons)
    assert app.gateway.counters["dead_letters"] == len(sent)
