"""What the rules stage takes in and gives out.

In: normalised, de-duplicated ``Reading`` envelopes, in arrival order.
Out: ``IncidentChange`` events. An incident groups breaches of one rule in one grid;
its life is opened → raised (level went up) → cleared. The bridge turns each change
into a case or a case update.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from gridsense.model.envelopes import Reading

LEVELS = ("blue", "yellow", "orange", "red")


def incident_id(rule_id: str, grid_code: str, opened_at: datetime) -> str:
    """Stable across restarts and replays: derived from data, never from wall-clock time."""
    raw = f"{rule_id}|{grid_code}|{int(opened_at.timestamp() * 1000)}"
    return "inc-" + hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclass
class Incident:
    """One incident: a rule breached in a grid, from open to clear."""

    incident_id: str
    rule_id: str
    category_ref: str
    grid_code: str
    opened_at: datetime
    updated_at: datetime
    level: str
    peak_value: float
    unit: str
    window_s: int
    subject: str
    device_levels: dict[str, str] = field(default_factory=dict)
    peak_device: str = ""
    closed_at: datetime | None = None


ChangeKind = Literal["opened", "raised", "cleared"]


@dataclass(frozen=True)
class IncidentChange:
    """Something the platform must hear about, with the readings that justify it."""

    kind: ChangeKind
    incident: Incident
    at: datetime
    evidence: tuple[tuple[str, float], ...] = ()  # (iso timestamp, value) of the breaching series


class Rule(Protocol):
    """A rule consumes fresh readings and reports incident changes."""

    rule_id: str

    def evaluate(self, reading: Reading) -> list[IncidentChange]: ...

    def warm(self, reading: Reading) -> None:
        """Replay a stored reading into the window state without emitting changes."""
        ...
