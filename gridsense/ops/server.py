"""OpsServer: the ops app on a real socket, served by uvicorn in a background thread."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Self

import uvicorn
from fastapi import FastAPI

from gridsense.ops.feed import OpsFeed


class OpsServer:
    """``port=0`` picks a free port; ``url`` is known once ``start()`` returns."""

    def __init__(
        self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, startup_timeout_s: float = 15.0
    ) -> None:
        self.app = app
        self.host = host
        self._timeout = startup_timeout_s
        # Open event streams never end by themselves: give them a moment, then close them.
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the ops server is not started")
        return f"http://{self.host}:{self._port}"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the ops server is not started")
        return self._port

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("the ops server is already started")
        self._thread = threading.Thread(target=self._server.run, name="ops-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the ops server did not start on {self.host}")
            time.sleep(0.01)
        self._port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        feed = getattr(self.app.state, "feed", None)
        if isinstance(feed, OpsFeed):
            feed.closed.set()  # ends the event streams now instead of at the grace timeout
        self._server.should_exit = True
        self._thread.join(timeout=self._timeout)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
