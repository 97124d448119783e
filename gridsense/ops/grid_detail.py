"""What a click on a grid shows: the grid, its devices with their last reading, incidents, cases."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gridsense.model.registry import Device, Grid
from gridsense.ops.cases import case_list, list_cases
from gridsense.ops.fmt import level_chip, local
from gridsense.ops.html import Safe, el
from gridsense.ops.incidents import open_incidents

_UNIT = {"rain": "mm", "snow": "cm", "water": "cm"}


def _last_readings(conn: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[int, float]]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    # SQLite returns the other columns of the row that holds the MAX (a documented bare-column rule).
    rows = conn.execute(
        f"SELECT device_id, MAX(ts_ms), value FROM readings WHERE device_id IN ({marks}) GROUP BY device_id",
        ids,
    )
    return {d: (ts, v) for d, ts, v in rows}


def _device_issues(conn: sqlite3.Connection, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    issues: dict[str, str] = {}
    for inc in open_incidents(conn, f"subject IN ({marks})", tuple(ids)):
        issues[inc.subject] = "silent" if inc.rule_id.endswith("_silent") else inc.rule_id
    dead = conn.execute(
        f"SELECT device_id, COUNT(*) FROM dead_letters WHERE device_id IN ({marks}) GROUP BY device_id", ids
    )
    for dev, n in dead:
        issues[dev] = (issues.get(dev, "") + f" {n} dead letters").strip()
    return issues


def grid_detail(
    conn: sqlite3.Connection,
    grid: Grid,
    devices: list[Device],
    rain_1h: float | None,
    evidence_dir: Path | None = None,
    url_base: str | None = None,
) -> Safe:
    ids = [d.device_id for d in devices]
    last = _last_readings(conn, ids)
    issues = _device_issues(conn, ids)
    dev_rows = []
    for d in devices:
        ts_v = last.get(d.device_id)
        issue = issues.get(d.device_id)
        dev_rows.append(
            el(
                "tr",
                el("td", el("span", d.device_id, class_="dev-id")),
                el("td", d.kind.value),
                el("td", el("span", d.name, class_="dev-name")),
                el("td", f"{ts_v[1]:g} {_UNIT.get(d.kind.value, '')}" if ts_v else "—", class_="num"),
                el("td", local(ts_v[0]) if ts_v else "never", class_="muted"),
                el("td", el("span", issue, class_="bad") if issue else el("span", "ok", class_="good")),
                data_gauge=d.device_id if d.kind.value == "rain" else None,
                class_="dev-row",
            )
        )
    inc_rows = [
        el(
            "tr",
            el("td", level_chip(i.level)),
            el("td", i.rule_id, title=i.summary),
            el("td", i.subject),
            el("td", f"{i.peak:g} {i.unit}", class_="num"),
            el("td", local(i.opened_at), class_="muted"),
        )
        for i in open_incidents(conn, "grid_code = ?", (grid.grid_code,))
    ]
    cases = list_cases(conn, limit=20, grid_code=grid.grid_code)
    facts = el(
        "dl",
        el("dt", "grid"),
        el("dd", grid.grid_code),
        el("dt", "street / community"),
        el("dd", f"{grid.street_name} / {grid.community_name}"),
        el("dt", "area grade"),
        el("dd", grid.area_grade),
        el("dt", "address"),
        el("dd", grid.address or "—"),
        el("dt", "rain 1 h"),
        el("dd", f"{rain_1h:.1f} mm" if rain_1h is not None else "—"),
        class_="facts",
    )
    return el(
        "section",
        el("h2", f"{grid.community_name} · {grid.grid_code[-3:]}", class_="grid-h"),
        facts,
        el("h3", "devices ", el("span", len(devices), class_="count")),
        el(
            "table",
            el("thead", el("tr", *[el("th", h) for h in ("id", "kind", "name", "last", "at", "health")])),
            el("tbody", dev_rows),
            class_="tbl devices",
        )
        if dev_rows
        else el("p", "no devices in this grid", class_="empty"),
        el("h3", "open incidents ", el("span", len(inc_rows), class_="count")),
        el("table", el("tbody", inc_rows), class_="tbl") if inc_rows else el("p", "none", class_="empty ok"),
        el("h3", "cases ", el("span", len(cases), class_="count")),
        case_list(cases, evidence_dir, url_base),
        class_="grid-detail",
        data_grid=grid.grid_code,
    )
