"""Escalation: "small matters stay in the community, big matters stay in the street".

When several grids of one street are in an incident of the same category at once, a
street-level summary incident is filed; when several streets of one district are, a
district-level one. Summaries link their children, follow them as they join or clear,
and close when the last child closes.
"""

from __future__ import annotations

from datetime import datetime

from gridsense.model.envelopes import district_of, street_of
from gridsense.model.incident import Incident, IncidentChange, incident_id, level_rank
from rules.incidents import IncidentBook, is_grid_incident
from rules.spec import EscalationSpec

_LEVEL_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}


class Escalation:
    """Keeps street and district summaries in step with the open grid incidents."""

    def __init__(self, spec: EscalationSpec, book: IncidentBook) -> None:
        self._spec = spec
        self._book = book

    def review(self, changes: list[IncidentChange]) -> list[IncidentChange]:
        """Bring the summaries of the streets and districts these changes touch up to date.

        Only those: every other street's and district's children are as they were at the
        last review, which left its summary in step with them.
        """
        touched: dict[str, tuple[set[str], set[str]]] = {}  # category → (streets, districts)
        at: datetime | None = None
        for c in changes:
            inc = c.incident
            if not is_grid_incident(inc):
                continue
            streets, districts = touched.setdefault(inc.category_ref, (set(), set()))
            streets.add(street_of(inc.grid_code))
            districts.add(district_of(inc.grid_code))
            at = c.at if at is None or c.at > at else at
        if at is None:
            return []
        out: list[IncidentChange] = []
        book, spec = self._book, self._spec
        for category in sorted(touched):
            streets, districts = touched[category]
            for street in sorted(streets):
                kids = book.open_in_street(category, street)
                out += self._sync("street", category, street, kids, len(kids), spec.street_min_grids, at)
            for district in sorted(districts):
                open_streets = book.streets_open(category, district)
                kids = [k for s in open_streets for k in book.open_in_street(category, s)]
                out += self._sync(
                    "district", category, district, kids, len(open_streets), spec.district_min_streets, at
                )
        return out

    def _sync(
        self,
        level: str,
        category: str,
        subject: str,
        kids: list[Incident],
        size: int,
        minimum: int,
        at: datetime,
    ) -> list[IncidentChange]:
        """One street's or district's summary against its open children: open, follow, or close it."""
        rule_id = f"{level}:{category}"
        summary = self._book.open_for(rule_id, subject)
        if not kids:
            if summary is None:
                return []
            summary.linked = []  # no child left open
            self._book.close(summary, at)
            return [IncidentChange("cleared", summary, at)]
        kids = sorted(kids, key=lambda i: i.grid_code)
        linked = [k.incident_id for k in kids]
        top = max((k.level for k in kids), key=level_rank)
        if summary is None:
            if size < minimum:
                return []
            summary = Incident(
                incident_id=incident_id(rule_id, subject, at),
                rule_id=rule_id,
                category_ref=category,
                grid_code=kids[0].grid_code,
                opened_at=at,
                updated_at=at,
                level=top,
                peak_value=float(size),
                unit="streets" if level == "district" else "grids",
                window_s=0,
                subject=subject,
                linked=linked,
                routing_level=level,
            )
            _describe(summary, kids, level, size)
            self._book.add(summary)
            return [IncidentChange("opened", summary, at)]
        if linked == summary.linked and level_rank(top) <= level_rank(summary.level):
            return []
        raised = level_rank(top) > level_rank(summary.level)
        summary.linked, summary.updated_at = linked, at
        summary.peak_value = max(summary.peak_value, float(size))
        if raised:
            summary.level = top
        _describe(summary, kids, level, size)
        self._book.touch(summary)
        return [IncidentChange("raised" if raised else "updated", summary, at)]


def _describe(summary: Incident, kids: list[Incident], level: str, size: int) -> None:
    grids = "、".join(k.grid_code for k in kids)
    top = _LEVEL_ZH.get(summary.level or "", "")
    if level == "street":
        summary.summary_zh = f"本街道 {size} 个网格同时处于{top}事件中（{grids}）"
        summary.summary_en = (
            f"{size} grids of this street are in an incident at once ({', '.join(k.grid_code for k in kids)})"
        )
    else:
        summary.summary_zh = f"本区 {size} 个街道同时处于{top}事件中，涉及网格 {grids}"
        summary.summary_en = f"{size} streets of this district are in an incident at once"
