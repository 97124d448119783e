"""``App.stop`` takes every step even after one of them failed: a stage process left running
would outlive the pipeline, and an open store would keep its lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gridsense.app import App
from gridsense.config import BridgeConfig, GridsenseConfig, MqttConfig, StoreConfig
from gridsense.embedded_broker import free_port


def test_a_failing_step_does_not_keep_the_later_ones_from_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = GridsenseConfig(
        mqtt=MqttConfig(port=free_port()),  # nothing listens: ingest never connects, which is fine here
        store=StoreConfig(path=tmp_path / "state.db"),
        bridge=BridgeConfig(url=f"http://127.0.0.1:{free_port()}"),
    )
    app = App(cfg)
    app.start()
    delivery = app.delivery
    real_stop = app.gateway.stop

    def failing_stop() -> None:
        real_stop()
        raise RuntimeError("the gateway failed to stop")

    monkeypatch.setattr(app.gateway, "stop", failing_stop)
    with pytest.raises(RuntimeError, match="failed to stop"):
        app.stop()
    assert delivery.exitcode == 0  # stopped in order, after the failure
    with pytest.raises(sqlite3.ProgrammingError):
        app.conn.execute("SELECT 1")  # closed
