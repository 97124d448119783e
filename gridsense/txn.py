"""Explicit SQLite transactions (connections run in autocommit mode otherwise), and the
multi-row INSERT the batch handler's stores write with."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from typing import Any, Final

#: Rows a ``ChunkedInsert`` statement takes. Each statement step costs the sqlite3 module a
#: reset, releases of the GIL and a VDBE halt, which a row of its own paid every time
#: (callgrind over the batch handler: the reading insert went from 17,300 to 14,400
#: instructions a reading). A one-off timing of 1, 16, 32, 64 and 128 rows a statement into an
#: in-memory reading store gave 1.7 µs a row for 1 and 0.8–0.95 µs for the others; 32 was as
#: good as any.
CHUNK_ROWS: Final = 32


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error; the write lock is taken up front."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:  # SQLite rolls back by itself on some errors (SQLITE_FULL)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class ChunkedInsert:
    """An INSERT of many rows: ``CHUNK_ROWS`` to a statement, the rest one a statement.

    ``head`` is the statement up to ``VALUES``; ``width`` the number of columns a row has.
    """

    def __init__(self, head: str, width: int) -> None:
        row = "(" + ", ".join(["?"] * width) + ")"
        #: The statement for one row (also for callers that need each row's own outcome).
        self.one = f"{head} VALUES {row}"
        self._chunk = f"{head} VALUES " + ", ".join([row] * CHUNK_ROWS)

    def run(self, conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        whole = len(rows) - len(rows) % CHUNK_ROWS
        if whole:
            conn.executemany(
                self._chunk,
                [tuple(chain.from_iterable(rows[i : i + CHUNK_ROWS])) for i in range(0, whole, CHUNK_ROWS)],
            )
        if whole < len(rows):
            conn.executemany(self.one, rows[whole:])
