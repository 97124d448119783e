"""Client identity with per-device credentials: the broker goes by the authenticated user name,
never by the client id a client chooses, and the pipeline checks the payload against the topic.

The three layers, each where it can be checked:
- user name vs password: the password file (test_broker_acl: wrong and swapped passwords);
- user name vs topic: the ACL's ``pattern write city/+/+/+/%u`` (here and test_broker_acl);
- topic vs payload: the pipeline, which dead-letters a payload naming another device as
  ``device_mismatch`` (ingest/normalise.py; end to end in tests/e2e/test_storm_to_case.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gridsense.app import load_registries
from gridsense.config import GridsenseConfig
from gridsense.errors import Rejected
from ingest.gauge_codec import decode_gauge
from ingest.normalise import GaugeNormaliser
from tests.security.conftest import (
    A_TOPIC,
    B_TOPIC,
    NOT_AUTHORISED,
    PIPELINE_USER,
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


def test_another_devices_client_id_gives_none_of_its_rights(
    secure_broker: SecureBroker, pipeline: Session
) -> None:
    a_as_b = device(secure_broker, A, client_id=B)
    forged = f"as-b-{uuid.uuid4().hex}".encode()
    assert a_as_b.publish(B_TOPIC, forged) == NOT_AUTHORISED
    fence(pipeline, a_as_b, A_TOPIC)  # still allowed on its own topic: the user name is what counts
    assert forged not in pipeline.payloads()
    a_as_b.close()


def test_a_device_cannot_take_over_the_pipeline_session(
    secure_broker: SecureBroker, pipeline: Session
) -> None:
    """With use_username_as_clientid the broker renames the impostor's client id to its user
    name, so the pipeline's persistent session stays the pipeline's."""
    impostor = device(secure_broker, A, client_id=PIPELINE_USER)
    fence(pipeline, impostor, A_TOPIC)
    assert pipeline.accepted and pipeline.disconnects == 0
    impostor.close()
    # The control: a second connection as the pipeline user does take the first one's place,
    # so the check above would have seen a takeover.
    second = connect(secure_broker, PIPELINE_USER, secure_broker.passwords[PIPELINE_USER])
    assert second.accepted
    assert wait_until(lambda: pipeline.disconnects == 1)
    second.close()


def test_a_payload_naming_another_device_passes_the_broker_and_is_dead_lettered(
    secure_broker: SecureBroker, pipeline: Session
) -> None:
    """The ACL cannot read payloads: A's own topic carrying B's id gets through the broker, and the
    pipeline's own checks reject what arrived as device_mismatch."""
    a = device(secure_broker, A)
    now = datetime.now(UTC)  # microseconds make the payload unique to this run
    payload = f'{{"device_id": "{B}", "ts": "{now.isoformat()}", "rain_mm": 1.5}}'.encode()
    assert a.publish(A_TOPIC, payload) == 0
    assert wait_until(lambda: payload in pipeline.payloads(A_TOPIC))
    a.close()

    normaliser = GaugeNormaliser(load_registries(GridsenseConfig()).devices, lateness_s=3600)
    (sample,) = decode_gauge(payload, now, timedelta(days=1))
    with pytest.raises(Rejected) as exc:
        normaliser.normalise(SCHEME.parse(A_TOPIC), sample)
    assert exc.value.reason == "device_mismatch"
