"""CaseDelivery: drains the outbox to the platform and follows case status.

Retryable failures back off exponentially with full jitter (or as ``Retry-After`` says);
rejected messages are dead-lettered in the outbox with the platform's answer. A
circuit breaker stops hammering a platform that keeps failing. The outbox is the
embedded SQLite one (pass the connection) or any ``OutboxStore``, such as the
PostgreSQL outbox several workers share.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from bridge.config import BACKLOG_ROWS, StatusSyncConfig
from bridge.contract import (
    CaseAdapter,
    CaseWithdrawal,
    IncidentLookup,
    OutboxStore,
    PlatformAnswerInvalid,
    Settlement,
)
from bridge.outbox import MAX_RETRY_WAIT_S, CaseOutbox, OutboxRow
from bridge.status_sync import SqliteIncidents, StatusSync
from gridsense.child_process import Stoppable
from gridsense.config import BridgeConfig
from gridsense.errors import Rejected, Retryable
from gridsense.model.case import CaseUpdate, GridCase
from gridsense.model.worktime import WorkCalendar

log = logging.getLogger("gridsense.bridge")

# 缓办 (deferred, code 8) is one the reference platform reports too; it is not final.
KNOWN_STATUSES = frozenset({"立案", "派遣", "处置", "核查", "结案", "作废", "缓办"})
#: How long the delivery waits before trying a store that was locked or full again.
STORE_RETRY_S = 1.0
# Statuses in which a case has not been dispatched yet, so withdrawing it is still possible.
_NOT_DISPATCHED = frozenset({"queued", "filed", "立案"})


@dataclass
class CircuitBreaker:
    """Open after ``threshold`` consecutive failures; let one probe through after ``cooldown_s``."""

    threshold: int = 5
    cooldown_s: float = 5.0
    failures: int = 0
    opened_at: float | None = None

    def allow(self, now: float) -> bool:
        return self.opened_at is None or now - self.opened_at >= self.cooldown_s

    def probing(self, now: float) -> bool:
        """Open, and the cooldown is over: the next attempt is the probe."""
        return self.opened_at is not None and self.allow(now)

    def success(self) -> None:
        self.failures, self.opened_at = 0, None

    def failure(self, now: float) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = now


@dataclass
class DeliveryStats:
    delivered: int = 0
    retried: int = 0
    rejected: int = 0
    unknown_status: int = 0
    bad_responses: int = 0  # 2xx answers without a usable body (not JSON, no id)
    internal_errors: int = 0  # unexpected exceptions: the row is dead-lettered as internal_error
    status_errors: int = 0
    store_errors: int = 0  # the outbox's SQLite store locked or full past its busy timeout
    withdrawn: int = 0
    #: The newest messages delivered, oldest first (bounded: a delivery runs for months).
    delivered_keys: deque[str] = field(default_factory=lambda: deque(maxlen=1000))


def backoff_s(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter (AWS architecture blog's 'full jitter')."""
    return rng.uniform(0, min(cap, initial * 2 ** min(attempt, 30)))


