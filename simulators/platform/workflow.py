"""The case workflow: statuses with the platform's codes, and each case's planned path.

A case's path is drawn once, when it is filed, from the seeded random source, as
a list of timed status changes. Its status at any moment is the last change at
or before that moment, so the workflow advances lazily, with no background task,
and replays exactly for the same seed and filing order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from simulators.platform.config import WorkflowConfig


class CaseStatus(StrEnum):
    """A workflow status by its Chinese name; ``code`` is the platform's numeric status."""

    FILED = "立案"
    DISPATCHED = "派遣"
    HANDLING = "处置"
    VERIFYING = "核查"
    CLOSED = "结案"
    VOID = "作废"
    DEFERRED = "缓办"

    @property
    def code(self) -> int:
        return _STATUS_CODES[self]


# The most common deployment's codes (domain README §6); filing and dispatch share 3 立案派遣.
_STATUS_CODES = {
    CaseStatus.FILED: 3,
    CaseStatus.DISPATCHED: 3,
    CaseStatus.HANDLING: 4,
    CaseStatus.VERIFYING: 5,
    CaseStatus.CLOSED: 6,
    CaseStatus.VOID: 7,
    CaseStatus.DEFERRED: 8,
}

FINAL_STATUSES = frozenset({CaseStatus.CLOSED, CaseStatus.VOID})


@dataclass(frozen=True)
class StatusChange:
    """The case entered ``status`` at ``at``."""

    status: CaseStatus
    at: datetime


def plan_path(
    filed_at: datetime,
    config: WorkflowConfig,
    rng: random.Random,
    deadline: datetime | None = None,
) -> list[StatusChange]:
    """Draw the timed path a case filed at ``filed_at`` (due by ``deadline``) will walk.

    A late case (``late_rate``) closes one step after its deadline, if it would not
    already have closed after it. The late draw is made only when ``late_rate`` is set,
    so the paths drawn for a seed without it stay as they were.
    """
    low, high = config.step_delay_s
    at = filed_at
    path = [StatusChange(CaseStatus.FILED, at)]

    def step(status: CaseStatus) -> None:
        nonlocal at
        at += timedelta(seconds=rng.uniform(low, high))
        path.append(StatusChange(status, at))

    step(CaseStatus.DISPATCHED)
    outcome = rng.random()
    if outcome < config.void_rate:
        step(CaseStatus.VOID)
        return path
    if outcome < config.void_rate + config.defer_rate:
        step(CaseStatus.DEFERRED)
        return path
    step(CaseStatus.HANDLING)
    step(CaseStatus.VERIFYING)
    if rng.random() < config.reject_rate:
        step(CaseStatus.HANDLING)
        step(CaseStatus.VERIFYING)
    step(CaseStatus.CLOSED)
    if config.late_rate and deadline is not None and rng.random() < config.late_rate:
        overrun = timedelta(seconds=rng.uniform(low, high) or 1.0)
        path[-1] = StatusChange(CaseStatus.CLOSED, max(path[-1].at, deadline + overrun))
    return path


def withdrawn(path: list[StatusChange], now: datetime) -> list[StatusChange] | None:
    """The path of a case withdrawn at ``now``: voided if not dispatched yet, else None."""
    history = history_at(path, now)
    if history[-1].status is CaseStatus.VOID:
        return path  # withdrawn already (or voided): asking again changes nothing
    if history[-1].status is not CaseStatus.FILED:
        return None
    return [*history, StatusChange(CaseStatus.VOID, now)]


def history_at(path: list[StatusChange], now: datetime) -> list[StatusChange]:
    """The changes that have happened by ``now``; the last one is the current status."""
    return [change for change in path if change.at <= now]
