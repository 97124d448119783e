"""CaseDelivery against the real reference platform over a socket: exactly once, in order, or dead-lettered.

Tests drive ``deliver_due()`` in bounded loops instead of the worker thread, and never
assert wall-clock durations.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest

from bridge.delivery import CaseDelivery
from bridge.native_adapter import NativeRestAdapter
from bridge.outbox import CaseOutbox, now_ms
from gridsense.config import BridgeConfig
from gridsense.db import connect
from gridsense.model.case import GridCase
from gridsense.model.registry import GridRegistry
from gridsense.txn import transaction
from simulators.platform import FaultConfig, PlatformConfig, PlatformServer, WorkflowConfig
from tests.bridge.test_case_builder import DEMO_GRIDS, GRID, OPENED, builder, change, incident

pytestmark = pytest.mark.integration

FAST = WorkflowConfig(step_delay_s=(0.05, 0.1))
ALL_GRIDS = [g.grid_code for g in GridRegistry.load(DEMO_GRIDS)]

Serve = Callable[..., PlatformServer]
MakeDelivery = Callable[..., CaseDelivery]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start reference platforms on free ports; all are stopped after the test."""
    servers: list[PlatformServer] = []

    def start(faults: FaultConfig | None = None, workflow: WorkflowConfig = FAST) -> PlatformServer:
        server = PlatformServer(PlatformConfig(workflow=workflow, faults=faults or FaultConfig()))
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """The pipeline's side of the state database: enqueues and assertions."""
    conn = connect(tmp_path / "state.db")
    yield conn
    conn.close()


@pytest.fixture
def delivery_for(tmp_path: Path) -> Iterator[MakeDelivery]:
    """A delivery worker with its own connection, as in production, talking to ``url``."""
    made: list[tuple[sqlite3.Connection, NativeRestAdapter]] = []

    def make(
        url: str,
        adapter_type: type[NativeRestAdapter] = NativeRestAdapter,
        **overrides: Any,
    ) -> CaseDelivery:
        settings: dict[str, Any] = {
            "url": url,
            "timeout_s": 5.0,
            "backoff_initial_s": 0.05,
            "backoff_max_s": 0.5,  # also the breaker's cooldown
            **overrides,
        }
        cfg = BridgeConfig(**settings)
        conn = connect(tmp_path / "state.db")
        adapter = adapter_type(cfg)
        made.append((conn, adapter))
        return CaseDelivery(conn, adapter, cfg, seed=7)

    yield make
    for conn, adapter in made:
        adapter.close()
        conn.close()


def queue_cases(conn: sqlite3.Connection, n: int) -> list[GridCase]:
    """File one opened incident in each of ``n`` different demo grids."""
    cases = [builder().case(change(incident(grid))) for grid in ALL_GRIDS[:n]]
    outbox = CaseOutbox(conn)
    with transaction(conn):
        for case in cases:
            assert outbox.enqueue_case(case)
    return cases


def drain(delivery: CaseDelivery, timeout_s: float = 15.0) -> None:
    """Deliver until the outbox is empty or ``timeout_s`` passes (then the test's asserts fail)."""
    give_up = time.monotonic() + timeout_s
    while delivery.depth() and time.monotonic() < give_up:
        if not delivery.deliver_due():
            time.sleep(0.05)


def outbox_rows(conn: sqlite3.Connection) -> dict[str, tuple[str, int, str | None]]:
    """message_key -> (status, attempts, last_error)."""
    return {
        k: (s, a, e)
        for k, s, a, e in conn.execute("SELECT message_key, status, attempts, last_error FROM outbox")
    }


def filed_ids(conn: sqlite3.Connection) -> dict[str, str | None]:
    return dict(conn.execute("SELECT case_key, platform_case_id FROM cases"))


def assert_each_filed_once(platform: PlatformServer, conn: sqlite3.Connection, cases: list[GridCase]) -> None:
    stored = platform.store.cases()
    external = [c.external_id for c in stored]
    assert len(stored) == len(cases)
    assert sorted(external) == sorted(c.case_key for c in cases)  # no duplicates, none missing
    assert {k: (s, e) for k, (s, _, e) in outbox_rows(conn).items()} == {
        c.case_key: ("delivered", None) for c in cases
    }
    # The id the bridge recorded is the id of the one case the platform holds.
    assert filed_ids(conn) == {c.case_key: platform.store.by_key(c.case_key).case_id for c in cases}


