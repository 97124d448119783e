"""The OutboxStore contract, held by both stores: the embedded SQLite one and the shared PostgreSQL one.

PostgreSQL runs for real (tests.fixtures.postgres), in a fresh schema per test.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bridge.contract import OutboxStore
from bridge.outbox import CaseOutbox, now_ms
from bridge.pg_outbox import PgCaseOutbox
from gridsense.db import connect
from tests.bridge.test_case_builder import OPENED, builder, change, incident
from tests.fixtures.postgres import PgSchema

pytestmark = pytest.mark.integration

OTHER_GRID = "110102003002001"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OutboxStore]:
    if request.param == "sqlite":
        conn = connect(tmp_path / "state.db")
        yield CaseOutbox(conn)
        conn.close()
        return
    schema: PgSchema = request.getfixturevalue("pg_schema")
    pg = schema.connect()
    yield PgCaseOutbox(pg, "worker-a")
    pg.close()


def test_enqueue_is_idempotent_by_key(store: OutboxStore) -> None:
    inc = incident()
    case = builder().case(change(inc))
    raised = builder().update(change(replace(inc, level="orange"), "raised"))

    with store.transaction():
        first = store.enqueue_case(case)
        assert store.enqueue_update(raised, inc.grid_code)
    with store.transaction():
        again = store.enqueue_case(builder().case(change(incident())))
        assert not store.enqueue_update(raised, inc.grid_code)

    assert (first, again) == (True, False)
    assert store.depth() == 2
    assert store.platform_id(case.case_key) == (None, "queued")
    assert store.case_record(case.case_key) == (inc.incident_id, case.model_dump_json())


def test_a_rolled_back_enqueue_leaves_nothing(store: OutboxStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.enqueue_case(builder().case(change(incident())))
        raise RuntimeError("incident state write failed")

    assert store.depth() == 0
    assert store.counts() == {}


def test_due_hands_out_the_oldest_row_per_grid(store: OutboxStore) -> None:
    inc, other = incident(), incident(OTHER_GRID)
    create = builder().case(change(inc))
    raised = builder().update(change(replace(inc, level="orange"), "raised"))
    other_create = builder().case(change(other))
    with store.transaction():
        store.enqueue_case(create)
        store.enqueue_update(raised, inc.grid_code)
        store.enqueue_case(other_create)

    first = store.due()
    assert [r.message_key for r in first] == [create.case_key, other_create.case_key]
    store.delivered(first[0], "BJ-000001")
    store.release(first[1:])

    assert [r.message_key for r in store.due()] == [raised.update_key, other_create.case_key]
    assert store.platform_id(create.case_key) == ("BJ-000001", "filed")
    assert store.case_key_of("BJ-000001") == create.case_key
    assert store.open_cases() == [(create.case_key, "BJ-000001")]


def test_a_retry_waits_and_holds_its_grid(store: OutboxStore) -> None:
    inc = incident()
    cleared = builder().update(change(inc, "cleared", OPENED + timedelta(hours=1)))
    with store.transaction():
        store.enqueue_case(builder().case(change(inc)))
        store.enqueue_update(cleared, inc.grid_code)
    [row] = store.due()

    store.retry_later(row, 30.0, "platform answered 503")

    assert store.due() == []
    assert store.depth() == 2
    assert store.counts() == {"pending": 2}

    # The platform is back: the row waited for it, and is due again at once, with its attempt.
    assert store.retry_now() == 1
    [again] = store.due()
    assert (again.message_key, again.attempts) == (row.message_key, 1)
    assert store.retry_now() == 0


def test_rejected_rows_are_listed_replayed_and_discarded(store: OutboxStore) -> None:
    inc, other = incident(), incident(OTHER_GRID)
    create, other_create = builder().case(change(inc)), builder().case(change(other))
    with store.transaction():
        store.enqueue_case(create)
        store.enqueue_case(other_create)
    rows = store.due()
    for row in rows:
        store.reject(row, 'http_400: {"detail":"bad"}')

    dead = store.dead_letters()
    assert [(d.message_key, d.op, d.attempts, d.last_error) for d in dead] == [
        (create.case_key, "create", 1, 'http_400: {"detail":"bad"}'),
        (other_create.case_key, "create", 1, 'http_400: {"detail":"bad"}'),
    ]
    assert store.platform_id(create.case_key) == (None, "rejected")
    assert store.dead_letter(dead[0].seq) == dead[0]
    assert dead[0].body == create.model_dump_json()

    assert store.replay(dead[0].seq)
    assert store.discard(dead[1].seq)
    assert not store.replay(dead[1].seq)  # gone
    assert not store.discard(dead[0].seq)  # pending again, not refused

    assert store.counts() == {"pending": 1}
    assert store.platform_id(create.case_key) == (None, "queued")
    [again] = store.due()
    assert (again.message_key, again.attempts) == (create.case_key, 0)


def test_status_and_platform_id_are_recorded(store: OutboxStore) -> None:
    case = builder().case(change(incident()))
    with store.transaction():
        store.enqueue_case(case)
    [row] = store.due()
    store.delivered(row, "token:T000001")

    store.set_platform_id(case.case_key, "300001")
    store.set_status(case.case_key, "派遣", 3)

    assert store.platform_id(case.case_key) == ("300001", "派遣")
    before = now_ms()
    store.set_status(case.case_key, "结案", 6)
    assert store.open_cases() == []
    assert store.closed_between(before - 5000, now_ms() + 5000) == [case.case_key]
    assert store.closed_between(now_ms() + 5000, now_ms() + 10000) == []


def test_sqlite_store_keeps_its_connection_usable(tmp_path: Path) -> None:
    # The SQLite store wraps the state connection CaseDelivery has always been given.
    conn = connect(tmp_path / "state.db")
    store = CaseOutbox(conn)
    with store.transaction() as tx:
        assert isinstance(tx, sqlite3.Connection)
    conn.close()
