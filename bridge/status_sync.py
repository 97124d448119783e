"""StatusSync: a platform status (polled or pushed) onto the case record, and what follows from it.

The status map turns the platform's name or code into the workflow (立案, 派遣, 处置, 核查,
结案, 作废, 缓办). A case recorded as closed or voided is final: a later, different status
from the platform is logged and counted, never written (a closed case is never silently
reopened). When a case closes while the sensors still show the problem (its incident
has no ``closed_at``), the default policy files a *new* case that cites the closed one;
its key is derived from the closed case's key, so however often the closure is seen,
one new case is queued.

The sensors are asked ``closed_while_active_grace_s`` after the closure, not at once:
rules lag behind the street (a 1 h rain window clears up to an hour after the rain
stops), so an incident still open right after a closure proves little. Closures are
found again from the case records (``closed_between``), so a restart loses none.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from bridge.config import FINAL_STATUSES, StatusSyncConfig
from bridge.contract import IncidentLookup, OutboxStore, PlatformStatus
from gridsense.errors import ConfigError
from gridsense.model.case import GridCase
from gridsense.model.worktime import WorkCalendar

log = logging.getLogger("gridsense.bridge.status")
SHANGHAI = ZoneInfo("Asia/Shanghai")

SyncOutcome = Literal["changed", "unchanged", "unknown_status", "unknown_case", "final"]
# After a restart, closures this far back are looked at again (once).
RECHECK_HORIZON_S = 86400
TITLE_MARK = "（原案卷已结案，问题仍在）"
DESCRIPTION_MARK = " ◆ "


def linked_case_key(closed_case_key: str) -> str:
    """The key of the case filed because ``closed_case_key`` closed while the problem persisted."""
    return "gs-" + hashlib.sha256(f"{closed_case_key}|closed-while-active".encode()).hexdigest()[:32]


class SqliteIncidents:
    """``IncidentLookup`` over the state database's ``incidents`` table."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def is_active(self, incident_id: str) -> bool:
        row = self._conn.execute(
            "SELECT closed_at FROM incidents WHERE incident_id = ?", (incident_id,)
        ).fetchone()
        return row is not None and row[0] is None