def test_happy_path_files_each_case_once(
    serve: Serve, db: sqlite3.Connection, delivery_for: MakeDelivery
) -> None:
    platform = serve()
    cases = queue_cases(db, 5)
    delivery = delivery_for(platform.url)

    drain(delivery)

    assert_each_filed_once(platform, db, cases)
    assert {a for _, a, _ in outbox_rows(db).values()} == {1}
    assert (delivery.stats.delivered, delivery.stats.retried, delivery.stats.rejected) == (5, 0, 0)
    # What the platform holds is what was built: codes, deadline, place survive the wire.
    for case in cases:
        assert platform.store.by_key(case.case_key).case == case
    assert platform.store.by_key(cases[0].case_key).deadline.isoformat() == "2026-07-21T10:30:00+08:00"
    # Nothing is left to send: another pass files nothing new.
    assert delivery.deliver_due() == 0
    assert len(platform.store.cases()) == 5


def test_platform_errors_are_retried_until_each_case_is_filed_once(
    serve: Serve, db: sqlite3.Connection, delivery_for: MakeDelivery
) -> None:
    platform = serve(FaultConfig(error_rate=0.2, seed=3))
    cases = queue_cases(db, 8)
    delivery = delivery_for(platform.url)

    drain(delivery)

    assert delivery.stats.retried > 0  # the faults did strike
    assert_each_filed_once(platform, db, cases)
    assert delivery.stats.delivered == 8


@pytest.mark.parametrize("style", ["drop", "http_500"])
def test_lost_responses_do_not_duplicate_cases(
    serve: Serve, db: sqlite3.Connection, delivery_for: MakeDelivery, style: Literal["drop", "http_500"]
) -> None:
    # Every first create is stored but its answer is lost; the retry with the same
    # Idempotency-Key gets the already filed case back (200) instead of a second one.
    platform = serve(FaultConfig(lose_response_rate=1.0, lost_response_style=style))
    cases = queue_cases(db, 3)
    delivery = delivery_for(platform.url)

    drain(delivery)

    assert delivery.stats.retried >= 3
    assert_each_filed_once(platform, db, cases)
    assert {a for _, a, _ in outbox_rows(db).values()} == {2}


def test_outage_holds_delivery_opens_the_breaker_then_files_each_case_once(
    serve: Serve, db: sqlite3.Connection, delivery_for: MakeDelivery
) -> None:
    platform = serve()
    cases = queue_cases(db, 6)
    delivery = delivery_for(platform.url)
    platform.set_down(True)

    assert delivery.deliver_due() == 0
    assert delivery.breaker.opened_at is not None
    assert delivery.breaker.failures >= delivery.breaker.threshold
    # The open breaker stopped the pass before the sixth case was even tried.
    assert sum(a for _, a, _ in outbox_rows(db).values()) == delivery.breaker.threshold
    for _ in range(5):
        time.sleep(0.1)
        assert delivery.deliver_due() == 0
    assert platform.store.cases() == []
    assert delivery.stats.delivered == 0
    assert CaseOutbox(db).counts() == {"pending": 6}
    assert all("503" in (e or "") for _, a, e in outbox_rows(db).values() if a)

    platform.set_down(False)
    drain(delivery)

    assert_each_filed_once(platform, db, cases)
    assert delivery.breaker.opened_at is None


