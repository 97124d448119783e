"""The dead-letter store: each message the pipeline rejects is kept, with its reason, and a
redelivered copy of it is kept once.

A batch's letters go in ``CHUNK_ROWS`` to a statement (``gridsense.txn.ChunkedInsert``). A copy
is recognised by its digest among the last ``window`` letters stored and earlier in its own
batch, whether the copy comes in the same statement, another statement of the batch, a later
batch, or after a restart; a batch rolled back and handled again must lose nothing.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gridsense.db import connect
from gridsense.txn import CHUNK_ROWS, transaction
from ingest.deadletter import KEPT_PAYLOAD_BYTES, DeadLetter, DeadLetterStore, redelivery_window, upgrade
from tests.fixtures.sqlite_trace import statements_run

T0 = datetime(2026, 7, 21, 6, 0, tzinfo=UTC)
TOPIC = "city/110105/110105001001001/rain/rg-{}"
WINDOW = 8

Message = tuple[int, bytes]  # (device, payload)


def letter(device: int, payload: bytes, at: datetime = T0, reason: str = "malformed") -> DeadLetter:
    return DeadLetter(TOPIC.format(device), payload, reason, f"detail of {payload[:8]!r}", at, f"rg-{device}")


class RolledBack(Exception):
    """Stands for whatever makes the pipeline roll a batch back (a full disk, a bug)."""


# Few distinct messages, so that batches repeat one another's and their own, within the
# window and beyond it.
messages = st.tuples(st.integers(0, 7), st.sampled_from([b"{", b'{"ts": 17', b"\xff", b"[]"]))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.lists(messages, max_size=3 * CHUNK_ROWS + 7), st.booleans()), max_size=6))
def test_a_copy_within_the_window_is_stored_once_and_nothing_is_lost(
    batches: list[tuple[list[Message], bool]],
) -> None:
    conn = connect(":memory:")
    store = DeadLetterStore(conn, WINDOW)
    window: deque[Message] = deque(maxlen=WINDOW)  # the model: the last WINDOW messages stored
    stored: list[tuple[int, bytes, str]] = []  # (device, payload, at), in the order stored
    for i, (batch, fails_first) in enumerate(batches):
        # The pipeline stamps a batch's letters with one instant; the store must not rely on it.
        at = {m: T0 + timedelta(seconds=i, milliseconds=m[0] % 2) for m in batch}
        letters = [letter(d, p, at[d, p]) for d, p in batch]
        if fails_first:  # rolled back after the add: nothing of it may count as stored
            try:
                with transaction(conn):
                    store.add(letters)
                    raise RolledBack
            except RolledBack:
                pass
        new = [m for m in dict.fromkeys(batch) if m not in window]
        with transaction(conn):
            assert store.add(letters) == len(new)
        store.committed()
        window.extend(new)
        stored += [(d, p, at[d, p].isoformat()) for d, p in new]
    columns = "topic, payload, device_id, reason, at"
    rows = conn.execute(f"SELECT {columns} FROM dead_letters ORDER BY id").fetchall()
    assert rows == [(TOPIC.format(d), p, f"rg-{d}", "malformed", at) for d, p, at in stored]
    assert store.counts_by_reason() == ({"malformed": len(stored)} if stored else {})


def test_after_a_restart_a_redelivered_copy_is_still_stored_once() -> None:
    """The window is read back from the table: the broker redelivers what was committed but
    not acknowledged when the process died."""
    conn = connect(":memory:")
    first = DeadLetterStore(conn, WINDOW)
    with transaction(conn):
        first.add([letter(i, b"{") for i in range(WINDOW + 2)])
    first.committed()
    again = DeadLetterStore(conn, WINDOW)  # the restarted process
    with transaction(conn):
        # the last WINDOW letters are remembered; the two before them have left the window
        assert again.add([letter(i, b"{") for i in range(WINDOW + 2)]) == 2


def test_the_window_covers_what_the_broker_may_redeliver() -> None:
    assert redelivery_window(1000, 500) >= 2 * (1000 + 500)
    assert redelivery_window(1, 1) >= 2


def test_a_batch_goes_in_whole_statements_and_keeps_its_order() -> None:
    conn = connect(":memory:")
    store = DeadLetterStore(conn)
    n = 2 * CHUNK_ROWS + 3
    with statements_run(conn) as statements, transaction(conn):
        assert store.add([letter(i, b"{") for i in range(n)]) == n
    assert len([s for s in statements if s.startswith("INSERT")]) == 2 + 3
    newest_first = [TOPIC.format(i) for i in reversed(range(n))]
    assert [topic for _, topic, _, _ in store.recent(limit=n)] == newest_first


def test_a_huge_payload_is_kept_in_part_and_a_long_detail_cut() -> None:
    conn = connect(":memory:")
    store = DeadLetterStore(conn)
    big = DeadLetter(TOPIC.format(1), b"x" * (KEPT_PAYLOAD_BYTES + 10), "too_large", "d" * 5000, T0, "rg-1")
    with transaction(conn):
        assert store.add([big]) == 1
    payload, detail = conn.execute("SELECT payload, detail FROM dead_letters").fetchone()
    assert (len(payload), len(detail)) == (KEPT_PAYLOAD_BYTES, 2000)


OLD_SCHEMA = """
CREATE TABLE dead_letters (
    id        INTEGER PRIMARY KEY,
    digest    TEXT NOT NULL UNIQUE,
    at        TEXT NOT NULL,
    topic     TEXT NOT NULL,
    device_id TEXT,
    reason    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    payload   BLOB NOT NULL
);
CREATE INDEX dead_letters_reason ON dead_letters (reason);
"""


def test_a_store_with_the_old_unique_index_keeps_its_letters_and_loses_the_index(tmp_path: Path) -> None:
    path = f"{tmp_path}/old.db"
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    rows = [
        (7 + i, f"d{i}", "2026-07-21T06:00:00+00:00", TOPIC.format(i), None, "schema", "x", b"{}")
        for i in range(5)
    ]
    old.executemany("INSERT INTO dead_letters VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    old.commit()
    old.close()
    conn = connect(path)  # upgrades
    assert conn.execute("SELECT * FROM dead_letters ORDER BY id").fetchall() == rows
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'dead_letters'").fetchone()
    assert "UNIQUE" not in sql
    indexes = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'dead_letters'")}
    assert indexes == {"dead_letters", "dead_letters_reason"}
    upgrade(conn)  # a second time: nothing to do
    assert DeadLetterStore(conn).counts_by_reason() == {"schema": 5}


def test_the_digest_is_sha256_of_topic_nul_payload_and_does_not_change() -> None:
    """The window read back at start holds digests a previous version stored: the formula is
    pinned, so a redelivered copy is still recognised across an upgrade."""
    d = DeadLetter("city/110102/110102012001001/rain/rg-1", b"{not json", "malformed", "x", T0)
    assert d.digest == "3f72e9a4a965d89222423fe5cf425424f2dec4194fad172e703863ad718e5432"
