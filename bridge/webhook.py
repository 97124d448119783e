"""The status webhook: the platform pushes status changes, signed with a shared secret.

Wire format (the reference platform implements it on its side):

- ``POST`` JSON ``{"case_id": "BJ-000001", "status": "派遣", "status_code": 3, ...}``
  (``case_id`` is the platform's id; other fields are ignored);
- ``X-Gridsense-Timestamp``: Unix seconds when the push was signed;
- ``X-Gridsense-Nonce``: 8–128 characters, unique per push;
- ``X-Gridsense-Signature``: ``sha256=`` + hex HMAC-SHA256(secret,
  ``"{timestamp}.{nonce}."`` + the raw body).

Answers: 200 applied (or unchanged); 401 bad or missing signature, a timestamp outside
the tolerance, a nonce seen before; 400 a body that is not the JSON above; 404 a case
id the bridge never filed; 422 a status the status map does not know. Every refusal is
logged and counted and changes nothing. Polling stays on as the fallback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bridge.config import WebhookConfig
from bridge.contract import PlatformStatus
from bridge.status_sync import StatusSync

log = logging.getLogger("gridsense.bridge.webhook")

TIMESTAMP_HEADER = "X-Gridsense-Timestamp"
NONCE_HEADER = "X-Gridsense-Nonce"
SIGNATURE_HEADER = "X-Gridsense-Signature"


def signature(secret: bytes, timestamp: str, nonce: str, body: bytes) -> str:
    """The ``X-Gridsense-Signature`` value for a push."""
    mac = hmac.new(secret, f"{timestamp}.{nonce}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: bytes, body: bytes, nonce: str, now: float | None = None) -> dict[str, str]:
    """Headers that make ``body`` a valid push (for senders and tests)."""
    ts = str(int(time.time() if now is None else now))
    return {
        TIMESTAMP_HEADER: ts,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature(secret, ts, nonce, body),
        "Content-Type": "application/json",
    }


class NonceCache:
    """Nonces seen within the tolerance window; the oldest are forgotten first."""

    def __init__(self, ttl_s: float, max_size: int) -> None:
        self._ttl_s = ttl_s
        self._max = max_size
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, nonce: str, now: float) -> bool:
        """Remember ``nonce``; False if it was already seen (a replay)."""
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now:
                self._seen.popitem(last=False)
            if nonce in self._seen:
                return False
            if len(self._seen) >= self._max:
                # Full of live nonces: forgetting one could let its replay through, so say so.
                log.warning("webhook nonce cache full (%d); forgetting the oldest", self._max)
                self._seen.popitem(last=False)
            self._seen[nonce] = now + self._ttl_s
            return True


@dataclass
class WebhookStats:
    applied: int = 0
    unchanged: int = 0
    bad_signature: int = 0
    stale: int = 0
    replayed: int = 0
    bad_body: int = 0
    unknown_case: int = 0
    unknown_status: int = 0


class StatusWebhook:
    """Checks a push and hands its status to ``StatusSync``; use its own database connection."""

    def __init__(self, sync: StatusSync, cfg: WebhookConfig, clock: Callable[[], float] = time.time) -> None:
        self._sync = sync
        self._secret = cfg.secret.get_secret_value().encode()
        self._tolerance_s = cfg.tolerance_s
        # A nonce must be remembered as long as its timestamp could still pass: both sides.
        self._nonces = NonceCache(2 * cfg.tolerance_s, cfg.nonce_cache_size)
        self._clock = clock
        self.stats = WebhookStats()

    def _refuse(self, code: int, counter: str, reason: str, peer: str) -> tuple[int, dict[str, Any]]:
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        log.warning("webhook refused %d %s peer=%s", code, reason, peer)
        return code, {"error": reason}

    def handle(self, headers: Mapping[str, str], body: bytes, peer: str = "?") -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON answer) for one push."""
        ts = headers.get(TIMESTAMP_HEADER.lower()) or headers.get(TIMESTAMP_HEADER) or ""
        nonce = headers.get(NONCE_HEADER.lower()) or headers.get(NONCE_HEADER) or ""
        sig = headers.get(SIGNATURE_HEADER.lower()) or headers.get(SIGNATURE_HEADER) or ""
        if not (ts.isdigit() and 8 <= len(nonce) <= 128 and sig):
            return self._refuse(401, "bad_signature", "missing or malformed signature headers", peer)
        now = self._clock()
        if abs(now - int(ts)) > self._tolerance_s:
            return self._refuse(401, "stale", f"timestamp {ts} outside ±{self._tolerance_s}s", peer)
        if not hmac.compare_digest(signature(self._secret, ts, nonce, body), sig):
            return self._refuse(401, "bad_signature", "signature does not match", peer)
        if not self._nonces.add(nonce, now):
            return self._refuse(401, "replayed", f"nonce {nonce!r} already used", peer)
        try:
            doc = json.loads(body)
            st = PlatformStatus(
                str(doc["case_id"]),
                str(doc["status"]),
                int(doc["status_code"]) if doc.get("status_code") is not None else None,
            )
        except (ValueError, KeyError, TypeError) as exc:
            return self._refuse(400, "bad_body", f"body is not a status push: {exc!r}", peer)
        outcome = self._sync.apply_pushed(st)
        if outcome == "unknown_case":
            return self._refuse(404, "unknown_case", f"no case with platform id {st.platform_case_id}", peer)
        if outcome == "unknown_status":
            return self._refuse(422, "unknown_status", f"status {st.status!r} is not in the map", peer)
        if outcome == "changed":
            self.stats.applied += 1
        else:
            self.stats.unchanged += 1
        log.info("webhook status case=%s status=%s outcome=%s", st.platform_case_id, st.status, outcome)
        return 200, {"case_id": st.platform_case_id, "outcome": outcome}


def webhook_router(webhook: StatusWebhook, path: str = "/bridge/status") -> APIRouter:
    """An APIRouter with ``POST {path}``; mount it with ``app.include_router(...)``."""
    router = APIRouter()

    @router.post(path)
    async def receive_status(request: Request) -> JSONResponse:
        body = await request.body()
        peer = request.client.host if request.client else "?"
        # The database work runs in the thread pool, off the event loop.
        code, doc = await run_in_threadpool(webhook.handle, request.headers, body, peer)
        return JSONResponse(doc, status_code=code)

    return router
