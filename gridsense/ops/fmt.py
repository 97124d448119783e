"""How times, levels and numbers read on the page: Beijing time, Chinese level names."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gridsense.model.incident import LEVELS
from gridsense.ops.html import Safe, el

SHANGHAI = ZoneInfo("Asia/Shanghai")
LEVEL_ZH = {"blue": "蓝", "yellow": "黄", "orange": "橙", "red": "红"}
SEVERITY_ZH = {"routine": "一般", "urgent": "紧急", "most_urgent": "特急"}
#: Case statuses after which nothing more happens to a case.
CLOSED_STATUSES = frozenset({"结案", "作废", "rejected"})


def parse_time(value: str | int | None) -> datetime | None:
    """An ISO string or epoch milliseconds as an aware datetime (None stays None)."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return datetime.fromtimestamp(value / 1000, UTC)
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def local(value: str | int | datetime | None, with_date: bool = True) -> str:
    """Beijing wall time, ``MM-DD HH:MM:SS`` (or just the time)."""
    ts = value if isinstance(value, datetime) else parse_time(value)
    if ts is None:
        return "—"
    return ts.astimezone(SHANGHAI).strftime("%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def iso(value: str | int | datetime | None) -> str | None:
    ts = value if isinstance(value, datetime) else parse_time(value)
    return ts.astimezone(UTC).isoformat() if ts is not None else None


def level_chip(level: str | None) -> Safe:
    """A coloured chip for a warning level; a grey one for none."""
    if level not in LEVELS:
        return el("span", "—", class_="chip lv-none")
    return el("span", LEVEL_ZH[level], class_=f"chip lv-{level}", title=level)


def deadline(value: str | None, closed: bool) -> Safe:
    """The deadline, counted down by the page's script (``data-deadline``)."""
    return el(
        "span",
        local(value),
        class_="deadline" + (" done" if closed else ""),
        data_deadline=None if closed else iso(value),
        title=iso(value),
    )


def mm(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"
