"""What the bridge takes in and gives out.

In: ``IncidentChange`` events from rules and detectors, turned into ``GridCase`` /
``CaseUpdate`` messages and written to an ``OutboxStore`` in the same transaction as
the incident state. Out: each message delivered to the case platform exactly once,
through a ``CaseAdapter`` chosen by config, and the platform's status followed back
(polled, or pushed to the webhook receiver).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from gridsense.errors import Rejected, Retryable
from gridsense.model.case import CaseUpdate, GridCase

Op = Literal["create", "update"]


class PlatformAnswerInvalid(Retryable):
    """The platform answered 2xx but the body is unusable (not JSON, no id): keep the row, retry."""


class StatusUnsupported(Rejected):
    """The platform offers no way to read a case's status (MQTT ingest, for instance)."""


@dataclass(frozen=True)
class PlatformStatus:
    """A case's status as the platform reports it, before the status map is applied."""

    platform_case_id: str
    status: str
    status_code: int | None = None


@dataclass(frozen=True)
class OutboxRow:
    """One message to deliver: a case (``create``) or an update of a filed case."""

    seq: int
    message_key: str
    case_key: str
    grid_code: str
    op: Op
    body: str
    attempts: int


@dataclass(frozen=True)
class Settlement:
    """What became of one attempt at a row; a pass of attempts is recorded in one transaction."""

    row: OutboxRow
    outcome: Literal["delivered", "retry", "rejected"]
    platform_case_id: str | None = None
    delay_s: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class DeadLetterRow:
    """A message the platform refused, kept with the platform's answer."""

    seq: int
    message_key: str
    case_key: str
    grid_code: str
    op: Op
    attempts: int
    last_error: str
    body: str


class CaseAdapter(Protocol):
    """Talks to one kind of case platform. Errors: ``Retryable`` or ``Rejected`` (gridsense.errors)."""

    #: False when ``status`` can never answer (the delivery then does not poll).
    supports_status: bool

    def create(self, case: GridCase) -> str:
        """File the case idempotently; return the platform's case id."""
        ...

    def update(self, platform_case_id: str, update: CaseUpdate) -> None:
        """Deliver an update to an already filed case, idempotently."""
        ...

    def status(self, platform_case_id: str) -> PlatformStatus: ...

    def close(self) -> None: ...


@runtime_checkable
class CaseWithdrawal(Protocol):
    """An adapter that can withdraw (void) a case the platform has not dispatched yet."""

    def withdraw(self, platform_case_id: str, update: CaseUpdate) -> bool:
        """Ask the platform to void the case; False if it is too late (already dispatched)."""
        ...


class OutboxStore(Protocol):
    """The durable queue between incident state and the platform (SQLite or PostgreSQL).

    ``due`` hands out at most one row per grid, the oldest pending one, so a grid's
    messages reach the platform in the order they were written. A store shared by
    several workers also *claims* the rows it hands out; ``release`` gives back rows
    a worker took but did not try.
    """

    def enqueue_case(self, case: GridCase) -> bool: ...

    def enqueue_update(self, update: CaseUpdate, grid_code: str) -> bool: ...

    def due(self, limit: int = 100) -> list[OutboxRow]: ...

    def release(self, rows: list[OutboxRow]) -> None: ...

    def delivered(self, row: OutboxRow, platform_case_id: str | None) -> None: ...

    def settle(self, results: list[Settlement]) -> None:
        """Record several outcomes in one transaction (one commit per pass, not per row)."""
        ...

    def retry_later(self, row: OutboxRow, delay_s: float, error: str) -> None: ...

    def retry_now(self) -> int:
        """Make every pending row due now, whatever wait it was given; return how many moved.

        For a platform that has come back: its rows waited for it, not for a reason of their own.
        """
        ...

    def reject(self, row: OutboxRow, error: str) -> None: ...

    def platform_id(self, case_key: str) -> tuple[str | None, str]: ...

    def case_key_of(self, platform_case_id: str) -> str | None: ...

    def case_record(self, case_key: str) -> tuple[str, str] | None:
        """(incident id, the create message's JSON body) of a queued or filed case."""
        ...

    def set_status(self, case_key: str, status: str, status_code: int | None) -> None: ...

    def set_platform_id(self, case_key: str, platform_case_id: str) -> None: ...

    def open_cases(self) -> list[tuple[str, str]]: ...

    def closed_between(self, since_ms: int, until_ms: int) -> list[str]:
        """Keys of cases that became 结案 after ``since_ms`` and at or before ``until_ms`` (epoch ms)."""
        ...

    def depth(self) -> int: ...

    def counts(self) -> dict[str, int]: ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetterRow]: ...

    def dead_letter(self, seq: int) -> DeadLetterRow | None: ...

    def replay(self, seq: int) -> bool: ...

    def discard(self, seq: int) -> bool: ...

    def transaction(self) -> AbstractContextManager[object]: ...


class IncidentLookup(Protocol):
    """Whether the sensors still show an incident's problem (its ``closed_at`` is unset)."""

    def is_active(self, incident_id: str) -> bool: ...
