"""What the ingest stage takes in and gives out.

In: raw MQTT messages (topic, payload bytes, MQTT 5 user properties).
Out: validated, normalised envelopes (``Reading`` for gauges) or a ``DeadLetter`` with a
reason. The gateway acknowledges a message only after the handler has made its outcome
durable; a message the handler rejects is dead-lettered and acknowledged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, Protocol

from gridsense.model.envelopes import Kind
from gridsense.model.incident import IncidentChange
from ingest.deadletter import DeadLetter
from ingest.topics import Topic


class InboundMessage(NamedTuple):
    """A message as it came off the broker.

    A NamedTuple, not a frozen dataclass: the network thread builds one per message, and
    this costs half as much.
    """

    topic: str
    payload: bytes
    received_at: datetime
    qos: int = 1
    mid: int = 0
    generation: int = 0  # which connection delivered it: acks never cross a reconnect
    user_properties: tuple[tuple[str, str], ...] = ()


@dataclass
class BatchOutcome:
    """What a handled batch produced, for counters and the dead-letter topic."""

    readings: int = 0
    duplicates: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    changes: int = 0
    cases_queued: int = 0


#: A batch handler makes the outcome of every message durable before it returns.
BatchHandler = Callable[[Sequence[InboundMessage]], BatchOutcome]


class KindHandler(Protocol):
    """Handles one topic kind (``camera``, ``asset``) inside the gauge pipeline's batches.

    ``prepare`` runs outside the transaction (decode, validate, detect: the CPU work);
    ``commit`` runs inside the batch transaction and returns the incident changes, which the
    pipeline turns into outbox rows in that same transaction. MQTT acks follow the commit.
    """

    kind: Kind

    def prepare(self, msg: InboundMessage, topic: Topic, now: datetime) -> object:
        """Decode and check one message; raise ``Rejected`` to dead-letter it."""
        ...

    def commit(self, conn: sqlite3.Connection, prepared: list[object], now: datetime) -> list[IncidentChange]:
        """Persist what must survive a restart; return the incident changes to file."""
        ...

    def restore(self, conn: sqlite3.Connection) -> None:
        """Rebuild in-memory state from the handler's tables (at start, and after a rollback)."""
        ...


class ScheduledJob(Protocol):
    """Work that runs on a timer, not on message arrival (e.g. overdue inspections)."""

    name: str
    interval_s: float

    def run(self, conn: sqlite3.Connection, now: datetime) -> list[IncidentChange]:
        """Runs inside a transaction; returns incident changes to file."""
        ...
