"""Cases as the duty officer follows them: from the ``cases`` and ``outbox`` tables.

A case row says where it stands on the platform; its outbox body (the ``GridCase`` as
filed) says what it is about; the incident row gives the level now. Bodies are read as
plain JSON with defaults, so a case filed by an older version still shows.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridsense.ops.evidence import evidence_href
from gridsense.ops.fmt import CLOSED_STATUSES, SEVERITY_ZH, deadline, level_chip, local
from gridsense.ops.html import Safe, el, join

_SELECT = (
    "SELECT c.case_key, c.incident_id, c.grid_code, c.category_code, c.title, c.filed_at, c.deadline,"
    " c.platform_case_id, c.status, c.status_code, c.status_at_ms, o.body, o.status, o.attempts,"
    " o.last_error, i.level, i.closed_at, i.rule_id"
    " FROM cases c LEFT JOIN outbox o ON o.message_key = c.case_key"
    " LEFT JOIN incidents i ON i.incident_id = c.incident_id"
)
_ORDER = " ORDER BY c.status IN ('结案', '作废', 'rejected'), c.filed_at DESC, c.case_key LIMIT ?"


@dataclass(frozen=True)
class CaseView:
    """One case, ready to show."""

    case_key: str
    incident_id: str
    grid_code: str
    category_code: str
    title: str
    filed_at: str
    deadline: str
    platform_case_id: str | None
    status: str
    status_code: int | None
    status_at_ms: int | None
    outbox_status: str | None
    attempts: int
    last_error: str | None
    level: str | None
    incident_closed_at: str | None
    rule_id: str | None
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def closed(self) -> bool:
        return self.status in CLOSED_STATUSES

    @property
    def category_name(self) -> str:
        cat = self.body.get("category") or {}
        return str(cat.get("name_zh") or "")

    @property
    def description(self) -> str:
        return str(self.body.get("description_zh") or "")

    @property
    def severity(self) -> str | None:
        sev = self.body.get("severity")
        return str(sev) if sev else None

    @property
    def is_summary(self) -> bool:
        """A street or district summary: about many grids, not the one it is filed under."""
        return self.body.get("routing_level") in ("street", "district")

    def snapshot_url(self) -> str | None:
        for ev in self.body.get("evidence") or []:
            if isinstance(ev, dict) and ev.get("kind") == "snapshot" and ev.get("url"):
                return str(ev["url"])
        return None


def _view(row: tuple[Any, ...]) -> CaseView:
    try:
        body = json.loads(row[11]) if row[11] else {}
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    return CaseView(
        case_key=row[0],
        incident_id=row[1],
        grid_code=row[2],
        category_code=row[3],
        title=row[4],
        filed_at=row[5],
        deadline=row[6],
        platform_case_id=row[7],
        status=row[8],
        status_code=row[9],
        status_at_ms=row[10],
        outbox_status=row[12],
        attempts=row[13] or 0,
        last_error=row[14],
        level=row[15] or body.get("warning_level"),
        incident_closed_at=row[16],
        rule_id=row[17],
        body=body,
    )


def list_cases(conn: sqlite3.Connection, limit: int = 50, grid_code: str | None = None) -> list[CaseView]:
    """Open cases first, newest first."""
    if grid_code is None:
        rows = conn.execute(_SELECT + _ORDER, (limit,))
    else:
        rows = conn.execute(_SELECT + " WHERE c.grid_code = ?" + _ORDER, (grid_code, limit))
    return [_view(r) for r in rows]


def get_case(conn: sqlite3.Connection, key: str) -> CaseView | None:
    row = conn.execute(_SELECT + " WHERE c.case_key = ? OR c.platform_case_id = ?", (key, key)).fetchone()
    return _view(row) if row else None


@dataclass(frozen=True)
class UpdateView:
    seq: int
    kind: str
    at: str
    note: str
    level: str | None
    outbox_status: str
    last_error: str | None


def case_updates(conn: sqlite3.Connection, case_key: str) -> list[UpdateView]:
    rows = conn.execute(
        "SELECT seq, body, status, last_error FROM outbox WHERE case_key = ? AND op = 'update' ORDER BY seq",
        (case_key,),
    )
    out = []
    for seq, body, status, err in rows:
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
        out.append(
            UpdateView(
                seq,
                str(doc.get("kind", "?")),
                str(doc.get("at", "")),
                str(doc.get("note_zh") or doc.get("note_en") or ""),
                doc.get("warning_level"),
                status,
                err,
            )
        )
    return out


def open_case_grids(conn: sqlite3.Connection) -> set[str]:
    """Grids with a case the platform has not closed (street and district summaries left out)."""
    rows = conn.execute(
        "SELECT c.grid_code, json_extract(o.body, '$.routing_level') FROM cases c"
        " LEFT JOIN outbox o ON o.message_key = c.case_key"
        " WHERE c.status NOT IN ('结案', '作废', 'rejected')"
    )
    return {grid for grid, routing in rows if routing not in ("street", "district")}


# --- rendering ----------------------------------------------------------------------------


def status_chip(c: CaseView) -> Safe:
    if c.status == "queued" and c.attempts:
        return el("span", f"retrying ×{c.attempts}", class_="st st-retry", title=c.last_error)
    return el("span", c.status, class_=f"st st-{_status_class(c.status)}", title=c.last_error)


def _status_class(status: str) -> str:
    return {
        "queued": "queued",
        "filed": "filed",
        "立案": "filed",
        "派遣": "work",
        "处置": "work",
        "核查": "check",
        "缓办": "check",
        "结案": "done",
        "作废": "done",
        "rejected": "rejected",
    }.get(status, "other")


def thumbnail(c: CaseView, evidence_dir: Path | None, url_base: str | None) -> Safe | None:
    href = evidence_href(c.snapshot_url(), evidence_dir, url_base)
    if href is None:
        return None
    return el(
        "a", el("img", src=href, alt="snapshot", class_="thumb", loading="lazy"), href=href, target="_blank"
    )


def case_list(cases: list[CaseView], evidence_dir: Path | None = None, url_base: str | None = None) -> Safe:
    """The live case list: level, category, title, grid, platform status, countdown, thumbnail."""
    if not cases:
        return el("p", "no cases yet", class_="empty")
    items = []
    for c in cases:
        items.append(
            el(
                "li",
                el(
                    "div",
                    level_chip(c.level),
                    el("span", c.category_code.split(":")[-1], class_="code", title=c.category_code),
                    el("span", c.category_name, class_="cat"),
                    status_chip(c),
                    class_="case-top",
                ),
                el("a", c.title, href=f"/case/{c.case_key}", class_="case-title", data_case=c.case_key),
                el(
                    "div",
                    el(
                        "a",
                        c.grid_code,
                        href=f"/grid/{c.grid_code}",
                        data_grid=c.grid_code,
                        class_="grid-link",
                    ),
                    el("span", c.platform_case_id or "not filed yet", class_="pid"),
                    el("span", "filed ", local(c.filed_at), class_="muted"),
                    deadline(c.deadline, c.closed),
                    class_="case-meta",
                ),
                thumbnail(c, evidence_dir, url_base),
                class_="case" + (" closed" if c.closed else "") + (" summary" if c.is_summary else ""),
                data_case=c.case_key,
                data_grid=c.grid_code,
            )
        )
    return el("ul", items, class_="cases")


def case_detail(
    c: CaseView, updates: list[UpdateView], evidence_dir: Path | None = None, url_base: str | None = None
) -> Safe:
    """Everything about one case: what, where, deadline, platform status, evidence, updates."""
    body = c.body
    place = body.get("place") or {}
    facts = [
        ("case key", c.case_key),
        ("platform id", c.platform_case_id or "not filed yet"),
        ("platform status", join([status_chip(c), f" code {c.status_code}" if c.status_code else ""])),
        ("category", f"{c.category_code} {c.category_name}"),
        ("level", join([level_chip(c.level), " ", SEVERITY_ZH.get(c.severity or "", c.severity or "")])),
        ("grid", el("a", c.grid_code, href=f"/grid/{c.grid_code}", data_grid=c.grid_code)),
        (
            "place",
            f"{place.get('street_name', '')} {place.get('community_name', '')} {place.get('address', '')}",
        ),
        ("responsible", body.get("responsible_unit", "")),
        ("filed", local(c.filed_at)),
        ("deadline", join([deadline(c.deadline, c.closed), f"  ({body.get('deadline_basis', '')})"])),
        (
            "incident",
            f"{c.incident_id} {'closed ' + local(c.incident_closed_at) if c.incident_closed_at else 'open'}",
        ),
    ]
    if c.last_error:
        facts.append(("last error", c.last_error))
    evidence = []
    for ev in body.get("evidence") or []:
        if not isinstance(ev, dict):
            continue
        href = evidence_href(ev.get("url"), evidence_dir, url_base)
        evidence.append(
            el(
                "li",
                el("span", ev.get("kind", "?"), class_="ev-kind"),
                " ",
                ev.get("description", ""),
                el("a", el("img", src=href, alt="snapshot", class_="snap"), href=href, target="_blank")
                if href
                else None,
                el("code", (ev.get("sha256") or "")[:16], class_="muted"),
            )
        )
    ups = [
        el(
            "li",
            el("span", local(u.at), class_="muted"),
            " ",
            el("span", u.kind, class_="ev-kind"),
            " ",
            level_chip(u.level) if u.level else None,
            " ",
            u.note,
            " ",
            el("span", u.outbox_status, class_=f"st st-{u.outbox_status}", title=u.last_error),
        )
        for u in updates
    ]
    return el(
        "article",
        el("h2", c.title, class_="case-h"),
        el("p", c.description, class_="desc"),
        el("p", body.get("description_en") or "", class_="desc en") if body.get("description_en") else None,
        el("dl", [join([el("dt", k), el("dd", v)]) for k, v in facts], class_="facts"),
        el("h3", "evidence"),
        el("ul", evidence, class_="evidence") if evidence else el("p", "none", class_="empty"),
        el("h3", "updates"),
        el("ul", ups, class_="updates") if ups else el("p", "none", class_="empty"),
        class_="case-detail",
        data_case=c.case_key,
    )
