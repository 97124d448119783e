"""Shared fixtures of the bridge tests: reference platforms and small ASGI apps on real sockets."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import uvicorn

from bridge.outbox import CaseOutbox
from gridsense.db import connect
from gridsense.model.case import GridCase
from gridsense.model.registry import GridRegistry
from gridsense.txn import transaction
from simulators.platform import FaultConfig, PlatformConfig, PlatformServer, WorkflowConfig
from tests.bridge.test_case_builder import DEMO_GRIDS, builder, change, incident

FAST = WorkflowConfig(step_delay_s=(0.05, 0.1))
ALL_GRIDS = [g.grid_code for g in GridRegistry.load(DEMO_GRIDS)]

StartPlatform = Callable[..., PlatformServer]
ServeApp = Callable[[Any], str]


@pytest.fixture
def platform_factory() -> Iterator[StartPlatform]:
    """Start reference platforms on free ports (full config or faults/workflow); stopped after."""
    servers: list[PlatformServer] = []

    def start(
        config: PlatformConfig | None = None,
        *,
        faults: FaultConfig | None = None,
        workflow: WorkflowConfig = FAST,
        **kw: Any,
    ) -> PlatformServer:
        cfg = config or PlatformConfig(workflow=workflow, faults=faults or FaultConfig())
        server = PlatformServer(cfg, **kw)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def serve_app() -> Iterator[ServeApp]:
    """Serve an ASGI app with uvicorn on a free loopback port; return its base URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Any) -> str:
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "app server did not start"
            time.sleep(0.01)
        servers.append((server, thread))
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        httpx.get(url, timeout=5)  # any answer proves it is serving
        return url

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def state_db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """The pipeline's side of the state database (outbox, cases, incidents)."""
    conn = connect(tmp_path / "state.db")
    yield conn
    conn.close()


def build_cases(n: int, grids: list[str] | None = None) -> list[GridCase]:
    """One opened incident in each of the first ``n`` grids (demo grids by default)."""
    build = builder()
    return [build.case(change(incident(grid))) for grid in (grids or ALL_GRIDS)[:n]]


def enqueue(conn: sqlite3.Connection, cases: list[GridCase]) -> None:
    outbox = CaseOutbox(conn)
    with transaction(conn):
        for case in cases:
            assert outbox.enqueue_case(case)


def outbox_rows(conn: sqlite3.Connection) -> dict[str, tuple[str, int, str | None]]:
    """message_key -> (status, attempts, last_error)."""
    return {
        k: (s, a, e)
        for k, s, a, e in conn.execute("SELECT message_key, status, attempts, last_error FROM outbox")
    }


def wait_until(check: Callable[[], bool], timeout_s: float = 15.0, step_s: float = 0.05) -> bool:
    """Poll ``check`` until it holds or ``timeout_s`` passes; the caller asserts the outcome."""
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        if check():
            return True
        time.sleep(step_s)
    return check()


class ScriptedHandler(BaseHTTPRequestHandler):
    """Answers each (method, path prefix) with a fixed (status, content type, body); records requests."""

    routes: ClassVar[dict[tuple[str, str], tuple[int, str, bytes]]] = {}
    seen: ClassVar[list[tuple[str, str, bytes]]] = []

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).seen.append((self.command, self.path, body))
        match = [v for (m, p), v in self.routes.items() if m == self.command and self.path.startswith(p)]
        status, ctype, payload = match[0] if match else (404, "application/json", b'{"detail":"no route"}')
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass


ScriptedServer = Callable[
    [dict[tuple[str, str], tuple[int, str, bytes]]], tuple[str, list[tuple[str, str, bytes]]]
]


@pytest.fixture
def scripted_platform() -> Iterator[ScriptedServer]:
    """A platform that answers from a script, for bodies the reference platform never sends."""
    servers: list[ThreadingHTTPServer] = []

    def start(
        routes: dict[tuple[str, str], tuple[int, str, bytes]],
    ) -> tuple[str, list[tuple[str, str, bytes]]]:
        seen: list[tuple[str, str, bytes]] = []
        handler = type("Handler", (ScriptedHandler,), {"routes": routes, "seen": seen})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
