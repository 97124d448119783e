"""The reading store's insert cost per reading as the store fills, against the empty store.

    python bench/store_insert.py [--sizes 0 1000000] [--gauges 10000] [--readings 300000]

The ingest benchmark drains into a fresh store. In service the store holds at least the
longest rule window (24 h): 14.4 M rows for 10,000 gauges at one reading a minute. This
measures the production path after the store already holds N rows, and prints the ratio
against the empty store measured in the same run:

- ``gridsense.db.connect``'s pragmas (WAL, ``synchronous=FULL``);
- ``ReadingStore.insert_many`` in batches of 2,000, one transaction each, as the pipeline
  commits them;
- ``ReadingStore.settle`` every ``--settle-s`` of the readings' own time, in its own
  transaction, as the pipeline's timed job runs it. Its cost is in the figure, and the
  longest settle (the pause the pipeline sees) is printed.

For comparison it measures the layout the store had before: one table keyed by gauge
first, which each batch's readings entered directly, each on a page of its own.
"""

from __future__ import annotations

import argparse
import functools
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridsense.db import connect  # noqa: E402
from gridsense.model.envelopes import Kind  # noqa: E402
from gridsense.model.reading import Reading  # noqa: E402
from gridsense.txn import transaction  # noqa: E402
from ingest.reading_store import COLUMNS, SETTLE_MARGIN_MS, ReadingStore  # noqa: E402

BATCH = 2000
T0_MS = 1_795_790_000_000
MINUTE_MS = 60_000

Row = tuple[str, int, str, str, float, float | None, float | None, int]


@functools.cache
def arrival_order(gauges: int) -> list[int]:
    """The gauges in the order they report within each minute: unrelated to their ids."""
    order = list(range(gauges))
    random.Random(gauges).shuffle(order)
    return order


def rows(start: int, count: int, gauges: int) -> list[Row]:
    """Row i in arrival order: every gauge reports once a minute at its own second, so the
    timestamps rise with i while the gauge ids come in no order (as in service)."""
    grid = "110101001001001"
    order = arrival_order(gauges)
    out: list[Row] = []
    for i in range(start, start + count):
        minute, slot = divmod(i, gauges)
        ts = T0_MS + minute * MINUTE_MS + slot * MINUTE_MS // gauges
        out.append((f"rg-{order[slot]:06d}", ts, "rain", grid, 0.1, None, 55.0, 0))
    return out


def prefill(conn: sqlite3.Connection, table: str, n: int, gauges: int) -> None:
    """The store's history: rows a settle would have put in the gauge-keyed table."""
    for i in range(0, n, 50_000):
        with transaction(conn):
            conn.executemany(
                f"INSERT INTO {table} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows(i, min(50_000, n - i), gauges),
            )


def production(path: Path, size: int, gauges: int, n: int, settle_s: float) -> tuple[float, int, float]:
    """µs per reading through insert_many and the settles, the settles run, the longest (s)."""
    conn = connect(path)
    prefill(conn, "readings_settled", size, gauges)
    store = ReadingStore(conn)
    batches = [
        [
            Reading(d, Kind.RAIN, g, datetime.fromtimestamp(ms / 1000, UTC), v, "mm", c, b, None)
            for d, ms, _, g, v, c, b, _ in rows(i, BATCH, gauges)
        ]
        for i in range(size, size + n, BATCH)
    ]
    settle_ms = int(settle_s * 1000)
    next_settle = T0_MS + (size // gauges) * MINUTE_MS + settle_ms
    settles: list[float] = []
    t0 = time.perf_counter()
    for batch in batches:
        with transaction(conn):
            store.insert_many(batch)
        now_ms = int(batch[-1].ts.timestamp() * 1000)
        if now_ms >= next_settle:
            next_settle += settle_ms
            s0 = time.perf_counter()
            with transaction(conn):
                store.settle(now_ms - SETTLE_MARGIN_MS)
            settles.append(time.perf_counter() - s0)
    elapsed = time.perf_counter() - t0
    stored = store.count()
    conn.close()
    if stored != size + n:
        raise SystemExit(f"the store holds {stored:,} readings, expected {size + n:,}")
    return elapsed / n * 1e6, len(settles), max(settles, default=0.0)


def gauge_keyed(path: Path, size: int, gauges: int, n: int) -> float:
    """µs per row, the same pragmas, straight into the gauge-keyed table: the old layout,
    whose one table had the settled table's columns, key and time index."""
    conn = connect(path)
    prefill(conn, "readings_settled", size, gauges)
    batches = [rows(i, BATCH, gauges) for i in range(size, size + n, BATCH)]
    insert = f"INSERT OR IGNORE INTO readings_settled ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    t0 = time.perf_counter()
    for batch in batches:
        with transaction(conn):
            conn.executemany(insert, batch)
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[0, 1_000_000])
    ap.add_argument("--gauges", type=int, default=10_000)
    ap.add_argument("--readings", type=int, default=300_000, help="readings timed at each size")
    ap.add_argument("--settle-s", type=float, default=600.0, help="store.settle_s, in the readings' time")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gridsense-store-"))
    print(
        f"store insert, batches of {BATCH}, {args.gauges} gauges at 1/min, settle every {args.settle_s:g} s,"
        " wall time per reading (fsync and settles included)"
    )
    base = None
    for size in sorted(set(args.sizes) | {0}):
        prod, settles, longest = production(
            tmp / f"p{size}.db", size, args.gauges, args.readings, args.settle_s
        )
        before = gauge_keyed(tmp / f"b{size}.db", size, args.gauges, args.readings)
        base = base or prod
        print(
            f"  store holding {size:>10,} rows: {prod:6.1f} µs   ratio to the empty store {prod / base:5.2f}"
            f"   ({settles} settles, longest {longest * 1e3:.0f} ms)"
            f"   | before, one gauge-keyed table: {before:6.1f} µs, {before / prod:.1f}× the cost"
        )


if __name__ == "__main__":
    main()
