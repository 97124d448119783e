"""InfluxSpool: a bounded, durable queue of readings on their way to InfluxDB.

Readings enter the spool in the same transaction that stores them, so an InfluxDB outage
never holds MQTT acknowledgements back while there is room. The ``InfluxForwarder``, in a
process of its own (``ingest.forwarder_process``), drains the spool in order, deleting rows
only after the server accepted them; when the spool is full, the pipeline stops
acknowledging (``Retryable``) until it has room again.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence

from gridsense.child_process import Counts, Stoppable
from gridsense.errors import Fatal, Retryable
from gridsense.model.envelopes import Reading
from ingest.influx_sink import InfluxSink
from ingest.reading_store import COLUMNS, reading_row

log = logging.getLogger("gridsense.spool")

SCHEMA = """
CREATE TABLE IF NOT EXISTS influx_spool (
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


class InfluxSpool:
    """The spool table, as the pipeline's writer connection sees it."""

    def __init__(self, conn: sqlite3.Connection, max_rows: int) -> None:
        self._conn = conn
        self.max_rows = max_rows
        self._rows = self.depth()

    def depth(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM influx_spool").fetchone()[0])

    def check_room(self, n: int) -> None:
        """Before a batch: refuse it (acks held back) if the spool cannot take it."""
        if self._rows + n <= self.max_rows:
            return
        self._rows = self.depth()  # the forwarder may have drained it meanwhile
        if self._rows + n > self.max_rows:
            raise Retryable(f"influx spool full ({self._rows} of {self.max_rows} rows): holding acks", 1.0)

    def add(self, readings: Sequence[Reading]) -> None:
        """Inside the batch transaction."""
        self._conn.executemany(
            f"INSERT INTO influx_spool ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [reading_row(r) for r in readings],
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
        return int(self._conn.execute("SELECT COUNT(*) FROM influx_spool").fetchone()[0])

    def forward_once(self) -> int:
        """Send the oldest batch; return how many rows left the spool."""
        rows = self._conn.execute(
            f"SELECT seq, {COLUMNS} FROM influx_spool ORDER BY seq LIMIT ?", (self._batch,)
        ).fetchall()
        if not rows:
            return 0
        self._sink.write_rows([row[1:] for row in rows])
        self._conn.execute("DELETE FROM influx_spool WHERE seq <= ?", (rows[-1][0],))
        self.stats[FORWARDED] += len(rows)
        return len(rows)

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
