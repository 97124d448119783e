"""MqttPublisher: how every simulator reaches the pipeline, exactly like a device would."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class MqttPublisher:
    """A QoS 1 publisher that waits for the broker's PUBACKs in windows."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        window: int = 1000,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.max_inflight_messages_set(window)
        self._window = window
        self._connected = threading.Event()
        self._client.on_connect = lambda *_a: self._connected.set()
        self._client.connect(host, port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(10):
            raise ConnectionError(f"cannot connect to the broker at {host}:{port}")
        self.sent = 0

    def publish(self, messages: Iterable[tuple[str, bytes]], qos: int = 1) -> int:
        """Publish and wait until the broker has acknowledged every message; return the count."""
        pending: list[mqtt.MQTTMessageInfo] = []
        n = 0
        for topic, payload in messages:
            pending.append(self._client.publish(topic, payload, qos=qos))
            n += 1
            if len(pending) >= self._window:
                for info in pending:
                    info.wait_for_publish(30)
                pending.clear()
        for info in pending:
            info.wait_for_publish(30)
        self.sent += n
        return n

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> MqttPublisher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
