"""The gateway's hand-over between its network thread and its worker, on a real broker."""

from __future__ import annotations

import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from gridsense.config import MqttConfig
from gridsense.embedded_broker import MosquittoBroker
from gridsense.errors import Retryable
from ingest.contract import BatchOutcome, InboundMessage
from ingest.gateway import MqttGateway
from ingest.paho_fast_path import FastPathClient
from ingest.topics import TopicScheme
from simulators.publisher import MqttPublisher


def test_a_held_worker_does_not_hold_the_network_thread(mosquitto: MosquittoBroker, topic_root: str) -> None:
    """A full disk holds the worker; the network thread must go on reading (and so answer
    keepalives) for as long as the broker's flow control lets messages in."""
    calls: list[int] = []

    def held(batch: list[InboundMessage]) -> BatchOutcome:
        calls.append(len(batch))
        raise Retryable("the store is full")

    cfg = MqttConfig(port=mosquitto.port, topic_root=topic_root, client_id=f"gw-{uuid.uuid4().hex[:8]}")
    gw = MqttGateway(cfg, TopicScheme(topic_root), held)
    gw.start()
    try:
        assert gw.wait_connected(10)
        topic = f"{topic_root}/110102/110102012001001/rain/rg-1"
        with MqttPublisher(mosquitto.host, mosquitto.port, f"pub-{topic_root}") as pub:
            for i in range(40):  # one read each: far more reads than the worker takes
                pub.publish([(topic, str(i).encode())])
                time.sleep(0.01)
        deadline = time.monotonic() + 10
        while gw.counters["received"] < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gw.counters["received"] == 40
        assert calls and gw.counters["acked"] == 0  # held: nothing acknowledged
    finally:
        gw.stop()


def test_arrivals_are_handed_over_before_the_disconnect_is_told() -> None:
    """No broker needed: the order of two callbacks inside the client is what is tested."""
    order: list[str] = []
    client = FastPathClient(
        CallbackAPIVersion.VERSION2,
        protocol=mqtt.MQTTv5,
        on_arrivals=lambda a: order.append(f"arrivals {len(a)}"),
    )
    client.on_disconnect = lambda *_: order.append("disconnect")
    client._arrivals.append(("t", b"p", 1, 7, ()))
    client._do_on_disconnect(packet_from_broker=False, v1_rc=MQTTErrorCode.MQTT_ERR_CONN_LOST)
    assert order == ["arrivals 1", "disconnect"]
