"""The reading store's two tables behave as the one idempotent table every reader sees.

New readings land in ``readings_recent`` (keyed by time) and ``settle`` moves them to
``readings_settled`` (keyed by gauge); ``readings`` is the view of both. Whatever the order
of inserts, late readings, settles, prunes and suspect flags, the store must hold exactly
the set of (device, timestamp) keys a single table would hold, report each insert as new
or duplicate exactly as that table would, and never hold a key twice.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gridsense.app import App
from gridsense.config import GridsenseConfig, StoreConfig
from gridsense.db import connect
from gridsense.model.envelopes import Kind
from gridsense.model.reading import Reading
from gridsense.txn import CHUNK_ROWS, transaction
from ingest.contract import InboundMessage
from ingest.gauge_codec import Sample, encode_json
from ingest.reading_store import (
    COLUMNS,
    SETTLE_MARGIN_MS,
    ReadingStore,
    SettleReadings,
    from_ms,
    newest_ms,
)
from tests.fixtures.sqlite_trace import statements_run

T0 = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
MIN_MS = 60_000
GRID = "110102012001001"

Key = tuple[str, int]


def reading(device: str, ms: int, value: float = 0.5) -> Reading:
    return Reading(device, Kind.RAIN, GRID, from_ms(ms), value, "mm", None, 80.0, None)


def keys_in(conn: sqlite3.Connection, table: str) -> list[Key]:
    return conn.execute(f"SELECT device_id, ts_ms FROM {table}").fetchall()


devices = st.sampled_from(["rg-a", "rg-b", "rg-c"])
minutes = st.integers(min_value=0, max_value=40)
keys = st.tuples(devices, minutes.map(lambda m: T0_MS + m * MIN_MS))
operations = st.lists(
    st.one_of(
        # up to 80 keys: more than one of the store's multi-row statements, duplicates within them
        st.tuples(st.just("insert"), st.lists(keys, min_size=1, max_size=80)),
        st.tuples(st.just("settle"), minutes.map(lambda m: T0_MS + m * MIN_MS)),
        st.tuples(st.just("prune"), minutes.map(lambda m: T0_MS + m * MIN_MS)),
        st.tuples(st.just("suspect"), st.lists(keys, max_size=3)),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_any_mix_of_inserts_settles_prunes_and_flags_behaves_as_one_table(
    ops: list[tuple[str, object]],
) -> None:
    conn = connect(":memory:")
    store = ReadingStore(conn)
    model: dict[Key, bool] = {}  # key → suspect
    for op, arg in ops:
        with transaction(conn):
            if op == "insert":
                batch = arg
                assert isinstance(batch, list)
                expected = []
                for key in batch:
                    expected.append(key not in model)
                    model.setdefault(key, False)
                assert store.insert_many([reading(d, ms) for d, ms in batch]) == expected
            elif op == "settle":
                assert isinstance(arg, int)
                store.settle(arg)
            elif op == "prune":
                assert isinstance(arg, int)
                store.prune_before(from_ms(arg))
                model = {k: s for k, s in model.items() if k[1] >= arg}
            else:
                assert isinstance(arg, list)
                store.mark_suspect([reading(d, ms) for d, ms in arg])
                model.update({k: True for k in arg if k in model})
        settled, recent = keys_in(conn, "readings_settled"), keys_in(conn, "readings_recent")
        assert sorted(settled + recent) == sorted(model), "every key exactly once, in one table"
        if settled and recent:
            assert max(ms for _, ms in settled) < min(ms for _, ms in recent)
        flags = dict(
            ((d, ms), bool(s)) for d, ms, s in conn.execute("SELECT device_id, ts_ms, suspect FROM readings")
        )
        assert flags == model
    assert store.count() == len(model)
    assert newest_ms(conn) == max((ms for _, ms in model), default=None)
    latest = {d: ms for d, ms in sorted(model, key=lambda k: k[1])}
    assert {d: ms for d, (ms, _) in store.latest_per_device().items()} == latest
    start = T0 + timedelta(minutes=20)
    got = [(r.device_id, int(r.ts.timestamp() * 1000)) for r in store.since(start)]
    assert [ms for _, ms in got] == sorted(ms for _, ms in got)
    assert sorted(got) == sorted(k for k in model if from_ms(k[1]) >= start)


def test_a_batch_without_duplicates_goes_in_whole_statements_and_never_row_by_row() -> None:
    """The property test above holds the outcome whatever happens; this one holds the fast way:
    a duplicate-free batch of several multi-row statements and a remainder, and no rollback
    to the row-by-row retry (which would give the same outcome for many times the cost)."""
    conn = connect(":memory:")
    store = ReadingStore(conn)
    n = 3 * CHUNK_ROWS + 5
    with statements_run(conn) as statements, transaction(conn):
        assert store.insert_many([reading("rg-a", T0_MS + m * MIN_MS) for m in range(n)]) == [True] * n
    assert not [s for s in statements if s.startswith("ROLLBACK")]
    assert len(keys_in(conn, "readings_recent")) == n
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert len(inserts) == 3 + 5  # three statements of CHUNK_ROWS rows, then five of one


def test_a_late_reading_goes_to_the_settled_table_and_its_redelivery_is_a_duplicate() -> None:
    conn = connect(":memory:")
    store = ReadingStore(conn)
    with transaction(conn):
        assert store.insert_many([reading("rg-a", T0_MS + m * MIN_MS) for m in range(10)]) == [True] * 10
        assert store.settle(T0_MS + 5 * MIN_MS) == 5
    assert store.watermark() == T0_MS + 4 * MIN_MS + 1
    late = reading("rg-b", T0_MS + 2 * MIN_MS)
    with transaction(conn):
        assert store.insert_many([late, reading("rg-a", T0_MS + 11 * MIN_MS)]) == [True, True]
        assert store.insert_many([late, reading("rg-a", T0_MS + 3 * MIN_MS)]) == [False, False]
    assert ("rg-b", T0_MS + 2 * MIN_MS) in keys_in(conn, "readings_settled")
    assert len(keys_in(conn, "readings_recent")) == 6


def test_an_absent_counter_or_battery_is_stored_as_null_and_reads_back_as_none() -> None:
    """The store binds ``ABSENT`` (a NaN) for them, which SQLite must store as NULL: a NaN
    counter read back would look like a counter to the normaliser after a restart."""
    conn = connect(":memory:")
    store = ReadingStore(conn)
    bare = Reading("rg-a", Kind.RAIN, GRID, from_ms(T0_MS), 0.5, "mm")
    counted = Reading("rg-b", Kind.RAIN, GRID, from_ms(T0_MS), 0.5, "mm", 120.5, 80.0)
    late = Reading("rg-c", Kind.RAIN, GRID, from_ms(T0_MS), 0.5, "mm")
    with transaction(conn):
        assert store.insert_many([bare, counted]) == [True, True]
        assert store.settle(T0_MS + 1) == 2
        assert store.insert_many([late]) == [True]  # before the watermark: the settled table
        assert store.insert(Reading("rg-d", Kind.RAIN, GRID, from_ms(T0_MS + MIN_MS), 0.5, "mm"))
    rows = conn.execute(
        "SELECT device_id, counter, battery, typeof(counter), typeof(battery)"
        " FROM readings ORDER BY device_id"
    ).fetchall()
    assert rows == [
        ("rg-a", None, None, "null", "null"),
        ("rg-b", 120.5, 80.0, "real", "real"),
        ("rg-c", None, None, "null", "null"),
        ("rg-d", None, None, "null", "null"),
    ]
    assert store.latest_per_device()["rg-a"] == (T0_MS, None)
    assert [(r.counter, r.battery) for r in store.since(from_ms(T0_MS))][:2] == [(None, None), (120.5, 80.0)]


def test_a_store_from_before_the_split_is_upgraded_in_place_and_keeps_detecting_duplicates(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE readings (
            device_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, kind TEXT NOT NULL, grid_code TEXT NOT NULL,
            value REAL NOT NULL, counter REAL, battery REAL, suspect INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (device_id, ts_ms)
        ) WITHOUT ROWID;
        CREATE INDEX readings_ts ON readings (ts_ms);
        """
    )
    old.executemany(
        f"INSERT INTO readings ({COLUMNS}) VALUES (?, ?, 'rain', ?, 1.0, NULL, NULL, 0)",
        [("rg-a", T0_MS + m * MIN_MS, GRID) for m in range(3)],
    )
    old.commit()
    old.close()
    conn = connect(path)
    kinds = dict(conn.execute("SELECT name, type FROM sqlite_master WHERE name LIKE 'readings%'").fetchall())
    assert kinds == {
        "readings": "view",
        "readings_settled": "table",
        "readings_recent": "table",
        "readings_ts": "index",
    }
    store = ReadingStore(conn)
    assert store.count() == 3
    with transaction(conn):
        fresh = store.insert_many([reading("rg-a", T0_MS + m * MIN_MS) for m in (1, 3)])
    assert fresh == [False, True]
    assert connect(path).execute("SELECT COUNT(*) FROM readings").fetchone()[0] == 4  # a second open: no-op