def test_after_an_outage_the_backlog_goes_out_with_the_probe_not_after_each_backoff(
    serve: Serve, db: sqlite3.Connection, tmp_path: Path
) -> None:
    """While the platform is away the breaker lets one probe through per cooldown, backlog or
    not; once a probe gets through, every waiting row goes out, however long its own backoff
    still runs."""
    platform = serve()
    cases = queue_cases(db, 10)
    cfg = BridgeConfig(url=platform.url, timeout_s=5.0, backoff_initial_s=30.0, backoff_max_s=60.0)
    adapter = NativeRestAdapter(cfg)
    delivery = CaseDelivery(
        connect(tmp_path / "state.db"), adapter, cfg, seed=7, concurrency=8, backlog_rows=2
    )
    delivery.breaker.cooldown_s = 0.2  # the default (5 s) would only slow the test down

    def attempts() -> int:
        return sum(a for _, a, _ in outbox_rows(db).values())

    try:
        platform.set_down(True)
        assert delivery.deliver_due() == 0
        # The backlog went to the threads at once, until the breaker opened.
        first = attempts()
        assert first >= delivery.breaker.threshold
        assert delivery.breaker.opened_at is not None
        time.sleep(0.3)
        assert delivery.deliver_due() == 0
        assert attempts() == first + 1  # one probe: a pass of one row

        platform.set_down(False)
        time.sleep(0.3)
        assert delivery.deliver_due() == 1  # the probe
        # Every other row still had up to 30-60 s of its own backoff: the probe made them due.
        assert delivery.deliver_due() == 9
        assert_each_filed_once(platform, db, cases)
        assert delivery.breaker.opened_at is None
    finally:
        delivery.stop()
        adapter.close()


def test_a_failed_probe_leaves_the_other_rows_waits_as_they_were(
    serve: Serve, db: sqlite3.Connection, delivery_for: MakeDelivery
) -> None:
    """Only a probe that gets through makes the waiting rows due; one that fails changes nothing."""
    platform = serve()
    queue_cases(db, 10)
    delivery = delivery_for(platform.url, backoff_initial_s=30.0, backoff_max_s=60.0)
    delivery.breaker.cooldown_s = 0.2
    platform.set_down(True)
    assert delivery.deliver_due() == 0  # one at a time: the breaker opens after 5, 5 never tried

    def waits() -> dict[str, int]:
        return dict(db.execute("SELECT message_key, next_attempt_ms FROM outbox WHERE attempts > 0"))

    before = waits()
    assert len(before) == delivery.breaker.threshold
    time.sleep(0.3)
    assert delivery.deliver_due() == 0
    after = waits()
    assert len(after) == len(before) + 1  # the probe, a row that was due
    assert {k: after[k] for k in before} == before


def test_a_store_locked_past_its_busy_timeout_does_not_stop_the_delivery_thread(
    serve: Serve, db: sqlite3.Connection, tmp_path: Path
) -> None:
    """The outbox's store held by another writer while a pass is recorded: the thread waits it
    out, sends the pass again, and the platform still holds each case once."""
    platform = serve()
    cases = queue_cases(db, 3)
    cfg = BridgeConfig(url=platform.url, timeout_s=5.0, poll_interval_s=0.05)
    conn = connect(tmp_path / "state.db")
    conn.execute("PRAGMA busy_timeout = 50")  # production waits 30 s; the test need not
    adapter = NativeRestAdapter(cfg)
    delivery = CaseDelivery(conn, adapter, cfg, seed=7)
    # What each pass hands on (the delivery process publishes its counts this way).
    published: list[int] = []
    delivery.on_pass = lambda: published.append(delivery.stats.store_errors)
    blocker = connect(tmp_path / "state.db")
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the store
    delivery.start()
    try:
        give_up = time.monotonic() + 30
        while not any(published) and time.monotonic() < give_up:
            time.sleep(0.02)
        assert delivery.stats.store_errors >= 1, "the count was published while the store was away"
        blocker.execute("ROLLBACK")
        while delivery.depth() and time.monotonic() < give_up:
            time.sleep(0.02)
        assert delivery._thread is not None and delivery._thread.is_alive()
        assert_each_filed_once(platform, db, cases)
    finally:
        delivery.stop()
        adapter.close()
        blocker.close()
        conn.close()


class WrongKeyAdapter(NativeRestAdapter):
    """Files cases under an Idempotency-Key that is not the body's case_key.

    The bridge never does this; it is the one way to make the real platform refuse a
    create with a 4xx (400) without faking the platform.
    """

    def create(self, case: GridCase) -> str:
        resp = self._send(
            "POST",
            "/api/v1/cases",
            content=case.model_dump_json(),
            headers={"Idempotency-Key": case.case_key + "-other", "Content-Type": "application/json"},
        )
        return str(resp.json()["case_id"])


