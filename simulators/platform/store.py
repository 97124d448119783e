"""The platform's in-memory case store: filing and updates, both idempotent by key."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gridsense.model.case import CaseUpdate, GridCase
from simulators.platform.config import PlatformConfig
from simulators.platform.workflow import CaseStatus, StatusChange, history_at, plan_path, withdrawn

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock, timezone-aware."""
    return datetime.now(UTC)


class UnknownCase(LookupError):
    """No case has this platform id or external key."""


class CaseKeyMismatch(ValueError):
    """An update names a different case_key than the case it was posted to."""


@dataclass
class PlatformCase:
    """A case as the platform holds it: its id, the filed GridCase, its path and updates."""

    case_id: str
    case: GridCase
    deadline: datetime  # timezone-aware form of case.deadline
    path: list[StatusChange]
    updates: dict[str, CaseUpdate] = field(default_factory=dict)

    @property
    def external_id(self) -> str:
        return self.case.case_key

    def history(self, now: datetime) -> list[StatusChange]:
        return history_at(self.path, now)

    def status(self, now: datetime) -> CaseStatus:
        return self.history(now)[-1].status

    def closed_at(self, now: datetime) -> datetime | None:
        last = self.history(now)[-1]
        return last.at if last.status is CaseStatus.CLOSED else None

    def closed_on_time(self, now: datetime) -> bool | None:
        """True if closed on or before the deadline, False if closed late, None if not closed."""
        closed_at = self.closed_at(now)
        return None if closed_at is None else closed_at <= self.deadline


class CaseStore:
    """Cases by platform id and by external key; safe to read from another thread."""

    def __init__(self, config: PlatformConfig, clock: Clock = utc_now) -> None:
        self._config = config
        self._clock = clock
        self._zone = ZoneInfo(config.timezone)
        self._rng = random.Random(config.workflow.seed)
        self._lock = threading.Lock()
        self._by_id: dict[str, PlatformCase] = {}
        self._id_by_key: dict[str, str] = {}

    @property
    def config(self) -> PlatformConfig:
        return self._config

    def now(self) -> datetime:
        return self._clock()

    def file(self, case: GridCase) -> tuple[PlatformCase, bool]:
        """File ``case`` once per case_key; returns the stored case and whether it is new."""
        with self._lock:
            existing = self._id_by_key.get(case.case_key)
            if existing is not None:
                return self._by_id[existing], False
            case_id = f"{self._config.case_id_prefix}-{len(self._by_id) + 1:06d}"
            deadline = case.deadline
            if deadline.tzinfo is None:
                deadline = deadline.replace(tzinfo=self._zone)
            stored = PlatformCase(
                case_id=case_id,
                case=case,
                deadline=deadline,
                path=plan_path(self.now(), self._config.workflow, self._rng, deadline),
            )
            self._by_id[case_id] = stored
            self._id_by_key[case.case_key] = case_id
            return stored, True

    def add_update(self, case_id: str, update: CaseUpdate) -> bool:
        """Attach ``update`` once per update_key; returns whether it is new."""
        with self._lock:
            stored = self._by_id.get(case_id)
            if stored is None:
                raise UnknownCase(case_id)
            if update.case_key != stored.external_id:
                raise CaseKeyMismatch(
                    f"update is for {update.case_key!r}, case {case_id} is {stored.external_id!r}"
                )
            if update.update_key in stored.updates:
                return False
            stored.updates[update.update_key] = update
            return True

    def withdraw(self, case_id: str) -> bool:
        """Void a case that is not dispatched yet; False if it already was (too late)."""
        with self._lock:
            stored = self._by_id.get(case_id)
            if stored is None:
                raise UnknownCase(case_id)
            path = withdrawn(stored.path, self.now())
            if path is None:
                return False
            stored.path = path
            return True

    def get(self, case_id: str) -> PlatformCase:
        with self._lock:
            stored = self._by_id.get(case_id)
        if stored is None:
            raise UnknownCase(case_id)
        return stored

    def by_key(self, external_id: str) -> PlatformCase:
        with self._lock:
            case_id = self._id_by_key.get(external_id)
        if case_id is None:
            raise UnknownCase(external_id)
        return self.get(case_id)

    def cases(self) -> list[PlatformCase]:
        """Every stored case, in filing order."""
        with self._lock:
            return list(self._by_id.values())
