"""The InfluxDB spool's table: one row per batch, its depth in readings, and the conversion of
a spool from before (one row per reading) that still holds readings. The forwarder against a
real server is in test_forwarder_process.py."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import orjson
import pytest

from gridsense import db
from gridsense.errors import Retryable
from gridsense.txn import transaction
from ingest.reading_store import COLUMNS, reading_row
from ingest.spool import InfluxSpool, spool_depth, upgrade
from tests.ingest.test_influx_sink import rain_series

#: The spool table as it was before batches, with its rows still to forward.
OLD_SPOOL = """
CREATE TABLE influx_spool (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    ts_ms     INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    grid_code TEXT NOT NULL,
    value     REAL NOT NULL,
    counter   REAL,
    battery   REAL,
    suspect   INTEGER NOT NULL
);
"""


def spooled_rows(conn: sqlite3.Connection) -> list[list[object]]:
    """Every reading the spool holds, in order, as the forwarder reads them."""
    out: list[list[object]] = []
    for (blob,) in conn.execute("SELECT rows FROM influx_spool_batches ORDER BY seq"):
        out += orjson.loads(blob)
    return out


def test_a_batch_is_one_row_and_the_depth_counts_readings(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "state.db")
    spool = InfluxSpool(conn, 1_000)
    with transaction(conn):
        spool.add(rain_series(30, "rg-0001"))
    with transaction(conn):
        spool.add([])  # a batch with nothing fresh adds no row
        spool.add(rain_series(12, "rg-0002"))
    assert conn.execute("SELECT COUNT(*) FROM influx_spool_batches").fetchone()[0] == 2
    assert spool.depth() == spool_depth(conn) == 42
    expected = [list(reading_row(r)) for r in rain_series(30, "rg-0001") + rain_series(12, "rg-0002")]
    assert spooled_rows(conn) == expected
    # The forwarder deletes from the head; the depth follows, and a new pipeline reads it back.
    conn.execute("DELETE FROM influx_spool_batches WHERE seq = (SELECT MIN(seq) FROM influx_spool_batches)")
    assert spool_depth(conn) == 12 and InfluxSpool(conn, 1_000).depth() == 12
    conn.execute("DELETE FROM influx_spool_batches")
    assert spool_depth(conn) == 0
    with transaction(conn):
        spool.add(rain_series(5, "rg-0003"))
    assert spool_depth(conn) == 5


def test_a_full_spool_refuses_the_batch_that_would_overflow_it(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "state.db")
    spool = InfluxSpool(conn, 40)
    with transaction(conn):
        spool.add(rain_series(30))
    spool.check_room(10)
    with pytest.raises(Retryable, match=r"influx spool full \(30 of 40 rows\)"):
        spool.check_room(11)  # acks are held back until the forwarder drains
    conn.execute("DELETE FROM influx_spool_batches")
    spool.check_room(40)  # drained meanwhile: the spool reads its depth again


def test_a_spool_from_before_batches_is_converted_in_order_and_nothing_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as old:
        old.executescript(OLD_SPOOL)
        readings = rain_series(12_001, "rg-0001")
        rows = [reading_row(r) for r in readings]
        rows[3] = (*rows[3][:5], 17.5, 88.0, 1)  # a counter, a battery and a suspect flag survive
        old.executemany(f"INSERT INTO influx_spool ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn = db.connect(path)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'influx_spool'").fetchone() is None
    assert spooled_rows(conn) == [list(r) for r in rows]
    assert spool_depth(conn) == 12_001
    assert [n for (n,) in conn.execute("SELECT n FROM influx_spool_batches ORDER BY seq")] == [
        5000,
        5000,
        2001,
    ]
    db.connect(path).close()  # opening it again converts nothing twice
    assert spool_depth(conn) == 12_001


def test_two_processes_opening_an_old_spool_at_once_convert_it_once(tmp_path: Path) -> None:
    """Two openers both see the old table; one takes the write lock first and converts it.
    The other, once it has the lock, looks again and finds nothing left to convert, where it
    used to read a table that no longer existed."""
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as old:
        old.executescript(OLD_SPOOL)
        rows = [reading_row(r) for r in rain_series(7, "rg-0001")]
        old.executemany(f"INSERT INTO influx_spool ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    first, second = (
        sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False) for _ in "12"
    )
    first.execute("BEGIN IMMEDIATE")  # hold the lock until the second opener has looked
    waiting = threading.Event()
    second.set_trace_callback(lambda sql: waiting.set() if "CREATE TABLE" in sql else None)
    errors: list[BaseException] = []

    def open_second() -> None:
        try:
            upgrade(second)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=open_second)
    thread.start()
    assert waiting.wait(30), "the second opener never reached the lock"
    first.execute("ROLLBACK")
    upgrade(first)  # whichever of the two gets the lock first converts; the other finds it done
    thread.join(30)
    assert not thread.is_alive() and errors == []
    conn = db.connect(path)
    assert spooled_rows(conn) == [list(r) for r in rows] and spool_depth(conn) == 7
