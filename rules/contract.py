"""What the rules stage takes in and gives out.

In: normalised, de-duplicated ``Reading`` envelopes, in arrival order.
Out: ``IncidentChange`` events (``gridsense.model.incident``). The bridge turns each change
into a case or a case update; the text and evidence come from the rule, codes and
deadline from the category table.
"""

from __future__ import annotations

from typing import Protocol

from gridsense.model.incident import (
    LEVELS,
    ChangeKind,
    Incident,
    IncidentChange,
    incident_id,
    level_rank,
)
from gridsense.model.reading import Reading

__all__ = ["LEVELS", "ChangeKind", "Incident", "IncidentChange", "Rule", "incident_id", "level_rank"]


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
