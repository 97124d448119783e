"""The dead letter: every message the pipeline cannot use, kept with its reason.

A redelivered copy of a message (same topic and bytes) is stored once: see
``DeadLetterStore``.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import deque
from datetime import datetime
from typing import Final

from gridsense.txn import ChunkedInsert, transaction

_TABLE = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id        INTEGER PRIMARY KEY,
    digest    TEXT NOT NULL,
    at        TEXT NOT NULL,
    topic     TEXT NOT NULL,
    device_id TEXT,
    reason    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    payload   BLOB NOT NULL
)"""
_INDEX = "CREATE INDEX IF NOT EXISTS dead_letters_reason ON dead_letters (reason)"
SCHEMA = f"{_TABLE};\n{_INDEX};\n"

#: At most this much of a rejected payload is kept (the rest is counted, not stored).
KEPT_PAYLOAD_BYTES = 64 * 1024

_INSERT: Final = ChunkedInsert(
    "INSERT INTO dead_letters (digest, at, topic, device_id, reason, detail, payload)", 7
)


def _has_unique_digest(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'dead_letters'").fetchone()
    return row is not None and "UNIQUE" in row[0]


def upgrade(conn: sqlite3.Connection) -> None:
    """Drop the unique index on ``digest`` that stores before the redelivery window had.

    Digests are random, so with dead letters a few to a batch each one dirtied an index page
    of its own, written to the WAL at commit: about 12 µs a letter on top of a 2 µs insert
    (a file store, 100 letters a batch). The table is copied without it, in one
    transaction: a crash midway leaves the old table as it was.
    """
    if not _has_unique_digest(conn):
        return
    with transaction(conn):
        if not _has_unique_digest(conn):  # another process copied it while we waited for the lock
            return
        conn.execute("ALTER TABLE dead_letters RENAME TO dead_letters_unique")
        conn.execute(_TABLE)
        conn.execute("INSERT INTO dead_letters SELECT * FROM dead_letters_unique ORDER BY id")
        conn.execute("DROP TABLE dead_letters_unique")  # and its index, whose name _INDEX reuses
        conn.execute(_INDEX)


def redelivery_window(inflight: int, batch_max: int) -> int:
    """How many of the last dead letters a redelivered copy is checked against.

    The broker redelivers only what was not acknowledged: at most ``inflight`` messages
    (the receive maximum). Their letters were committed in the batches just before the
    connection dropped, and the broker sends them again before anything new, so at most
    ``inflight`` + ``batch_max`` letters lie between an original and its copy. Four times
    that is the margin.
    """
    return 4 * (inflight + batch_max)


class DeadLetter:
    """A message the pipeline rejected, and why. Treat it as immutable.

    A plain class, not a frozen dataclass: compiled with the hot path, it is a C struct built
    in a few hundred instructions, where the dataclass's generated ``__init__`` (an
    interpreted frame and six ``object.__setattr__`` calls) took about 8,700, a twelfth of
    what a malformed message costs the batch handler (callgrind). Nothing compares two of
    them, so it keeps identity equality.
    """

    topic: str
    payload: bytes
    reason: str
    detail: str
    at: datetime
    device_id: str | None

    def __init__(
        self,
        topic: str,
        payload: bytes,
        reason: str,
        detail: str,
        at: datetime,
        device_id: str | None = None,
    ) -> None:
        self.topic = topic
        self.payload = payload
        self.reason = reason
        self.detail = detail
        self.at = at
        self.device_id = device_id

    def __repr__(self) -> str:
        return (
            f"DeadLetter(topic={self.topic!r}, reason={self.reason!r}, detail={self.detail!r},"
            f" at={self.at!r}, device_id={self.device_id!r}, payload={self.payload[:80]!r})"
        )

    @property
    def digest(self) -> str:
        """SHA-256 of the topic, a NUL and the payload, in hex: what a redelivered copy is
        recognised by. The bytes are joined and hashed in one call, not fed by an ``update``
        per part: two method calls fewer, about 500 instructions a malformed message under
        callgrind (9,500 → 9,000 for the digest)."""
        return hashlib.sha256(self.topic.encode() + b"\0" + self.payload).hexdigest()


def iso_stamps(letters: list[DeadLetter]) -> list[str]:
    """Each letter's ``at`` in ISO 8601. A batch's letters share their instant, which is
    formatted once (``isoformat`` with a zone takes about 0.9 µs)."""
    stamps: dict[datetime, str] = {}
    out = []
    for d in letters:
        at = stamps.get(d.at)
        if at is None:
            at = stamps[d.at] = d.at.isoformat()
        out.append(at)
    return out


class DeadLetterStore:
    """Local, durable store of dead letters.

    A redelivered copy of a message is stored once: the store remembers the digests of the
    last ``window`` letters (``redelivery_window``) and skips a letter whose digest is among
    them or earlier in its own batch. The same bytes sent again later, by a device that
    repeats itself, are a new message and a new letter. The window is in memory, read back
    from the table when the store is opened, so the table needs no index on the digest.

    ``add`` runs in the batch's transaction; call ``committed`` once that has committed, so
    that only stored letters are remembered. A batch rolled back and handled again calls
    ``add`` again, which forgets what the failed one would have remembered.
    """

    def __init__(self, conn: sqlite3.Connection, window: int = redelivery_window(1000, 500)) -> None:
        self._conn = conn
        self._window = window
        self._order: deque[str] = deque(maxlen=window)  # oldest first
        self._seen: set[str] = set()
        self._pending: list[str] = []
        rows = conn.execute("SELECT digest FROM dead_letters ORDER BY id DESC LIMIT ?", (window,)).fetchall()
        digests: list[str] = [row[0] for row in rows]
        digests.reverse()  # oldest first
        self._remember(digests)

    def add(self, letters: list[DeadLetter]) -> int:
        """Store within the caller's transaction; return how many were new."""
        self._pending = []
        if not letters:
            return 0
        batch: set[str] = set()
        rows = []
        for d, at in zip(letters, iso_stamps(letters), strict=True):
            digest = d.digest
            if digest in self._seen or digest in batch:
                continue
            batch.add(digest)
            self._pending.append(digest)
            rows.append(
                (digest, at, d.topic, d.device_id, d.reason, d.detail[:2000], d.payload[:KEPT_PAYLOAD_BYTES])
            )
        _INSERT.run(self._conn, rows)
        return len(rows)

    def committed(self) -> None:
        """The transaction of the last ``add`` committed: remember its letters."""
        self._remember(self._pending)
        self._pending = []

    def _remember(self, digests: list[str]) -> None:
        for digest in digests:
            if len(self._order) == self._window:
                self._seen.discard(self._order[0])  # the deque drops it on the append below
            self._order.append(digest)
            self._seen.add(digest)

    def counts_by_reason(self) -> dict[str, int]:
        rows = self._conn.execute("SELECT reason, COUNT(*) FROM dead_letters GROUP BY reason")
        return {reason: n for reason, n in rows}

    def recent(self, limit: int = 50) -> list[tuple[str, str, str, str]]:
        rows = self._conn.execute(
            "SELECT at, topic, reason, detail FROM dead_letters ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [(at, topic, reason, detail) for at, topic, reason, detail in rows]
