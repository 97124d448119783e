"""The page shell (the control-room wall) and the not-found page.

The shell is complete HTML on first load (map, cases, rain, health already filled), so it
paints before any script runs; ``/static/ops.js`` then keeps it live from ``/api/events``.
No inline script or style: the Content-Security-Policy allows only this origin.
"""

from __future__ import annotations

from gridsense.ops.gridmap import GridMap, MapState, legend
from gridsense.ops.html import Safe, el

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def _head(title: str) -> Safe:
    return el(
        "head",
        el("meta", charset="utf-8"),
        el("meta", name="viewport", content="width=device-width, initial-scale=1"),
        el("title", title),
        el("link", rel="stylesheet", href="/static/ops.css"),
        el("link", rel="icon", href="data:,"),
        el("script", src="/static/ops.js", defer=True),
    )


def _kpi(key: str, label: str) -> Safe:
    return el("div", el("b", "–", data_kpi=key), el("small", label), class_="kpi", data_for=key)


def shell(
    title: str,
    gridmap: GridMap,
    state: MapState | None,
    map_version: int,
    panels: dict[str, Safe],
    live: bool,
    selected_grid: str | None = None,
    selected_case: str | None = None,
) -> str:
    """The whole wall. ``panels``: cases, detail, rain, health, assets fragments."""
    header = el(
        "header",
        el("div", el("span", "", class_="logo"), el("h1", title), class_="brand"),
        el(
            "div",
            _kpi("msg_rate", "msg/s") if live else None,
            _kpi("open_cases", "open cases"),
            _kpi("overdue_cases", "overdue"),
            _kpi("open_incidents", "incidents"),
            _kpi("grids_reporting", "grids reporting"),
            _kpi("silent_devices", "silent devices"),
            _kpi("dead_letters", "dead letters"),
            _kpi("outbox_pending", "outbox"),
            class_="kpis",
        ),
        el(
            "div",
            el("span", "broker", class_="dot", id="st-broker", hidden=not live),
            el("span", "platform", class_="dot", id="st-platform", hidden=not live),
            el("span", "feed", class_="dot", id="st-feed"),
            el("span", "read-only: no pipeline attached", class_="ro", hidden=live),
            el("time", "--:--:--", id="clock"),
            class_="status",
        ),
    )
    main = el(
        "main",
        el(
            "section",
            el("h2", "grid map ", el("small", f"{len(gridmap.codes)} grids", class_="muted")),
            legend(),
            el("div", gridmap.svg, el("div", "", id="tip", hidden=True), class_="map-wrap", id="map-wrap"),
            el("p", "wheel: zoom · drag: pan · double-click: whole map", class_="hint"),
            class_="panel p-map",
        ),
        el("section", el("h2", "live cases"), el("div", panels["cases"], id="cases"), class_="panel p-cases"),
        el("section", el("h2", "detail"), el("div", panels["detail"], id="detail"), class_="panel p-detail"),
        el("section", el("h2", "rain"), el("div", panels["rain"], id="rain"), class_="panel p-rain"),
        el(
            "section",
            el("h2", "device health"),
            el("div", panels["health"], id="health"),
            el("h2", "assets", class_="sub"),
            el("div", panels["assets"], id="assets"),
            class_="panel p-health",
        ),
        class_="wall",
    )
    body = el(
        "body",
        header,
        main,
        data_state=state.chars if state else "",
        data_map_version=map_version,
        data_grid=selected_grid,
        data_case=selected_case,
        data_live="1" if live else "0",
    )
    return "<!doctype html>" + el("html", _head(title), body, lang="zh-CN")


def not_found(title: str, what: str, ident: str) -> str:
    """The page a wrong grid or case id in a URL gets (with a 404 status)."""
    body = el(
        "body",
        el(
            "main",
            el("h1", "404"),
            el("p", f"No {what} ", el("code", ident), " here."),
            el("p", el("a", "back to the wall", href="/")),
            class_="notfound",
        ),
        class_="plain",
    )
    return "<!doctype html>" + el("html", _head(f"not found · {title}"), body, lang="zh-CN")


def error_page(title: str, status: int, message: str) -> str:
    body = el(
        "body",
        el(
            "main",
            el("h1", status),
            el("p", message),
            el("p", el("a", "back to the wall", href="/")),
            class_="notfound",
        ),
        class_="plain",
    )
    return "<!doctype html>" + el("html", _head(title), body, lang="zh-CN")


def hint() -> Safe:
    return el("p", "Click a grid on the map or a case in the list.", class_="empty")
