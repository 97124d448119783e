"""``App.start(stages_ready_s=…)`` holds ingest back while the stage processes start, up to a
limit, and starts ingest anyway (with a warning) when a stage is not up by then; readiness
says a stage is starting until it is up. Real spawned stages and a real broker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from gridsense.app import App
from gridsense.child_process import ChildProcess, Counts, Supervised
from gridsense.config import BridgeConfig, GridsenseConfig, MqttConfig, StoreConfig
from gridsense.embedded_broker import MosquittoBroker, free_port
from gridsense.ops.config import OpsConfig
from gridsense.ops.source import STARTING, AppSource
from tests.faults.harness import wait_for
from tests.test_child_process import _set_up_then_wait


def _config(tmp_path: Path, broker: MosquittoBroker) -> GridsenseConfig:
    return GridsenseConfig(
        mqtt=MqttConfig(port=broker.port, client_id=f"start-{tmp_path.name}"),
        store=StoreConfig(path=tmp_path / "state.db"),
        bridge=BridgeConfig(url=f"http://127.0.0.1:{free_port()}"),  # nothing listens: no case is filed
    )


def gated(name: str, gate: Path) -> Callable[[Counts | None], ChildProcess]:
    """A stand-in stage that sets up until ``gate`` exists."""
    return lambda counts: ChildProcess(name, _set_up_then_wait, (str(gate),), counts or 1)


def spawned(stage: ChildProcess, name: str) -> None:
    wait_for(lambda: stage.counts[0] == 1, 30, f"the {name} stand-in to be spawned")


def test_ingest_starts_once_every_stage_is_up(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    app = App(_config(tmp_path, mosquitto))
    try:
        app.start(stages_ready_s=60)
        # Spawning case delivery takes it about a second: without the wait it would still be
        # importing its modules here.
        assert app.stages_ready
        assert app.gateway.wait_connected(15)
    finally:
        app.stop()


def test_a_stage_not_up_in_time_does_not_keep_ingest_down(
    tmp_path: Path, mosquitto: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    gate = tmp_path / "set-up-done"
    app = App(_config(tmp_path, mosquitto))
    app.stages["slow"] = Supervised(gated("slow", gate))
    try:
        with caplog.at_level(logging.WARNING, logger="gridsense.app"):
            app.start(stages_ready_s=0.5)
        assert not app.stages_ready
        assert "not ready after 0.5 s; starting ingest anyway" in caplog.text
        assert app.gateway.wait_connected(15)
        gate.touch()
        wait_for(lambda: app.stages_ready, 30, "the slow stage to be up")
    finally:
        app.stop()


def test_readiness_says_a_stage_is_starting_until_it_is_up(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """/readyz (``AppSource.readiness``) is not ready while case delivery or the InfluxDB
    forwarder is spawned but still setting up: stand-in stages, gated, hold them there."""
    gate = tmp_path / "set-up-done"
    app = App(_config(tmp_path, mosquitto))
    for name in ("case_delivery", "influx_forwarder"):
        app.stages[name] = Supervised(gated(name, gate))
    source = AppSource(app, OpsConfig())
    try:
        app.start()
        for name in ("case_delivery", "influx_forwarder"):
            spawned(app.stages[name].process, name)
        checks = {c.name: c for c in source.readiness()}
        for name in ("case_delivery", "influx_forwarder"):
            assert not checks[name].ok and checks[name].detail == STARTING, checks[name]
        gate.touch()
        wait_for(lambda: app.stages_ready, 30, "the stand-in to be up")
    finally:
        app.stop()
