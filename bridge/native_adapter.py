"""NativeRestAdapter: the reference platform's REST/JSON API, idempotency key in a header."""

from __future__ import annotations

from typing import Any

import httpx

from bridge.contract import PlatformAnswerInvalid, PlatformStatus
from gridsense.config import BridgeConfig
from gridsense.errors import Rejected, Retryable
from gridsense.model.case import CaseUpdate, GridCase

RETRYABLE_STATUS = frozenset({408, 429})


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date; the backoff schedule applies instead


def classify(resp: httpx.Response) -> None:
    """Raise the error a non-2xx response stands for: retry 5xx/408/429, reject other 4xx."""
    if resp.is_success:
        return
    body = resp.text[:4000]
    if resp.status_code >= 500 or resp.status_code in RETRYABLE_STATUS:
        raise Retryable(f"platform answered {resp.status_code}: {body}", _retry_after(resp))
    raise Rejected(f"http_{resp.status_code}", body)


def _json(resp: httpx.Response, *required: str) -> dict[str, Any]:
    try:
        doc = resp.json()
    except ValueError:
        raise PlatformAnswerInvalid(
            f"platform answered {resp.status_code} with a body that is not JSON: {resp.text[:200]!r}"
        ) from None
    if not isinstance(doc, dict) or any(k not in doc for k in required):
        raise PlatformAnswerInvalid(f"platform response lacks {', '.join(required)}: {resp.text[:500]}")
    return doc


class NativeRestAdapter:
    """POST /api/v1/cases with ``Idempotency-Key``; updates and status by platform case id."""

    supports_status = True

    def __init__(self, cfg: BridgeConfig) -> None:
        headers = {"User-Agent": "gridsense-bridge"}
        if cfg.token is not None:
            headers["Authorization"] = f"Bearer {cfg.token.get_secret_value()}"
        self._http = httpx.Client(base_url=cfg.url, timeout=cfg.timeout_s, headers=headers)

    def _send(
        self, method: str, path: str, *, accept: frozenset[int] = frozenset(), **kw: Any
    ) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.TransportError as exc:  # timeouts, refused or dropped connections
            raise Retryable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code not in accept:
            classify(resp)
        return resp

    def create(self, case: GridCase) -> str:
        resp = self._send(
            "POST",
            "/api/v1/cases",
            content=case.model_dump_json(),
            headers={"Idempotency-Key": case.case_key, "Content-Type": "application/json"},
        )
        return str(_json(resp, "case_id")["case_id"])

    def update(self, platform_case_id: str, update: CaseUpdate) -> None:
        self._send(
            "POST",
            f"/api/v1/cases/{platform_case_id}/updates",
            content=update.model_dump_json(),
            headers={"Idempotency-Key": update.update_key, "Content-Type": "application/json"},
        )

    def withdraw(self, platform_case_id: str, update: CaseUpdate) -> bool:
        """Void a case not yet dispatched; 409 means it already was (then it is only annotated)."""
        resp = self._send(
            "POST",
            f"/api/v1/cases/{platform_case_id}/withdraw",
            accept=frozenset({409}),
            json={"reason": update.note_zh},
            headers={"Idempotency-Key": f"{update.update_key}:withdraw"},
        )
        return resp.status_code != 409

    def status(self, platform_case_id: str) -> PlatformStatus:
        doc = _json(self._send("GET", f"/api/v1/cases/{platform_case_id}"), "case_id", "status")
        code = doc.get("status_code")
        return PlatformStatus(
            str(doc["case_id"]), str(doc["status"]), int(code) if code is not None else None
        )

    def close(self) -> None:
        self._http.close()
