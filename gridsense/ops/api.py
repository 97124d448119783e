"""The ops app's data side: JSON, the server-sent event stream, evidence files, probes, /metrics.

``/api/events`` sends the feed's snapshot whenever it changes (the map string only when
the client does not have it yet) and a comment every 15 s to keep proxies from closing it.
``/evidence/<path>`` serves snapshot images from the evidence folder and nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from gridsense.ops.cases import CaseView, case_updates, get_case, list_cases
from gridsense.ops.evidence import IMAGE_TYPES, resolve_evidence
from gridsense.ops.feed import OpsFeed
from gridsense.ops.rain import gauge_rain, now_ms
from gridsense.ops.source import OpsSource

NO_STORE = {"Cache-Control": "no-store"}


def data_router(source: OpsSource, feed: OpsFeed) -> APIRouter:
    router = APIRouter()

    @router.get("/api/state")
    def api_state() -> Response:
        return Response(feed.snapshot.event(with_map=True), media_type="application/json", headers=NO_STORE)

    @router.get("/api/events")
    async def api_events() -> StreamingResponse:
        return StreamingResponse(
            _events(feed),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.get("/api/cases")
    def api_cases(limit: int = 50, grid: str | None = None) -> JSONResponse:
        with source.read() as conn:
            cases = list_cases(conn, min(max(limit, 1), 1000), grid)
        return JSONResponse([_case_json(c) for c in cases], headers=NO_STORE)

    @router.get("/api/cases/{key}")
    def api_case(key: str) -> JSONResponse:
        with source.read() as conn:
            c = get_case(conn, key)
            ups = case_updates(conn, c.case_key) if c else []
        if c is None:
            return JSONResponse({"error": f"no case {key}"}, status_code=404)
        doc = _case_json(c)
        doc["body"] = c.body
        doc["updates"] = [vars(u) for u in ups]
        return JSONResponse(doc, headers=NO_STORE)

    @router.get("/api/gauges/{device_id}/rain")
    def api_rain(device_id: str) -> JSONResponse:
        if source.devices.get(device_id) is None:
            return JSONResponse({"error": f"no device {device_id}"}, status_code=404)
        with source.read() as conn:
            g = gauge_rain(conn, device_id, now_ms())
        return JSONResponse(
            {
                "device_id": device_id,
                "totals_mm": {f"{h}h": v for h, v in g.totals.items()},
                "bucket_s": g.bucket_s,
                "bars": g.bars,
                "last_ms": g.last_ms,
            },
            headers=NO_STORE,
        )

    @router.get("/evidence/{rel:path}")
    def evidence(rel: str) -> Response:
        root = source.evidence_dir
        path = resolve_evidence(root, rel) if root is not None else None
        if path is None:
            return JSONResponse({"error": "no such evidence file"}, status_code=404)
        return FileResponse(
            path, media_type=IMAGE_TYPES[path.suffix.lower()], headers={"X-Content-Type-Options": "nosniff"}
        )

    return router


def probes_router(source: OpsSource, registry: CollectorRegistry) -> APIRouter:
    """``/healthz`` (the process answers), ``/readyz`` (the source's checks) and ``/metrics``."""
    router = APIRouter()

    @router.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    @router.get("/readyz")
    def readyz() -> JSONResponse:
        checks = source.readiness()
        ready = all(c.ok for c in checks)
        return JSONResponse(
            {"ready": ready, "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks}},
            status_code=200 if ready else 503,
            headers=NO_STORE,
        )

    @router.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def _case_json(c: CaseView) -> dict[str, Any]:
    return {
        "case_key": c.case_key,
        "platform_case_id": c.platform_case_id,
        "grid_code": c.grid_code,
        "category_code": c.category_code,
        "category_name": c.category_name,
        "title": c.title,
        "level": c.level,
        "status": c.status,
        "status_code": c.status_code,
        "filed_at": c.filed_at,
        "deadline": c.deadline,
        "outbox_status": c.outbox_status,
        "attempts": c.attempts,
        "last_error": c.last_error,
    }


async def _events(feed: OpsFeed) -> AsyncIterator[str]:
    """A snapshot whenever it changes, a comment every 15 s; ends when the feed closes."""
    yield "retry: 2000\n\n"
    sent_version = -1
    sent_map = -1
    idle = 0.0
    while not feed.closed.is_set():
        snap = feed.snapshot
        if snap.version != sent_version:
            with_map = snap.map_version != sent_map
            yield f"id: {snap.version}\nevent: state\ndata: {snap.event(with_map)}\n\n"
            sent_version = snap.version
            if with_map and snap.map is not None:
                sent_map = snap.map_version
            idle = 0.0
        elif idle >= 15.0:
            yield ": keep-alive\n\n"
            idle = 0.0
        # A client that goes away cancels this generator (StreamingResponse listens for it).
        await asyncio.sleep(0.25)
        idle += 0.25
