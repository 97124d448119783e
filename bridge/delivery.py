"""CaseDelivery: drains the outbox to the platform and follows case status.

Retryable failures back off exponentially with full jitter (or as ``Retry-After`` says);
rejected messages are dead-lettered in the outbox with the platform's answer. A
circuit breaker stops hammering a platform that keeps failing.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from dataclasses import dataclass, field

from bridge.contract import CaseAdapter
from bridge.outbox import CaseOutbox, OutboxRow
from gridsense.config import BridgeConfig
from gridsense.errors import Rejected, Retryable
from gridsense.model.case import CaseUpdate, GridCase

log = logging.getLogger("gridsense.bridge")

# 缓办 (deferred, code 8) is one the reference platform reports too; it is not final.
KNOWN_STATUSES = frozenset({"立案", "派遣", "处置", "核查", "结案", "作废", "缓办"})


@dataclass
class CircuitBreaker:
    """Open after ``threshold`` consecutive failures; let one probe through after ``cooldown_s``."""

    threshold: int = 5
    cooldown_s: float = 5.0
    failures: int = 0
    opened_at: float | None = None

    def allow(self, now: float) -> bool:
        return self.opened_at is None or now - self.opened_at >= self.cooldown_s

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
    delivered_keys: list[str] = field(default_factory=list)


def backoff_s(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter (AWS architecture blog's 'full jitter')."""
    return rng.uniform(0, min(cap, initial * 2 ** min(attempt, 30)))


class CaseDelivery:
    """One delivery worker with its own database connection."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        adapter: CaseAdapter,
        cfg: BridgeConfig,
        seed: int | None = None,
    ) -> None:
        self._outbox = CaseOutbox(conn)
        self._conn = conn
        self._adapter = adapter
        self._cfg = cfg
        self._rng = random.Random(seed)
        self.breaker = CircuitBreaker(cooldown_s=min(cfg.backoff_max_s, 5.0))
        self.stats = DeliveryStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_status_poll = 0.0

    def deliver_due(self) -> int:
        """Try every due message once; return how many were settled (delivered or rejected)."""
        settled = 0
        for row in self._outbox.due():
            if self._stop.is_set() or not self.breaker.allow(time.monotonic()):
                break
            settled += self._deliver(row)
        return settled

    def _deliver(self, row: OutboxRow) -> int:
        try:
            platform_id = self._send(row)
        except Retryable as exc:
            self.breaker.failure(time.monotonic())
            delay = exc.retry_after_s
            if delay is None:
                delay = backoff_s(
                    row.attempts, self._cfg.backoff_initial_s, self._cfg.backoff_max_s, self._rng
                )
            self._outbox.retry_later(row, delay, str(exc))
            self.stats.retried += 1
            log.warning(
                "delivery retry key=%s attempt=%d in=%.2fs error=%s",
                row.message_key,
                row.attempts + 1,
                delay,
                exc,
            )
            return 0
        except Rejected as exc:
            self.breaker.success()  # the platform is up; it just refused this message
            self._outbox.reject(row, f"{exc.reason}: {exc.detail}")
            self.stats.rejected += 1
            log.error(
                "delivery rejected key=%s reason=%s body=%s",
                row.message_key,
                exc.reason,
                exc.detail,
            )
            return 1
        self.breaker.success()
        self._outbox.delivered(row, platform_id)
        self.stats.delivered += 1
        self.stats.delivered_keys.append(row.message_key)
        log.info("delivered op=%s key=%s platform_id=%s", row.op, row.message_key, platform_id)
        return 1

    def _send(self, row: OutboxRow) -> str | None:
        if row.op == "create":
            return self._adapter.create(GridCase.model_validate_json(row.body))
        platform_id, status = self._outbox.platform_id(row.case_key)
        if platform_id is None:
            if status == "rejected":
                raise Rejected("case_not_filed", "the case this update belongs to was rejected")
            raise Retryable("the case is not filed yet")
        self._adapter.update(platform_id, CaseUpdate.model_validate_json(row.body))
        return platform_id

    def depth(self) -> int:
        """Messages still waiting for delivery."""
        return self._outbox.depth()

    def poll_status(self) -> int:
        """Fetch the status of open cases; return how many changed."""
        changed = 0
        for key, platform_id in self._outbox.open_cases():
            try:
                st = self._adapter.status(platform_id)
            except (Retryable, Rejected) as exc:
                log.warning("status poll failed case=%s error=%s", platform_id, exc)
                return changed
            if st.status not in KNOWN_STATUSES:
                self.stats.unknown_status += 1
                log.error("unknown platform status case=%s status=%r", platform_id, st.status)
                continue
            self._outbox.set_status(key, st.status, st.status_code)
            changed += 1
        return changed

    def run(self) -> None:
        while not self._stop.is_set():
            settled = self.deliver_due()
            now = time.monotonic()
            if now - self._last_status_poll >= self._cfg.status_poll_s:
                self._last_status_poll = now
                self.poll_status()
            if not settled:
                self._stop.wait(self._cfg.poll_interval_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="case-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
