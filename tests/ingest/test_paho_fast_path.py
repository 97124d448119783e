"""FastPathClient against a real Mosquitto: the lean PUBLISH path and paho's own path agree.

Every message must arrive exactly as published, in wire order, whichever path decoded it;
``ack_many`` must settle exactly the messages it names, so the broker redelivers the rest.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gridsense.embedded_broker import MosquittoBroker
from ingest.paho_fast_path import Arrival, FastPathClient
from tests.fixtures.mosquitto import subscribed


class Receiver:
    """A FastPathClient on a persistent session, collecting arrivals."""

    def __init__(self, broker: MosquittoBroker, client_id: str, topic: str, qos: int, protocol: int) -> None:
        self.arrivals: list[Arrival] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        kw: dict[str, object] = {"client_id": client_id, "protocol": protocol, "manual_ack": True}
        if protocol != mqtt.MQTTv5:
            kw["clean_session"] = False
        self.client = FastPathClient(CallbackAPIVersion.VERSION2, on_arrivals=self._take, **kw)  # type: ignore[arg-type]
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=qos)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        props = None
        if protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 300
        connect_kw: dict[str, object] = {"clean_start": False, "properties": props} if props else {}
        self.client.connect(broker.host, broker.port, **connect_kw)  # type: ignore[arg-type]
        self.client.loop_start()
        assert self.subscribed.wait(10), "no SUBACK"

    def _take(self, arrivals: list[Arrival]) -> None:
        with self.lock:
            self.arrivals.extend(arrivals)

    def wait_for(self, n: int, timeout: float = 15.0) -> list[Arrival]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.arrivals) >= n:
                    return list(self.arrivals)
            time.sleep(0.01)
        with self.lock:
            raise AssertionError(f"expected {n} arrivals, got {len(self.arrivals)}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def publisher(broker: MosquittoBroker) -> Iterator[mqtt.Client]:
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        yield pub
    finally:
        pub.disconnect()
        pub.loop_stop()


def _user_props(pairs: list[tuple[str, str]]) -> Properties:
    p = Properties(PacketTypes.PUBLISH)
    p.UserProperty = pairs
    return p


@pytest.mark.parametrize("protocol", [mqtt.MQTTv5, mqtt.MQTTv311], ids=["mqtt5", "mqtt311"])
def test_mixed_stream_arrives_in_order_whichever_path_decodes_it(
    mosquitto: MosquittoBroker, topic_root: str, protocol: int
) -> None:
    rx = Receiver(mosquitto, f"fp-{uuid.uuid4().hex[:8]}", f"{topic_root}/#", 1, protocol)
    sent = []
    with publisher(mosquitto) as pub:
        for i in range(300):
            topic = f"{topic_root}/d{i % 7}/温度"  # a non-ASCII level: UTF-8 decoded on the fast path
            payload = f'{{"i": {i}}}'.encode() + bytes([i % 256])  # arbitrary bytes survive
            props = _user_props([("seq", str(i))]) if i % 10 == 3 else None
            pub.publish(topic, payload, qos=1, properties=props).wait_for_publish(5)
            sent.append((topic, payload, props is not None))
    got = rx.wait_for(len(sent))
    rx.client.ack_many(mid for *_, mid, _ in got)
    rx.close()
    assert [(t, p) for t, p, *_ in got] == [(t, p) for t, p, _ in sent]
    assert all(qos == 1 and mid > 0 for _, _, qos, mid, _ in got)
    with_props = [a for a in got if a[4]]
    if protocol == mqtt.MQTTv5:
        assert [dict(a[4])["seq"] for a in with_props] == [str(i) for i in range(300) if i % 10 == 3]
        assert rx.client.fast_path_count == len(sent) - len(with_props)
    else:  # MQTT 3.1.1 carries no properties: everything takes the fast path
        assert with_props == []
        assert rx.client.fast_path_count == len(sent)


def test_ack_many_settles_exactly_the_named_messages(mosquitto: MosquittoBroker, topic_root: str) -> None:
    cid = f"fp-ack-{uuid.uuid4().hex[:8]}"
    rx = Receiver(mosquitto, cid, f"{topic_root}/#", 1, mqtt.MQTTv5)
    with publisher(mosquitto) as pub:
        for i in range(40):
            pub.publish(f"{topic_root}/x", str(i).encode(), qos=1).wait_for_publish(5)
    got = rx.wait_for(40)
    acked = [a for a in got if int(a[1]) % 2 == 0]
    assert rx.client.ack_many(mid for *_, mid, _ in acked) == 20
    time.sleep(0.5)  # let the network thread write the PUBACKs before the session goes away
    rx.close()
    again = Receiver(mosquitto, cid, f"{topic_root}/#", 1, mqtt.MQTTv5)
    redelivered = again.wait_for(20)
    time.sleep(0.3)  # nothing beyond the 20 unacknowledged ones may follow
    again.client.ack_many(mid for *_, mid, _ in again.arrivals)
    time.sleep(0.3)
    again.close()
    assert sorted(int(p) for _, p, *_ in again.arrivals) == [i for i in range(40) if i % 2]
    assert len(redelivered) == 20


def test_qos0_takes_the_fast_path_and_qos2_takes_paho(mosquitto: MosquittoBroker, topic_root: str) -> None:
    rx0 = Receiver(mosquitto, f"fp-q0-{uuid.uuid4().hex[:8]}", f"{topic_root}/q0", 0, mqtt.MQTTv5)
    rx2 = Receiver(mosquitto, f"fp-q2-{uuid.uuid4().hex[:8]}", f"{topic_root}/q2", 2, mqtt.MQTTv5)
    with publisher(mosquitto) as pub:
        for i in range(20):
            pub.publish(f"{topic_root}/q0", str(i).encode(), qos=0)
            pub.publish(f"{topic_root}/q2", str(i).encode(), qos=2).wait_for_publish(5)
    got0 = rx0.wait_for(20)
    got2 = rx2.wait_for(20)
    for m in got2:
        rx2.client.ack(m[3], 2)
    rx0.close()
    rx2.close()
    assert [int(p) for _, p, *_ in got0] == list(range(20))
    assert all(qos == 0 and mid == 0 for _, _, qos, mid, _ in got0)
    assert rx0.client.fast_path_count == 20
    assert [int(p) for _, p, *_ in got2] == list(range(20))
    assert all(qos == 2 for _, _, qos, _, _ in got2)
    assert rx2.client.fast_path_count == 0


@pytest.mark.parametrize("protocol", [mqtt.MQTTv5, mqtt.MQTTv311], ids=["mqtt5", "mqtt311"])
def test_publish_many_qos0_delivers_every_payload_in_order(
    mosquitto: MosquittoBroker, topic_root: str, protocol: int
) -> None:
    pub = Receiver(mosquitto, f"fp-pub-{uuid.uuid4().hex[:8]}", f"{topic_root}/nothing", 1, protocol)
    payloads = [b"x" * n for n in (0, 1, 127, 128, 20_000)] + [f"{i}".encode() for i in range(200)]
    try:
        with subscribed(mosquitto, f"{topic_root}/feed") as sub:
            assert pub.client.publish_many_qos0(f"{topic_root}/feed", payloads) == len(payloads)
            got = [payload for _, payload in sub.wait_for(len(payloads))]
    finally:
        pub.close()
    assert got == payloads  # lengths across the 1- and 2-byte remaining-length boundary survive
