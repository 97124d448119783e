"""The evaluation indicators 结案率 and 按期结案率, computed over the stored cases."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from simulators.platform.workflow import CaseStatus


class TrackedCase(Protocol):
    """A native case or an Open311 request: a status over time and a deadline in working time."""

    @property
    def deadline(self) -> datetime: ...

    def status(self, now: datetime) -> CaseStatus: ...

    def closed_on_time(self, now: datetime) -> bool | None: ...


class Indicators(BaseModel):
    """Counts and rates at one moment; a rate is None when its denominator is zero."""

    model_config = ConfigDict(extra="forbid")

    as_of: datetime
    filed: int = Field(description="立案数: every case filed, voided ones included")
    closed: int = Field(description="cases in 结案")
    closed_on_time: int = Field(description="closed cases whose closing was on or before deadline")
    due: int = Field(description="cases due to close, as indicators_at defines")
    deferred: int = Field(description="due cases in 缓办 (deferred)")
    voided: int = Field(description="cases in 作废; never due")
    closure_rate: float | None = Field(description="结案率 = closed / (due - deferred)")
    on_time_closure_rate: float | None = Field(description="按期结案率 = closed_on_time / (due - deferred)")


def indicators_at(cases: Iterable[TrackedCase], now: datetime) -> Indicators:
    """Compute the indicators as of ``now``.

    A case is *due to close* when it is not voided (作废) and either it is already
    closed (结案), whatever its deadline, or its deadline has passed (deadline <
    ``now``). Deferred cases (缓办) that are due are counted in ``due`` and then
    subtracted, as the city's formulas say. So a closed case always counts in the
    denominator, and an open case counts only once it is overdue.
    """
    filed = closed = on_time = due = deferred = voided = 0
    for case in cases:
        filed += 1
        status = case.status(now)
        if status is CaseStatus.VOID:
            voided += 1
            continue
        if status is CaseStatus.CLOSED:
            closed += 1
            due += 1
            on_time += bool(case.closed_on_time(now))
            continue
        if case.deadline < now:
            due += 1
            deferred += status is CaseStatus.DEFERRED
    base = due - deferred
    return Indicators(
        as_of=now,
        filed=filed,
        closed=closed,
        closed_on_time=on_time,
        due=due,
        deferred=deferred,
        voided=voided,
        closure_rate=closed / base if base else None,
        on_time_closure_rate=on_time / base if base else None,
    )
