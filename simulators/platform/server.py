"""Run the reference platform: in a background thread for tests and demos, or blocking."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Self

import httpx
import uvicorn

from simulators.platform.app import create_app
from simulators.platform.config import PlatformConfig
from simulators.platform.faults import FaultPlan
from simulators.platform.open311_store import ServiceRequestStore
from simulators.platform.status_push import StatusPusher
from simulators.platform.store import CaseStore, Clock, utc_now


class PlatformServer:
    """The platform on a real socket, served by uvicorn in a background thread.

    ``port=0`` picks a free port; ``url`` is known once ``start()`` returns.
    ``store`` is the live case store and ``requests`` the Open311 requests, for
    assertions; ``clock`` lets a test control the workflow's time; ``faults`` is the
    live fault plan (its ``config`` may be replaced while serving).
    """

    def __init__(
        self,
        config: PlatformConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = utc_now,
        startup_timeout_s: float = 10.0,
    ) -> None:
        self.config = config or PlatformConfig()
        self.host = host
        self.store = CaseStore(self.config, clock)
        self.requests = ServiceRequestStore(self.config, clock)
        self.faults = FaultPlan(self.config.faults)
        self._plan = self.faults
        self.pusher = StatusPusher(self.store, self.config.webhook) if self.config.webhook else None
        self._startup_timeout_s = startup_timeout_s
        self._server = uvicorn.Server(
            uvicorn.Config(
                create_app(self.store, self._plan, self.requests),
                host=host,
                port=port,
                log_level="warning",
            )
        )
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    @property
    def open311_url(self) -> str:
        """Base of the Open311 GeoReport v2 endpoint."""
        return f"{self.url}/open311/v2"

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the platform server is not started")
        return f"http://{self.host}:{self._port}"

    def set_down(self, down: bool) -> None:
        """Start (True) or end (False) a simulated outage: every request gets 503."""
        self._plan.down = down

    def start(self) -> Self:
        """Serve in a background thread and return once the socket answers HTTP."""
        if self._thread is not None:
            raise RuntimeError("the platform server is already started")
        self._thread = threading.Thread(target=self._server.run, name="platform-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the platform server did not start")
            time.sleep(0.01)
        self._port = self._server.servers[0].sockets[0].getsockname()[1]
        # Any HTTP answer proves the app is reachable; during an outage /healthz answers 503.
        httpx.get(f"{self.url}/healthz", timeout=self._startup_timeout_s)
        if self.pusher is not None:
            self.pusher.start()
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._thread is None:
            return
        if self.pusher is not None:
            self.pusher.stop()
        self._server.should_exit = True
        self._thread.join(timeout=self._startup_timeout_s)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run(
    host: str = "127.0.0.1", port: int = 8080, config: PlatformConfig | None = None, access_log: bool = True
) -> None:
    """Serve the platform in the foreground until interrupted (``gridsense platform serve``)."""
    config = config or PlatformConfig()
    store = CaseStore(config)
    pusher = StatusPusher(store, config.webhook) if config.webhook else None
    if pusher is not None:
        pusher.start()
    try:
        uvicorn.run(create_app(store, FaultPlan(config.faults)), host=host, port=port, access_log=access_log)
    finally:
        if pusher is not None:
            pusher.stop()
