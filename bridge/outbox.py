"""CaseOutbox: the durable queue between incident state and the case platform.

Rows are written in the same transaction as the incident change that caused them.
``message_key`` (the case key for a create, the update key for an update) is unique,
so re-processing a batch after a crash never enqueues a message twice.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bridge.contract import DeadLetterRow, Op, OutboxRow, Settlement
from gridsense.model.case import CaseUpdate, GridCase
from gridsense.txn import transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    message_key     TEXT NOT NULL UNIQUE,
    case_key        TEXT NOT NULL,
    grid_code       TEXT NOT NULL,
    op              TEXT NOT NULL CHECK (op IN ('create', 'update')),
    body            TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'rejected')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_ms      INTEGER NOT NULL,
    delivered_ms    INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (status, grid_code, seq);
CREATE TABLE IF NOT EXISTS cases (
    case_key         TEXT PRIMARY KEY,
    incident_id      TEXT NOT NULL,
    grid_code        TEXT NOT NULL,
    category_code    TEXT NOT NULL,
    title            TEXT NOT NULL,
    filed_at         TEXT NOT NULL,
    deadline         TEXT NOT NULL,
    platform_case_id TEXT,
    status           TEXT NOT NULL DEFAULT 'queued',
    status_code      INTEGER,
    status_at_ms     INTEGER
);
"""

__all__ = ["SCHEMA", "CaseOutbox", "Op", "OutboxRow", "now_ms"]

_DEAD_COLUMNS = "seq, message_key, case_key, grid_code, op, attempts, last_error, body"


#: No retry is ever scheduled further out than this (Retry-After is capped to it too).
MAX_RETRY_WAIT_S = 3600.0


def case_record_row(case: GridCase) -> tuple[str, str, str, str, str, str, str]:
    """The values of a new ``cases`` row (key, incident, grid, category, title, filed, deadline)."""
    return (
        case.case_key,
        case.incident_id,
        case.place.grid_code,
        f"{case.category.kind}:{case.category.code}",
        case.title_zh,
        case.filed_at.isoformat(),
        case.deadline.isoformat(),
    )


def now_ms() -> int:
    return int(time.time() * 1000)


