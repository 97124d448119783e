"""The platform's HTML case list, for a person watching a demo; every text is escaped."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape

from gridsense.model.case import Evidence
from simulators.platform.store import PlatformCase

_HEAD = """<!doctype html>
<html lang="zh">
<head><meta charset="utf-8"><title>gridsense reference case platform</title>
<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px;
vertical-align:top}table{border-collapse:collapse}</style></head>
<body><h1>案卷 / Cases</h1>
<table><thead><tr><th>案卷号</th><th>外部编号</th><th>类别</th><th>网格</th><th>状态</th>
<th>处置时限</th><th>描述</th><th>证据</th></tr></thead><tbody>
"""
_TAIL = "</tbody></table></body></html>\n"


def _evidence_cell(evidence: list[Evidence]) -> str:
    items = []
    for item in evidence:
        text = f"{escape(item.kind)} <code>{escape(item.sha256)}</code>"
        # Only http(s) URLs become links: escaping alone would let a javascript: URL run.
        if item.url and item.url.startswith(("http://", "https://")):
            text += f' <a href="{escape(item.url)}">{escape(item.url)}</a>'
        elif item.url:
            text += f" {escape(item.url)}"
        items.append(f"<li>{text}</li>")
    return f"<ul>{''.join(items)}</ul>" if items else ""


def _row(case: PlatformCase, now: datetime) -> str:
    status = case.status(now)
    grid = case.case
    cells = [
        escape(case.case_id),
        escape(case.external_id),
        f"{escape(grid.category.code)} {escape(grid.category.name_zh)}",
        escape(grid.place.grid_code),
        f"{escape(status.value)} ({status.code})",
        escape(case.deadline.isoformat()),
        f"<b>{escape(grid.title_zh)}</b><br>{escape(grid.description_zh)}",
        _evidence_cell(grid.evidence),
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>\n"


def case_list_page(cases: Iterable[PlatformCase], now: datetime) -> str:
    """One HTML page listing ``cases`` with their status as of ``now``."""
    return _HEAD + "".join(_row(case, now) for case in cases) + _TAIL
