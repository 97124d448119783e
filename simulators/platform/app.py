"""The platform's HTTP API: file cases, post updates, read cases, indicators and a page.

The native API lives under ``/api/v1`` (bearer token if ``api_token`` is set); the
Open311 GeoReport v2 surface under ``/open311/v2``.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Response
from fastapi.responses import HTMLResponse

from gridsense.model.case import CaseUpdate, GridCase
from simulators.platform.faults import FaultInjection, FaultPlan
from simulators.platform.indicators import Indicators, indicators_at
from simulators.platform.open311 import Open311Surface, open311_router
from simulators.platform.open311_store import ServiceRequestStore
from simulators.platform.page import case_list_page
from simulators.platform.store import CaseKeyMismatch, CaseStore, UnknownCase
from simulators.platform.views import case_view
from simulators.platform.workflow import CaseStatus


def create_app(store: CaseStore, plan: FaultPlan, requests: ServiceRequestStore | None = None) -> FastAPI:
    """Build the API over ``store`` (and the Open311 ``requests``), with ``plan``'s faults in front."""
    app = FastAPI(title="gridsense reference case platform", docs_url=None, redoc_url=None)
    app.add_middleware(FaultInjection, plan=plan)
    requests = requests or ServiceRequestStore(store.config, store.now)
    app.include_router(open311_router(Open311Surface(requests, store.config, plan)))
    token = store.config.api_token

    def authorised(authorization: Annotated[str | None, Header()] = None) -> None:
        if token is None:
            return
        given = (authorization or "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})

    native = [Depends(authorised)]

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/api/v1/cases", status_code=201, dependencies=native)
    async def file_case(
        case: GridCase,
        response: Response,
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        if not idempotency_key:
            raise HTTPException(400, "the Idempotency-Key header is required")
        if idempotency_key != case.case_key:
            raise HTTPException(400, "Idempotency-Key must equal the body's case_key")
        stored, created = store.file(case)
        if not created:
            response.status_code = 200
        return {
            "case_id": stored.case_id,
            "external_id": stored.external_id,
            "status": stored.status(store.now()).value,
            "created": created,
        }

    @app.post("/api/v1/cases/{case_id}/updates", status_code=201, dependencies=native)
    async def add_update(case_id: str, update: CaseUpdate, response: Response) -> dict[str, Any]:
        try:
            created = store.add_update(case_id, update)
        except UnknownCase as exc:
            raise HTTPException(404, f"no case {case_id}") from exc
        except CaseKeyMismatch as exc:
            raise HTTPException(409, str(exc)) from exc
        if not created:
            response.status_code = 200
        return {"case_id": case_id, "update_key": update.update_key, "created": created}

    @app.post("/api/v1/cases/{case_id}/withdraw", dependencies=native)
    async def withdraw(case_id: str) -> dict[str, Any]:
        try:
            done = store.withdraw(case_id)
        except UnknownCase as exc:
            raise HTTPException(404, f"no case {case_id}") from exc
        if not done:
            raise HTTPException(409, f"case {case_id} is already dispatched; it can no longer be withdrawn")
        return {"case_id": case_id, "status": CaseStatus.VOID.value, "withdrawn": True}

    @app.get("/api/v1/cases", dependencies=native)
    async def list_cases(status: CaseStatus | None = None) -> dict[str, Any]:
        now = store.now()
        cases = [c for c in store.cases() if status is None or c.status(now) is status]
        return {"cases": [case_view(c, now, with_updates=False) for c in cases]}

    @app.get("/api/v1/cases/by-key/{external_id}", dependencies=native)
    async def get_case_by_key(external_id: str) -> dict[str, Any]:
        try:
            return case_view(store.by_key(external_id), store.now())
        except UnknownCase as exc:
            raise HTTPException(404, f"no case with external id {external_id}") from exc

    @app.get("/api/v1/cases/{case_id}", dependencies=native)
    async def get_case(case_id: str) -> dict[str, Any]:
        try:
            return case_view(store.get(case_id), store.now())
        except UnknownCase as exc:
            raise HTTPException(404, f"no case {case_id}") from exc

    @app.get("/api/v1/indicators", dependencies=native)
    async def indicators() -> Indicators:
        """Over native cases and Open311 requests alike."""
        return indicators_at([*store.cases(), *requests.requests()], store.now())

    @app.get("/", response_class=HTMLResponse)
    async def case_list() -> str:
        return case_list_page(store.cases(), store.now())

    return app
