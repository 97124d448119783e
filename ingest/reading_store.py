"""Readings in the embedded store, idempotent by (device, timestamp).

The store is also the source the rules rebuild their windows from after a restart, so it
keeps at least the longest rule window even when InfluxDB is the long-term sink.

Two tables hold the readings, and the view ``readings`` is their union, which every reader
queries (SQLite pushes a query's conditions into both):

- ``readings_recent``, keyed by time first, takes every new reading. Each batch lands at the
  right edge of its tree, on a handful of pages, however many rows the store holds.
- ``readings_settled``, keyed by gauge first, holds the rest. Every ``store.settle_s`` the
  rows more than a minute older than the newest move there in one sorted pass (``settle``),
  each gauge's readings of the interval onto its own page at once. A gauge's last day is
  then a short range scan.

Inserting straight into the gauge-keyed table put each reading on a page of its own: a
batch of 2,000 dirtied about 2,000 pages, all written to the WAL at commit, and one reading
cost 72–80 µs with a million rows stored against 9 µs into the empty store
(``bench/store_insert.py``).

Which table holds a key depends only on its timestamp. Every settled reading is older than
every recent one: the **watermark** is one past the newest settled timestamp, and a reading
stamped before it (a late one) goes straight to the settled table. So a duplicate always
meets the reading it repeats in the same table, whose key detects it.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from gridsense.model.envelopes import CANONICAL_UNIT, Kind
from gridsense.model.reading import Reading
from gridsense.model.timekeys import epoch_ms
from gridsense.txn import ChunkedInsert

if TYPE_CHECKING:
    from gridsense.model.incident import IncidentChange

_FIELDS = """
    device_id TEXT NOT NULL,
    ts_ms     INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    grid_code TEXT NOT NULL,
    value     REAL NOT NULL,
    counter   REAL,
    battery   REAL,
    suspect   INTEGER NOT NULL DEFAULT 0,"""

#: The column order ``reading_from_row`` takes; the spool table uses the same columns.
COLUMNS = "device_id, ts_ms, kind, grid_code, value, counter, battery, suspect"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS readings_settled ({_FIELDS}
    PRIMARY KEY (device_id, ts_ms)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS readings_ts ON readings_settled (ts_ms);
CREATE TABLE IF NOT EXISTS readings_recent ({_FIELDS}
    PRIMARY KEY (ts_ms, device_id)
) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS readings AS
    SELECT {COLUMNS} FROM readings_settled UNION ALL SELECT {COLUMNS} FROM readings_recent;
"""

_INSERT_RECENT: Final = ChunkedInsert(f"INSERT OR IGNORE INTO readings_recent ({COLUMNS})", 8)
_INSERT_SETTLED = f"INSERT OR IGNORE INTO readings_settled ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"

#: Readings younger than this stay recent at a settle, so the seconds-late ones still land fast.
SETTLE_MARGIN_MS = 60_000


def upgrade(conn: sqlite3.Connection) -> None:
    """Turn a store from before the split (one ``readings`` table) into the settled table.

    A rename, so it is instant whatever the size; the table keeps its ``readings_ts`` index.
    """
    row = conn.execute("SELECT type FROM sqlite_master WHERE name = 'readings'").fetchone()
    if row is not None and row[0] == "table":
        conn.execute("ALTER TABLE readings RENAME TO readings_settled")


def newest_ms(conn: sqlite3.Connection) -> int | None:
    """The newest stored timestamp, from each table's own index (the view would be scanned)."""
    (newest,) = conn.execute(
        "SELECT MAX(m) FROM (SELECT MAX(ts_ms) AS m FROM readings_settled"
        " UNION ALL SELECT MAX(ts_ms) FROM readings_recent)"
    ).fetchone()
    return None if newest is None else int(newest)


#: A timestamp as the store's key, integer milliseconds (``epoch_ms``, under the store's name).
ts_ms = epoch_ms


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


#: Each kind's column value: a dict lookup, where ``Kind.value`` is a descriptor call.
_KIND_VALUE: Final = {k: k.value for k in Kind}


#: What the store binds for an absent counter or battery: SQLite stores a NaN it is given as
#: NULL (a NaN is never a reading's value: the codec refuses it). Python's sqlite3 module binds
#: None only after looking for an adapter for it, two failed attribute lookups that cost about
#: 2,000 instructions, 3.5 % of the batch handler with most gauges sending no counter
#: (callgrind). tests/ingest/test_reading_store.py holds an absent field to NULL.
ABSENT: Final = math.nan


def reading_row(
    r: Reading, absent: float | None = None
) -> tuple[str, int, str, str, float, float | None, float | None, int]:
    """A reading as the values of ``COLUMNS``; ``absent`` stands for a missing counter or
    battery (the store binds ``ABSENT``; the spool's JSON keeps None)."""
    counter, battery = r.counter, r.battery
    return (
        r.device_id,
        r.ts_ms,
        _KIND_VALUE[r.kind],
        r.grid_code,
        r.value,
        absent if counter is None else counter,
        absent if battery is None else battery,
        int(r.suspect),
    )


def reading_from_row(
    device_id: str,
    ms: int,
    kind: str,
    grid: str,
    value: float,
    counter: float | None,
    battery: float | None,
    suspect: int,
) -> Reading:
    """A stored row back into its envelope."""
    k = Kind(kind)
    return Reading(
        device_id=device_id,
        kind=k,
        grid_code=grid,
        ts=from_ms(ms),
        value=value,
        unit=CANONICAL_UNIT[k],
        counter=counter,
        battery=battery,
        suspect=bool(suspect),
        ts_ms=ms,
    )


