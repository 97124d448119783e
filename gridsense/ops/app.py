"""``create_ops_app(source)``: the operations page, its live feed, /metrics and the probes.

Pages: ``/`` (the wall), ``/grid/<code>`` and ``/case/<key>`` (the wall with that detail
open; 404 page for an unknown id). Fragments under ``/frag/`` are what the script swaps
in. The data API, the event stream, evidence files, probes and /metrics are in
``gridsense.ops.api``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from gridsense.metrics import metrics_registry
from gridsense.model.registry import Device
from gridsense.ops.api import NO_STORE, data_router, probes_router
from gridsense.ops.assets import assets_panel
from gridsense.ops.cases import case_detail, case_list, case_updates, get_case, list_cases
from gridsense.ops.config import OpsConfig
from gridsense.ops.feed import OpsFeed
from gridsense.ops.grid_detail import grid_detail
from gridsense.ops.gridmap import build_map
from gridsense.ops.health import health_panel
from gridsense.ops.html import Safe, esc
from gridsense.ops.page import CSP, error_page, hint, not_found, shell
from gridsense.ops.rain import rain_panel
from gridsense.ops.source import OpsSource

log = logging.getLogger("gridsense.ops")


def _static_dir() -> str:
    return str(resources.files("gridsense.ops").joinpath("static"))


def create_ops_app(
    source: OpsSource, cfg: OpsConfig | None = None, routers: Iterable[APIRouter] = ()
) -> FastAPI:
    """The ops app over ``source``; ``routers`` are mounted as they are (e.g. the status webhook)."""
    cfg = cfg or OpsConfig()
    gridmap = build_map(source.grids)
    log.info("grid map built: %d grids in %.3f s", len(gridmap.codes), gridmap.build_s)
    feed = OpsFeed(source, gridmap, cfg)
    by_grid: dict[str, list[Device]] = {}
    for dev in source.devices:
        by_grid.setdefault(dev.grid_code, []).append(dev)
    live = source.live() is not None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        feed.start()
        try:
            yield
        finally:
            feed.close()

    app = FastAPI(
        title="gridsense operations", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.state.feed = feed
    app.state.gridmap = gridmap
    app.add_middleware(GZipMiddleware, minimum_size=2048)
    app.mount("/static", StaticFiles(directory=_static_dir()), name="static")
    for router in routers:
        app.include_router(router)

    def html(body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(
            body,
            status_code=status,
            headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", **NO_STORE},
        )

    def fragment(body: Safe, status: int = 200) -> HTMLResponse:
        return HTMLResponse(
            str(body), status_code=status, headers={"X-Content-Type-Options": "nosniff", **NO_STORE}
        )

    # --- rendering helpers (run in the thread pool: they read SQLite) ---------------------

    def render_grid(code: str) -> Safe | None:
        grid = source.grids.get(code)
        if grid is None:
            return None
        with source.read() as conn:
            return grid_detail(
                conn,
                grid,
                by_grid.get(code, []),
                feed.snapshot.recent.rain_1h.get(code),
                source.evidence_dir,
                source.evidence_url_base,
            )

    def render_case(key: str) -> Safe | None:
        with source.read() as conn:
            c = get_case(conn, key)
            if c is None:
                return None
            return case_detail(
                c, case_updates(conn, c.case_key), source.evidence_dir, source.evidence_url_base
            )

    def render_cases(grid: str | None = None, limit: int = 60) -> Safe:
        with source.read() as conn:
            return case_list(list_cases(conn, limit, grid), source.evidence_dir, source.evidence_url_base)

    def render_rain(device: str | None) -> Safe:
        with source.read() as conn:
            return rain_panel(conn, source.devices, source.grids, device, feed.snapshot.recent)

    def render_health() -> Safe:
        with source.read() as conn:
            return health_panel(conn, source.devices)

    def render_assets() -> Safe:
        with source.read() as conn:
            return assets_panel(conn, source.assets_enabled)

    def wall(grid: str | None = None, case: str | None = None, detail: Safe | None = None) -> str:
        snap = feed.snapshot
        return shell(
            cfg.title,
            gridmap,
            snap.map,
            snap.map_version,
            {
                "cases": render_cases(),
                "detail": detail if detail is not None else hint(),
                "rain": render_rain(None),
                "health": render_health(),
                "assets": render_assets(),
            },
            live,
            grid,
            case,
        )

    # --- pages ------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return html(wall())

    @app.get("/grid/{code}", response_class=HTMLResponse)
    def grid_page(code: str) -> HTMLResponse:
        detail = render_grid(code)
        if detail is None:
            return html(not_found(cfg.title, "grid", code), 404)
        return html(wall(grid=code, detail=detail))

    @app.get("/case/{key}", response_class=HTMLResponse)
    def case_page(key: str) -> HTMLResponse:
        detail = render_case(key)
        if detail is None:
            return html(not_found(cfg.title, "case", key), 404)
        return html(wall(case=key, detail=detail))

    # --- fragments ------------------------------------------------------------------------

    @app.get("/frag/cases", response_class=HTMLResponse)
    def frag_cases(grid: str | None = None) -> HTMLResponse:
        return fragment(render_cases(grid))

    @app.get("/frag/grid/{code}", response_class=HTMLResponse)
    def frag_grid(code: str) -> HTMLResponse:
        detail = render_grid(code)
        if detail is None:
            return fragment(Safe(f'<p class="empty bad">no grid {esc(code)}</p>'), 404)
        return fragment(detail)

    @app.get("/frag/case/{key}", response_class=HTMLResponse)
    def frag_case(key: str) -> HTMLResponse:
        detail = render_case(key)
        if detail is None:
            return fragment(Safe(f'<p class="empty bad">no case {esc(key)}</p>'), 404)
        return fragment(detail)

    @app.get("/frag/rain", response_class=HTMLResponse)
    def frag_rain(device: str | None = None) -> HTMLResponse:
        return fragment(render_rain(device))

    @app.get("/frag/health", response_class=HTMLResponse)
    def frag_health() -> HTMLResponse:
        return fragment(render_health())

    @app.get("/frag/assets", response_class=HTMLResponse)
    def frag_assets() -> HTMLResponse:
        return fragment(render_assets())

    app.include_router(data_router(source, feed))
    app.include_router(probes_router(source, metrics_registry(source)))

    # --- errors: pages get a page, the API gets JSON, nobody gets a stack trace ------------

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_page(request):
            msg = "Nothing here." if exc.status_code == 404 else str(exc.detail)
            return html(error_page(cfg.title, exc.status_code, msg), exc.status_code)
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("ops page error on %s", request.url.path)
        if _wants_page(request):
            return html(error_page(cfg.title, 500, "Internal error; the log has the details."), 500)
        return JSONResponse({"error": "internal error"}, status_code=500)

    return app


def _wants_page(request: Request) -> bool:
    """A browser asking for a page gets an HTML error page; every other client gets JSON."""
    if request.url.path.startswith(("/api/", "/frag/", "/evidence/", "/static/", "/metrics")):
        return False
    return "text/html" in request.headers.get("accept", "")
