"""InfluxSpool: a bounded, durable queue of readings on their way to InfluxDB.

Readings enter the spool in the same transaction that stores them, so an InfluxDB outage
never holds MQTT acknowledgements back while there is room. The ``InfluxForwarder``, in a
process of its own (``ingest.forwarder_process``), drains the spool in order, deleting rows
only after the server accepted them; when the spool is full, the pipeline stops
acknowledging (``Retryable``) until it has room again.

One spool row holds one batch's readings, as a JSON array of ``reading_store.COLUMNS``
rows. A row per reading cost the pipeline an indexed insert per reading, for data the
reading store had just written, and the forwarder a delete per reading: with the sink
configured the batch handler ran at 0.82 of its rate without one, and with a row per batch
at 0.92 (``bench/ingest_throughput.py --influx``, one run each). ``total`` is the running
count of readings spooled since the spool was last empty, so the depth in readings is two
index probes in one statement, however long the spool is.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence

import orjson

from gridsense.child_process import Counts, Stoppable
from gridsense.errors import Fatal, Retryable
from gridsense.model.reading import Reading
from ingest.influx_sink import InfluxSink
from ingest.line_protocol import Row
from ingest.reading_store import COLUMNS, reading_row

log = logging.getLogger("gridsense.spool")

SCHEMA = """
CREATE TABLE IF NOT EXISTS influx_spool_batches (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    n     INTEGER NOT NULL,  -- readings in this row
    total INTEGER NOT NULL,  -- readings spooled up to and including this row
    rows  BLOB NOT NULL      -- JSON: one array of reading_store.COLUMNS per reading
);
"""

#: Readings per spool row when an old spool (one row per reading) is converted.
_UPGRADE_CHUNK = 5000


def upgrade(conn: sqlite3.Connection) -> None:
    """Move what a spool of one row per reading (``influx_spool``) still holds into batch rows,
    in order, and drop it; one transaction, so a crash midway converts nothing."""
    if not _has_old_spool(conn):
        return
    conn.executescript(SCHEMA)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _has_old_spool(conn):  # another process converted it while we waited for the lock
            conn.execute("COMMIT")
            return
        total = _newest_total(conn)
        cur = conn.execute(f"SELECT {COLUMNS} FROM influx_spool ORDER BY seq")
        while rows := cur.fetchmany(_UPGRADE_CHUNK):
            total += len(rows)
            conn.execute(
                "INSERT INTO influx_spool_batches (n, total, rows) VALUES (?, ?, ?)",
                (len(rows), total, orjson.dumps(rows)),
            )
        conn.execute("DROP TABLE influx_spool")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _has_old_spool(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'influx_spool'").fetchone() is not None


def spool_depth(conn: sqlite3.Connection) -> int:
    """Readings waiting in the spool: two index probes, never a scan. One statement, so both
    probes read the same snapshot even while the forwarder deletes and the pipeline adds."""
    (depth,) = conn.execute(
        "SELECT (SELECT total FROM influx_spool_batches ORDER BY seq DESC LIMIT 1)"
        " - (SELECT total - n FROM influx_spool_batches ORDER BY seq LIMIT 1)"
    ).fetchone()
    return 0 if depth is None else int(depth)


def _newest_total(conn: sqlite3.Connection) -> int:
    last = conn.execute("SELECT total FROM influx_spool_batches ORDER BY seq DESC LIMIT 1").fetchone()
    return 0 if last is None else int(last[0])


class InfluxSpool:
    """The spool table, as the pipeline's writer connection sees it."""

    def __init__(self, conn: sqlite3.Connection, max_rows: int) -> None:
        self._conn = conn
        self.max_rows = max_rows
        self._rows = self.depth()

    def depth(self) -> int:
        return spool_depth(self._conn)

    def check_room(self, n: int) -> None:
        """Before a batch: refuse it (acks held back) if the spool cannot take it."""
        if self._rows + n <= self.max_rows:
            return
        self._rows = self.depth()  # the forwarder may have drained it meanwhile
        if self._rows + n > self.max_rows:
            raise Retryable(f"influx spool full ({self._rows} of {self.max_rows} rows): holding acks", 1.0)

    def add(self, readings: Sequence[Reading]) -> None:
        """Inside the batch transaction: the readings as one spool row."""
        if not readings:
            return
        self._conn.execute(
            "INSERT INTO influx_spool_batches (n, total, rows) VALUES (?, ?, ?)",
            (
                len(readings),
                _newest_total(self._conn) + len(readings),
                orjson.dumps([reading_row(r) for r in readings]),
            ),
        )
        self._rows += len(readings)


#: Indexes into ``InfluxForwarder.stats``: readings forwarded, and failed writes.
FORWARDED, FAILURES = 0, 1


class InfluxForwarder:
    """Drains the spool to InfluxDB, oldest first, on its own connection, until ``stop`` is set.

    It runs in a process of its own (``ingest.forwarder_process``); ``stats`` counts readings
    forwarded and failed writes (``FORWARDED``, ``FAILURES``) where its parent can read them.
    """

    def __init__(
        self, conn: sqlite3.Connection, sink: InfluxSink, batch: int, stop: Stoppable, stats: Counts
    ) -> None:
        self._conn = conn
        self._sink = sink
        self._batch = batch
        self._stop = stop
        self.stats = stats
        self.fatal: BaseException | None = None

    def depth(self) -> int:
        return spool_depth(self._conn)

    def forward_once(self) -> int:
        """Send the oldest spool rows, at most ``batch`` readings; return how many readings left
        the spool. One spool row is never split: a row larger than the batch is sent alone, in
        several writes (``InfluxSink.write_rows``), and deleted once all were accepted."""
        readings: list[Row] = []
        last = None
        cur = self._conn.execute("SELECT seq, n, rows FROM influx_spool_batches ORDER BY seq")
        try:
            while (row := cur.fetchone()) is not None:
                if readings and len(readings) + row[1] > self._batch:
                    break  # this row would not fit
                last = row[0]
                readings += orjson.loads(row[2])
                if len(readings) >= self._batch:
                    break  # full: do not fetch the next row's blob only to leave it
        finally:
            cur.close()  # the read ends here, before the write: no snapshot held across the post
        if last is None:
            return 0
        self._sink.write_rows(readings)
        self._conn.execute("DELETE FROM influx_spool_batches WHERE seq <= ?", (last,))
        self.stats[FORWARDED] += len(readings)
        return len(readings)

    def run(self) -> None:
        """Forward until stopped; back off while the server or the store is away; return on a
        ``Fatal``. A batch sent but not deleted (the store locked) is sent again: points
        overwrite by series and timestamp, so the server keeps one of each."""
        delay = 0.5
        while not self._stop.is_set():
            try:
                sent = self.forward_once()
                delay = 0.5
            except Retryable as exc:
                self.stats[FAILURES] += 1
                wait = exc.retry_after_s if exc.retry_after_s is not None else delay
                log.warning(
                    "influx unavailable (%s); %d readings spooled, retry in %.1f s", exc, self.depth(), wait
                )
                self._stop.wait(wait)
                delay = min(delay * 2, 30.0)
                continue
            except sqlite3.OperationalError as exc:  # the store locked or full past its busy timeout
                self.stats[FAILURES] += 1
                log.error("spool unavailable (%s); forwarding resumes when it answers", exc)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            except Fatal as exc:
                log.critical("influx sink misconfigured, forwarding stopped: %s", exc)
                self.fatal = exc
                return
            if not sent:
                self._stop.wait(0.2)
