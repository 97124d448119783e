"""The shipped secure broker config, counted from the pipeline's side: a device reaches the pipeline
on its own topic only, anonymous clients are refused, devices read nothing, and the TLS
listener speaks TLS only.

A message the ACL stops is dropped silently for an MQTT 3.1.1 publisher (a plain PUBACK) and
with reason code 135 for an MQTT 5 one. Either way the proof is the count: after the
same device's next allowed message (a fence) has reached the pipeline, the forbidden one
never has.
"""

from __future__ import annotations

import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gridsense.model.envelopes import Kind
from tests.security.conftest import (
    A_GRID,
    A_TOPIC,
    B_TOPIC,
    NOT_AUTHORISED,
    SCHEME,
    A,
    B,
    SecureBroker,
    Session,
    connect,
    device,
    fence,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_device_reaches_the_pipeline_on_its_own_topic(secure_broker: SecureBroker, pipeline: Session) -> None:
    a = device(secure_broker, A)
    sent = [f"own-{i}-{uuid.uuid4().hex}".encode() for i in range(5)]
    for payload in sent:
        assert a.publish(A_TOPIC, payload) == 0
    fence(pipeline, a, A_TOPIC)
    assert [p for p in pipeline.payloads(A_TOPIC) if p in sent] == sent
    a.close()


def test_device_cannot_publish_as_another_device_or_outside_its_topic(
    secure_broker: SecureBroker, pipeline: Session
) -> None:
    a = device(secure_broker, A)
    forbidden = [
        B_TOPIC,  # another device's topic
        SCHEME.topic(A_GRID, Kind.RAIN, B),  # another device's id in its own grid
        A_TOPIC + "/extra",  # a level below its own topic
        SCHEME.deadletter,  # the pipeline's dead letters
        "city/anything",
    ]
    markers = {}
    for topic in forbidden:
        markers[topic] = f"forged-{uuid.uuid4().hex}".encode()
        assert a.publish(topic, markers[topic]) == NOT_AUTHORISED, topic
    fence(pipeline, a, A_TOPIC)
    arrived = [p for p in pipeline.payloads() if p in markers.values()]
    assert arrived == [], f"the broker let {len(arrived)} forged messages through"
    a.close()


def test_mqtt311_forgery_is_dropped_silently(secure_broker: SecureBroker, pipeline: Session) -> None:
    """MQTT 3.1.1 has no PUBACK reason code: the publisher is told nothing, the message is gone."""
    marker = f"forged311-{uuid.uuid4().hex}".encode()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="x", protocol=mqtt.MQTTv311)
    c.username_pw_set(A, secure_broker.passwords[A])
    c.connect(secure_broker.host, secure_broker.port)
    c.loop_start()
    c.publish(B_TOPIC, marker, qos=1).wait_for_publish(10)  # acknowledged like any other
    fence_marker = f"fence311-{uuid.uuid4().hex}".encode()
    c.publish(A_TOPIC, fence_marker, qos=1).wait_for_publish(10)
    assert wait_until(lambda: fence_marker in pipeline.payloads(A_TOPIC))
    assert marker not in pipeline.payloads()
    c.disconnect()
    c.loop_stop()


def test_anonymous_and_wrong_password_are_refused(secure_broker: SecureBroker) -> None:
    anonymous = connect(secure_broker, None)
    assert not anonymous.accepted and anonymous.connack == NOT_AUTHORISED
    wrong = connect(secure_broker, A, "not-the-password")
    assert not wrong.accepted and wrong.connack == NOT_AUTHORISED
    # B's password does not open A's account.
    swapped = connect(secure_broker, A, secure_broker.passwords[B])
    assert not swapped.accepted and swapped.connack == NOT_AUTHORISED


def test_device_cannot_read_other_devices(secure_broker: SecureBroker, pipeline: Session) -> None:
    a = device(secure_broker, A)
    b = device(secure_broker, B)
    # Mosquitto 2.0 grants the SUBSCRIBE and filters on delivery; what counts is what arrives.
    b.subscribe("city/#")
    b.subscribe(A_TOPIC)
    sent = [f"private-{i}-{uuid.uuid4().hex}".encode() for i in range(3)]
    for payload in sent:
        assert a.publish(A_TOPIC, payload) == 0
    fence(pipeline, a, A_TOPIC)
    assert [p for p in pipeline.payloads(A_TOPIC) if p in sent] == sent
    # B may receive nothing at all, so it has no fence of its own: the broker wrote to both
    # subscribers in the same pass, and half a second covers B's socket.
    time.sleep(0.5)
    assert b.received == []
    a.close()
    b.close()


def test_pipeline_writes_dead_letters_only(secure_broker: SecureBroker, pipeline: Session) -> None:
    dl = f"dl-{uuid.uuid4().hex}".encode()
    forged = f"pipeline-forged-{uuid.uuid4().hex}".encode()
    assert pipeline.publish(SCHEME.deadletter, dl) == 0
    assert pipeline.publish(A_TOPIC, forged) == NOT_AUTHORISED
    assert wait_until(lambda: dl in pipeline.payloads(SCHEME.deadletter))
    a = device(secure_broker, A)
    fence(pipeline, a, A_TOPIC)
    assert forged not in pipeline.payloads()
    a.close()


def test_tls_listener_accepts_the_test_ca(secure_broker: SecureBroker, pipeline: Session) -> None:
    a = device(secure_broker, A, tls_ca=secure_broker.ca, port=secure_broker.tls_port)
    marker = f"tls-{uuid.uuid4().hex}".encode()
    assert a.publish(A_TOPIC, marker) == 0
    assert wait_until(lambda: marker in pipeline.payloads(A_TOPIC))
    # The ACL holds on the TLS listener too.
    forged = f"tls-forged-{uuid.uuid4().hex}".encode()
    assert a.publish(B_TOPIC, forged) == NOT_AUTHORISED
    fence(pipeline, a, A_TOPIC)
    assert forged not in pipeline.payloads()
    a.close()


def test_tls_listener_refuses_plain_tcp_and_unknown_cas(secure_broker: SecureBroker) -> None:
    plain = connect(secure_broker, A, secure_broker.passwords[A], port=secure_broker.tls_port, timeout=5)
    assert not plain.accepted and plain.connack is None, "a plain MQTT CONNECT got an answer on the TLS port"
    # A client trusting only the system CAs rejects the test server certificate.
    system_ca = connect(
        secure_broker, A, secure_broker.passwords[A], port=secure_broker.tls_port, tls_ca="system", timeout=5
    )
    assert not system_ca.accepted and system_ca.connack is None
