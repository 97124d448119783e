"""The coordinate trap: an asset copied from a web map sits in GCJ-02, a phone reports WGS-84,
and the two are some 500 m apart in Beijing. Registries declare their system, pings may
declare theirs, and every distance is taken in WGS-84."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridsense.model.geo import CRS, distance_m, gcj02_to_wgs84, wgs84_to_gcj02
from gridsense.model.registry import GridRegistry
from simulators.patrol import offset
from tests.assets.harness import Harness, asset_config

NOW = datetime(2026, 5, 4, 1, 0, tzinfo=UTC)
TREE = "1101020401000101"
# 银锭桥 as a web map (GCJ-02) shows it
GCJ = (39.9407, 116.3898)
HEADER = "code,type,name,grid_code,lat,lon,owner,grade"


def tree_registry(tmp_path: Path, crs: str, lat: float, lon: float) -> Path:
    path = tmp_path / f"trees-{crs}.csv"
    path.write_text(
        f"# crs: {crs}\n{HEADER}\n{TREE},ancient_tree,银锭桥古槐,110102012001002,{lat:.7f},{lon:.7f},"
        "西城区园林绿化局,一级\n",
        encoding="utf-8",
    )
    return path


def harness_for(tmp_path: Path, grids: GridRegistry, crs: str, point: tuple[float, float]) -> Harness:
    return Harness(asset_config(registry=tree_registry(tmp_path, crs, *point)), grids)


def test_the_shift_is_real_and_large_in_beijing() -> None:
    wgs = gcj02_to_wgs84(*GCJ)
    assert 300 < distance_m(*GCJ, *wgs) < 700


def test_gcj02_registry_and_a_wgs84_phone_standing_at_the_tree(tmp_path: Path, grids: GridRegistry) -> None:
    h = harness_for(tmp_path, grids, "gcj02", GCJ)
    truth = gcj02_to_wgs84(*GCJ)  # where the tree really is, in GPS terms
    at_tree = h.ping(TREE, maintainer="t-xc-01", ts=NOW, at=offset(*truth, 3, -2), accuracy_m=5)
    away = h.ping(TREE, maintainer="t-xc-01", ts=NOW - timedelta(1), at=offset(*truth, 0, 500), accuracy_m=5)
    # A phone that sends the web map's numbers as if they were GPS is half a kilometre off.
    mislabelled = h.ping(TREE, maintainer="t-xc-01", ts=NOW - timedelta(hours=2), at=GCJ, accuracy_m=5)
    assert h.run([at_tree, away, mislabelled], NOW).outcomes == ["accepted", "gps_far", "gps_far"]


def test_wgs84_registry_and_a_phone_reporting_gcj02(tmp_path: Path, grids: GridRegistry) -> None:
    truth = gcj02_to_wgs84(*GCJ)
    h = harness_for(tmp_path, grids, "wgs84", truth)
    at_tree = h.ping(
        TREE, maintainer="t-xc-01", ts=NOW, at=offset(*truth, -4, 1), crs=CRS.GCJ02, accuracy_m=5
    )
    away = h.ping(
        TREE,
        maintainer="t-xc-01",
        ts=NOW - timedelta(1),
        at=offset(*truth, 500, 0),
        crs=CRS.GCJ02,
        accuracy_m=5,
    )
    assert h.run([at_tree, away], NOW).outcomes == ["accepted", "gps_far"]


@pytest.mark.parametrize("crs", ["wgs84", "gcj02", "bd09"])
def test_the_same_tree_declared_in_any_system_lands_on_the_same_point(
    tmp_path: Path, grids: GridRegistry, crs: str
) -> None:
    from gridsense.model.geo import gcj02_to_bd09

    truth = gcj02_to_wgs84(*GCJ)
    declared = {
        "wgs84": truth,
        "gcj02": wgs84_to_gcj02(*truth),
        "bd09": gcj02_to_bd09(*wgs84_to_gcj02(*truth)),
    }
    h = harness_for(tmp_path, grids, crs, declared[crs])
    tree = h.asset(TREE)
    assert distance_m(tree.lat, tree.lon, *truth) < 0.5  # BD-09 round trips to ~10 cm
