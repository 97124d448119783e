"""MqttCaseAdapter: hands cases to a platform that ingests them over MQTT.

Each case is published as JSON to ``<prefix>/case/<grid>`` (updates to
``<prefix>/update/<case key>``) at QoS 1, and counts as delivered only once the broker's
PUBACK is back. QoS 1 is at least once, and a retried row is published again, so the
payload carries the idempotency key (``idempotency_key``) for the platform to drop
duplicates. Over MQTT the platform gives no case id back and cannot be asked for a
status: the case key stands in for the id, and ``supports_status`` is False (status
can still arrive through the webhook).
"""

from __future__ import annotations

import json
import logging
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from bridge.config import MqttPlatformConfig
from bridge.contract import PlatformStatus, StatusUnsupported
from gridsense.errors import Retryable
from gridsense.model.case import CaseUpdate, GridCase

log = logging.getLogger("gridsense.bridge.mqtt")


def case_payload(case: GridCase) -> bytes:
    return (
        f'{{"type":"case","idempotency_key":{json.dumps(case.case_key)},"case":{case.model_dump_json()}}}'
    ).encode()


def update_payload(platform_case_id: str, update: CaseUpdate) -> bytes:
    return (
        f'{{"type":"update","idempotency_key":{json.dumps(update.update_key)},'
        f'"platform_case_id":{json.dumps(platform_case_id)},"update":{update.model_dump_json()}}}'
    ).encode()


class MqttCaseAdapter:
    """The ``CaseAdapter`` for MQTT ingest; connects in the background and reconnects by itself."""

    supports_status = False

    def __init__(self, cfg: MqttPlatformConfig) -> None:
        self._cfg = cfg
        self._connected = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id, protocol=mqtt.MQTTv5)
        if cfg.username is not None:
            self._client.username_pw_set(
                cfg.username, cfg.password.get_secret_value() if cfg.password else None
            )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.reconnect_delay_set(1, 30)
        self._client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        self._client.loop_start()

    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object = None) -> None:
        if rc.is_failure:
            log.error("platform broker refused the connection: %s", rc)
            return
        self._connected.set()

    def _on_disconnect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object = None) -> None:
        self._connected.clear()
        log.warning("platform broker connection lost: %s", rc)

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def _publish(self, topic: str, payload: bytes, key: str) -> None:
        if not self._connected.is_set():
            raise Retryable(f"not connected to the platform broker {self._cfg.host}:{self._cfg.port}")
        info = self._client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise Retryable(f"publish of {key} failed: {mqtt.error_string(info.rc)}")
        try:
            info.wait_for_publish(self._cfg.puback_timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise Retryable(f"publish of {key} failed: {exc}") from exc
        if not info.is_published():
            raise Retryable(f"no PUBACK for {key} within {self._cfg.puback_timeout_s}s")

    def create(self, case: GridCase) -> str:
        self._publish(
            f"{self._cfg.topic_prefix}/case/{case.place.grid_code}", case_payload(case), case.case_key
        )
        return case.case_key  # the platform answers no id over MQTT; the key names the case

    def update(self, platform_case_id: str, update: CaseUpdate) -> None:
        self._publish(
            f"{self._cfg.topic_prefix}/update/{update.case_key}",
            update_payload(platform_case_id, update),
            update.update_key,
        )

    def status(self, platform_case_id: str) -> PlatformStatus:
        raise StatusUnsupported(
            "status_unsupported", "an MQTT-ingesting platform cannot be asked for a case's status"
        )

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
