"""A city-sized registry (35,000 grids) renders: every grid on the map, one state character each.

How fast is measured by ``bench/ops_page_load.py``, not asserted here.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from gridsense import db
from gridsense.model.envelopes import Kind
from gridsense.model.registry import Device, DeviceRegistry, Grid, GridRegistry
from gridsense.ops.app import create_ops_app
from gridsense.ops.config import OpsConfig
from gridsense.ops.gridmap import build_map
from gridsense.ops.server import OpsServer
from gridsense.ops.source import StoreSource

N = 35_000


def city(n: int) -> tuple[GridRegistry, DeviceRegistry]:
    """``n`` square grids in a lattice over Beijing: 256 to a street, 16 to a community."""
    grids, devices = {}, {}
    side = 0.003
    for k in range(n):
        street, community, serial = k // 256 + 1, k % 256 // 16 + 1, k % 16 + 1
        district = 110101 + street // 200
        code = f"{district:06d}{street % 200 + 1:03d}{community:03d}{serial:03d}"
        lat, lon = 39.6 + (k // 190) * side, 116.1 + (k % 190) * side
        grids[code] = Grid(
            grid_code=code,
            street_name=f"街道{street}",
            community_name=f"社区{community}",
            lat=lat + side / 2,
            lon=lon + side / 2,
            polygon=((lat, lon), (lat + side, lon), (lat + side, lon + side), (lat, lon + side)),
        )
        if k % 50 == 0:
            dev = f"rg-{k}"
            devices[dev] = Device(
                device_id=dev, kind=Kind.RAIN, grid_code=code, lat=lat, lon=lon, interval_s=60
            )
    return GridRegistry(grids), DeviceRegistry(devices)


@pytest.mark.integration
def test_a_35000_grid_registry_renders(tmp_path: Path) -> None:
    grids, devices = city(N)
    assert len(grids) == N
    gm = build_map(grids)
    assert str(gm.svg).count("<path ") == N
    store = tmp_path / "state.db"
    db.connect(store).close()
    app = create_ops_app(StoreSource(grids, devices, store), OpsConfig(poll_s=0.2))
    with OpsServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        resp = http.get("/", headers={"Accept-Encoding": "gzip"})
        assert resp.status_code == 200
        assert resp.headers["content-encoding"] == "gzip"
        page = resp.text
        assert page.count('<path id="g') == N
        assert len(re.search(r'data-state="([0-9A-G]*)"', page).group(1)) == N  # type: ignore[union-attr]
        state = http.get("/api/state").json()
        assert len(state["map"]) == N and set(state["map"]) == {"0"}
        last = list(grids)[-1].grid_code
        assert http.get(f"/grid/{last}").status_code == 200
