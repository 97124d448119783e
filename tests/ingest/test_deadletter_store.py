"""The dead-letter store: each message the pipeline rejects is kept once, with its reason.

A batch's letters go in ``CHUNK_ROWS`` to a statement (``gridsense.txn.ChunkedInsert``), and
a redelivered message (same topic, same bytes) must still be stored once, whether its copy is
in the same statement, another statement of the batch, or an earlier batch.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gridsense.db import connect
from gridsense.txn import CHUNK_ROWS, transaction
from ingest.deadletter import KEPT_PAYLOAD_BYTES, DeadLetter, DeadLetterStore

T0 = datetime(2026, 7, 21, 6, 0, tzinfo=UTC)
TOPIC = "city/110105/110105001001001/rain/rg-{}"


def letter(device: int, payload: bytes, at: datetime = T0, reason: str = "malformed") -> DeadLetter:
    return DeadLetter(TOPIC.format(device), payload, reason, f"detail of {payload[:8]!r}", at, f"rg-{device}")


Message = tuple[int, bytes]  # (device, payload)
# Few distinct messages, so that batches repeat one another's and their own.
messages = st.tuples(st.integers(0, 5), st.sampled_from([b"{", b'{"ts": 17', b"\xff", b"[]"]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(messages, max_size=3 * CHUNK_ROWS + 7), max_size=4))
def test_each_message_is_stored_once_and_add_counts_the_new_ones(batches: list[list[Message]]) -> None:
    conn = connect(":memory:")
    store = DeadLetterStore(conn)
    seen: list[tuple[int, bytes, str]] = []  # (device, payload, at) in the order first stored
    for i, batch in enumerate(batches):
        new = [m for m in dict.fromkeys(batch) if m not in {(d, p) for d, p, _ in seen}]
        # The pipeline stamps a batch's letters with one instant; the store must not rely on it.
        at = {m: T0 + timedelta(seconds=i, milliseconds=m[0] % 2) for m in batch}
        with transaction(conn):
            assert store.add([letter(d, p, at[d, p]) for d, p in batch]) == len(new)
        seen += [(d, p, at[d, p].isoformat()) for d, p in new]
    columns = "topic, payload, device_id, reason, at"
    rows = conn.execute(f"SELECT {columns} FROM dead_letters ORDER BY id").fetchall()
    assert rows == [(TOPIC.format(d), p, f"rg-{d}", "malformed", at) for d, p, at in seen]
    assert store.counts_by_reason() == ({"malformed": len(seen)} if seen else {})


def test_a_batch_goes_in_whole_statements_and_keeps_its_order() -> None:
    conn = connect(":memory:")
    store = DeadLetterStore(conn)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    n = 2 * CHUNK_ROWS + 3
    with transaction(conn):
        assert store.add([letter(i, b"{") for i in range(n)]) == n
    conn.set_trace_callback(None)
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