def test_a_refused_create_is_dead_lettered_and_its_update_too(
    serve: Serve, db: sqlite3.Connection, delivery_for: MakeDelivery
) -> None:
    platform = serve()
    inc = incident()
    case = builder().case(change(inc))
    raised = builder().update(change(replace(inc, level="orange"), "raised"))
    outbox = CaseOutbox(db)
    with transaction(db):
        outbox.enqueue_case(case)
        outbox.enqueue_update(raised, inc.grid_code)
    delivery = delivery_for(platform.url, WrongKeyAdapter)

    drain(delivery)

    rows = outbox_rows(db)
    status, attempts, error = rows[case.case_key]
    assert (status, attempts) == ("rejected", 1)  # never retried
    assert error is not None and error.startswith("http_400: ")
    assert (
        "Idempotency-Key must equal the body's case_key"
        in json.loads(error.removeprefix("http_400: "))["detail"]
    )
    status, attempts, error = rows[raised.update_key]
    assert (status, attempts) == ("rejected", 1)
    assert error is not None and error.startswith("case_not_filed: ")
    assert outbox.platform_id(case.case_key) == (None, "rejected")
    assert platform.store.cases() == []
    assert delivery.stats.rejected == 2
    assert delivery.breaker.opened_at is None  # a refusal is not an outage


def test_an_update_for_a_case_the_platform_does_not_know_is_dead_lettered(
    serve: Serve, db: sqlite3.Connection, delivery_for: MakeDelivery
) -> None:
    # The case is filed on one platform; the update goes to a platform that has never seen it
    # (as after the platform lost its data): a real 404, which no retry can fix.
    first, second = serve(), serve()
    inc = incident()
    [case] = queue_cases(db, 1)
    drain(delivery_for(first.url))
    platform_id = first.store.by_key(case.case_key).case_id
    cleared = builder().update(change(inc, "cleared", OPENED + timedelta(hours=1)))
    with transaction(db):
        CaseOutbox(db).enqueue_update(cleared, inc.grid_code)
    delivery = delivery_for(second.url)

    drain(delivery)

    status, attempts, error = outbox_rows(db)[cleared.update_key]
    assert (status, attempts) == ("rejected", 1)
    assert error == f'http_404: {{"detail":"no case {platform_id}"}}'
    assert second.store.cases() == []
    assert first.store.by_key(case.case_key).updates == {}


def test_updates_reach_the_platform_after_their_create_and_in_order(
    serve: Serve, db: sqlite3.Connection, delivery_for: MakeDelivery
) -> None:
    # The create's answer is lost once, so it needs a retry; the updates queued behind it
    # must wait rather than being tried against a case the bridge has no id for.
    platform = serve(FaultConfig(lose_response_rate=1.0, lost_response_style="http_500"))
    inc = incident()
    case = builder().case(change(inc))
    at = OPENED + timedelta(minutes=10)
    raised = builder().update(change(replace(inc, level="orange", peak_value=55.0), "raised", at))
    cleared = builder().update(change(inc, "cleared", at + timedelta(minutes=50)))
    outbox = CaseOutbox(db)
    with transaction(db):
        outbox.enqueue_case(case)
        outbox.enqueue_update(raised, GRID)
        outbox.enqueue_update(cleared, GRID)
    delivery = delivery_for(platform.url)

    drain(delivery)

    assert list(delivery.stats.delivered_keys) == [case.case_key, raised.update_key, cleared.update_key]
    assert delivery.stats.retried == 1  # only the create's lost answer; no update went early
    stored = platform.store.by_key(case.case_key)
    assert list(stored.updates) == [raised.update_key, cleared.update_key]
    assert stored.updates[raised.update_key].warning_level == "orange"
    assert len(platform.store.cases()) == 1


def poll_until(
    delivery: CaseDelivery, conn: sqlite3.Connection, wanted: str, timeout_s: float = 10.0
) -> set[str]:
    """Poll status until every case has ``wanted``; return every status seen on the way."""
    seen: set[str] = set()
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        delivery.poll_status()
        statuses = {s for (s,) in conn.execute("SELECT status FROM cases")}
        seen |= statuses
        if statuses == {wanted}:
            break
        time.sleep(0.05)
    return seen


