"""The platform's Open311 GeoReport v2 surface (JSON format) under ``/open311/v2``.

Calls: ``discovery.json``, ``services.json``, ``services/{code}.json``, ``POST
requests.json`` (form-encoded, with ``api_key``), ``requests.json``,
``requests/{id}.json``, ``tokens/{token}.json``. Errors are Open311 error arrays,
``[{"code": 400, "description": "…"}]``, with 400, 403 (api key) or 404.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from simulators.platform.config import Open311ServiceConfig, PlatformConfig
from simulators.platform.faults import FaultPlan
from simulators.platform.open311_store import ServiceRequest, ServiceRequestStore, UnknownRequest
from simulators.platform.workflow import FINAL_STATUSES

PREFIX = "/open311/v2"
MAX_DESCRIPTION = 4000
MAX_SPAN = timedelta(days=90)
LEVELS = ("一般", "紧急", "特急")

ATTRIBUTES: list[dict[str, Any]] = [
    {
        "variable": True,
        "code": "grid_code",
        "datatype": "string",
        "required": True,
        "datatype_description": "15-digit unit grid code (单元网格)",
        "order": 1,
        "description": "单元网格编码",
    },
    {
        "variable": True,
        "code": "level",
        "datatype": "singlevaluelist",
        "required": False,
        "datatype_description": None,
        "order": 2,
        "description": "事件等级",
        "values": [{"key": v, "name": v} for v in LEVELS],
    },
    {
        "variable": True,
        "code": "gridsense_key",
        "datatype": "string",
        "required": False,
        "datatype_description": "the reporter's own reference",
        "order": 3,
        "description": "外部编号",
    },
]


class Open311Error(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def error_response(code: int, description: str) -> JSONResponse:
    return JSONResponse([{"code": code, "description": description}], status_code=code)


def _service_view(service: Open311ServiceConfig) -> dict[str, Any]:
    return {
        "service_code": service.service_code,
        "service_name": service.service_name,
        "description": service.description,
        "metadata": True,
        "type": "realtime",
        "keywords": f"{service.category},{service.description}",
        "group": "部件" if service.category.startswith("component") else "事件",
    }


def request_view(req: ServiceRequest, now: datetime) -> dict[str, Any]:
    history = req.history(now)
    status = history[-1].status
    return {
        "service_request_id": req.request_id,
        "status": "closed" if status in FINAL_STATUSES else "open",
        "status_notes": f"{status.value} ({status.code})",
        "service_name": req.service.service_name,
        "service_code": req.service.service_code,
        "description": req.fields.get("description", ""),
        "agency_responsible": "城市管理监督指挥中心",
        "service_notice": "",
        "requested_datetime": req.requested_at.isoformat(timespec="seconds"),
        "updated_datetime": history[-1].at.isoformat(timespec="seconds"),
        "expected_datetime": req.deadline.isoformat(timespec="seconds"),
        "address": req.fields.get("address_string", ""),
        "address_id": req.fields.get("address_id"),
        "zipcode": None,
        "lat": float(req.fields["lat"]) if "lat" in req.fields else None,
        "long": float(req.fields["long"]) if "long" in req.fields else None,
        "media_url": req.fields.get("media_url"),
    }


def _date(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} is not an ISO 8601 date: {value!r}") from None
    if parsed.tzinfo is None:
        raise Open311Error(400, f"{name} needs a time zone: {value!r}")
    return parsed


class Open311Surface:
    """Validation and answers of the GeoReport calls, over a ``ServiceRequestStore``."""

    def __init__(self, store: ServiceRequestStore, config: PlatformConfig, plan: FaultPlan) -> None:
        self.store = store
        self.config = config.open311
        self._plan = plan

    def check_jurisdiction(self, given: str | None) -> None:
        wanted = self.config.jurisdiction_id
        if wanted is None:
            return
        if not given:
            raise Open311Error(400, "jurisdiction_id was not provided")
        if given != wanted:
            raise Open311Error(404, f"jurisdiction_id {given!r} not found")

    def create(self, form: dict[str, str]) -> list[dict[str, Any]]:
        if form.get("api_key") not in self.config.api_keys:
            raise Open311Error(403, "api_key was not provided or is invalid")
        self.check_jurisdiction(form.get("jurisdiction_id"))
        code = form.get("service_code")
        if not code:
            raise Open311Error(400, "service_code was not provided")
        service = self.store.service(code)
        if service is None:
            raise Open311Error(404, f"service_code {code} not found")
        has_point = "lat" in form and "long" in form
        if not (has_point or form.get("address_string") or form.get("address_id")):
            raise Open311Error(400, "a location is required: lat and long, address_string or address_id")
        if has_point:
            try:
                float(form["lat"]), float(form["long"])
            except ValueError:
                raise Open311Error(400, "lat and long must be numbers") from None
        if len(form.get("description", "")) > MAX_DESCRIPTION:
            raise Open311Error(400, f"description is longer than {MAX_DESCRIPTION} characters")
        attributes = {k[10:-1]: v for k, v in form.items() if k.startswith("attribute[") and k.endswith("]")}
        for attr in ATTRIBUTES:
            if attr["required"] and not attributes.get(attr["code"]):
                raise Open311Error(400, f"attribute[{attr['code']}] is required")
        if "level" in attributes and attributes["level"] not in LEVELS:
            raise Open311Error(400, f"attribute[level] must be one of {', '.join(LEVELS)}")
        fields = {k: v for k, v in form.items() if k != "api_key" and not k.startswith("attribute[")}
        req = self.store.create(service, fields, attributes, self._plan.hit(self.config.token_rate))
        if req.token is not None:
            return [{"token": req.token, "service_notice": ""}]
        return [{"service_request_id": req.request_id, "service_notice": "", "account_id": None}]

    def search(self, params: dict[str, str]) -> list[dict[str, Any]]:
        self.check_jurisdiction(params.get("jurisdiction_id"))
        now = self.store.now()
        requests = self.store.requests()
        if params.get("service_request_id"):
            ids = set(params["service_request_id"].split(","))
            return [request_view(r, now) for r in requests if r.request_id in ids]
        end = _date(params["end_date"], "end_date") if params.get("end_date") else now
        start = _date(params["start_date"], "start_date") if params.get("start_date") else end - MAX_SPAN
        if end - start > MAX_SPAN:
            raise Open311Error(400, "start_date and end_date may span 90 days at most")
        codes = set(params["service_code"].split(",")) if params.get("service_code") else None
        statuses = set(params["status"].split(",")) if params.get("status") else None
        found = []
        for req in requests:
            view = request_view(req, now)
            if codes is not None and req.service.service_code not in codes:
                continue
            if statuses is not None and view["status"] not in statuses:
                continue
            if start <= req.requested_at <= end:
                found.append(view)
        return found[-1000:]

    def token(self, token: str) -> list[dict[str, Any]]:
        req = self.store.by_token(token)
        ready = req.token_ready_at is None or self.store.now() >= req.token_ready_at
        return [{"token": token, "service_request_id": req.request_id if ready else None}]


def open311_router(surface: Open311Surface) -> APIRouter:
    router = APIRouter(prefix=PREFIX)

    def answer(call: Any, *args: Any) -> JSONResponse:
        try:
            return JSONResponse(call(*args))
        except Open311Error as exc:
            return error_response(exc.code, exc.description)
        except UnknownRequest as exc:
            return error_response(404, f"{exc.args[0]} not found")

    @router.get("/discovery.json")
    async def discovery(request: Request) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/") + PREFIX
        return {
            "changeset": "2026-01-01T00:00:00+08:00",
            "contact": "gridsense reference platform",
            "key_service": "api keys are set in the platform config (open311.api_keys)",
            "endpoints": [
                {
                    "specification": "http://wiki.open311.org/GeoReport_v2",
                    "url": base,
                    "changeset": "2026-01-01T00:00:00+08:00",
                    "type": "production",
                    "formats": ["application/json"],
                }
            ],
        }

    @router.get("/services.json")
    async def services(request: Request) -> JSONResponse:
        def listing() -> list[dict[str, Any]]:
            surface.check_jurisdiction(request.query_params.get("jurisdiction_id"))
            return [_service_view(s) for s in surface.store.services()]

        return answer(listing)

    @router.get("/services/{code}.json")
    async def service_definition(code: str) -> JSONResponse:
        if surface.store.service(code) is None:
            return error_response(404, f"service_code {code} not found")
        return JSONResponse({"service_code": code, "attributes": ATTRIBUTES})

    @router.post("/requests.json", status_code=201)
    async def post_request(request: Request) -> JSONResponse:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return error_response(400, "POST requests.json must be form-encoded")
        try:
            form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return error_response(400, "the form is not UTF-8")
        response = answer(surface.create, form)
        if response.status_code == 200:
            response.status_code = 201
        return response

    @router.get("/requests.json")
    async def get_requests(request: Request) -> JSONResponse:
        return answer(surface.search, dict(request.query_params))

    @router.get("/requests/{request_id}.json")
    async def get_request(request_id: str) -> JSONResponse:
        return answer(lambda: [request_view(surface.store.get(request_id), surface.store.now())])

    @router.get("/tokens/{token}.json")
    async def get_token(token: str) -> JSONResponse:
        return answer(surface.token, token)

    return router
