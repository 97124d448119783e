"""PgCaseOutbox: the case outbox in PostgreSQL, shared by several delivery workers.

Claiming: a worker takes the *head* of each grid (its oldest pending row) with
``SELECT … FOR UPDATE SKIP LOCKED`` and stamps it with a lease (``claimed_by``,
``claimed_until``). Only a grid's head is ever claimable, and a claimed head stays
``pending`` until it is settled, so the rows behind it cannot be taken: never two rows
of one grid in flight, and a grid's messages reach the platform in order.

Why a lease rather than advisory locks keyed on the grid: a lease is a plain column,
so no transaction or session has to stay open across the HTTP call (the row lock is
held only for the claiming statement); a worker that dies (SIGKILL, lost host) loses its
rows when the lease runs out, and another worker takes them over; and the claim is
visible to an operator (``claimed_by``). A session advisory lock would pin each grid to
one connection for the whole call and vanish silently with a pooled connection.
A row taken over after a lease expired may be sent twice; the adapters' idempotency
(key header, marker lookup, key in the payload) makes that harmless, so the lease
must exceed the adapter's timeout for order, not for correctness.

Writers: per-grid order assumes one writer per grid at a time (stateful rules need
that anyway). Enqueue inside ``transaction()``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from bridge.contract import DeadLetterRow, OutboxRow, Settlement
from bridge.outbox import case_record_row
from gridsense.model.case import CaseUpdate, GridCase

PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq             BIGSERIAL PRIMARY KEY,
    message_key     TEXT NOT NULL UNIQUE,
    case_key        TEXT NOT NULL,
    grid_code       TEXT NOT NULL,
    op              TEXT NOT NULL CHECK (op IN ('create', 'update')),
    body            TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'rejected')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at    TIMESTAMPTZ,
    claimed_by      TEXT,
    claimed_until   TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS outbox_pending_grid ON outbox (grid_code, seq) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS outbox_pending_seq ON outbox (seq) WHERE status = 'pending';
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
    status_at        TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS cases_platform_id ON cases (platform_case_id);
"""

# One key for every gridsense schema creation, so concurrent workers do not race on DDL.
_DDL_LOCK = 0x67726964  # "grid"

_CLAIM = """
WITH head AS (
    SELECT o.seq FROM outbox o
    WHERE o.status = 'pending' AND o.next_attempt_at <= now()
      AND (o.claimed_until IS NULL OR o.claimed_until < now())
      AND NOT EXISTS (
          SELECT 1 FROM outbox p
          WHERE p.status = 'pending' AND p.grid_code = o.grid_code AND p.seq < o.seq)
    ORDER BY o.seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE outbox u
SET claimed_by = %(me)s, claimed_until = now() + make_interval(secs => %(lease)s)
FROM head WHERE u.seq = head.seq
RETURNING u.seq, u.message_key, u.case_key, u.grid_code, u.op, u.body, u.attempts
"""

