"""Device health: silent gauges, cameras in fault, and dead letters per device.

Silent devices are the open staleness incidents (rule ids ending in ``_silent``); cameras
in fault are open incidents of category ``component:0704`` (视频监控设备), from whichever
stage keeps them (``gridsense.ops.incidents``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gridsense.model.registry import DeviceRegistry
from gridsense.ops.fmt import local
from gridsense.ops.html import Safe, el, join
from gridsense.ops.incidents import open_incidents

CAMERA_FAULT = "component:0704"


@dataclass(frozen=True)
class DeviceIssue:
    device_id: str
    grid_code: str
    rule_id: str
    since: str
    detail: str


@dataclass(frozen=True)
class DeadLetterCount:
    device_id: str | None
    reason: str
    count: int
    last_at: str


def silent_devices(conn: sqlite3.Connection) -> list[DeviceIssue]:
    rows = open_incidents(conn, "rule_id LIKE '%\\_silent' ESCAPE '\\'")
    return [
        DeviceIssue(i.subject, i.grid_code, i.rule_id, i.opened_at, f"silent {i.peak:g} {i.unit}")
        for i in rows
    ]


def camera_faults(conn: sqlite3.Connection) -> list[DeviceIssue]:
    """Open camera faults, whether the rules' table or the camera stage's tracks hold them."""
    rows = open_incidents(conn, "category_ref = ?", (CAMERA_FAULT,))
    return [DeviceIssue(i.subject, i.grid_code, i.rule_id, i.opened_at, i.summary or i.rule_id) for i in rows]


def dead_letters_by_device(conn: sqlite3.Connection, limit: int = 30) -> list[DeadLetterCount]:
    rows = conn.execute(
        "SELECT device_id, reason, COUNT(*) AS n, MAX(at) FROM dead_letters"
        " GROUP BY device_id, reason ORDER BY n DESC, MAX(at) DESC LIMIT ?",
        (limit,),
    )
    return [DeadLetterCount(*r) for r in rows]


def _device_cell(devices: DeviceRegistry, device_id: str | None) -> Safe:
    if device_id is None:
        return el("span", "(no device)", class_="muted")
    dev = devices.get(device_id)
    return join(
        [
            el("span", device_id, class_="dev-id"),
            " ",
            el("span", dev.name if dev else "not in registry", class_="dev-name" if dev else "muted"),
        ]
    )


def _issue_table(issues: list[DeviceIssue], devices: DeviceRegistry, empty: str) -> Safe:
    if not issues:
        return el("p", empty, class_="empty ok")
    return el(
        "table",
        el(
            "tbody",
            [
                el(
                    "tr",
                    el("td", _device_cell(devices, i.device_id)),
                    el("td", el("a", i.grid_code[-6:], href=f"/grid/{i.grid_code}", data_grid=i.grid_code)),
                    el("td", i.detail),
                    el("td", local(i.since), class_="muted"),
                )
                for i in issues
            ],
        ),
        class_="tbl",
    )


def health_panel(conn: sqlite3.Connection, devices: DeviceRegistry) -> Safe:
    silent = silent_devices(conn)
    cams = camera_faults(conn)
    dead = dead_letters_by_device(conn)
    dead_rows = [
        el(
            "tr",
            el("td", _device_cell(devices, d.device_id)),
            el("td", el("span", d.reason, class_="reason")),
            el("td", d.count, class_="num"),
            el("td", local(d.last_at), class_="muted"),
        )
        for d in dead
    ]
    return join(
        [
            el("h3", "silent devices ", el("span", len(silent), class_="count")),
            _issue_table(silent, devices, "every device reporting"),
            el("h3", "cameras in fault ", el("span", len(cams), class_="count")),
            _issue_table(cams, devices, "no camera faults"),
            el("h3", "dead letters by device"),
            el("table", el("tbody", dead_rows), class_="tbl")
            if dead_rows
            else el("p", "no dead letters", class_="empty ok"),
        ]
    )