@dataclass
class SyncStats:
    changed: int = 0
    unknown_status: int = 0
    unknown_case: int = 0
    after_final: int = 0  # the platform moved a case we hold as final: logged, not written
    linked_cases: int = 0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class StatusSync:
    """Applies platform statuses to one outbox store; safe to call from several threads."""

    def __init__(
        self,
        outbox: OutboxStore,
        cfg: StatusSyncConfig | None = None,
        incidents: IncidentLookup | None = None,
        calendar: WorkCalendar | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._outbox = outbox
        self._cfg = cfg or StatusSyncConfig()
        self._incidents = incidents
        self._calendar = calendar
        self._clock = clock
        self._lock = threading.RLock()
        self._watermark: int | None = None  # closures up to here (epoch ms) have been looked at
        self.stats = SyncStats()

    def map(self, st: PlatformStatus) -> str | None:
        return self._cfg.status_map.map(st.status, st.status_code)

    def apply(self, case_key: str, st: PlatformStatus) -> SyncOutcome:
        """Record ``st`` for ``case_key``; an unmapped status changes nothing and is counted."""
        ours = self.map(st)
        if ours is None:
            self.stats.unknown_status += 1
            log.error(
                "unknown platform status case=%s platform_id=%s status=%r code=%r: add it to "
                "status_sync.status_map",
                case_key,
                st.platform_case_id,
                st.status,
                st.status_code,
            )
            return "unknown_status"
        with self._lock, self._outbox.transaction():
            platform_id, current = self._outbox.platform_id(case_key)
            if current == "unknown":
                self.stats.unknown_case += 1
                return "unknown_case"
            if current in FINAL_STATUSES:
                if ours != current:
                    self.stats.after_final += 1
                    log.warning(
                        "platform reports %s (%r) for case %s that is already %s: a final case "
                        "is never reopened; not recorded",
                        ours,
                        st.status,
                        case_key,
                        current,
                    )
                    return "final"
                return "unchanged"
            if st.platform_case_id and platform_id != st.platform_case_id:
                # An Open311 token resolved into the real request id.
                self._outbox.set_platform_id(case_key, st.platform_case_id)
            if current == ours:
                return "unchanged"
            self._outbox.set_status(case_key, ours, st.status_code)
            self.stats.changed += 1
            log.info("case status case=%s %s -> %s (%r)", case_key, current, ours, st.status)
            if ours == "结案" and not self._cfg.closed_while_active_grace_s:
                self._after_close(case_key)
        return "changed"

    def check_closures(self) -> int:
        """Ask the sensors about cases closed a grace period ago; return how many linked cases were queued.

        Each closure is looked at once per process: a watermark moves past it. After a restart
        the last ``RECHECK_HORIZON_S`` of closures are looked at again, harmlessly (the linked
        case's key is derived from the closed case's).
        """
        grace_s = self._cfg.closed_while_active_grace_s
        if not grace_s:
            return 0
        until = int(self._clock().timestamp() * 1000) - int(grace_s * 1000)
        since = self._watermark if self._watermark is not None else until - RECHECK_HORIZON_S * 1000
        if until <= since:
            return 0
        filed = 0
        for case_key in self._outbox.closed_between(since, until):
            with self._lock, self._outbox.transaction():
                filed += self._after_close(case_key)
        self._watermark = until
        return filed

    def apply_pushed(self, st: PlatformStatus) -> SyncOutcome:
        """Apply a status pushed by the platform, which names the case by its own id."""
        with self._lock:
            case_key = self._outbox.case_key_of(st.platform_case_id)
            if case_key is None:
                self.stats.unknown_case += 1
                return "unknown_case"
            return self.apply(case_key, st)

    def _after_close(self, case_key: str) -> int:
        """File the linked case if the policy says so and the sensors still show the problem."""
        record = self._outbox.case_record(case_key)
        if record is None:
            return 0
        incident_id, body = record
        if self._incidents is None:
            log.warning("case %s closed; no incident lookup configured, sensor state unknown", case_key)
            return 0
        if not self._incidents.is_active(incident_id):
            return 0
        if self._cfg.on_closed_while_active == "log_only":
            log.warning(
                "case %s closed but incident %s is still active (policy log_only)", case_key, incident_id
            )
            return 0
        new = self._linked_case(GridCase.model_validate_json(body))
        if not self._outbox.enqueue_case(new):
            return 0
        self.stats.linked_cases += 1
        log.warning(
            "case %s closed but incident %s is still active: filed linked case %s",
            case_key,
            incident_id,
            new.case_key,
        )
        return 1

    def _linked_case(self, closed: GridCase) -> GridCase:
        now = self._clock().astimezone(SHANGHAI)
        deadline = now + (closed.deadline - closed.filed_at)
        amount, _, unit = closed.deadline_basis.partition(" ")
        if self._calendar is not None:
            try:
                deadline = self._calendar.add(now, float(amount), unit)
            except (ValueError, ConfigError) as exc:
                log.warning("linked case deadline from the original span: %s", exc)
        return closed.model_copy(
            update={
                "case_key": linked_case_key(closed.case_key),
                "filed_at": now,
                "deadline": deadline,
                "linked_cases": [closed.case_key],
                # A chain of linked cases cites only the case it follows, so text does not pile up.
                "title_zh": closed.title_zh.removesuffix(TITLE_MARK) + TITLE_MARK,
                "description_zh": (
                    f"{closed.description_zh.split(DESCRIPTION_MARK)[0]}{DESCRIPTION_MARK}原案卷 "
                    f"{closed.case_key} 已结案，但传感器仍显示该问题未解除，重新立案。"
                ),
                "description_en": (
                    f"{(closed.description_en or closed.title_en or '').split(DESCRIPTION_MARK)[0]}"
                    f"{DESCRIPTION_MARK}Case {closed.case_key} was closed but the sensors still show "
                    "the problem; filed again."
                ),
            }
        )
