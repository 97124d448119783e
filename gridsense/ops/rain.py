"""The rain panel: a gauge's hyetograph and 1 h / 3 h / 24 h totals, and the wettest grids.

Everything is computed from the ``readings`` table. Rain values are the amount fallen in
the interval ending at the reading's time; readings flagged suspect are left out, as the
rules leave them out. A grid's 1 h rain is that of its wettest gauge (a rule breaches on
any one gauge, not on an average).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from gridsense.model.envelopes import Kind
from gridsense.model.registry import Device, DeviceRegistry, GridRegistry
from gridsense.ops.fmt import local, mm
from gridsense.ops.html import Safe, el, join

HOUR_MS = 3_600_000
SPANS_H = (1, 3, 24)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class GaugeRain:
    device_id: str
    totals: dict[int, float]  # hours → mm
    bars: list[tuple[int, float]]  # (bucket start ms, mm)
    bucket_s: int
    last_ms: int | None


def gauge_rain(
    conn: sqlite3.Connection, device_id: str, at_ms: int, bucket_s: int = 300, span_h: int = 3
) -> GaugeRain:
    """Totals over 1, 3 and 24 h and the hyetograph (``bucket_s`` bars over ``span_h`` hours)."""
    start = at_ms - 24 * HOUR_MS
    rows = conn.execute(
        "SELECT ts_ms, value FROM readings WHERE device_id = ? AND ts_ms > ? AND ts_ms <= ? AND suspect = 0",
        (device_id, start, at_ms),
    ).fetchall()
    totals = {h: 0.0 for h in SPANS_H}
    bucket_ms = bucket_s * 1000
    n = span_h * 3600 // bucket_s
    first = (at_ms // bucket_ms - n + 1) * bucket_ms
    bars = [0.0] * n
    for ts, value in rows:
        for h in SPANS_H:
            if ts > at_ms - h * HOUR_MS:
                totals[h] += value
        i = (ts - 1 - first) // bucket_ms  # a reading closes the interval ending at ts
        if 0 <= i < n:
            bars[i] += value
    last = conn.execute("SELECT MAX(ts_ms) FROM readings WHERE device_id = ?", (device_id,)).fetchone()[0]
    return GaugeRain(
        device_id,
        {h: round(v, 2) for h, v in totals.items()},
        [(first + i * bucket_ms, round(v, 2)) for i, v in enumerate(bars)],
        bucket_s,
        last,
    )


@dataclass(frozen=True)
class RecentData:
    """The last hour, per grid: its wettest gauge's rain and whether anything reported at all."""

    rain_1h: dict[str, float]  # grid → mm
    wettest_gauge: dict[str, str]  # grid → device id
    reporting: set[str]  # grids with any reading in the hour


def recent_data(conn: sqlite3.Connection, at_ms: int) -> RecentData:
    """One pass over the last hour of readings (the ``readings_ts`` index bounds it)."""
    rows = conn.execute(
        "SELECT grid_code, device_id, kind, SUM(CASE WHEN suspect = 0 THEN value ELSE 0 END)"
        " FROM readings WHERE ts_ms > ? AND ts_ms <= ? GROUP BY device_id",
        (at_ms - HOUR_MS, at_ms),
    )
    rain: dict[str, float] = {}
    wettest: dict[str, str] = {}
    reporting: set[str] = set()
    for grid, device, kind, total in rows:
        reporting.add(grid)
        if kind == Kind.RAIN.value and total > rain.get(grid, -1.0):
            rain[grid] = round(total, 2)
            wettest[grid] = device
    return RecentData(rain, wettest, reporting)


