"""Fault injection for the platform's HTTP API: outages, 503s, slowness, lost responses.

It is a plain ASGI middleware so it can act where a real failure happens: before
the app runs (the request never reaches the platform) or after it has stored the
case (the platform did the work but the client never learns it).
"""

from __future__ import annotations

import asyncio
import json
import random

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simulators.platform.config import FaultConfig

# The calls that create a case, whose answers lose_response_rate may lose.
CREATE_PATHS = frozenset({"/api/v1/cases", "/open311/v2/requests.json"})


class FaultPlan:
    """The fault settings in force, the runtime outage switch and the seeded draws."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self.down = config.down
        self._rng = random.Random(config.seed)

    def hit(self, rate: float) -> bool:
        """Draw whether a fault with probability ``rate`` strikes this time."""
        return rate > 0 and self._rng.random() < rate


async def send_json(send: Send, status: int, payload: object, headers: dict[str, str]) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    raw_headers += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def _unavailable(send: Send, reason: str) -> None:
    await send_json(send, 503, {"detail": reason}, {"retry-after": "1"})


class FaultInjection:
    """ASGI middleware applying a ``FaultPlan`` to every HTTP request."""

    def __init__(self, app: ASGIApp, plan: FaultPlan) -> None:
        self.app = app
        self.plan = plan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        config = self.plan.config
        # An outage answers everything, /healthz too, so a probe sees it.
        if self.plan.down:
            await _unavailable(send, "platform is down (simulated)")
            return
        if scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        if config.slow_s:
            await asyncio.sleep(config.slow_s)
        is_post = scope["method"] == "POST"
        if is_post and self.plan.hit(config.error_rate):
            await _unavailable(send, "platform busy (simulated error)")
            return
        if is_post and config.response_delay_s:
            send = self._delayed(send, config.response_delay_s)
        if is_post and scope["path"] in CREATE_PATHS and config.lose_response_rate:
            await self.app(scope, receive, self._lossy(send))
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _delayed(send: Send, delay_s: float) -> Send:
        """Hold the answer back after the app has done the work."""

        async def delayed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(delay_s)
            await send(message)

        return delayed_send

    def _lossy(self, send: Send) -> Send:
        """Wrap ``send`` so that some 201 responses are lost after the case is stored."""
        lost = False
        partial_sent = False
        config = self.plan.config

        async def lossy_send(message: Message) -> None:
            nonlocal lost, partial_sent
            if message["type"] == "http.response.start":
                lost = message["status"] == 201 and self.plan.hit(config.lose_response_rate)
                if lost and config.lost_response_style == "http_500":
                    await send_json(send, 500, {"detail": "internal error (simulated)"}, {})
                    return
                await send(message)
                return
            if not lost:
                await send(message)
                return
            if config.lost_response_style == "drop" and not partial_sent:
                # Send half the body and stop: the server closes the connection mid-response.
                body = message.get("body", b"")
                await send(
                    {
                        "type": "http.response.body",
                        "body": body[: len(body) // 2],
                        "more_body": True,
                    }
                )
                partial_sent = True

        return lossy_send
