"""Push each case's status changes to a webhook, signed with HMAC-SHA256.

The platform's own implementation of the documented scheme (``bridge/webhook.py``
describes it): ``X-Gridsense-Timestamp``, ``X-Gridsense-Nonce`` and
``X-Gridsense-Signature: sha256=hex(HMAC(secret, "{ts}.{nonce}." + body))``. The
workflow advances lazily, so a background thread looks for new statuses every
``interval_s`` and pushes the latest one of each case that changed. A push answered
5xx or not at all is tried again next round; a 4xx answer is final.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid

import httpx

from simulators.platform.config import WebhookPushConfig
from simulators.platform.store import CaseStore

log = logging.getLogger("gridsense.platform.push")


def sign(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{nonce}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class StatusPusher:
    """A daemon thread pushing status changes of ``store``'s cases to ``config.url``."""

    def __init__(self, store: CaseStore, config: WebhookPushConfig) -> None:
        self._store = store
        self._config = config
        self._pushed: dict[str, int] = {}  # case id -> history length already pushed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="platform-status-push", daemon=True)
        self.sent = 0
        self.refused = 0
        self.failed = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as http:
            while not self._stop.wait(self._config.interval_s):
                self.push_due(http)

    def push_due(self, http: httpx.Client) -> None:
        now = self._store.now()
        for case in self._store.cases():
            history = case.history(now)
            if len(history) <= self._pushed.get(case.case_id, 0):
                continue
            last = history[-1]
            body = json.dumps(
                {
                    "case_id": case.case_id,
                    "external_id": case.external_id,
                    "status": last.status.value,
                    "status_code": last.status.code,
                    "at": last.at.isoformat(),
                },
                ensure_ascii=False,
            ).encode()
            ts, nonce = str(int(time.time())), uuid.uuid4().hex
            headers = {
                "Content-Type": "application/json",
                "X-Gridsense-Timestamp": ts,
                "X-Gridsense-Nonce": nonce,
                "X-Gridsense-Signature": sign(self._config.secret, ts, nonce, body),
            }
            try:
                resp = http.post(self._config.url, content=body, headers=headers)
            except httpx.TransportError as exc:
                self.failed += 1
                log.warning("status push to %s failed: %s", self._config.url, exc)
                return  # the receiver is away: try everything again next round
            if resp.status_code >= 500:
                self.failed += 1
                return
            if resp.is_success:
                self.sent += 1
            else:
                self.refused += 1
                log.warning("status push for %s refused: %d %s", case.case_id, resp.status_code, resp.text)
            self._pushed[case.case_id] = len(history)
