"""Fixtures for the asset stage: the demo registries with test keys, on an in-memory store."""

from __future__ import annotations

import pytest

from gridsense.config import packaged
from gridsense.model.registry import GridRegistry
from tests.assets.harness import Harness, asset_config


@pytest.fixture(scope="session")
def grids() -> GridRegistry:
    return GridRegistry.load(packaged("demo", "grids.csv"))


@pytest.fixture
def harness(grids: GridRegistry) -> Harness:
    return Harness(asset_config(), grids)
