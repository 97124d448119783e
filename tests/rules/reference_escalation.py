"""The escalation as it was before it went incremental: every review rescanned every open incident.

Kept verbatim (but for this docstring) as the oracle that ``test_escalation_incremental.py``
holds ``rules.escalation`` to. It is correct but costs a scan of all open incidents per
change, which made a citywide storm quadratic.
"""

from __future__ import annotations

from datetime import datetime

from gridsense.model.incident import Incident, IncidentChange, incident_id, level_rank
from rules.incidents import IncidentBook
from rules.spec import EscalationSpec

_LEVEL_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}


class FullScanEscalation:
    """Keeps street and district summaries in step with the open grid incidents."""

    def __init__(self, spec: EscalationSpec, book: IncidentBook) -> None:
        self._spec = spec
        self._book = book

    def review(self, changes: list[IncidentChange]) -> list[IncidentChange]:
        grid_changes = [
            c
            for c in changes
            if c.incident.routing_level is None and c.incident.subject == c.incident.grid_code
        ]
        if not grid_changes:
            return []
        at = max(c.at for c in grid_changes)
        children = [
            i for i in self._book.open_incidents() if i.routing_level is None and i.subject == i.grid_code
        ]
        out: list[IncidentChange] = []
        for category in {c.incident.category_ref for c in grid_changes}:
            mine = [i for i in children if i.category_ref == category]
            by_street: dict[str, list[Incident]] = {}
            by_district: dict[str, set[str]] = {}
            for inc in mine:
                by_street.setdefault(inc.grid_code[:9], []).append(inc)
                by_district.setdefault(inc.grid_code[:6], set()).add(inc.grid_code[:9])
            streets = {s: kids for s, kids in by_street.items()}
            out += self._sync("street", category, streets, self._spec.street_min_grids, at)
            districts = {d: [i for i in mine if i.grid_code[:6] == d] for d, s in by_district.items()}
            district_counts = {d: len(s) for d, s in by_district.items()}
            out += self._sync(
                "district", category, districts, self._spec.district_min_streets, at, counts=district_counts
            )
        return out

    def _sync(
        self,
        level: str,
        category: str,
        groups: dict[str, list[Incident]],
        minimum: int,
        at: datetime,
        counts: dict[str, int] | None = None,
    ) -> list[IncidentChange]:
        rule_id = f"{level}:{category}"
        out: list[IncidentChange] = []
        open_summaries = {i.subject: i for i in self._book.open_incidents() if i.rule_id == rule_id}
        for subject, kids in groups.items():
            size = counts[subject] if counts is not None else len(kids)
            summary = open_summaries.pop(subject, None)
            kids = sorted(kids, key=lambda i: i.grid_code)
            linked = [k.incident_id for k in kids]
            top = max((k.level for k in kids), key=level_rank)
            if summary is None:
                if size < minimum:
                    continue
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
                out.append(IncidentChange("opened", summary, at))
                continue
            if linked == summary.linked and level_rank(top) <= level_rank(summary.level):
                continue
            raised = level_rank(top) > level_rank(summary.level)
            summary.linked, summary.updated_at = linked, at
            summary.peak_value = max(summary.peak_value, float(size))
            if raised:
                summary.level = top
            _describe(summary, kids, level, size)
            self._book.touch(summary)
            out.append(IncidentChange("raised" if raised else "updated", summary, at))
        for summary in open_summaries.values():  # no child left open
            summary.linked = []
            self._book.close(summary, at)
            out.append(IncidentChange("cleared", summary, at))
        return out


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
