"""The assets panel: overdue inspections and recent QR scans, when the asset stage is set up.

The asset stage's tables (``asset_incidents``, ``asset_pings``) may be missing from an
older store, and the stage may be switched off: the panel then says "not configured"
instead of failing.
"""

from __future__ import annotations

import json
import sqlite3

from gridsense.ops.fmt import local
from gridsense.ops.html import Safe, el, join

OVERDUE_RULE = "asset_overdue"


def has_tables(conn: sqlite3.Connection, *names: str) -> bool:
    marks = ",".join("?" * len(names))
    (n,) = conn.execute(
        f"SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ({marks})", names
    ).fetchone()
    return int(n) == len(names)


def overdue(conn: sqlite3.Connection, limit: int = 20) -> list[tuple[str, str, str, str]]:
    """(asset id, since, what, grid) of open overdue-inspection incidents, oldest first."""
    rows = conn.execute(
        "SELECT subject, updated_at, body FROM asset_incidents WHERE rule_id = ? AND closed_at IS NULL"
        " ORDER BY updated_at LIMIT ?",
        (OVERDUE_RULE, limit),
    )
    out = []
    for subject, updated, body in rows:
        try:
            doc = json.loads(body)
            summary, grid = str(doc.get("summary_zh") or ""), str(doc.get("grid_code") or "")
        except (ValueError, AttributeError):
            summary, grid = "", ""
        out.append((subject, updated, summary, grid))
    return out


def recent_scans(conn: sqlite3.Connection, limit: int = 15) -> list[tuple[int, str, str, int, str]]:
    """(asset id, maintainer, condition, scan time ms, flags), newest first."""
    rows = conn.execute(
        "SELECT asset_id, maintainer_id, condition, ts_ms, flags FROM asset_pings ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    return [(a, m, c, t, f) for a, m, c, t, f in rows]


def assets_panel(conn: sqlite3.Connection, enabled: bool = True) -> Safe:
    if not enabled:
        return el("p", "assets: not configured (no asset registry in the config)", class_="empty")
    if not has_tables(conn, "asset_incidents", "asset_pings"):
        return el("p", "assets: not configured (this store has no asset tables)", class_="empty")
    late = overdue(conn)
    scans = recent_scans(conn)
    return join(
        [
            el("h3", "overdue inspections ", el("span", len(late), class_="count")),
            el(
                "table",
                el(
                    "tbody",
                    [
                        el(
                            "tr",
                            el("td", a),
                            el("td", el("a", g[-6:], href=f"/grid/{g}", data_grid=g) if g else "—"),
                            el("td", s),
                            el("td", local(t), class_="muted"),
                        )
                        for a, t, s, g in late
                    ],
                ),
                class_="tbl",
            )
            if late
            else el("p", "none overdue", class_="empty ok"),
            el("h3", "recent scans"),
            el(
                "table",
                el(
                    "tbody",
                    [
                        el(
                            "tr",
                            el("td", a),
                            el("td", m),
                            el("td", c),
                            el("td", f),
                            el("td", local(t), class_="muted"),
                        )
                        for a, m, c, t, f in scans
                    ],
                ),
                class_="tbl",
            )
            if scans
            else el("p", "no scans yet", class_="empty"),
        ]
    )
