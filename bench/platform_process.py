"""The reference case platform in a process of its own, as in production: its HTTP work
must not share the measured pipeline's interpreter (and its GIL)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def platform_process(port: int | None = None) -> Iterator[str]:
    """``gridsense platform serve`` on ``port`` (a free loopback one by default); yields its base URL."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    serve = ["platform", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridsense.cli", *serve],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(150):
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    raise SystemExit("the platform process exited at start") from None
                time.sleep(0.1)
        else:
            raise SystemExit(f"the platform did not answer on {url}")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
