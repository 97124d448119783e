"""What the bridge takes in and gives out.

In: ``IncidentChange`` events from rules and detectors, turned into ``GridCase`` /
``CaseUpdate`` messages and written to the outbox in the same transaction as the
incident state. Out: each message delivered to the case platform exactly once, through
a ``CaseAdapter`` chosen by config, and the platform's status followed back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gridsense.model.case import CaseUpdate, GridCase


@dataclass(frozen=True)
class PlatformStatus:
    """A case's status as the platform reports it."""

    platform_case_id: str
    status: str
    status_code: int | None = None


class CaseAdapter(Protocol):
    """Talks to one kind of case platform. Errors: ``Retryable`` or ``Rejected`` (gridsense.errors)."""

    def create(self, case: GridCase) -> str:
        """File the case idempotently; return the platform's case id."""
        ...

    def update(self, platform_case_id: str, update: CaseUpdate) -> None:
        """Deliver an update to an already filed case, idempotently."""
        ...

    def status(self, platform_case_id: str) -> PlatformStatus: ...

    def close(self) -> None: ...
