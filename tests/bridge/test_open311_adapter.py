"""The Open311 GeoReport v2 adapter against the reference platform's Open311 surface, over a socket.

GeoReport v2 has no idempotency key: these tests prove the marker lookup keeps every
case to one request when answers are lost, and that tokens, status and refusals work.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import SecretStr

from bridge.config import Open311Config
from bridge.delivery import CaseDelivery
from bridge.open311_adapter import Open311Adapter, marker
from bridge.outbox import CaseOutbox
from gridsense.config import BridgeConfig
from gridsense.db import connect
from gridsense.model.case import Evidence, GridCase
from gridsense.txn import transaction
from simulators.platform import FaultConfig, PlatformConfig, PlatformServer
from simulators.platform.config import Open311ServiceConfig, Open311SurfaceConfig
from tests.bridge.conftest import FAST, ScriptedServer, StartPlatform, build_cases, enqueue, outbox_rows
from tests.bridge.test_case_builder import builder, change, incident

pytestmark = pytest.mark.integration

MakeDelivery = Callable[..., CaseDelivery]
KEY = "demo-open311-key"


@pytest.fixture
def open311_delivery(tmp_path: Path) -> Iterator[MakeDelivery]:
    """A delivery worker with an Open311 adapter on its own connection to the state database."""
    made: list[tuple[sqlite3.Connection, Open311Adapter]] = []

    def make(url: str, **overrides: Any) -> CaseDelivery:
        cfg = Open311Config(url=url, api_key=SecretStr(KEY), timeout_s=5.0, **overrides)
        conn = connect(tmp_path / "state.db")
        adapter = Open311Adapter(cfg)
        made.append((conn, adapter))
        base = BridgeConfig(timeout_s=5.0, backoff_initial_s=0.05, backoff_max_s=0.5)
        return CaseDelivery(conn, adapter, base, seed=7)

    yield make
    for conn, adapter in made:
        adapter.close()
        conn.close()


def drain(delivery: CaseDelivery, timeout_s: float = 15.0) -> None:
    give_up = time.monotonic() + timeout_s
    while delivery.depth() and time.monotonic() < give_up:
        if not delivery.deliver_due():
            time.sleep(0.05)


def assert_each_requested_once(
    platform: PlatformServer, conn: sqlite3.Connection, cases: list[GridCase]
) -> None:
    requests = platform.requests.requests()
    keys = [r.attributes["gridsense_key"] for r in requests]
    assert sorted(keys) == sorted(c.case_key for c in cases)  # none twice, none missing
    by_key = {r.attributes["gridsense_key"]: r.request_id for r in requests}
    assert dict(conn.execute("SELECT case_key, platform_case_id FROM cases")) == by_key
    assert {k: s for k, (s, _, _) in outbox_rows(conn).items()} == {c.case_key: "delivered" for c in cases}


def test_a_case_becomes_one_request_with_codes_marker_and_media(
    platform_factory: StartPlatform, state_db: sqlite3.Connection, open311_delivery: MakeDelivery
) -> None:
    platform = platform_factory()
    snapshot = Evidence.of_file(
        "snapshot", "camera frame", b"\xff\xd8jpeg", "https://evidence.example/f/1.jpg"
    )
    [plain, with_media] = build_cases(2)
    with_media = with_media.model_copy(
        update={"evidence": [*with_media.evidence, snapshot], "description_zh": "积" * 5000}
    )
    enqueue(state_db, [plain, with_media])
    delivery = open311_delivery(platform.open311_url)

    drain(delivery)

    assert_each_requested_once(platform, state_db, [plain, with_media])
    first, second = platform.requests.requests()
    assert first.service.service_code == "EV-0111"  # found by the category in the service keywords
    assert first.fields["description"].startswith(marker(plain.case_key) + " " + plain.title_zh)
    assert first.attributes == {
        "grid_code": plain.place.grid_code,
        "level": "紧急",
        "gridsense_key": plain.case_key,
    }
    assert (float(first.fields["lat"]), float(first.fields["long"])) == pytest.approx(
        (plain.place.lat, plain.place.lon), abs=1e-6
    )
    assert "media_url" not in first.fields  # inline readings have no URL
    assert second.fields["media_url"] == "https://evidence.example/f/1.jpg"
    assert len(second.fields["description"]) == 4000
    assert second.fields["description"].startswith(marker(with_media.case_key))
    # The platform's deadline is the service's limit (0111: 2 clock hours) from filing.
    assert (first.deadline - first.requested_at).total_seconds() == 7200


@pytest.mark.parametrize("style", ["drop", "http_500"])
@pytest.mark.parametrize("lookup", ["always", "after_unknown_outcome"])
def test_a_lost_answer_is_adopted_not_posted_again(
    platform_factory: StartPlatform,
    state_db: sqlite3.Connection,
    open311_delivery: MakeDelivery,
    style: Literal["drop", "http_500"],
    lookup: Literal["always", "after_unknown_outcome"],
) -> None:
    # Every POST stores the request and loses the answer; only the marker search can save us.
    platform = platform_factory(faults=FaultConfig(lose_response_rate=1.0, lost_response_style=style))
    cases = build_cases(3)
    enqueue(state_db, cases)
    delivery = open311_delivery(platform.open311_url, lookup_before_create=lookup)

    drain(delivery)

    assert_each_requested_once(platform, state_db, cases)
    assert delivery.stats.retried == 3
    assert {a for _, a, _ in outbox_rows(state_db).values()} == {2}
    posts = [r for r in platform.requests.requests()]
    assert len(posts) == 3


def test_platform_errors_are_retried_until_each_case_is_one_request(
    platform_factory: StartPlatform, state_db: sqlite3.Connection, open311_delivery: MakeDelivery
) -> None:
    platform = platform_factory(faults=FaultConfig(error_rate=0.2, seed=5))
    cases = build_cases(8)
    enqueue(state_db, cases)
    delivery = open311_delivery(platform.open311_url)

    drain(delivery, timeout_s=30)

    assert delivery.stats.retried > 0
    assert_each_requested_once(platform, state_db, cases)


def test_a_token_answer_is_resolved_when_the_status_is_read(
    platform_factory: StartPlatform, state_db: sqlite3.Connection, open311_delivery: MakeDelivery
) -> None:
    config = PlatformConfig(workflow=FAST, open311=Open311SurfaceConfig(token_rate=1.0, token_delay_s=0.5))
    platform = platform_factory(config)
    [case] = build_cases(1)
    enqueue(state_db, [case])
    delivery = open311_delivery(platform.open311_url)

    drain(delivery)
    [request] = platform.requests.requests()
    assert CaseOutbox(state_db).platform_id(case.case_key) == (f"token:{request.token}", "filed")

    delivery.poll_status()  # not resolved yet: accepted, open, still under its token
    assert CaseOutbox(state_db).platform_id(case.case_key) == (f"token:{request.token}", "立案")
    time.sleep(0.6)
    delivery.poll_status()

    platform_id, status = CaseOutbox(state_db).platform_id(case.case_key)
    assert platform_id == request.request_id
    assert status in {"立案", "结案"}


def test_open_and_closed_follow_the_workflow_to_closed(
    platform_factory: StartPlatform, state_db: sqlite3.Connection, open311_delivery: MakeDelivery
) -> None:
    platform = platform_factory()
    cases = build_cases(2)
    enqueue(state_db, cases)
    delivery = open311_delivery(platform.open311_url)
    drain(delivery)

    give_up = time.monotonic() + 10
    while CaseOutbox(state_db).open_cases() and time.monotonic() < give_up:
        delivery.poll_status()
        time.sleep(0.05)

    assert set(state_db.execute("SELECT status, status_code FROM cases")) == {("结案", None)}
    assert delivery.stats.unknown_status == 0


def test_a_wrong_service_code_is_dead_lettered_and_replayed_after_the_fix(
    platform_factory: StartPlatform, state_db: sqlite3.Connection, open311_delivery: MakeDelivery
) -> None:
    platform = platform_factory()
    [case] = build_cases(1)
    enqueue(state_db, [case])
    wrong = open311_delivery(platform.open311_url, service_codes={"event:0111": "EV-9999"})

    drain(wrong)

    status, attempts, error = outbox_rows(state_db)[case.case_key]
    assert (status, attempts) == ("rejected", 1)
    assert error is not None and error.startswith("open311_404: ")
    assert json.loads(error.removeprefix("open311_404: ")) == [
        {"code": 404, "description": "service_code EV-9999 not found"}
    ]
    assert platform.requests.requests() == []

    # The operator fixes the mapping and replays the row.
    [dead] = CaseOutbox(state_db).dead_letters()
    assert CaseOutbox(state_db).replay(dead.seq)
    fixed = open311_delivery(platform.open311_url, service_codes={"event:0111": "EV-0111"})
    drain(fixed)

    assert_each_requested_once(platform, state_db, [case])


def test_a_category_without_a_service_is_refused_with_a_reason(
    platform_factory: StartPlatform, state_db: sqlite3.Connection, open311_delivery: MakeDelivery
) -> None:
    surface = Open311SurfaceConfig(
        services=[
            Open311ServiceConfig(service_code="CP-0103", service_name="雨水井盖", category="component:0103")
        ]
    )
    platform = platform_factory(PlatformConfig(workflow=FAST, open311=surface))
    [case] = build_cases(1)
    enqueue(state_db, [case])
    delivery = open311_delivery(platform.open311_url)

    drain(delivery)

    status, _, error = outbox_rows(state_db)[case.case_key]
    assert status == "rejected"
    assert error is not None and error.startswith("no_service_code: no Open311 service for event:0111")


@pytest.mark.parametrize(("policy", "outcome"), [("dead_letter", "rejected"), ("drop", "delivered")])
def test_updates_cannot_be_sent_over_georeport_v2(
    platform_factory: StartPlatform,
    state_db: sqlite3.Connection,
    open311_delivery: MakeDelivery,
    policy: Literal["dead_letter", "drop"],
    outcome: str,
) -> None:
    platform = platform_factory()
    inc = incident()
    case = builder().case(change(inc))
    cleared = builder().update(change(inc, "cleared"))
    outbox = CaseOutbox(state_db)
    with transaction(state_db):
        outbox.enqueue_case(case)
        outbox.enqueue_update(cleared, inc.grid_code)
    delivery = open311_delivery(platform.open311_url, updates=policy)

    drain(delivery)

    rows = outbox_rows(state_db)
    assert rows[case.case_key][0] == "delivered"
    assert rows[cleared.update_key][0] == outcome
    if outcome == "rejected":
        assert (rows[cleared.update_key][2] or "").startswith("unsupported_by_platform: GeoReport v2")
    assert len(platform.requests.requests()) == 1


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"filed", "not JSON"),
        (b'[{"service_notice": "thanks"}]', "neither service_request_id nor token"),
        (b'{"service_request_id": "1"}', "not a non-empty array"),
    ],
)
def test_an_unusable_answer_keeps_the_case_pending_and_is_counted(
    scripted_platform: ScriptedServer,
    state_db: sqlite3.Connection,
    open311_delivery: MakeDelivery,
    body: bytes,
    error: str,
) -> None:
    url, seen = scripted_platform(
        {
            ("POST", "/requests.json"): (201, "application/json", body),
            ("GET", "/requests.json"): (200, "application/json", b"[]"),
        }
    )
    [case] = build_cases(1)
    enqueue(state_db, [case])
    delivery = open311_delivery(url, service_codes={"event:0111": "EV-0111"})

    for _ in range(2):
        assert delivery.deliver_due() == 0
        state_db.execute("UPDATE outbox SET next_attempt_ms = 0")

    status, attempts, last_error = outbox_rows(state_db)[case.case_key]
    assert (status, attempts) == ("pending", 2)
    assert last_error is not None and error in last_error
    assert delivery.stats.bad_responses == 2
    # Each attempt searched for the marker before posting, since the outcome was unknown.
    assert [m for m, _, _ in seen] == ["GET", "POST", "GET", "POST"]
