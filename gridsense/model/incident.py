"""Incidents: what rules and detectors report, and what the bridge files as cases.

An incident groups breaches of one rule about one subject (a grid, a device, a camera,
an asset). Its life is opened → raised (level went up) / updated → cleared.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from gridsense.model.case import Evidence, Source

LEVELS = ("blue", "yellow", "orange", "red")


_RANK = {level: rank for rank, level in enumerate(LEVELS)}


def level_rank(level: str | None) -> int:
    """-1 for no level, then blue < yellow < orange < red; KeyError for anything else."""
    return -1 if level is None else _RANK[level]


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
    quiet_since: str | None = None  # ISO time every member cleared; closes after the quiet period
    closed_at: datetime | None = None


ChangeKind = Literal["opened", "raised", "updated", "cleared"]


@dataclass(frozen=True)
class IncidentChange:
    """Something the platform must hear about, with the evidence that justifies it."""

    kind: ChangeKind
    incident: Incident
    at: datetime
    evidence: tuple[Evidence, ...] = ()
