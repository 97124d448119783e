"""Fixtures of the fault scenarios (the brokers come from tests/fixtures/mosquitto.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from simulators.platform import PlatformServer
from tests.faults.harness import PipelineProcess, platform_server


@pytest.fixture
def steady_platform() -> Iterator[PlatformServer]:
    """A fault-free platform whose cases stay open for the test (see ``platform_server``)."""
    server = platform_server()
    yield server
    server.stop()


@pytest.fixture
def pipeline_process() -> Iterator[Callable[..., PipelineProcess]]:
    """Makes pipeline child processes; whatever still runs when the test ends is killed."""
    made: list[PipelineProcess] = []

    def make(config: Path, log: Path, env: dict[str, str] | None = None) -> PipelineProcess:
        made.append(PipelineProcess(config, log, env))
        return made[-1]

    yield make
    for p in made:
        if p.proc is not None and p.proc.poll() is None:
            p.kill()