def hyetograph_svg(g: GaugeRain, width: int = 520, height: int = 170) -> Safe:
    """Bars per interval and the running total as a line (its own scale on the right)."""
    pad_l, pad_r, pad_t, pad_b = 34, 40, 18, 22
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    values = [v for _, v in g.bars]
    top = max([*values, 1.0])
    running, acc = [], 0.0
    for v in values:
        acc += v
        running.append(acc)
    top_acc = max(acc, 1.0)
    bw = w / max(len(values), 1)
    parts: list[object] = []
    for k in range(5):  # grid lines and left axis (mm per bar)
        y = pad_t + h - h * k / 4
        parts.append(el("line", x1=pad_l, x2=pad_l + w, y1=f"{y:.1f}", y2=f"{y:.1f}", class_="ax-grid"))
        parts.append(el("text", f"{top * k / 4:.1f}", x=pad_l - 4, y=f"{y + 3:.1f}", class_="ax-l"))
        parts.append(el("text", f"{top_acc * k / 4:.0f}", x=pad_l + w + 4, y=f"{y + 3:.1f}", class_="ax-r"))
    for i, (start, v) in enumerate(g.bars):
        bh = h * v / top
        parts.append(
            el(
                "rect",
                el("title", f"{local(start, with_date=False)} +{g.bucket_s // 60} min: {v:.1f} mm"),
                x=f"{pad_l + i * bw + 0.5:.1f}",
                y=f"{pad_t + h - bh:.1f}",
                width=f"{max(bw - 1, 0.5):.1f}",
                height=f"{bh:.1f}",
                class_="bar",
            )
        )
    pts = " ".join(
        f"{pad_l + (i + 1) * bw:.1f},{pad_t + h - h * r / top_acc:.1f}" for i, r in enumerate(running)
    )
    parts.append(el("polyline", points=pts, class_="mass"))
    for i in range(0, len(g.bars), max(len(g.bars) // 6, 1)):
        x = pad_l + i * bw
        parts.append(
            el("text", local(g.bars[i][0], with_date=False)[:5], x=f"{x:.1f}", y=height - 6, class_="ax-b")
        )
    parts.append(el("text", f"mm per {g.bucket_s // 60} min", x=2, y=10, class_="ax-u"))
    parts.append(el("text", "running total mm", x=width - 2, y=10, class_="ax-u ax-ur"))
    return el(
        "svg",
        *parts,
        viewBox=f"0 0 {width} {height}",
        class_="hyeto",
        role="img",
        aria_label=f"hyetograph {g.device_id}",
    )


def top_grids(recent: RecentData, limit: int = 8) -> list[tuple[str, float, str]]:
    """(grid, mm in 1 h, its wettest gauge), wettest first."""
    ranked = sorted(recent.rain_1h.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [(g, v, recent.wettest_gauge[g]) for g, v in ranked if v > 0]


def rain_panel(
    conn: sqlite3.Connection,
    devices: DeviceRegistry,
    grids: GridRegistry,
    device_id: str | None,
    recent: RecentData | None = None,
    at_ms: int | None = None,
) -> Safe:
    """The panel fragment: gauge picker, totals, hyetograph, wettest grids.

    ``recent``: the last hour per grid if the caller has it (the feed keeps one), else read now.
    """
    at = at_ms if at_ms is not None else now_ms()
    recent = recent if recent is not None else recent_data(conn, at)
    top = top_grids(recent)
    gauge: Device | None = devices.get(device_id) if device_id else None
    if gauge is None or gauge.kind is not Kind.RAIN:
        gauge = devices.get(top[0][2]) if top else next((d for d in devices if d.kind is Kind.RAIN), None)
    if gauge is None:
        return el("p", "no rain gauges in the registry", class_="empty")
    g = gauge_rain(conn, gauge.device_id, at)
    choices = [gauge.device_id] + [dev for _, _, dev in top if dev != gauge.device_id]
    picker = el(
        "select",
        [el("option", f"{d}  {_name(devices, d)}", value=d, selected=d == gauge.device_id) for d in choices],
        id="gauge-pick",
        aria_label="rain gauge",
    )
    totals = el(
        "div",
        [
            el("div", el("b", mm(g.totals[h])), el("small", f"{h} h mm"), class_=f"acc acc-{h}h")
            for h in SPANS_H
        ],
        class_="accs",
    )
    grid = grids.get(gauge.grid_code)
    where = f"{grid.street_name} {grid.community_name}" if grid else gauge.grid_code
    head = el(
        "div",
        picker,
        el(
            "span", where, " · ", el("span", gauge.name or gauge.device_id, class_="dev-name"), class_="muted"
        ),
        el("span", "last ", local(g.last_ms), class_="muted"),
        class_="rain-head",
    )
    rows = [
        el(
            "tr",
            el("td", i + 1),
            el("td", el("a", code, href=f"/grid/{code}", data_grid=code, data_gauge=dev)),
            el("td", _grid_name(grids, code)),
            el("td", mm(v), class_="num"),
            el("td", _meter(v)),
        )
        for i, (code, v, dev) in enumerate(top)
    ]
    table = (
        el(
            "table",
            el(
                "thead",
                el("tr", el("th", "#"), el("th", "grid"), el("th", "where"), el("th", "1 h mm"), el("th")),
            ),
            el("tbody", rows),
            class_="tbl top-grids",
        )
        if rows
        else el("p", "no rain in the last hour", class_="empty")
    )
    return join([head, totals, hyetograph_svg(g), el("h3", "wettest grids, 1 h"), table])


def _meter(v: float) -> Safe:
    """A bar against the 100 mm/h red line (an SVG attribute, so no inline style is needed)."""
    pct = min(v, 100.0)
    cls = "m-red" if v >= 100 else "m-orange" if v >= 70 else "m-blue" if v >= 20 else "m-low"
    return el(
        "svg", el("rect", width=f"{pct:.1f}", height="8", class_=cls), viewBox="0 0 100 8", class_="meter"
    )


def _name(devices: DeviceRegistry, device_id: str) -> str:
    d = devices.get(device_id)
    return d.name if d is not None else ""


def _grid_name(grids: GridRegistry, code: str) -> str:
    g = grids.get(code)
    return f"{g.street_name} {g.community_name}" if g else ""
