"""What the rules stage (and the detectors beside it) give out.

In: normalised, de-duplicated ``Reading`` envelopes, in arrival order.
Out: ``IncidentChange`` events. An incident groups breaches of one rule in one grid
(or about one subject: a device, a camera, an asset); its life is
opened → raised (level went up) / updated → cleared. The bridge turns each change into a
case or a case update; the text and evidence come from here, codes and deadline from the
category table.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from gridsense.model.case import Evidence, Source
from gridsense.model.envelopes import Reading

LEVELS = ("blue", "yellow", "orange", "red")


def level_rank(level: str | None) -> int:
    """-1 for no level, then blue < yellow < orange < red."""
    return -1 if level is None else LEVELS.index(level)


def incident_id(rule_id: str, subject: str, opened_at: datetime) -> str:
    """Stable across restarts and replays: derived from data, never from wall-clock time."""
    raw = f"{rule_id}|{subject}|{int(opened_at.timestamp() * 1000)}"
    return "inc-" + hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclass
class Incident:
    """One incident: a rule breached about one subject in one grid, from open to clear."""

    incident_id: str
    rule_id: str
    category_ref: str  # "event:0111", a row of the category table
    grid_code: str
    opened_at: datetime
    updated_at: datetime
    level: str | None  # warning level, or None for rules without levels
    peak_value: float
    unit: str
    window_s: int
    subject: str  # what the case is about: a grid code, a device id, an asset id
    source: Source = "sensor"
    summary_zh: str = ""  # what was observed, one sentence, for the case description
    summary_en: str = ""
    device_levels: dict[str, str] = field(default_factory=dict)
    peak_device: str = ""
    location: tuple[float, float] | None = None  # WGS-84 point of the subject; None = grid centroid
    linked: list[str] = field(default_factory=list)  # child incidents of an escalation summary
    routing_level: str | None = None  # overrides the category's routing level (escalations)
    closed_at: datetime | None = None


ChangeKind = Literal["opened", "raised", "updated", "cleared"]


@dataclass(frozen=True)
class IncidentChange:
    """Something the platform must hear about, with the evidence that justifies it."""

    kind: ChangeKind
    incident: Incident
    at: datetime
    evidence: tuple[Evidence, ...] = ()


class Rule(Protocol):
    """A rule consumes fresh readings and reports incident changes."""

    rule_id: str

    def evaluate(self, reading: Reading) -> list[IncidentChange]: ...

    def warm(self, reading: Reading) -> None:
        """Replay a stored reading into the window state without emitting changes."""
        ...

    def reset(self) -> None:
        """Forget all window state (before a rebuild from the store)."""
        ...