def test_status_sync_follows_the_workflow_to_closed(
    serve: Serve, db: sqlite3.Connection, delivery_for: MakeDelivery
) -> None:
    platform = serve(workflow=FAST)
    cases = queue_cases(db, 2)
    delivery = delivery_for(platform.url)
    drain(delivery)
    assert {s for (s,) in db.execute("SELECT status FROM cases")} == {"filed"}

    seen = poll_until(delivery, db, "结案")

    assert set(db.execute("SELECT case_key, status, status_code FROM cases")) == {
        (c.case_key, "结案", 6) for c in cases
    }
    assert seen - {"filed"} <= {"立案", "派遣", "处置", "核查", "结案"}
    assert CaseOutbox(db).open_cases() == []  # closed cases are no longer polled
    assert delivery.poll_status() == 0
    assert delivery.stats.unknown_status == 0


def test_status_sync_records_a_deferred_case(
    serve: Serve, db: sqlite3.Connection, delivery_for: MakeDelivery
) -> None:
    platform = serve(workflow=WorkflowConfig(step_delay_s=(0.05, 0.1), defer_rate=1.0))
    [case] = queue_cases(db, 1)
    delivery = delivery_for(platform.url)
    drain(delivery)

    poll_until(delivery, db, "缓办")

    assert db.execute("SELECT status, status_code FROM cases").fetchone() == ("缓办", 8)
    assert delivery.stats.unknown_status == 0
    # A deferred case can still move on, so it stays polled.
    assert CaseOutbox(db).open_cases() == [(case.case_key, platform.store.by_key(case.case_key).case_id)]


class _OddPlatform(BaseHTTPRequestHandler):
    """Answers every POST 201 with the configured content type and body."""

    content_type = "text/plain"
    body = b""
    keys: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).keys.append(self.headers.get("Idempotency-Key", ""))
        self.send_response(201)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass


@pytest.fixture
def odd_platform() -> Iterator[Callable[[str, bytes], tuple[str, list[str]]]]:
    servers: list[ThreadingHTTPServer] = []

    def start(content_type: str, body: bytes) -> tuple[str, list[str]]:
        keys: list[str] = []
        attrs = {"content_type": content_type, "body": body, "keys": keys}
        server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_OddPlatform,), attrs))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", keys

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("content_type", "body", "error"),
    [
        ("text/plain", b"filed", "not JSON"),
        ("application/json", b'{"id": "X-1", "status": "ok"}', "lacks case_id"),
    ],
)
def test_a_201_without_a_case_id_keeps_the_case_pending(
    odd_platform: Callable[[str, bytes], tuple[str, list[str]]],
    db: sqlite3.Connection,
    delivery_for: MakeDelivery,
    content_type: str,
    body: bytes,
    error: str,
) -> None:
    url, keys = odd_platform(content_type, body)
    [case] = queue_cases(db, 1)
    delivery = delivery_for(url)

    give_up = time.monotonic() + 10
    while delivery.stats.retried < 2 and time.monotonic() < give_up:
        assert delivery.deliver_due() == 0
        time.sleep(0.05)

    assert delivery.stats.retried == 2
    assert delivery.stats.delivered == 0
    status, attempts, last_error = outbox_rows(db)[case.case_key]
    assert (status, attempts) == ("pending", 2)
    assert last_error is not None and error in last_error
    assert filed_ids(db) == {case.case_key: None}
    assert keys == [case.case_key, case.case_key]  # retried under the same key


def test_retry_after_from_the_platform_sets_the_next_attempt(
    serve: Serve, db: sqlite3.Connection, delivery_for: MakeDelivery
) -> None:
    platform = serve(FaultConfig(error_rate=1.0))  # every POST: 503 with Retry-After: 1
    [case] = queue_cases(db, 1)
    # A long backoff, so a next attempt about 1 s away can only come from Retry-After.
    delivery = delivery_for(platform.url, backoff_initial_s=30.0, backoff_max_s=60.0)

    before = now_ms()
    assert delivery.deliver_due() == 0
    after = now_ms()

    next_ms, attempts, error = db.execute(
        "SELECT next_attempt_ms, attempts, last_error FROM outbox WHERE message_key = ?", (case.case_key,)
    ).fetchone()
    assert before + 1000 - 250 <= next_ms <= after + 1000 + 250
    assert attempts == 1
    assert "503" in error
    assert CaseOutbox(db).due() == []
