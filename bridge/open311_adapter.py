"""Open311Adapter: files cases on a platform speaking Open311 GeoReport v2.

GeoReport v2 has no idempotency key, so the adapter supplies one: every request carries
the marker ``[gridsense:<case key>]`` at the head of its description (and the key in
``attribute[gridsense_key]``). Before a POST whose earlier outcome may be unknown, the
adapter searches ``GET /requests.json`` (by service code and date range) for its marker
and adopts the request it finds instead of posting again.

A POST may be answered with a ``token`` instead of a request id; the adapter then returns
``token:<token>`` as the platform id and resolves it with ``GET /tokens/{token}.json``
when the status is next read (the status sync records the real id). GeoReport v2 has
only ``open`` and ``closed``, and no call to add to a filed request.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bridge.config import Open311Config
from bridge.contract import PlatformAnswerInvalid, PlatformStatus
from gridsense.errors import Rejected, Retryable
from gridsense.model.case import CaseUpdate, GridCase

log = logging.getLogger("gridsense.bridge.open311")

MAX_DESCRIPTION = 4000
MAX_SEARCH_SPAN = timedelta(days=90)  # the spec's limit on a start/end date range
TOKEN_PREFIX = "token:"
LEVEL_ZH = {"routine": "一般", "urgent": "紧急", "most_urgent": "特急"}


def marker(case_key: str) -> str:
    return f"[gridsense:{case_key}]"


def description(case: GridCase) -> str:
    """Title and description, marker first so that cutting to 4,000 characters never loses it."""
    parts = [marker(case.case_key), case.title_zh, case.description_zh]
    if case.description_en:
        parts.append(case.description_en)
    return " ".join(parts)[:MAX_DESCRIPTION]


def _errors(resp: httpx.Response) -> str:
    """The Open311 error array's descriptions, or the raw body."""
    try:
        doc = resp.json()
        return "; ".join(f"{e.get('code')} {e.get('description')}" for e in doc if isinstance(e, dict))
    except (ValueError, TypeError, AttributeError):
        return resp.text[:500]


def classify(resp: httpx.Response) -> None:
    """Retry 5xx/408/429 and Open311's 400 "service unavailable"; reject other 4xx with the body."""
    if resp.is_success:
        return
    body = resp.text[:4000]
    if resp.status_code >= 500 or resp.status_code in (408, 429):
        raise Retryable(f"open311 answered {resp.status_code}: {body}")
    if resp.status_code == 400 and "unavailable" in _errors(resp).lower():
        raise Retryable(f"open311 answered 400 (service unavailable): {body}")
    raise Rejected(f"open311_{resp.status_code}", body)


def _first(resp: httpx.Response) -> dict[str, Any]:
    """Open311 answers arrays; the first element, which must be an object."""
    try:
        doc = resp.json()
    except ValueError:
        raise PlatformAnswerInvalid(
            f"open311 answered {resp.status_code} with a body that is not JSON: {resp.text[:200]!r}"
        ) from None
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        return doc[0]
    raise PlatformAnswerInvalid(f"open311 answer is not a non-empty array of objects: {resp.text[:500]}")


