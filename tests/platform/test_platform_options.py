"""Reference platform options: bearer token, withdrawal, late closings, delayed answers, status pushes."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest

from simulators.platform import FaultConfig, PlatformConfig, PlatformServer, WorkflowConfig
from simulators.platform.config import WebhookPushConfig
from tests.platform.test_platform import BEIJING, T0, TEN_S_STEPS, SteppedClock, file_case, grid_case

pytestmark = pytest.mark.integration

FAST = WorkflowConfig(step_delay_s=(0.05, 0.1))


def test_a_configured_token_guards_the_native_api() -> None:
    config = PlatformConfig(workflow=FAST, api_token="the-token")
    case = grid_case("token-guarded-case-0001")
    with PlatformServer(config) as server, httpx.Client(base_url=server.url) as client:
        missing = file_case(client, case)
        wrong = client.post(
            "/api/v1/cases",
            json=case.model_dump(mode="json"),
            headers={"Idempotency-Key": case.case_key, "Authorization": "Bearer guess"},
        )
        right = client.post(
            "/api/v1/cases",
            json=case.model_dump(mode="json"),
            headers={"Idempotency-Key": case.case_key, "Authorization": "Bearer the-token"},
        )
        health = client.get("/healthz")

    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 201)
    assert missing.json() == {"detail": "missing or wrong bearer token"}
    assert health.status_code == 200
    assert len(server.store.cases()) == 1


def test_a_case_can_be_withdrawn_only_before_dispatch() -> None:
    clock = SteppedClock(T0)
    with (
        PlatformServer(PlatformConfig(workflow=TEN_S_STEPS), clock=clock) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        early = file_case(client, grid_case("withdraw-early-0001")).json()["case_id"]
        late = file_case(client, grid_case("withdraw-late-0001")).json()["case_id"]
        clock.advance(5)
        first = client.post(f"/api/v1/cases/{early}/withdraw")
        again = client.post(f"/api/v1/cases/{early}/withdraw")
        clock.advance(10)  # the second case is dispatched (派遣) now
        too_late = client.post(f"/api/v1/cases/{late}/withdraw")
        unknown = client.post("/api/v1/cases/BJ-999999/withdraw")
        clock.advance(100)
        statuses = [c["status"] for c in client.get("/api/v1/cases").json()["cases"]]

    assert (first.status_code, again.status_code, too_late.status_code, unknown.status_code) == (
        200,
        200,
        409,
        404,
    )
    assert first.json() == {"case_id": early, "status": "作废", "withdrawn": True}
    assert statuses == ["作废", "结案"]


def test_a_late_case_closes_after_its_deadline_and_counts_as_late() -> None:
    clock = SteppedClock(T0)
    workflow = TEN_S_STEPS.model_copy(update={"late_rate": 1.0})
    with (
        PlatformServer(PlatformConfig(workflow=workflow), clock=clock) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        # Normally closed at +40 s, inside the 60 s deadline; late: one step past the deadline.
        case_id = file_case(
            client, grid_case("late-closing-case-0001", deadline=T0 + timedelta(seconds=60))
        ).json()["case_id"]
        clock.advance(50)
        at_50 = client.get(f"/api/v1/cases/{case_id}").json()
        clock.advance(30)
        at_80 = client.get(f"/api/v1/cases/{case_id}").json()
        indicators = client.get("/api/v1/indicators").json()

    assert at_50["status"] == "核查"
    assert at_80["status"] == "结案"
    assert at_80["history"][-1]["at"] == (T0 + timedelta(seconds=70)).isoformat()
    assert at_80["closed_on_time"] is False
    assert (indicators["closed"], indicators["closed_on_time"]) == (1, 0)


def test_a_delayed_answer_comes_after_the_case_is_stored() -> None:
    config = PlatformConfig(workflow=FAST, faults=FaultConfig(response_delay_s=0.5))
    with PlatformServer(config) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        seen: list[int] = []
        poster = threading.Thread(
            target=lambda: seen.append(file_case(client, grid_case("delayed-answer-case-0001")).status_code)
        )
        poster.start()
        time.sleep(0.25)
        stored_before_answer = len(server.store.cases())
        poster.join()

    assert stored_before_answer == 1
    assert seen == [201]


class Receiver(BaseHTTPRequestHandler):
    pushes: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).pushes.append((dict(self.headers.items()), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    pushes: list[tuple[dict[str, str], bytes]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("R", (Receiver,), {"pushes": pushes}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", pushes
    server.shutdown()
    server.server_close()


def test_status_changes_are_pushed_signed(receiver: tuple[str, list[tuple[dict[str, str], bytes]]]) -> None:
    url, pushes = receiver
    secret = "a-shared-secret-of-16+"
    clock = SteppedClock(datetime.now(BEIJING))
    config = PlatformConfig(
        workflow=TEN_S_STEPS, webhook=WebhookPushConfig(url=url, secret=secret, interval_s=0.05)
    )
    with PlatformServer(config, clock=clock) as server, httpx.Client(base_url=server.url) as client:
        case_id = file_case(client, grid_case("pushed-case-0001")).json()["case_id"]
        deadline = time.monotonic() + 5
        while not pushes and time.monotonic() < deadline:
            time.sleep(0.02)
        clock.advance(25)  # two more steps: only the latest status is pushed
        while len(pushes) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)

    assert [json.loads(body)["status"] for _, body in pushes] == ["立案", "处置"]
    headers, body = pushes[1]
    doc = json.loads(body)
    assert (doc["case_id"], doc["external_id"], doc["status_code"]) == (case_id, "pushed-case-0001", 4)
    ts, nonce = headers["X-Gridsense-Timestamp"], headers["X-Gridsense-Nonce"]
    expected = hmac.new(secret.encode(), f"{ts}.{nonce}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-Gridsense-Signature"] == f"sha256={expected}"
    clock_skew_s = abs(int(ts) - time.time())  # the signed timestamp is the sender's now
    assert clock_skew_s < 60
    assert pushes[0][0]["X-Gridsense-Nonce"] != nonce
