"""What the ingest stage takes in and gives out.

In: raw MQTT messages (topic, payload bytes, MQTT 5 user properties).
Out: validated, normalised envelopes (``Reading`` for gauges) or a ``DeadLetter`` with a
reason. The gateway acknowledges a message only after the handler has made its outcome
durable; a message the handler rejects is dead-lettered and acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ingest.deadletter import DeadLetter


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message as it came off the broker."""

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
