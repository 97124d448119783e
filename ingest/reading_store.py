"""Readings in the embedded store, idempotent by (device, timestamp).

This table is also the source the rules rebuild their windows from after a restart,
so it keeps at least the longest rule window even when InfluxDB is the long-term sink.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from gridsense.model.envelopes import CANONICAL_UNIT, Kind, Reading, epoch_ms

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    device_id TEXT NOT NULL,
    ts_ms     INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    grid_code TEXT NOT NULL,
    value     REAL NOT NULL,
    counter   REAL,
    battery   REAL,
    suspect   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, ts_ms)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts_ms);
"""

_INSERT = (
    "INSERT OR IGNORE INTO readings (device_id, ts_ms, kind, grid_code, value, counter, battery, suspect)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


#: A timestamp as the store's key, integer milliseconds (``epoch_ms``, under the store's name).
ts_ms = epoch_ms


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


#: The column order ``reading_from_row`` takes; the spool table uses the same columns.
COLUMNS = "device_id, ts_ms, kind, grid_code, value, counter, battery, suspect"


def reading_row(r: Reading) -> tuple[str, int, str, str, float, float | None, float | None, int]:
    """A reading as the values of ``COLUMNS``."""
    return (
        r.device_id,
        ts_ms(r.ts),
        r.kind.value,
        r.grid_code,
        r.value,
        r.counter,
        r.battery,
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
    )


class ReadingStore:
    """Insert and read back readings; duplicates are detected, not stored twice."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def insert(self, r: Reading) -> bool:
        """Insert within the caller's transaction; False if (device, timestamp) was already stored."""
        return self._conn.execute(_INSERT, reading_row(r)).rowcount == 1

    def insert_many(self, readings: Sequence[Reading]) -> list[bool]:
        """``insert`` for each reading, in order, as one statement when none is a duplicate.

        Duplicates are rare (a redelivery after a reconnect), so the batch goes in with one
        ``executemany`` under a savepoint; only if the change count shows a duplicate is it
        rolled back to the savepoint and inserted row by row, to learn which ones.
        """
        rows = [reading_row(r) for r in readings]
        conn = self._conn
        before = conn.total_changes
        conn.execute("SAVEPOINT readings_batch")
        conn.executemany(_INSERT, rows)
        if conn.total_changes - before != len(rows):
            conn.execute("ROLLBACK TO readings_batch")
            fresh = [conn.execute(_INSERT, row).rowcount == 1 for row in rows]
        else:
            fresh = [True] * len(rows)
        conn.execute("RELEASE readings_batch")
        return fresh

    def mark_suspect(self, readings: Sequence[Reading]) -> None:
        """Flag stored readings that the quality checks found the gauge cannot produce."""
        self._conn.executemany(
            "UPDATE readings SET suspect = 1 WHERE device_id = ? AND ts_ms = ?",
            [(r.device_id, ts_ms(r.ts)) for r in readings],
        )

    def since(self, start: datetime) -> Iterator[Reading]:
        """Readings at or after ``start``, oldest first (for rebuilding rule windows)."""
        rows = self._conn.execute(
            "SELECT device_id, ts_ms, kind, grid_code, value, counter, battery, suspect"
            " FROM readings WHERE ts_ms >= ? ORDER BY ts_ms",
            (ts_ms(start),),
        )
        for row in rows:
            yield reading_from_row(*row)

    def latest_per_device(self) -> dict[str, tuple[int, float | None]]:
        """Newest timestamp (ms) and counter per device: the state counters and lateness need."""
        rows = self._conn.execute(
            "SELECT r.device_id, r.ts_ms, r.counter FROM readings r JOIN ("
            " SELECT device_id, MAX(ts_ms) AS m FROM readings GROUP BY device_id"
            ") last ON last.device_id = r.device_id AND last.m = r.ts_ms"
        )
        return {dev: (ms, counter) for dev, ms, counter in rows}

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0])

    def prune_before(self, start: datetime) -> int:
        cur = self._conn.execute("DELETE FROM readings WHERE ts_ms < ?", (ts_ms(start),))
        return cur.rowcount