_DEAD_COLUMNS = "seq, message_key, case_key, grid_code, op, attempts, last_error, body"


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def connect_pg(dsn: str, db_schema: str = "gridsense") -> psycopg.Connection[Any]:
    """An autocommit connection with ``db_schema`` created (once, under a lock) and on its search path."""
    conn = psycopg.connect(dsn, autocommit=True)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(db_schema)))
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(db_schema)))
            conn.execute(PG_SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn


class PgCaseOutbox:
    """The ``OutboxStore`` over one autocommit PostgreSQL connection, for one worker."""

    def __init__(
        self, conn: psycopg.Connection[Any], worker_id: str | None = None, lease_s: float = 120.0
    ) -> None:
        if not conn.autocommit:
            raise ValueError("PgCaseOutbox needs an autocommit connection (see connect_pg)")
        self._conn = conn
        self.worker_id = worker_id or default_worker_id()
        self.lease_s = lease_s

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[object]:
        with self._conn.transaction() as tx:
            yield tx

    def _one(self, query: str, params: tuple[Any, ...] | dict[str, Any]) -> tuple[Any, ...] | None:
        return self._conn.execute(query, params).fetchone()

    def enqueue_case(self, case: GridCase) -> bool:
        """Within the caller's ``transaction()``; False if this case was already queued."""
        cur = self._conn.execute(
            "INSERT INTO outbox (message_key, case_key, grid_code, op, body)"
            " VALUES (%s, %s, %s, 'create', %s) ON CONFLICT (message_key) DO NOTHING",
            (case.case_key, case.case_key, case.place.grid_code, case.model_dump_json()),
        )
        if cur.rowcount:
            self._conn.execute(
                "INSERT INTO cases (case_key, incident_id, grid_code, category_code, title, filed_at,"
                " deadline) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (case_key) DO NOTHING",
                case_record_row(case),
            )
        return bool(cur.rowcount)

    def enqueue_update(self, update: CaseUpdate, grid_code: str) -> bool:
        cur = self._conn.execute(
            "INSERT INTO outbox (message_key, case_key, grid_code, op, body)"
            " VALUES (%s, %s, %s, 'update', %s) ON CONFLICT (message_key) DO NOTHING",
            (update.update_key, update.case_key, grid_code, update.model_dump_json()),
        )
        return bool(cur.rowcount)

    def due(self, limit: int = 100) -> list[OutboxRow]:
        """Claim the head row of up to ``limit`` grids for ``lease_s``; oldest first."""
        with self._conn.transaction():
            rows = self._conn.execute(
                _CLAIM, {"limit": limit, "me": self.worker_id, "lease": self.lease_s}
            ).fetchall()
        return sorted((OutboxRow(*r) for r in rows), key=lambda r: r.seq)

    def release(self, rows: list[OutboxRow]) -> None:
        """Give back claimed rows this worker did not try (breaker open, stopping)."""
        if rows:
            self._conn.execute(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL"
                " WHERE seq = ANY(%s) AND claimed_by = %s AND status = 'pending'",
                ([r.seq for r in rows], self.worker_id),
            )

    def retry_now(self) -> int:
        cur = self._conn.execute(
            "UPDATE outbox SET next_attempt_at = now() WHERE status = 'pending' AND next_attempt_at > now()"
        )
        return int(cur.rowcount)

    def _mark_delivered(self, row: OutboxRow, platform_case_id: str | None) -> None:
        self._conn.execute(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = now(),"
            " last_error = NULL, claimed_by = NULL, claimed_until = NULL"
            " WHERE seq = %s AND status = 'pending'",
            (row.seq,),
        )
        if row.op == "create":
            self._conn.execute(
                "UPDATE cases SET platform_case_id = %s, status = 'filed', status_at = now()"
                " WHERE case_key = %s AND platform_case_id IS NULL",
                (platform_case_id, row.case_key),
            )

    def _mark_retry(self, row: OutboxRow, delay_s: float, error: str) -> None:
        # Only while this worker still holds the claim: after a lost lease the new holder decides.
        self._conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = %s,"
            " next_attempt_at = now() + make_interval(secs => %s), claimed_by = NULL, claimed_until = NULL"
            " WHERE seq = %s AND status = 'pending' AND claimed_by = %s",
            (error[:2000], delay_s, row.seq, self.worker_id),
        )

    def _mark_rejected(self, row: OutboxRow, error: str) -> None:
        cur = self._conn.execute(
            "UPDATE outbox SET status = 'rejected', attempts = attempts + 1, last_error = %s,"
            " claimed_by = NULL, claimed_until = NULL WHERE seq = %s AND status = 'pending'",
            (error[:8000], row.seq),
        )
        if cur.rowcount and row.op == "create":
            self._conn.execute("UPDATE cases SET status = 'rejected' WHERE case_key = %s", (row.case_key,))

    def delivered(self, row: OutboxRow, platform_case_id: str | None) -> None:
        with self._conn.transaction():
            self._mark_delivered(row, platform_case_id)

    def retry_later(self, row: OutboxRow, delay_s: float, error: str) -> None:
        self._mark_retry(row, delay_s, error)

    def reject(self, row: OutboxRow, error: str) -> None:
        """Dead-letter the row: the platform refused it and retrying cannot help."""
        with self._conn.transaction():
            self._mark_rejected(row, error)

    def settle(self, results: list[Settlement]) -> None:
        with self._conn.transaction():
            for r in results:
                if r.outcome == "delivered":
                    self._mark_delivered(r.row, r.platform_case_id)
                elif r.outcome == "retry":
                    self._mark_retry(r.row, r.delay_s, r.error)
                else:
                    self._mark_rejected(r.row, r.error)

    def platform_id(self, case_key: str) -> tuple[str | None, str]:
        row = self._one("SELECT platform_case_id, status FROM cases WHERE case_key = %s", (case_key,))
        return (row[0], row[1]) if row else (None, "unknown")

    def case_key_of(self, platform_case_id: str) -> str | None:
        row = self._one("SELECT case_key FROM cases WHERE platform_case_id = %s", (platform_case_id,))
        return str(row[0]) if row else None

    def case_record(self, case_key: str) -> tuple[str, str] | None:
        row = self._one(
            "SELECT c.incident_id, o.body FROM cases c JOIN outbox o ON o.message_key = c.case_key"
            " WHERE c.case_key = %s",
            (case_key,),
        )
        return (str(row[0]), str(row[1])) if row else None

    def set_platform_id(self, case_key: str, platform_case_id: str) -> None:
        self._conn.execute(
            "UPDATE cases SET platform_case_id = %s WHERE case_key = %s", (platform_case_id, case_key)
        )

    def set_status(self, case_key: str, status: str, status_code: int | None) -> None:
        self._conn.execute(
            "UPDATE cases SET status = %s, status_code = %s, status_at = now() WHERE case_key = %s",
            (status, status_code, case_key),
        )

    def open_cases(self) -> list[tuple[str, str]]:
        """(case key, platform id) of filed cases not yet closed or voided."""
        rows = self._conn.execute(
            "SELECT case_key, platform_case_id FROM cases WHERE platform_case_id IS NOT NULL"
            " AND status NOT IN ('结案', '作废') ORDER BY case_key"
        ).fetchall()
        return [(k, p) for k, p in rows]

    def closed_between(self, since_ms: int, until_ms: int) -> list[str]:
        rows = self._conn.execute(
            "SELECT case_key FROM cases WHERE status = '结案'"
            " AND status_at > to_timestamp(%s / 1000.0) AND status_at <= to_timestamp(%s / 1000.0)"
            " ORDER BY status_at",
            (since_ms, until_ms),
        ).fetchall()
        return [k for (k,) in rows]

    def depth(self) -> int:
        row = self._one("SELECT COUNT(*) FROM outbox WHERE status = 'pending'", ())
        return int(row[0]) if row else 0

    def counts(self) -> dict[str, int]:
        rows = self._conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
        return {s: int(n) for s, n in rows}

    def dead_letters(self, limit: int = 100) -> list[DeadLetterRow]:
        rows = self._conn.execute(
            f"SELECT {_DEAD_COLUMNS} FROM outbox WHERE status = 'rejected' ORDER BY seq LIMIT %s",
            (limit,),
        ).fetchall()
        return [DeadLetterRow(*r) for r in rows]

    def dead_letter(self, seq: int) -> DeadLetterRow | None:
        row = self._one(f"SELECT {_DEAD_COLUMNS} FROM outbox WHERE status = 'rejected' AND seq = %s", (seq,))
        return DeadLetterRow(*row) if row else None

    def replay(self, seq: int) -> bool:
        """Put a rejected row back in the queue; it keeps its place in grid order."""
        with self._conn.transaction():
            row = self._one(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = now(),"
                " claimed_by = NULL, claimed_until = NULL WHERE seq = %s AND status = 'rejected'"
                " RETURNING op, case_key",
                (seq,),
            )
            if row and row[0] == "create":
                self._conn.execute(
                    "UPDATE cases SET status = 'queued' WHERE case_key = %s AND status = 'rejected'",
                    (row[1],),
                )
        return row is not None

    def discard(self, seq: int) -> bool:
        cur = self._conn.execute("DELETE FROM outbox WHERE seq = %s AND status = 'rejected'", (seq,))
        return bool(cur.rowcount)
