"""Shared helpers for the camera-stage tests: a handler on an in-memory store, and a runner."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from detectors.config import CameraConfig
from detectors.evaluate import run_frames
from detectors.handler import SCHEMA, CameraHandler
from detectors.registry import CameraRegistry
from gridsense.config import packaged
from gridsense.model.envelopes import Kind
from gridsense.model.incident import IncidentChange
from gridsense.model.registry import DeviceRegistry, GridRegistry
from ingest.topics import Topic
from simulators.street_scene import SimFrame


def demo_devices() -> DeviceRegistry:
    grids = GridRegistry.load(packaged("demo", "grids.csv"))
    return DeviceRegistry.load(packaged("demo", "devices.csv"), grids)


def camera_topic(camera_id: str, grid_code: str) -> Topic:
    return Topic(grid_code[:6], grid_code, Kind.CAMERA, camera_id)


@pytest.fixture
def make_handler(tmp_path: Path) -> Callable[..., tuple[CameraHandler, sqlite3.Connection]]:
    def make(
        registry: CameraRegistry | None = None, **overrides: Any
    ) -> tuple[CameraHandler, sqlite3.Connection]:
        cfg = CameraConfig.model_validate({"evidence_dir": tmp_path / "evidence", **overrides})
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        conn.executescript(SCHEMA)
        return CameraHandler(cfg, registry or CameraRegistry.load(cfg.registry, demo_devices())), conn

    return make


def run(
    handler: CameraHandler, conn: sqlite3.Connection, camera_id: str, grid: str, frames: Iterable[SimFrame]
) -> list[IncidentChange]:
    return run_frames(handler, conn, camera_topic(camera_id, grid), frames)
