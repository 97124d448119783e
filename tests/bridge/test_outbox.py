"""CaseOutbox: idempotent enqueue, one due row per grid in order, retries pushed into the future."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bridge.outbox import CaseOutbox, now_ms
from gridsense.db import connect
from gridsense.txn import transaction
from tests.bridge.test_case_builder import OPENED, builder, change, incident

OTHER_GRID = "110102003002001"  # 新街口街道 西四北社区


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = connect(tmp_path / "state.db")
    yield c
    c.close()


def rows(conn: sqlite3.Connection) -> list[tuple[str, str, str, int]]:
    return list(conn.execute("SELECT message_key, op, status, attempts FROM outbox ORDER BY seq"))


def test_enqueuing_the_same_case_twice_stores_one_row(conn: sqlite3.Connection) -> None:
    outbox = CaseOutbox(conn)
    case = builder().case(change(incident()))
    # After a restart the same incident is rebuilt by a new builder: same case, same key.
    rebuilt = builder().case(change(incident()))

    with transaction(conn):
        first = outbox.enqueue_case(case)
    with transaction(conn):
        second = outbox.enqueue_case(rebuilt)

    assert (first, second) == (True, False)
    assert rows(conn) == [(case.case_key, "create", "pending", 0)]
    assert conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 1
    assert outbox.depth() == 1


def test_enqueuing_the_same_update_twice_stores_one_row(conn: sqlite3.Connection) -> None:
    outbox = CaseOutbox(conn)
    inc = incident()
    raised = builder().update(change(replace(inc, level="orange"), "raised"))

    with transaction(conn):
        outbox.enqueue_case(builder().case(change(inc)))
        assert outbox.enqueue_update(raised, inc.grid_code)
    with transaction(conn):
        assert not outbox.enqueue_update(raised, inc.grid_code)

    assert [r[0] for r in rows(conn)] == [builder().case(change(inc)).case_key, raised.update_key]


def test_a_rolled_back_transaction_leaves_no_row(conn: sqlite3.Connection) -> None:
    outbox = CaseOutbox(conn)

    with pytest.raises(RuntimeError), transaction(conn):
        outbox.enqueue_case(builder().case(change(incident())))
        raise RuntimeError("incident state write failed")

    assert rows(conn) == []
    assert conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 0


def test_case_row_records_what_was_filed(conn: sqlite3.Connection) -> None:
    case = builder().case(change(incident()))
    with transaction(conn):
        CaseOutbox(conn).enqueue_case(case)

    row = conn.execute(
        "SELECT incident_id, grid_code, category_code, deadline, platform_case_id, status FROM cases"
    ).fetchone()
    assert row == (
        case.incident_id,
        "110102012001001",
        "event:0111",
        "2026-07-21T10:30:00+08:00",
        None,
        "queued",
    )


def test_due_returns_the_oldest_pending_row_per_grid(conn: sqlite3.Connection) -> None:
    outbox = CaseOutbox(conn)
    inc = incident()
    other = incident(OTHER_GRID)
    create = builder().case(change(inc))
    raised = builder().update(change(replace(inc, level="orange"), "raised"))
    other_create = builder().case(change(other))
    with transaction(conn):
        outbox.enqueue_case(create)
        outbox.enqueue_update(raised, inc.grid_code)
        outbox.enqueue_case(other_create)

    # The update waits behind its create; the other grid is not held up by either.
    assert [(r.message_key, r.op) for r in outbox.due()] == [
        (create.case_key, "create"),
        (other_create.case_key, "create"),
    ]

    outbox.delivered(outbox.due()[0], "BJ-000001")

    assert [r.message_key for r in outbox.due()] == [raised.update_key, other_create.case_key]
    assert outbox.platform_id(create.case_key) == ("BJ-000001", "filed")


def test_retry_later_pushes_the_next_attempt_into_the_future(conn: sqlite3.Connection) -> None:
    outbox = CaseOutbox(conn)
    inc = incident()
    cleared = builder().update(change(inc, "cleared", OPENED + timedelta(hours=1)))
    with transaction(conn):
        outbox.enqueue_case(builder().case(change(inc)))
        outbox.enqueue_update(cleared, inc.grid_code)
    [row] = outbox.due()

    before = now_ms()
    outbox.retry_later(row, 30.0, "platform answered 503")

    next_ms, attempts, error, status = conn.execute(
        "SELECT next_attempt_ms, attempts, last_error, status FROM outbox WHERE seq = ?", (row.seq,)
    ).fetchone()
    assert next_ms >= before + 30_000
    assert (attempts, error, status) == (1, "platform answered 503", "pending")
    # Neither the create nor the update behind it is due while the create waits.
    assert outbox.due() == []
    assert outbox.depth() == 2


def test_a_rejected_create_dead_letters_and_unblocks_its_grid(conn: sqlite3.Connection) -> None:
    outbox = CaseOutbox(conn)
    inc = incident()
    create = builder().case(change(inc))
    cleared = builder().update(change(inc, "cleared"))
    with transaction(conn):
        outbox.enqueue_case(create)
        outbox.enqueue_update(cleared, inc.grid_code)

    outbox.reject(outbox.due()[0], "http_400: bad case")

    assert outbox.counts() == {"pending": 1, "rejected": 1}
    assert outbox.platform_id(create.case_key) == (None, "rejected")
    assert [r.message_key for r in outbox.due()] == [cleared.update_key]
    assert conn.execute(
        "SELECT last_error FROM outbox WHERE message_key = ?", (create.case_key,)
    ).fetchone() == ("http_400: bad case",)
