"""DeliveryProcess: case delivery (``CaseDelivery``) in a process of its own.

On the pipeline's interpreter, delivery's loop and its sending threads competed with ingest
for the GIL: parsing each row, building and posting the request, reading the answer. While
the backlog an outage of the case platform leaves behind drained, publish → stored p99 at
half the sustained rate rose well past the 100 ms target (``bench/ingest_throughput.py
--latency --outage 8``; the README has the figures). In a process of its own
(``ChildProcess``: spawned, deaf to Ctrl-C, gone with its parent) it runs on another core.

The pipeline and delivery share the outbox: a table of the state store (SQLite WAL) or the
PostgreSQL outbox, which each side opens on its own connection. Delivery's counts, whether
its breaker is open, and status-poll requests cross in shared memory.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import fields
from pathlib import Path

from bridge.contract import OutboxStore
from bridge.delivery import CaseDelivery, DeliveryStats
from bridge.factory import build_adapter, close_outbox, open_outbox, outbox_store
from bridge.status_sync import SqliteIncidents
from gridsense import db
from gridsense.child_process import ChildProcess, Counts, Stoppable
from gridsense.config import BridgeConfig
from gridsense.model.worktime import WorkCalendar

log = logging.getLogger("gridsense.bridge")

#: The integer counters of ``DeliveryStats``, in the order of their slots in shared memory.
STATS = tuple(f.name for f in fields(DeliveryStats) if f.type in (int, "int"))
#: Further slots: the breaker (1 while open); status polls asked for, and done.
BREAKER_OPEN, POLLS_ASKED, POLLS_DONE = len(STATS), len(STATS) + 1, len(STATS) + 2


class DeliveryProcess(ChildProcess):
    """Starts, watches and stops the case-delivery process of one pipeline."""

    def __init__(
        self, db_path: Path, cfg: BridgeConfig, calendar: WorkCalendar, counts: Counts | None = None
    ) -> None:
        """``counts``: a predecessor's, to carry its counters on (``Supervised``)."""
        super().__init__(
            "case-delivery",
            _deliver,
            (db_path, cfg, calendar),
            counts if counts is not None else len(STATS) + 3,
        )
        self._db_path = db_path
        self._cfg = cfg
        # This side's view of the outbox, for its depth (the child delivers on its own),
        # opened when first asked: most pipelines never ask.
        self._view: sqlite3.Connection | OutboxStore | None = None
        self._conn: sqlite3.Connection | None = None

    @property
    def stats(self) -> DeliveryStats:
        """The child's counts as of its last pass (``delivered_keys`` stays empty here)."""
        stats = DeliveryStats()
        for i, name in enumerate(STATS):
            setattr(stats, name, int(self.counts[i]))
        return stats

    @property
    def breaker_open(self) -> bool:
        return bool(self.counts[BREAKER_OPEN])

    def depth(self) -> int:
        """Messages still waiting for delivery."""
        if self._view is None:
            self._conn = db.connect(self._db_path, create=False)
            self._view = open_outbox(self._cfg.outbox, self._conn, self._cfg.timeout_s)
        return outbox_store(self._view).depth()

    def poll_status(self, timeout_s: float = 30.0) -> bool:
        """Have the child fetch open cases' status now; False if it did not within ``timeout_s``."""
        asked = self.counts[POLLS_ASKED] + 1
        self.counts[POLLS_ASKED] = asked
        deadline = time.monotonic() + timeout_s
        while self.counts[POLLS_DONE] < asked and self.exitcode is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.counts[POLLS_DONE] >= asked

    def stop(self, timeout_s: float = 15.0) -> None:
        super().stop(timeout_s)
        if self._view is not None:
            close_outbox(self._view)
        if self._conn is not None:
            self._conn.close()
        self._view, self._conn = None, None


def _deliver(
    stop: Stoppable, counts: Counts, db_path: Path, cfg: BridgeConfig, calendar: WorkCalendar
) -> int:
    """The child: deliver and follow status until ``stop`` is set."""
    conn = db.connect(db_path, create=False)
    outbox = open_outbox(cfg.outbox, conn, cfg.timeout_s)
    adapter = build_adapter(cfg.adapter, cfg, cfg.open311, cfg.mqtt_platform)
    delivery = CaseDelivery(
        outbox,
        adapter,
        cfg,
        status_sync=cfg.status_sync,
        incidents=SqliteIncidents(conn),
        calendar=calendar,
        concurrency=cfg.concurrency,
        stop=stop,
    )
    for i, name in enumerate(STATS):  # a restarted process carries its predecessor's counts on
        setattr(delivery.stats, name, counts[i])
    delivery.status_polls_done = counts[POLLS_DONE]

    def publish() -> None:
        """After each pass: the counts out, a status poll asked for in (no I/O here)."""
        stats = delivery.stats
        for i, name in enumerate(STATS):
            counts[i] = getattr(stats, name)
        counts[BREAKER_OPEN] = int(delivery.breaker.opened_at is not None)
        counts[POLLS_DONE] = delivery.status_polls_done
        delivery.status_polls_asked = counts[POLLS_ASKED]

    delivery.on_pass = publish
    try:
        delivery.run()
    finally:
        delivery.close()
        adapter.close()  # the MQTT adapter says goodbye to its broker; HTTP clients hang up
        close_outbox(outbox)
        conn.close()
    return 0
