"""``App.stop`` takes every step even after one of them failed: a stage process left running
would outlive the pipeline, and an open store would keep its lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gridsense.app import App
from gridsense.config import BridgeConfig, GridsenseConfig, MqttConfig, StoreConfig
from gridsense.embedded_broker import free_port
from ingest.gateway import MqttGateway


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
    # A stand-in, not a patched method: the gateway is compiled (setup.py), and a compiled
    # class's methods cannot be replaced on an instance.
    monkeypatch.setattr(app, "gateway", FailingToStop(app.gateway))
    with pytest.raises(RuntimeError, match="failed to stop"):
        app.stop()
    assert delivery.exitcode == 0  # stopped in order, after the failure
    with pytest.raises(sqlite3.ProgrammingError):
        app.conn.execute("SELECT 1")  # closed


class FailingToStop:
    """The gateway as ``App.stop`` sees it, except that stopping it fails (after it stopped)."""

    def __init__(self, gateway: MqttGateway) -> None:
        self._gateway = gateway

    def stop(self) -> None:
        self._gateway.stop()
        raise RuntimeError("the gateway failed to stop")
