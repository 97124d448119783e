"""The reading store's insert cost per reading as the store fills, against the empty store.

    python bench/store_insert.py [--sizes 0 1000000] [--gauges 10000]

The ingest benchmark drains into a fresh store. In service the store holds at least the
longest rule window (24 h): 14.4 M rows for 10,000 gauges at one reading a minute. This
measures the production path (``gridsense.db.connect``'s pragmas, ``ReadingStore.insert_many``
in batches of 2,000, one transaction each, as the pipeline commits them) after the store
already holds N rows, and prints the ratio against the empty store measured in the same run.

For comparison it also measures the same rows in a table keyed by time first,
``PRIMARY KEY (ts_ms, device_id)``, which the pipeline does **not** use: new readings then
land at the right edge of the tree instead of on one page per gauge; and that table with
the index on ``(device_id, ts_ms)`` the operations page's per-gauge queries would need.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridsense.db import connect  # noqa: E402
from gridsense.model.envelopes import Kind, trusted_reading  # noqa: E402
from gridsense.txn import transaction  # noqa: E402
from ingest.reading_store import _INSERT, ReadingStore  # noqa: E402

BATCH = 2000
T0_MS = 1_795_790_000_000
TIME_FIRST = """
CREATE TABLE readings (
    device_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, kind TEXT NOT NULL, grid_code TEXT NOT NULL,
    value REAL NOT NULL, counter REAL, battery REAL, suspect INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (ts_ms, device_id)
) WITHOUT ROWID;
"""


Row = tuple[str, int, str, str, float, float | None, float | None, int]


def rows(start: int, count: int, gauges: int) -> list[Row]:
    """Row i: gauge i mod gauges, one reading a minute each, in arrival order."""
    grid = "110101001001001"
    return [
        (f"rg-{i % gauges:06d}", T0_MS + (i // gauges) * 60_000, "rain", grid, 0.1, None, 55.0, 0)
        for i in range(start, start + count)
    ]


def prefill(conn: sqlite3.Connection, n: int, gauges: int) -> None:
    for i in range(0, n, 50_000):
        with transaction(conn):
            conn.executemany(_INSERT, rows(i, min(50_000, n - i), gauges))


def production(path: Path, size: int, gauges: int, n: int) -> float:
    """µs per reading through ReadingStore.insert_many, after ``size`` rows."""
    conn = connect(path)
    prefill(conn, size, gauges)
    store = ReadingStore(conn)
    batches = [
        [
            trusted_reading(d, Kind.RAIN, g, datetime.fromtimestamp(ms / 1000, UTC), v, "mm", c, b, None)
            for d, ms, _, g, v, c, b, _ in rows(i, BATCH, gauges)
        ]
        for i in range(size, size + n, BATCH)
    ]
    t0 = time.perf_counter()
    for batch in batches:
        with transaction(conn):
            store.insert_many(batch)
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed / n * 1e6


def time_first(path: Path, size: int, gauges: int, n: int, device_index: bool = False) -> float:
    """µs per row, the same pragmas, into the time-first table (rows, not envelopes)."""
    conn = connect(path, create=False)
    conn.executescript(TIME_FIRST)
    if device_index:
        conn.execute("CREATE INDEX readings_device ON readings (device_id, ts_ms)")
    prefill(conn, size, gauges)
    batches = [rows(i, BATCH, gauges) for i in range(size, size + n, BATCH)]
    t0 = time.perf_counter()
    for batch in batches:
        with transaction(conn):
            conn.executemany(_INSERT, batch)
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[0, 1_000_000])
    ap.add_argument("--gauges", type=int, default=10_000)
    ap.add_argument("--readings", type=int, default=40_000, help="readings timed at each size")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gridsense-store-"))
    print(f"store insert, batches of {BATCH}, {args.gauges} gauges, wall time per reading (fsync included)")
    base = None
    for size in sorted(set(args.sizes) | {0}):
        prod = production(tmp / f"p{size}.db", size, args.gauges, args.readings)
        alt = time_first(tmp / f"t{size}.db", size, args.gauges, args.readings)
        alt_indexed = time_first(tmp / f"ti{size}.db", size, args.gauges, args.readings, device_index=True)
        base = base or prod
        print(
            f"  store holding {size:>10,} rows: {prod:6.1f} µs   ratio to the empty store {prod / base:5.2f}"
            f"   | not used: time-first key {alt:6.1f} µs, with a device index {alt_indexed:6.1f} µs"
        )


if __name__ == "__main__":
    main()