class Open311Adapter:
    """The ``CaseAdapter`` for Open311 GeoReport v2 (JSON format)."""

    supports_status = True

    def __init__(self, cfg: Open311Config) -> None:
        self._cfg = cfg
        self._http = httpx.Client(
            base_url=cfg.url.rstrip("/"), timeout=cfg.timeout_s, headers={"User-Agent": "gridsense-bridge"}
        )
        self._services: dict[str, str] | None = None
        self._unknown_outcome: set[str] = set()  # case keys whose POST answer this process lost
        self.adopted = 0  # requests found by marker instead of being posted again

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        if self._cfg.jurisdiction_id:
            target = "data" if method == "POST" else "params"
            kw[target] = {**kw.get(target, {}), "jurisdiction_id": self._cfg.jurisdiction_id}
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise Retryable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        classify(resp)
        return resp

    def _load_services(self) -> dict[str, str]:
        """Category ref (kind:code) or code or name → service_code, from GET /services.json."""
        resp = self._call("GET", "/services.json")
        try:
            services = resp.json()
        except ValueError:
            raise PlatformAnswerInvalid("open311 /services.json is not JSON") from None
        found: dict[str, str] = {}
        for svc in services if isinstance(services, list) else []:
            if not isinstance(svc, dict) or "service_code" not in svc:
                continue
            code = str(svc["service_code"])
            keywords = [k.strip() for k in str(svc.get("keywords") or "").split(",") if k.strip()]
            for name in [code, str(svc.get("service_name") or ""), *keywords]:
                found.setdefault(name, code)
        return found

    def service_code(self, case: GridCase) -> str:
        """The configured override, else the service whose code, name or keywords name the category."""
        ref = f"{case.category.kind}:{case.category.code}"
        if ref in self._cfg.service_codes:
            return self._cfg.service_codes[ref]
        for attempt in range(2):  # reload once: the platform may have added a service
            if self._services is None or attempt:
                self._services = self._load_services()
            for name in (ref, case.category.code, case.category.name_zh):
                if name in self._services:
                    return self._services[name]
        raise Rejected(
            "no_service_code",
            f"no Open311 service for {ref} ({case.category.name_zh}); set open311.service_codes",
        )

    def _form(self, case: GridCase, service_code: str) -> dict[str, str]:
        form = {
            "api_key": self._cfg.api_key.get_secret_value(),
            "service_code": service_code,
            "lat": f"{case.place.lat:.6f}",
            "long": f"{case.place.lon:.6f}",
            "address_string": case.place.address,
            "description": description(case),
            "attribute[grid_code]": case.place.grid_code,
            "attribute[level]": LEVEL_ZH[case.severity],
            "attribute[gridsense_key]": case.case_key,
        }
        media = next(
            (e.url for e in case.evidence if e.url and e.url.startswith(("http://", "https://"))), None
        )
        if media:
            form["media_url"] = media
        return form

    def find(self, case: GridCase, service_code: str) -> str | None:
        """The id of a request already carrying this case's marker, if the platform has one."""
        slack = timedelta(days=self._cfg.lookup_slack_days)
        end = datetime.now(UTC) + slack
        start = max(case.filed_at.astimezone(UTC) - slack, end - MAX_SEARCH_SPAN)
        resp = self._call(
            "GET",
            "/requests.json",
            params={
                "service_code": service_code,
                "start_date": start.isoformat(timespec="seconds"),
                "end_date": end.isoformat(timespec="seconds"),
            },
        )
        try:
            requests = resp.json()
        except ValueError:
            raise PlatformAnswerInvalid("open311 /requests.json is not JSON") from None
        tag = marker(case.case_key)
        for req in requests if isinstance(requests, list) else []:
            if isinstance(req, dict) and tag in str(req.get("description") or ""):
                return str(req["service_request_id"]) if req.get("service_request_id") else None
        return None

    def create(self, case: GridCase) -> str:
        code = self.service_code(case)
        if self._cfg.lookup_before_create == "always" or case.case_key in self._unknown_outcome:
            existing = self.find(case, code)
            if existing is not None:
                self.adopted += 1
                self._unknown_outcome.discard(case.case_key)
                log.info("open311 adopted existing request %s for %s", existing, case.case_key)
                return existing
        try:
            resp = self._call("POST", "/requests.json", data=self._form(case, code))
            answer = _first(resp)
        except Retryable:
            # The platform may have stored the request before failing: look before posting again.
            self._unknown_outcome.add(case.case_key)
            raise
        self._unknown_outcome.discard(case.case_key)
        if answer.get("service_request_id"):
            return str(answer["service_request_id"])
        if answer.get("token"):
            return TOKEN_PREFIX + str(answer["token"])
        self._unknown_outcome.add(case.case_key)
        raise PlatformAnswerInvalid(
            f"open311 answer has neither service_request_id nor token: {resp.text[:500]}"
        )

    def update(self, platform_case_id: str, update: CaseUpdate) -> None:
        detail = (
            f"GeoReport v2 has no call to add to a filed request; {update.kind} {update.update_key} not sent"
        )
        if self._cfg.updates == "drop":
            log.warning("open311 %s (request %s)", detail, platform_case_id)
            return
        raise Rejected("unsupported_by_platform", detail)

    def resolve_token(self, token: str) -> str | None:
        """The request id a token became, or None while the platform has not created it yet."""
        answer = _first(self._call("GET", f"/tokens/{token}.json"))
        request_id = answer.get("service_request_id")
        return str(request_id) if request_id else None

    def status(self, platform_case_id: str) -> PlatformStatus:
        request_id: str | None = platform_case_id
        if platform_case_id.startswith(TOKEN_PREFIX):
            request_id = self.resolve_token(platform_case_id.removeprefix(TOKEN_PREFIX))
            if request_id is None:
                # Accepted for filing, not yet a request: open, under the token for now.
                return PlatformStatus(platform_case_id, "open")
        answer = _first(self._call("GET", f"/requests/{request_id}.json"))
        if "status" not in answer:
            raise PlatformAnswerInvalid(f"open311 request {request_id} has no status")
        return PlatformStatus(str(answer.get("service_request_id") or request_id), str(answer["status"]))

    def close(self) -> None:
        self._http.close()
