"""The MQTT adapter against a real Mosquitto: QoS 1 with PUBACK, the key in the payload, no status."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bridge.config import MqttPlatformConfig
from bridge.contract import StatusUnsupported
from bridge.delivery import CaseDelivery
from bridge.mqtt_adapter import MqttCaseAdapter
from bridge.outbox import CaseOutbox
from gridsense.config import BridgeConfig
from gridsense.db import connect
from gridsense.embedded_broker import MosquittoBroker
from gridsense.txn import transaction
from tests.bridge.conftest import build_cases, enqueue, outbox_rows, wait_until
from tests.bridge.test_case_builder import builder, change, incident
from tests.fixtures.mosquitto import Subscription, subscribed

pytestmark = pytest.mark.integration


@dataclass
class Intake:
    """The platform's side: a QoS 1 subscriber keeping what arrives."""

    sub: Subscription

    @property
    def messages(self) -> list[tuple[str, dict[str, Any]]]:
        return [(topic, json.loads(payload)) for topic, payload in self.sub.messages]

    def keys(self, kind: str) -> list[str]:
        return [m["idempotency_key"] for _, m in self.messages if m["type"] == kind]


@pytest.fixture
def intake() -> Iterator[Callable[[MosquittoBroker, str], Intake]]:
    with ExitStack() as stack:
        yield lambda broker, prefix: Intake(stack.enter_context(subscribed(broker, f"{prefix}/#")))


def mqtt_delivery(
    tmp_path: Path, broker: MosquittoBroker, prefix: str
) -> tuple[CaseDelivery, MqttCaseAdapter]:
    adapter = MqttCaseAdapter(
        MqttPlatformConfig(
            port=broker.port,
            topic_prefix=prefix,
            client_id="bridge-" + uuid.uuid4().hex[:8],
            puback_timeout_s=5.0,
        )
    )
    cfg = BridgeConfig(backoff_initial_s=0.05, backoff_max_s=0.5)
    return CaseDelivery(connect(tmp_path / "state.db"), adapter, cfg), adapter


def drain(delivery: CaseDelivery) -> bool:
    return wait_until(lambda: delivery.deliver_due() >= 0 and delivery.depth() == 0, 20)


def test_cases_and_updates_are_published_once_each_with_their_key(
    mosquitto: MosquittoBroker,
    topic_root: str,
    intake: Callable[[MosquittoBroker, str], Intake],
    state_db: sqlite3.Connection,
    tmp_path: Path,
) -> None:
    prefix = f"{topic_root}/intake"
    got = intake(mosquitto, prefix)
    inc = incident()
    cases = [builder().case(change(inc)), *build_cases(4)[1:]]
    cleared = builder().update(change(inc, "cleared"))
    enqueue(state_db, cases)
    with transaction(state_db):
        CaseOutbox(state_db).enqueue_update(cleared, inc.grid_code)
    delivery, adapter = mqtt_delivery(tmp_path, mosquitto, prefix)
    assert adapter.wait_connected(10)

    assert drain(delivery)
    assert wait_until(lambda: len(got.messages) >= 5, 5)

    assert sorted(got.keys("case")) == sorted(c.case_key for c in cases)
    assert got.keys("update") == [cleared.update_key]
    topics = {t for t, _ in got.messages}
    assert f"{prefix}/case/{inc.grid_code}" in topics and f"{prefix}/update/{cleared.case_key}" in topics
    first = next(
        m for t, m in got.messages if m["type"] == "case" and m["idempotency_key"] == cases[0].case_key
    )
    assert first["case"] == json.loads(cases[0].model_dump_json())
    # No id comes back over MQTT: the key names the case; status cannot be asked.
    assert dict(state_db.execute("SELECT case_key, platform_case_id FROM cases")) == {
        c.case_key: c.case_key for c in cases
    }
    assert delivery.poll_status() == 0
    with pytest.raises(StatusUnsupported):
        adapter.status(cases[0].case_key)
    adapter.close()


def test_a_broker_outage_holds_the_cases_until_it_returns(
    mosquitto_factory: Callable[..., MosquittoBroker],
    intake: Callable[[MosquittoBroker, str], Intake],
    state_db: sqlite3.Connection,
    tmp_path: Path,
) -> None:
    broker = mosquitto_factory()
    delivery, adapter = mqtt_delivery(tmp_path, broker, "platform/intake")
    assert adapter.wait_connected(10)
    broker.stop()
    cases = build_cases(3)
    enqueue(state_db, cases)
    assert wait_until(lambda: not adapter.wait_connected(0), 5)

    assert delivery.deliver_due() == 0
    assert {s for s, _, _ in outbox_rows(state_db).values()} == {"pending"}
    assert delivery.stats.retried >= 1

    broker.start()
    got = intake(broker, "platform/intake")
    assert adapter.wait_connected(30)
    assert drain(delivery)
    assert wait_until(lambda: len(got.keys("case")) >= 3, 5)

    assert sorted(set(got.keys("case"))) == sorted(c.case_key for c in cases)
    assert CaseOutbox(state_db).counts() == {"delivered": 3}
    adapter.close()
