"""The signed status webhook, served for real: good pushes apply, bad ones are refused, logged,
and change nothing; the reference platform's pushes carry cases to closed without polling."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from bridge.config import StatusSyncConfig, WebhookConfig
from bridge.delivery import CaseDelivery
from bridge.factory import build_webhook
from bridge.native_adapter import NativeRestAdapter
from bridge.outbox import CaseOutbox
from bridge.webhook import StatusWebhook, signed_headers
from gridsense.config import BridgeConfig
from gridsense.db import connect
from gridsense.model.case import GridCase
from simulators.platform import PlatformConfig
from simulators.platform.config import WebhookPushConfig
from tests.bridge.conftest import FAST, ServeApp, StartPlatform, build_cases, enqueue, wait_until

pytestmark = pytest.mark.integration

SECRET = "s3cret-shared-with-the-platform"
PATH = "/bridge/status"


@pytest.fixture
def receiver(
    tmp_path: Path, state_db: sqlite3.Connection, serve_app: ServeApp
) -> Iterator[tuple[str, StatusWebhook]]:
    """The receiver mounted in an app of its own, on its own connection to the state database."""
    conn = connect(tmp_path / "state.db")
    router, webhook = build_webhook(
        WebhookConfig(secret=SecretStr(SECRET), tolerance_s=60), conn, StatusSyncConfig()
    )
    app = FastAPI()
    app.include_router(router)
    yield serve_app(app) + PATH, webhook
    conn.close()


def filed(conn: sqlite3.Connection, platform_id: str = "BJ-000001") -> GridCase:
    [case] = build_cases(1)
    enqueue(conn, [case])
    outbox = CaseOutbox(conn)
    [row] = outbox.due()
    outbox.delivered(row, platform_id)
    return case


def push(
    url: str,
    doc: object,
    *,
    secret: str = SECRET,
    at: float | None = None,
    nonce: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body = json.dumps(doc, ensure_ascii=False).encode() if not isinstance(doc, bytes) else doc
    signed = signed_headers(secret.encode(), body, nonce or uuid.uuid4().hex, at)
    return httpx.post(url, content=body, headers=headers if headers is not None else signed, timeout=5)


def status_of(conn: sqlite3.Connection, key: str) -> tuple[str, int | None]:
    return conn.execute("SELECT status, status_code FROM cases WHERE case_key = ?", (key,)).fetchone()


def test_a_signed_push_sets_the_status(
    receiver: tuple[str, StatusWebhook], state_db: sqlite3.Connection
) -> None:
    url, webhook = receiver
    case = filed(state_db)

    answer = push(url, {"case_id": "BJ-000001", "status": "派遣", "status_code": 3})

    assert answer.status_code == 200
    assert answer.json() == {"case_id": "BJ-000001", "outcome": "changed"}
    assert status_of(state_db, case.case_key) == ("派遣", 3)
    assert webhook.stats.applied == 1


@pytest.mark.parametrize(
    ("tamper", "code", "counter"),
    [
        ("wrong_secret", 401, "bad_signature"),
        ("body_changed", 401, "bad_signature"),
        ("old_timestamp", 401, "stale"),
        ("future_timestamp", 401, "stale"),
        ("no_headers", 401, "bad_signature"),
        ("unknown_case", 404, "unknown_case"),
        ("unknown_status", 422, "unknown_status"),
        ("not_json", 400, "bad_body"),
    ],
)
def test_a_bad_push_is_refused_logged_and_changes_nothing(
    receiver: tuple[str, StatusWebhook],
    state_db: sqlite3.Connection,
    caplog: pytest.LogCaptureFixture,
    tamper: str,
    code: int,
    counter: str,
) -> None:
    url, webhook = receiver
    case = filed(state_db)
    good = {"case_id": "BJ-000001", "status": "结案", "status_code": 6}
    body = json.dumps(good).encode()

    with caplog.at_level(logging.WARNING, "gridsense.bridge.webhook"):
        if tamper == "wrong_secret":
            answer = push(url, good, secret="not-the-shared-secret")
        elif tamper == "body_changed":
            headers = signed_headers(SECRET.encode(), body, uuid.uuid4().hex)
            answer = httpx.post(url, content=body.replace(b"6", b"7"), headers=headers)
        elif tamper == "old_timestamp":
            answer = push(url, good, at=time.time() - 120)
        elif tamper == "future_timestamp":
            answer = push(url, good, at=time.time() + 120)
        elif tamper == "no_headers":
            answer = push(url, good, headers={"Content-Type": "application/json"})
        elif tamper == "unknown_case":
            answer = push(url, {**good, "case_id": "BJ-999999"})
        elif tamper == "unknown_status":
            answer = push(url, {**good, "status": "审核中", "status_code": 42})
        else:
            answer = push(url, b"status=closed")

    assert answer.status_code == code
    assert status_of(state_db, case.case_key) == ("filed", None)
    assert CaseOutbox(state_db).counts() == {"delivered": 1}
    assert getattr(webhook.stats, counter) == 1
    assert webhook.stats.applied == 0
    assert f"webhook refused {code}" in caplog.text


def test_a_replayed_push_is_refused(
    receiver: tuple[str, StatusWebhook], state_db: sqlite3.Connection
) -> None:
    url, webhook = receiver
    case = filed(state_db)
    nonce = uuid.uuid4().hex

    first = push(url, {"case_id": "BJ-000001", "status": "派遣"}, nonce=nonce)
    state_db.execute("UPDATE cases SET status = 'filed' WHERE case_key = ?", (case.case_key,))
    again = push(url, {"case_id": "BJ-000001", "status": "派遣"}, nonce=nonce)

    assert (first.status_code, again.status_code) == (200, 401)
    assert again.json() == {"error": f"nonce {nonce!r} already used"}
    assert status_of(state_db, case.case_key) == ("filed", None)
    assert webhook.stats.replayed == 1


def test_platform_pushes_carry_cases_to_closed_without_polling(
    platform_factory: StartPlatform,
    state_db: sqlite3.Connection,
    tmp_path: Path,
    receiver: tuple[str, StatusWebhook],
) -> None:
    url, webhook = receiver
    platform = platform_factory(
        PlatformConfig(workflow=FAST, webhook=WebhookPushConfig(url=url, secret=SECRET, interval_s=0.05))
    )
    cases = build_cases(3)
    enqueue(state_db, cases)
    cfg = BridgeConfig(url=platform.url, timeout_s=5.0)
    adapter = NativeRestAdapter(cfg)
    delivery = CaseDelivery(connect(tmp_path / "state.db"), adapter, cfg)
    while delivery.depth():
        delivery.deliver_due()

    def all_closed() -> bool:
        return {status_of(state_db, c.case_key)[0] for c in cases} == {"结案"}

    assert wait_until(all_closed, 10)
    assert webhook.stats.applied >= 3
    assert platform.pusher is not None and platform.pusher.sent >= 3
    assert delivery.stats.unknown_status == 0
    adapter.close()