class ReadingStore:
    """Insert and read back readings; duplicates are detected, not stored twice."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def watermark(self) -> int:
        """One past the newest settled timestamp: readings stamped before it are settled.

        Read from the store inside the caller's transaction (the ``readings_ts`` index makes
        it one probe), never cached, so a rolled-back settle cannot leave it wrong.
        """
        (newest,) = self._conn.execute("SELECT MAX(ts_ms) FROM readings_settled").fetchone()
        return -(2**63) if newest is None else int(newest) + 1

    def insert(self, r: Reading) -> bool:
        """Insert within the caller's transaction; False if (device, timestamp) was already stored."""
        row = reading_row(r, ABSENT)
        sql = _INSERT_RECENT.one if row[1] >= self.watermark() else _INSERT_SETTLED
        return self._conn.execute(sql, row).rowcount == 1

    def insert_many(self, readings: Sequence[Reading]) -> list[bool]:
        """``insert`` for each reading, in order, in a few statements when none is a duplicate.

        Duplicates are rare (a redelivery after a reconnect), so the batch goes in with one
        ``executemany`` (``gridsense.txn.CHUNK_ROWS`` rows a statement) under a savepoint;
        only if the change count shows a duplicate is it rolled back to the savepoint and
        inserted row by row, to learn which ones. Late readings (stamped before the watermark) are rarer still
        and go in on their own.
        """
        rows = [reading_row(r, ABSENT) for r in readings]
        mark = self.watermark()
        recent = [row for row in rows if row[1] >= mark]
        conn = self._conn
        before = conn.total_changes
        conn.execute("SAVEPOINT readings_batch")
        _INSERT_RECENT.run(conn, recent)
        if len(recent) != len(rows):
            conn.executemany(_INSERT_SETTLED, [row for row in rows if row[1] < mark])
        if conn.total_changes - before != len(rows):
            conn.execute("ROLLBACK TO readings_batch")
            fresh = [
                conn.execute(_INSERT_RECENT.one if row[1] >= mark else _INSERT_SETTLED, row).rowcount == 1
                for row in rows
            ]
        else:
            fresh = [True] * len(rows)
        conn.execute("RELEASE readings_batch")
        return fresh

    def settle(self, before_ms: int) -> int:
        """Move the recent readings stamped before ``before_ms`` to the gauge-keyed table.

        One sorted pass within the caller's transaction; returns the rows moved. A key is
        never in both tables (see the module's docstring), so a plain INSERT: a conflict
        would be a bug, and fails loudly instead of dropping a reading.
        """
        conn = self._conn
        moved = conn.execute(
            f"INSERT INTO readings_settled ({COLUMNS}) SELECT {COLUMNS} FROM readings_recent"
            " WHERE ts_ms < ? ORDER BY device_id, ts_ms",
            (before_ms,),
        ).rowcount
        conn.execute("DELETE FROM readings_recent WHERE ts_ms < ?", (before_ms,))
        return int(moved)

    def mark_suspect(self, readings: Sequence[Reading]) -> None:
        """Flag stored readings that the quality checks found the gauge cannot produce."""
        keys = [(r.device_id, r.ts_ms) for r in readings]
        for table in ("readings_recent", "readings_settled"):
            self._conn.executemany(f"UPDATE {table} SET suspect = 1 WHERE device_id = ? AND ts_ms = ?", keys)

    def since(self, start: datetime) -> Iterator[Reading]:
        """Readings at or after ``start``, oldest first (for rebuilding rule windows)."""
        rows = self._conn.execute(
            f"SELECT {COLUMNS} FROM readings_settled WHERE ts_ms >= ?1"
            f" UNION ALL SELECT {COLUMNS} FROM readings_recent WHERE ts_ms >= ?1 ORDER BY ts_ms",
            (ts_ms(start),),
        )
        for row in rows:
            yield reading_from_row(*row)

    def latest_per_device(self) -> dict[str, tuple[int, float | None]]:
        """Newest timestamp (ms) and counter per device: the state counters and lateness need.

        Per table, each with the plan its key allows; a recent reading is always the newer.
        """
        latest: dict[str, tuple[int, float | None]] = {}
        for table in ("readings_settled", "readings_recent"):
            rows = self._conn.execute(
                f"SELECT r.device_id, r.ts_ms, r.counter FROM {table} r JOIN ("
                f" SELECT device_id, MAX(ts_ms) AS m FROM {table} GROUP BY device_id"
                ") last ON last.device_id = r.device_id AND last.m = r.ts_ms"
            )
            latest.update((dev, (ms, counter)) for dev, ms, counter in rows)
        return latest

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0])

    def prune_before(self, start: datetime) -> int:
        pruned = 0
        for table in ("readings_settled", "readings_recent"):
            pruned += self._conn.execute(f"DELETE FROM {table} WHERE ts_ms < ?", (ts_ms(start),)).rowcount
        return pruned


@dataclass
class SettleReadings:
    """``ingest.contract.ScheduledJob``: every ``interval_s``, recent readings more than
    ``SETTLE_MARGIN_MS`` older than the newest one move to the gauge-keyed table.

    Older than the newest *reading*, not than the clock: after an outage the broker replays
    the backlog oldest first, and a cutoff on the clock would settle the head of the replay
    and send the rest, stamped before the watermark, the slow way into the settled table.
    The clock still caps the cutoff, so a gauge stamping the future cannot drag it along.
    """

    store: ReadingStore
    interval_s: float
    name: str = "settle_readings"

    def run(self, conn: sqlite3.Connection, now: datetime) -> list[IncidentChange]:
        (newest,) = conn.execute("SELECT MAX(ts_ms) FROM readings_recent").fetchone()
        if newest is not None:
            self.store.settle(min(int(newest), epoch_ms(now)) - SETTLE_MARGIN_MS)
        return []