def test_the_pipeline_settles_what_is_older_than_the_margin_and_keeps_the_rest_recent(tmp_path: Path) -> None:
    app = App(GridsenseConfig(store=StoreConfig(path=tmp_path / "s.db", settle_s=3600)))
    dev = "rg-012001001-1"
    now = datetime.now(UTC).replace(microsecond=0)
    stamps = [now - timedelta(minutes=m) for m in (30, 20, 10)] + [
        now - timedelta(milliseconds=SETTLE_MARGIN_MS // 2)
    ]

    def msg(ts: datetime) -> InboundMessage:
        payload = encode_json(Sample(dev, Kind.RAIN, ts, "amount", 0.2))
        return InboundMessage(f"city/{GRID[:6]}/{GRID}/rain/{dev}", payload, ts)

    assert app.pipeline.handle([msg(ts) for ts in stamps]).readings == 4
    assert len(keys_in(app.conn, "readings_recent")) == 4
    app.pipeline.tick()  # the first tick runs every timed job
    recent = keys_in(app.conn, "readings_recent")
    assert [ms for _, ms in recent] == [int(stamps[-1].timestamp() * 1000)]
    assert len(keys_in(app.conn, "readings_settled")) == 3
    # A redelivery of a settled reading is still a duplicate, through the pipeline.
    again = app.pipeline.handle([msg(stamps[0])])
    assert (again.readings, again.duplicates) == (0, 1)


def test_a_backlog_replayed_after_an_outage_keeps_landing_in_the_recent_table(tmp_path: Path) -> None:
    """The settle cutoff follows the newest reading, not the clock: with the clock's, the
    first settle would pass the whole backlog and its rest would go the slow way."""
    app = App(GridsenseConfig(store=StoreConfig(path=tmp_path / "s.db", settle_s=3600)))
    dev = "rg-012001001-1"
    down_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

    def msg(minute: int) -> InboundMessage:
        ts = down_at + timedelta(minutes=minute)
        payload = encode_json(Sample(dev, Kind.RAIN, ts, "amount", 0.2))
        return InboundMessage(f"city/{GRID[:6]}/{GRID}/rain/{dev}", payload, ts)

    assert app.pipeline.handle([msg(m) for m in range(10)]).readings == 10  # the backlog's head
    app.pipeline.tick()  # a settle runs mid-replay
    # Minutes 0–7: more than a minute older than the newest (minute 9); the clock is an hour on.
    assert len(keys_in(app.conn, "readings_settled")) == 8
    assert app.pipeline.handle([msg(m) for m in range(10, 20)]).readings == 10
    assert len(keys_in(app.conn, "readings_settled")) == 8
    assert len(keys_in(app.conn, "readings_recent")) == 12


def test_a_gauge_stamping_the_future_does_not_drag_the_settle_cutoff_along() -> None:
    conn = connect(":memory:")
    store = ReadingStore(conn)
    now = T0 + timedelta(minutes=30)
    with transaction(conn):
        store.insert_many([reading("rg-a", T0_MS + m * MIN_MS) for m in range(30)])
        store.insert_many([reading("rg-b", T0_MS + 600 * MIN_MS)])  # ten hours ahead
    job = SettleReadings(store, 600.0)
    with transaction(conn):
        job.run(conn, now)
    # The clock caps the cutoff at now - margin: rg-a's last minute stays, rg-b's future too.
    assert sorted(ms for _, ms in keys_in(conn, "readings_recent")) == [
        T0_MS + 29 * MIN_MS,
        T0_MS + 600 * MIN_MS,
    ]


def test_the_settle_waits_its_interval_between_runs(tmp_path: Path) -> None:
    app = App(GridsenseConfig(store=StoreConfig(path=tmp_path / "s.db", settle_s=3600)))
    dev = "rg-012001001-1"
    now = datetime.now(UTC).replace(microsecond=0)

    def msg(minutes_ago: int) -> InboundMessage:
        ts = now - timedelta(minutes=minutes_ago)
        payload = encode_json(Sample(dev, Kind.RAIN, ts, "amount", 0.2))
        return InboundMessage(f"city/{GRID[:6]}/{GRID}/rain/{dev}", payload, ts)

    app.pipeline.handle([msg(40), msg(30)])
    app.pipeline.tick()  # the first tick settles: the 40-minute reading moves
    assert len(keys_in(app.conn, "readings_settled")) == 1
    app.pipeline.handle([msg(20), msg(10)])
    app.pipeline._next_tick = 0.0  # the rules' tick is due again; the settle is not (1 h)
    app.pipeline.tick()
    assert len(keys_in(app.conn, "readings_settled")) == 1
    app.pipeline._job_due["settle_readings"] = 0.0  # an hour later
    app.pipeline._next_tick = 0.0
    app.pipeline.tick()
    assert len(keys_in(app.conn, "readings_settled")) == 3