class CaseOutbox:
    """Enqueue, hand out and settle outbox rows in the embedded SQLite database (one worker)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @contextmanager
    def transaction(self) -> Iterator[object]:
        """One write transaction around several calls (BEGIN IMMEDIATE … COMMIT)."""
        with transaction(self._conn):
            yield self._conn

    def enqueue_case(self, case: GridCase) -> bool:
        """Within the caller's transaction; False if this case was already queued."""
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO outbox (message_key, case_key, grid_code, op, body, created_ms)"
            " VALUES (?, ?, ?, 'create', ?, ?)",
            (case.case_key, case.case_key, case.place.grid_code, case.model_dump_json(), now_ms()),
        )
        if cur.rowcount:
            self._conn.execute(
                "INSERT OR IGNORE INTO cases (case_key, incident_id, grid_code, category_code, title,"
                " filed_at, deadline) VALUES (?, ?, ?, ?, ?, ?, ?)",
                case_record_row(case),
            )
        return bool(cur.rowcount)

    def enqueue_update(self, update: CaseUpdate, grid_code: str) -> bool:
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO outbox (message_key, case_key, grid_code, op, body, created_ms)"
            " VALUES (?, ?, ?, 'update', ?, ?)",
            (update.update_key, update.case_key, grid_code, update.model_dump_json(), now_ms()),
        )
        return bool(cur.rowcount)

    def due(self, limit: int = 100) -> list[OutboxRow]:
        """Pending rows whose time has come, at most one per grid: the oldest, to keep grid order."""
        rows = self._conn.execute(
            "SELECT seq, message_key, case_key, grid_code, op, body, attempts FROM outbox o"
            " WHERE status = 'pending' AND (next_attempt_ms <= ? OR next_attempt_ms > ?) AND NOT EXISTS ("
            "  SELECT 1 FROM outbox p WHERE p.status = 'pending' AND p.grid_code = o.grid_code"
            "  AND p.seq < o.seq) ORDER BY seq LIMIT ?",
            # A retry scheduled further out than any wait we ever set was scheduled before the
            # wall clock stepped back: it is due now, not after the size of the step.
            (now_ms(), now_ms() + int(MAX_RETRY_WAIT_S * 1000), limit),
        )
        return [OutboxRow(*r) for r in rows]

    def release(self, rows: list[OutboxRow]) -> None:
        """Nothing to give back: a single worker claims nothing."""

    def retry_now(self) -> int:
        cur = self._conn.execute(
            "UPDATE outbox SET next_attempt_ms = 0 WHERE status = 'pending' AND next_attempt_ms > ?",
            (now_ms(),),
        )
        return int(cur.rowcount)

    def _mark_delivered(self, row: OutboxRow, platform_case_id: str | None) -> None:
        self._conn.execute(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_ms = ?,"
            " last_error = NULL WHERE seq = ?",
            (now_ms(), row.seq),
        )
        if row.op == "create":
            self._conn.execute(
                "UPDATE cases SET platform_case_id = ?, status = 'filed', status_at_ms = ?"
                " WHERE case_key = ?",
                (platform_case_id, now_ms(), row.case_key),
            )

    def _mark_retry(self, row: OutboxRow, delay_s: float, error: str) -> None:
        self._conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?, last_error = ? WHERE seq = ?",
            (now_ms() + int(delay_s * 1000), error[:2000], row.seq),
        )

    def _mark_rejected(self, row: OutboxRow, error: str) -> None:
        self._conn.execute(
            "UPDATE outbox SET status = 'rejected', attempts = attempts + 1, last_error = ? WHERE seq = ?",
            (error[:8000], row.seq),
        )
        if row.op == "create":
            self._conn.execute("UPDATE cases SET status = 'rejected' WHERE case_key = ?", (row.case_key,))

    def delivered(self, row: OutboxRow, platform_case_id: str | None) -> None:
        with transaction(self._conn):
            self._mark_delivered(row, platform_case_id)

    def retry_later(self, row: OutboxRow, delay_s: float, error: str) -> None:
        self._mark_retry(row, delay_s, error)

    def reject(self, row: OutboxRow, error: str) -> None:
        """Dead-letter the row: the platform refused it and retrying cannot help."""
        with transaction(self._conn):
            self._mark_rejected(row, error)

    def settle(self, results: list[Settlement]) -> None:
        with transaction(self._conn):
            for r in results:
                if r.outcome == "delivered":
                    self._mark_delivered(r.row, r.platform_case_id)
                elif r.outcome == "retry":
                    self._mark_retry(r.row, r.delay_s, r.error)
                else:
                    self._mark_rejected(r.row, r.error)

    def platform_id(self, case_key: str) -> tuple[str | None, str]:
        row = self._conn.execute(
            "SELECT platform_case_id, status FROM cases WHERE case_key = ?", (case_key,)
        ).fetchone()
        return (row[0], row[1]) if row else (None, "unknown")

    def case_key_of(self, platform_case_id: str) -> str | None:
        row = self._conn.execute(
            "SELECT case_key FROM cases WHERE platform_case_id = ?", (platform_case_id,)
        ).fetchone()
        return str(row[0]) if row else None

    def case_record(self, case_key: str) -> tuple[str, str] | None:
        row = self._conn.execute(
            "SELECT c.incident_id, o.body FROM cases c JOIN outbox o ON o.message_key = c.case_key"
            " WHERE c.case_key = ?",
            (case_key,),
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def set_platform_id(self, case_key: str, platform_case_id: str) -> None:
        self._conn.execute(
            "UPDATE cases SET platform_case_id = ? WHERE case_key = ?", (platform_case_id, case_key)
        )

    def set_status(self, case_key: str, status: str, status_code: int | None) -> None:
        self._conn.execute(
            "UPDATE cases SET status = ?, status_code = ?, status_at_ms = ? WHERE case_key = ?",
            (status, status_code, now_ms(), case_key),
        )

    def open_cases(self) -> list[tuple[str, str]]:
        """(case key, platform id) of filed cases not yet closed or voided."""
        rows = self._conn.execute(
            "SELECT case_key, platform_case_id FROM cases WHERE platform_case_id IS NOT NULL"
            " AND status NOT IN ('结案', '作废')"
        )
        return [(k, p) for k, p in rows]

    def closed_between(self, since_ms: int, until_ms: int) -> list[str]:
        rows = self._conn.execute(
            "SELECT case_key FROM cases WHERE status = '结案' AND status_at_ms > ? AND status_at_ms <= ?"
            " ORDER BY status_at_ms",
            (since_ms, until_ms),
        )
        return [k for (k,) in rows]

    def depth(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0])

    def counts(self) -> dict[str, int]:
        rows = self._conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        return {s: n for s, n in rows}

    def dead_letters(self, limit: int = 100) -> list[DeadLetterRow]:
        """Rejected rows, oldest first."""
        rows = self._conn.execute(
            f"SELECT {_DEAD_COLUMNS} FROM outbox WHERE status = 'rejected' ORDER BY seq LIMIT ?",
            (limit,),
        )
        return [DeadLetterRow(*r) for r in rows]

    def dead_letter(self, seq: int) -> DeadLetterRow | None:
        row = self._conn.execute(
            f"SELECT {_DEAD_COLUMNS} FROM outbox WHERE status = 'rejected' AND seq = ?", (seq,)
        ).fetchone()
        return DeadLetterRow(*row) if row else None

    def replay(self, seq: int) -> bool:
        """Put a rejected row back in the queue (after a config fix); it keeps its place in grid order."""
        with transaction(self._conn):
            cur = self._conn.execute(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_ms = 0"
                " WHERE seq = ? AND status = 'rejected' RETURNING op, case_key",
                (seq,),
            )
            row = cur.fetchone()
            if row and row[0] == "create":
                self._conn.execute(
                    "UPDATE cases SET status = 'queued' WHERE case_key = ? AND status = 'rejected'",
                    (row[1],),
                )
        return row is not None

    def discard(self, seq: int) -> bool:
        """Delete a rejected row for good; its case (if a create) stays marked rejected."""
        cur = self._conn.execute("DELETE FROM outbox WHERE seq = ? AND status = 'rejected'", (seq,))
        return bool(cur.rowcount)