class CaseDelivery:
    """One delivery worker with its own database connection."""

    def __init__(
        self,
        conn: sqlite3.Connection | OutboxStore,
        adapter: CaseAdapter,
        cfg: BridgeConfig,
        seed: int | None = None,
        *,
        status_sync: StatusSyncConfig | None = None,
        incidents: IncidentLookup | None = None,
        calendar: WorkCalendar | None = None,
        concurrency: int = 1,
        backlog_rows: int = BACKLOG_ROWS,
        stop: Stoppable | None = None,
    ) -> None:
        """``conn``: the SQLite state database (its incidents table is then the lookup) or a store.

        ``concurrency``: messages (of different grids) in flight at once; 1 sends one at a time.
        The sending threads are used only for a pass of at least ``backlog_rows`` rows.
        ``stop``: what ends ``run`` (a process's stop signal, in ``bridge.delivery_process``).
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if isinstance(conn, sqlite3.Connection):
            self._outbox: OutboxStore = CaseOutbox(conn)
            incidents = incidents if incidents is not None else SqliteIncidents(conn)
        else:
            self._outbox = conn
        self._sync_cfg = status_sync or StatusSyncConfig()
        self.sync = StatusSync(self._outbox, self._sync_cfg, incidents, calendar)
        self._adapter = adapter
        self._cfg = cfg
        self._rng = random.Random(seed)
        self.breaker = CircuitBreaker(cooldown_s=min(cfg.backoff_max_s, 5.0))
        self.stats = DeliveryStats()
        self._stop: Stoppable = stop if stop is not None else threading.Event()
        self._thread: threading.Thread | None = None
        self._last_status_poll = 0.0
        #: Called after each pass, on the delivering thread (the process publishes its counts).
        self.on_pass: Callable[[], None] | None = None
        #: Status polls asked for out of turn (by ``DeliveryProcess.poll_status``), and done.
        self.status_polls_asked = self.status_polls_done = 0
        self._lock = threading.Lock()  # stats and breaker, updated from the sending threads
        self._backlog_rows = backlog_rows
        self._pool = (
            ThreadPoolExecutor(concurrency, thread_name_prefix="case-send") if concurrency > 1 else None
        )

    def deliver_due(self) -> int:
        """Try every due message once; return how many were settled (delivered or rejected).

        A pass holds at most one row per grid, so its rows are independent: a backlog (at
        least ``backlog_rows``; after an outage, a row for every grid waiting) is sent
        ``concurrency`` rows at a time. A smaller pass, which is what a storm's steady flow of
        cases makes, goes out one row at a time on this thread. (That rule came from the time
        delivery shared the pipeline's interpreter, where eight sending threads took the
        ingest worker's p99 at 2,700 msg/s from 36–72 ms to 107–135 ms; in its own process,
        ``bridge.delivery_process``, it still keeps a storm's trickle off the threads.)
        Their outcomes are recorded in one transaction at the end of the pass; a crash before
        it means the pass is sent again, which the adapters' idempotency absorbs.

        While the breaker is open, no row goes out. Once its cooldown is over, the pass is a
        single row, the probe (if every row is still waiting, they are all made due for it).
        If it gets through, every pending row is due again (``retry_now``), so what waited
        only because the platform was away goes out with the next pass, on the threads, not
        after each row's own backoff (up to ``bridge.backoff_max_s``, or a ``Retry-After``
        given during the outage). A failed probe of a row that was due leaves every other
        row's wait as it was.
        """
        with self._lock:
            probing = self.breaker.probing(time.monotonic())
        rows = self._outbox.due()
        if probing:
            if not rows:  # every row is waiting out its own backoff: the probe need not
                self._outbox.retry_now()
                rows = self._outbox.due()
            self._outbox.release(rows[1:])
            rows = rows[:1]
        pool = self._pool if len(rows) >= self._backlog_rows else None
        results: list[Settlement] = []
        pending: list[Future[Settlement]] = []
        for i, row in enumerate(rows):
            if self._stop.is_set() or not self.breaker.allow(time.monotonic()):
                self._outbox.release(rows[i:])
                break
            try:
                call = self._prepare(row)
            except Exception as exc:
                results.append(self._settlement(row, exc))
                continue
            if pool is None:
                results.append(self._attempt(row, call))
            else:
                pending.append(pool.submit(self._attempt, row, call))
        results.extend(f.result() for f in pending)
        if results:
            self._outbox.settle(results)
        for r in results:
            if r.outcome == "delivered":
                self.stats.delivered_keys.append(r.row.message_key)
        if probing and results and self.breaker.opened_at is None:  # the probe got through
            self._outbox.retry_now()
        return sum(r.outcome != "retry" for r in results)

    def _prepare(self, row: OutboxRow) -> Callable[[], str | None]:
        """Everything that needs the database, done here; the call returned only talks to the platform."""
        if row.op == "create":
            case = GridCase.model_validate_json(row.body)
            return lambda: self._adapter.create(case)
        platform_id, status = self._outbox.platform_id(row.case_key)
        if platform_id is None:
            if status == "rejected":
                raise Rejected("case_not_filed", "the case this update belongs to was rejected")
            raise Retryable("the case is not filed yet")
        update = CaseUpdate.model_validate_json(row.body)
        withdraw = (
            update.kind == "condition_cleared"
            and self._sync_cfg.withdraw_on_clear
            and status in _NOT_DISPATCHED
            and isinstance(self._adapter, CaseWithdrawal)
        )

        def send() -> str:
            self._adapter.update(platform_id, update)
            adapter = self._adapter
            if withdraw and isinstance(adapter, CaseWithdrawal) and adapter.withdraw(platform_id, update):
                with self._lock:
                    self.stats.withdrawn += 1
                log.info("case withdrawn before dispatch: condition cleared key=%s", row.case_key)
            return platform_id

        return send

    def _attempt(self, row: OutboxRow, call: Callable[[], str | None]) -> Settlement:
        try:
            platform_id = call()
        except Exception as exc:
            return self._settlement(row, exc)
        with self._lock:
            self.breaker.success()
            self.stats.delivered += 1
        log.info("delivered op=%s key=%s platform_id=%s", row.op, row.message_key, platform_id)
        return Settlement(row, "delivered", platform_case_id=platform_id)

    def _settlement(self, row: OutboxRow, exc: Exception) -> Settlement:
        """The outcome a failed attempt stands for: retry later, or dead-letter with the reason."""
        delay = 0.0
        with self._lock:
            if isinstance(exc, Retryable):
                self.stats.retried += 1
                self.stats.bad_responses += isinstance(exc, PlatformAnswerInvalid)
                self.breaker.failure(time.monotonic())
                if exc.retry_after_s is not None:
                    delay = min(exc.retry_after_s, MAX_RETRY_WAIT_S)
                else:
                    delay = backoff_s(
                        row.attempts, self._cfg.backoff_initial_s, self._cfg.backoff_max_s, self._rng
                    )
            elif isinstance(exc, Rejected):
                self.stats.rejected += 1
                self.breaker.success()  # the platform is up; it just refused this message
            else:
                self.stats.internal_errors += 1
        if isinstance(exc, Retryable):
            log.warning(
                "delivery retry key=%s attempt=%d in=%.2fs error=%s",
                row.message_key,
                row.attempts + 1,
                delay,
                exc,
            )
            return Settlement(row, "retry", delay_s=delay, error=str(exc))
        if isinstance(exc, Rejected):
            log.error("delivery rejected key=%s reason=%s body=%s", row.message_key, exc.reason, exc.detail)
            return Settlement(row, "rejected", error=f"{exc.reason}: {exc.detail}")
        # A bug or a poisoned row: dead-letter it (replayable) rather than stop the queue.
        log.error("delivery failed unexpectedly key=%s; dead-lettered", row.message_key, exc_info=exc)
        return Settlement(row, "rejected", error=f"internal_error: {exc!r}")

    def depth(self) -> int:
        """Messages still waiting for delivery."""
        return self._outbox.depth()

    def poll_status(self) -> int:
        """Fetch the status of open cases; return how many changed (0 if the adapter cannot tell).

        Also asks the sensors about cases closed a grace period ago (however their closure
        arrived: polled or pushed), which may queue linked cases.
        """
        self.sync.check_closures()
        if not getattr(self._adapter, "supports_status", True):
            return 0
        changed = 0
        for key, platform_id in self._outbox.open_cases():
            try:
                st = self._adapter.status(platform_id)
            except Retryable as exc:  # the platform is in trouble: try the rest next round
                self.stats.status_errors += 1
                log.warning("status poll failed case=%s error=%s", platform_id, exc)
                return changed
            except Rejected as exc:  # this case only (e.g. unknown to the platform)
                self.stats.status_errors += 1
                log.error("status poll refused case=%s error=%s", platform_id, exc)
                continue
            outcome = self.sync.apply(key, st)
            if outcome == "unknown_status":
                self.stats.unknown_status += 1
            changed += outcome == "changed"
        return changed

    def run(self) -> None:
        """Deliver and poll until stopped; a store that stays locked or full is waited out.

        A pass whose outcomes could not be recorded is sent again once the store answers, and
        the adapters' idempotency absorbs the repeat, as after a crash.
        """
        while not self._stop.is_set():
            try:
                settled = self.deliver_due()
                now, asked = time.monotonic(), self.status_polls_asked
                if asked > self.status_polls_done or now - self._last_status_poll >= self._cfg.status_poll_s:
                    self._last_status_poll = now
                    self.poll_status()
                    self.status_polls_done = asked
                wait = 0.0 if settled else self._cfg.poll_interval_s
            except sqlite3.OperationalError as exc:
                self.stats.store_errors += 1
                log.error("outbox store unavailable (%s); delivery resumes when it answers", exc)
                wait = STORE_RETRY_S
            if self.on_pass is not None:  # also while the store is away: its counts say so
                self.on_pass()
            if wait:
                self._stop.wait(wait)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="case-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.close()

    def close(self) -> None:
        """Let the sending threads finish; after ``run`` has returned."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
