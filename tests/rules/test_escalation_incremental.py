"""Escalation reviews only the streets and districts a change touches.

It must file, follow and close exactly the summaries that a full rescan of every open
incident would (``reference_escalation.py``, the code before), for any sequence of grid
incidents opening, rising and clearing, reviewed one change or several at a time, and
after the book is reloaded from the store as it is on a restart.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gridsense.model.incident import LEVELS, Incident, IncidentChange, level_rank
from rules.escalation import Escalation
from rules.incidents import SCHEMA, IncidentBook
from rules.spec import EscalationSpec
from tests.rules.reference_escalation import FullScanEscalation

CATEGORIES = ("event:0111", "event:0205")
# 2 districts × 3 streets × 3 grids: 15-digit codes, district (6) street (3) community (3) grid (3)
GRIDS = tuple(f"{d}{s:03d}001{g:03d}" for d in ("110101", "110102") for s in (1, 2, 3) for g in (1, 2, 3))
T0 = datetime(2026, 7, 21, 8, 0, tzinfo=UTC)

op = st.tuples(
    st.sampled_from(("open", "open", "raise", "clear")),
    st.sampled_from(CATEGORIES),
    st.sampled_from(GRIDS),
    st.sampled_from(LEVELS),
)
# Each batch is reviewed at once, as a reading's changes or a tick's quiet closes are.
batches = st.lists(st.lists(op, min_size=1, max_size=4), min_size=1, max_size=60)


class Side:
    """One book with its escalation, driven exactly as the rule engine drives it."""

    def __init__(self, escalation: type[Escalation] | type[FullScanEscalation], spec: EscalationSpec) -> None:
        self.book = IncidentBook()
        self.escalation = escalation(spec, self.book)

    def apply(self, step: int, batch: list[tuple[str, str, str, str]]) -> list[IncidentChange]:
        at = T0 + timedelta(minutes=step)
        changes: list[IncidentChange] = []
        for kind, category, grid, level in batch:
            inc = self.book.open_for(category, grid)
            if kind == "open" and inc is None:
                inc = Incident(
                    incident_id=f"inc-{category}-{grid}-{step}",
                    rule_id=category,
                    category_ref=category,
                    grid_code=grid,
                    opened_at=at,
                    updated_at=at,
                    level=level,
                    peak_value=1.0,
                    unit="mm",
                    window_s=3600,
                    subject=grid,
                )
                self.book.add(inc)
                changes.append(IncidentChange("opened", inc, at))
            elif kind == "raise" and inc is not None and level_rank(level) > level_rank(inc.level):
                inc.level = level
                self.book.touch(inc)
                changes.append(IncidentChange("raised", inc, at))
            elif kind == "clear" and inc is not None:
                self.book.close(inc, at)
                changes.append(IncidentChange("cleared", inc, at))
        return self.escalation.review(changes) if changes else []


def _changes(changes: list[IncidentChange]) -> list[tuple[object, ...]]:
    return sorted(
        (
            c.kind,
            c.incident.rule_id,
            c.incident.subject,
            c.incident.incident_id,
            c.incident.level,
            tuple(c.incident.linked),
            c.incident.peak_value,
            c.incident.summary_zh,
            c.incident.summary_en,
            c.incident.closed_at,
        )
        for c in changes
    )


def _open(book: IncidentBook) -> list[tuple[object, ...]]:
    return sorted(
        (i.rule_id, i.subject, i.incident_id, i.level, tuple(i.linked)) for i in book.open_incidents()
    )


@settings(max_examples=300, deadline=None)
@given(batches=batches, street_min=st.integers(2, 3), district_min=st.integers(2, 3))
def test_incremental_review_files_what_a_full_rescan_files(
    batches: list[list[tuple[str, str, str, str]]], street_min: int, district_min: int
) -> None:
    spec = EscalationSpec(street_min_grids=street_min, district_min_streets=district_min)
    incremental, full = Side(Escalation, spec), Side(FullScanEscalation, spec)
    for step, batch in enumerate(batches):
        assert _changes(incremental.apply(step, batch)) == _changes(full.apply(step, batch))
        assert _open(incremental.book) == _open(full.book)


@settings(max_examples=100, deadline=None)
@given(before=batches, after=batches)
def test_the_index_is_rebuilt_when_the_book_is_reloaded(
    before: list[list[tuple[str, str, str, str]]], after: list[list[tuple[str, str, str, str]]]
) -> None:
    """A restart loads the open incidents from the store: escalation carries on from there."""
    spec = EscalationSpec(street_min_grids=2, district_min_streets=2)
    reloaded, full = Side(Escalation, spec), Side(FullScanEscalation, spec)
    with closing(sqlite3.connect(":memory:")) as conn:
        conn.executescript(SCHEMA)
        for step, batch in enumerate(before):
            reloaded.apply(step, batch)
            full.apply(step, batch)
        reloaded.book.flush(conn)
        reloaded = Side(Escalation, spec)
        reloaded.book.load(conn)
    assert _open(reloaded.book) == _open(full.book)
    for step, batch in enumerate(after, start=len(before)):
        assert _changes(reloaded.apply(step, batch)) == _changes(full.apply(step, batch))


def test_a_street_summary_opens_follows_and_clears_with_its_grids() -> None:
    """The behaviour itself, spelled out: three grids of a street → a street summary."""
    side = Side(Escalation, EscalationSpec(street_min_grids=3, district_min_streets=2))
    street = [g for g in GRIDS if g.startswith("110101001")]
    assert side.apply(0, [("open", CATEGORIES[0], street[0], "blue")]) == []
    assert side.apply(1, [("open", CATEGORIES[0], street[1], "blue")]) == []
    (opened,) = side.apply(2, [("open", CATEGORIES[0], street[2], "yellow")])
    assert (opened.kind, opened.incident.subject, opened.incident.level) == ("opened", "110101001", "yellow")
    assert len(opened.incident.linked) == 3
    (raised,) = side.apply(3, [("raise", CATEGORIES[0], street[0], "orange")])
    assert (raised.kind, raised.incident.level) == ("raised", "orange")
    # The summary follows its grids down to the last one, and closes with it.
    assert [c.kind for c in side.apply(4, [("clear", CATEGORIES[0], street[0], "blue")])] == ["updated"]
    assert [c.kind for c in side.apply(5, [("clear", CATEGORIES[0], street[1], "blue")])] == ["updated"]
    (cleared,) = side.apply(6, [("clear", CATEGORIES[0], street[2], "blue")])
    assert (cleared.kind, cleared.incident.subject) == ("cleared", "110101001")
    assert side.book.open_incidents() == []
