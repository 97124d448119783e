"""GaugePipeline: one batch of MQTT messages → stored readings, incidents and queued cases.

Everything a batch changes commits in one SQLite transaction (readings, dead letters,
incident state, outbox rows). Only then does the gateway acknowledge the messages. A
crash before the commit means the broker redelivers; readings are idempotent by
(device, timestamp), so a redelivered batch stores nothing twice and files nothing twice.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from bridge.case_builder import CaseBuilder, updates_to_send
from bridge.outbox import CaseOutbox
from bridge.pg_outbox import PgCaseOutbox
from gridsense.config import GridsenseConfig
from gridsense.errors import Fatal, Rejected, Retryable
from gridsense.metrics import DETECTOR_LATENCY_SECONDS
from gridsense.model.envelopes import GAUGE_KINDS, Kind
from gridsense.model.incident import IncidentChange
from gridsense.model.reading import Reading
from gridsense.txn import transaction
from ingest.contract import BatchOutcome, InboundMessage, KindHandler, ScheduledJob
from ingest.deadletter import DeadLetter, DeadLetterStore, redelivery_window
from ingest.gauge_codec import try_decode_gauge
from ingest.normalise import GaugeNormaliser
from ingest.rate_limit import DeviceRateLimit
from ingest.reading_store import ReadingStore, SettleReadings
from ingest.spool import InfluxSpool
from ingest.topics import TopicScheme
from rules.engine import RuleEngine
from rules.incidents import IncidentBook
from rules.spec import WINDOWS

log = logging.getLogger("gridsense.pipeline")


class GaugePipeline:
    """Handles batches for the gateway; owns the writer connection."""

    def __init__(
        self,
        cfg: GridsenseConfig,
        conn: sqlite3.Connection,
        scheme: TopicScheme,
        normaliser: GaugeNormaliser,
        engine: RuleEngine,
        book: IncidentBook,
        builder: CaseBuilder,
        spool: InfluxSpool | None = None,
        handlers: Sequence[KindHandler] = (),
        jobs: Sequence[ScheduledJob] = (),
    ) -> None:
        self._cfg = cfg
        self._conn = conn
        self._scheme = scheme
        self._normaliser = normaliser
        self._engine = engine
        self._next_tick = 0.0
        self._book = book
        self._builder = builder
        self._spool = spool
        self._handlers: dict[Kind, KindHandler] = {h.kind: h for h in handlers}
        self._job_due: dict[str, float] = {}
        self._prepared: dict[Kind, list[object]] = {}
        self._kinds_seen: set[Kind] = set()
        #: Called after each commit with the stored readings and the incident changes (benchmarks).
        self.on_commit: Callable[[list[Reading], list[IncidentChange]], None] | None = None
        self._readings = ReadingStore(conn)
        self._jobs = [*jobs, SettleReadings(self._readings, cfg.store.settle_s)]
        self._deadletters = DeadLetterStore(conn, redelivery_window(cfg.mqtt.inflight, cfg.mqtt.batch_max))
        self._outbox = CaseOutbox(conn)
        #: A PostgreSQL outbox shared by several workers, if configured (cases go there instead).
        self.shared_outbox: PgCaseOutbox | None = None
        self._max_future = timedelta(seconds=cfg.limits.max_future_s)
        self._max_gauge_bytes = cfg.limits.max_gauge_bytes  # read once: a pydantic field read is slow
        self._rate_limit = DeviceRateLimit(cfg.limits.device_msgs_per_min, cfg.limits.device_burst)
        self.stopping = threading.Event()
        #: How often a write found the disk (or the store's size limit) full: the metric.
        self.store_full_events = 0

    def restore(self) -> int:
        """Rebuild in-memory state from the store after a (re)start; return readings replayed."""
        self._book.load(self._conn)
        self._engine.reset()
        latest = self._readings.latest_per_device()
        self._normaliser.restore(latest)
        n = 0
        if latest:
            newest = max(ms for ms, _ in latest.values())
            start = datetime.fromtimestamp(newest / 1000, UTC) - timedelta(seconds=WINDOWS["24h"])
            for reading in self._readings.since(start):
                self._engine.warm(reading)
                n += 1
        for handler in self._handlers.values():  # camera tracks, asset state: their own tables
            handler.restore(self._conn)
        # A gauge silent while we were down is counted from now, not from its last reading.
        self._engine.restore_levels(baseline=datetime.now(UTC))
        return n

    def tick(self) -> None:
        """Let time pass for the rules (silent gauges, quiet incidents); called between batches."""
        now_mono = time.monotonic()
        if now_mono < self._next_tick:
            return
        self._next_tick = now_mono + self._cfg.rules.tick_s
        now = datetime.now(UTC)
        try:
            with transaction(self._conn):
                changes = self._engine.tick(now)
                for job in self._jobs:
                    if now_mono >= self._job_due.get(job.name, 0.0):
                        self._job_due[job.name] = now_mono + job.interval_s
                        changes.extend(job.run(self._conn, now))
                if self._spool is not None:
                    # InfluxDB is the long-term store: keep only what the rule windows and the
                    # lateness watermark can still need.
                    keep = timedelta(seconds=WINDOWS["24h"] + self._cfg.rules.lateness_s + 3600)
                    self._readings.prune_before(now - keep)
                self._book.flush(self._conn)
                self._queue_all(changes)
        except sqlite3.Error as exc:
            self._book.discard_changes()
            self._store_full_or_fatal(exc)
        self._log_changes(changes)

    def _shared_txn(self) -> AbstractContextManager[object]:
        """The shared outbox's transaction, opened around SQLite's so PostgreSQL commits first.

        The two cannot commit as one; replaying a batch after a crash in between inserts
        nothing twice, because case and update keys are derived from data.
        """
        return self.shared_outbox.transaction() if self.shared_outbox is not None else nullcontext()

    @property
    def open_incidents(self) -> int:
        return len(self._book.open_incidents())

    def _decode(self, msg: InboundMessage, now: datetime, now_mono: float) -> list[Reading] | Rejected:
        """The message's readings, or why it is rejected.

        A bad payload, the common rejection, comes back as a value (``try_decode_gauge``); a
        bad topic, a gauge over its rate or one the registry does not know raise ``Rejected``.
        ``now_mono``: the batch's monotonic time, the rate limit's clock (immune to wall-clock
        steps).
        """
        topic = self._scheme.parse(msg.topic)
        self._rate_limit.take(topic.device_id, now_mono)
        if topic.kind not in GAUGE_KINDS:
            handler = self._handlers.get(topic.kind)
            if handler is None:
                raise Rejected(
                    "unsupported_kind", f"{topic.kind} messages are not configured in this pipeline"
                )
            self._kinds_seen.add(topic.kind)
            with DETECTOR_LATENCY_SECONDS.labels(detector=topic.kind.value).time():
                self._prepared.setdefault(topic.kind, []).append(handler.prepare(msg, topic, now))
            return []
        if len(msg.payload) > self._max_gauge_bytes:
            raise Rejected("too_large", f"{len(msg.payload)} bytes > limit {self._max_gauge_bytes}")
        samples = try_decode_gauge(msg.payload, now, self._max_future)
        if not isinstance(samples, list):  # a list check is one C macro; a Rejected check is not
            return samples
        return [self._normaliser.normalise(topic, s) for s in samples]

    def handle(self, batch: Sequence[InboundMessage]) -> BatchOutcome:
        """Make every message's outcome durable; raise ``Retryable`` to have the batch retried.

        A bug triggered by one message (an unexpected exception) must neither crash nor stall
        the stream: the batch is rolled back, state is rebuilt from the store, and the batch
        is replayed one message at a time; the message that fails alone is dead-lettered as
        ``internal_error``.
        """
        try:
            return self._handle(batch)
        except (Retryable, Fatal):
            raise
        except Exception:
            log.exception("unexpected error in a batch of %d; isolating the message", len(batch))
        self.restore()
        total = BatchOutcome()
        for msg in batch:
            try:
                one = self._handle([msg])
            except (Retryable, Fatal):
                raise
            except Exception as exc:
                log.exception("message on %s failed alone: dead-lettered as internal_error", msg.topic)
                self.restore()
                letter = DeadLetter(
                    msg.topic,
                    msg.payload,
                    "internal_error",
                    repr(exc)[:500],
                    datetime.now(UTC),
                    _device_of(msg.topic),
                )
                with transaction(self._conn):
                    self._deadletters.add([letter])
                self._deadletters.committed()
                one = BatchOutcome(dead_letters=[letter])
            total.readings += one.readings
            total.duplicates += one.duplicates
            total.changes += one.changes
            total.cases_queued += one.cases_queued
            total.dead_letters.extend(one.dead_letters)
        return total

    def _handle(self, batch: Sequence[InboundMessage]) -> BatchOutcome:
        out = BatchOutcome()
        now = datetime.now(UTC)
        # The rate limit's clock, read once a batch: a batch is handled in milliseconds, and the
        # limit counts messages a minute.
        now_mono = time.monotonic()
        self._prepared.clear()
        self._kinds_seen.clear()
        readings: list[Reading] = []
        arrivals: list[float] = []  # seconds since the epoch, for the staleness rules
        # The gateway stamps every message of one socket read with the same datetime: it is
        # converted once per read, not once per message (about 1,000 instructions each).
        received: datetime | None = None
        received_s = 0.0
        for msg in batch:
            try:
                decoded = self._decode(msg, now, now_mono)
            except Rejected as exc:
                decoded = exc
            if not isinstance(decoded, list):
                device = _device_of(msg.topic)
                out.dead_letters.append(
                    DeadLetter(msg.topic, msg.payload, decoded.reason, decoded.detail, now, device)
                )
                continue
            readings.extend(decoded)
            if msg.received_at is not received:
                received = msg.received_at
                received_s = received.timestamp()
            arrivals.extend([received_s] * len(decoded))
        if self._spool is not None:
            self._spool.check_room(len(readings))
        try:
            with self._shared_txn(), transaction(self._conn):
                changes: list[IncidentChange] = []
                fresh: list[Reading] = []
                flagged: list[Reading] = []
                inserted = self._readings.insert_many(readings)
                for reading, arrived, new in zip(readings, arrivals, inserted, strict=True):
                    if not new:
                        out.duplicates += 1
                        continue
                    checked = self._engine.check_quality(reading)  # after the earlier ones' windows
                    if checked.suspect and not reading.suspect:
                        flagged.append(checked)
                    out.readings += 1
                    fresh.append(checked)
                    changes.extend(self._engine.evaluate(checked, arrived))
                if flagged:
                    self._readings.mark_suspect(flagged)
                if self._spool is not None and fresh:
                    self._spool.add(fresh)
                for kind in self._kinds_seen:  # camera frames, asset pings: their own state
                    changes.extend(self._handlers[kind].commit(self._conn, self._prepared.get(kind, []), now))
                self._book.flush(self._conn)
                out.cases_queued += self._queue_all(changes)
                out.changes = len(changes)
                self._deadletters.add(out.dead_letters)
        except sqlite3.Error as exc:
            self._book.discard_changes()
            self._store_full_or_fatal(exc)
        self._deadletters.committed()
        self._log_changes(changes)
        if self.on_commit is not None:
            self.on_commit(fresh, changes)
        return out

    def _store_full_or_fatal(self, exc: sqlite3.Error) -> NoReturn:
        """A full disk holds acks back until space returns; any other store error is fatal.

        The rolled-back batch may have moved in-memory state (windows, counters, incidents):
        it is rebuilt from the store before the batch is tried again.
        """
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(exc):
            self.store_full_events += 1
            log.error(
                "state store is full (%s): not acknowledging; the broker keeps the messages"
                " and the batch is retried when space returns",
                exc,
            )
            self.restore()
            raise Retryable(f"state store full: {exc}", 2.0) from exc
        raise Fatal(f"state store write failed, in-memory rule state is now unreliable: {exc}") from exc

    def _log_changes(self, changes: list[IncidentChange]) -> None:
        for change in changes:
            inc = change.incident
            log.info(
                "incident %s id=%s rule=%s subject=%s grid=%s level=%s peak=%g%s",
                change.kind,
                inc.incident_id,
                inc.rule_id,
                inc.subject,
                inc.grid_code,
                inc.level,
                inc.peak_value,
                inc.unit,
            )

    def _queue_all(self, changes: list[IncidentChange]) -> int:
        """Queue the cases and updates one transaction's changes call for; how many were new."""
        outbox: CaseOutbox | PgCaseOutbox = self.shared_outbox or self._outbox
        queued = 0
        for change in updates_to_send(changes):
            if change.kind == "opened":
                queued += outbox.enqueue_case(self._builder.case(change))
            else:
                queued += outbox.enqueue_update(self._builder.update(change), change.incident.grid_code)
        return queued


def _device_of(topic: str) -> str | None:
    return topic.rsplit("/", 1)[-1] if topic.count("/") >= 4 else None
