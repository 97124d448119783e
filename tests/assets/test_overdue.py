"""The overdue-inspection sweep over the columnar registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gridsense.model.registry import GridRegistry
from gridsense.model.timekeys import epoch_ms
from rules.assets.overdue import OverdueInspections
from tests.assets.harness import Harness, asset_config

T0 = datetime(2026, 5, 4, 1, 0, tzinfo=UTC)
HEADER = "code,type,name,grid_code,lat,lon,owner,interval_h,installed,status"


def kiosks(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "kiosks.csv"
    path.write_text("# crs: wgs84\n" + HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def row(serial: int, interval_h: int = 24, installed: str = "", status: str = "active") -> str:
    return (
        f"1101020121{serial:06d},newsstand,亭{serial},110102012001001,39.9444,116.3746,站,{interval_h},"
        f"{installed},{status}"
    )


def test_the_most_overdue_are_opened_first_and_the_rest_next_sweep(
    tmp_path: Path, grids: GridRegistry
) -> None:
    rows = [row(n, installed=f"2026-04-{n:02d}") for n in range(1, 11)]
    h = Harness(asset_config(registry=kiosks(tmp_path, rows), overdue_max_new=4), grids)
    first = h.sweep(T0)
    assert [c.incident.subject[-2:] for c in first] == ["01", "02", "03", "04"]
    assert all(c.kind == "opened" and c.incident.category_ref == "component:0121" for c in first)
    second = h.sweep(T0 + timedelta(minutes=5))
    assert [c.incident.subject[-2:] for c in second] == ["05", "06", "07", "08"]
    assert len(h.sweep(T0 + timedelta(minutes=10))) == 2
    assert h.sweep(T0 + timedelta(minutes=15)) == []  # one open case per asset, never two


def test_a_scan_keeps_an_asset_off_the_list_and_a_restart_remembers_it(
    tmp_path: Path, grids: GridRegistry
) -> None:
    rows = [row(1, installed="2026-04-01"), row(2, installed="2026-04-01"), row(3, status="retired")]
    cfg = asset_config(registry=kiosks(tmp_path, rows))
    h = Harness(cfg, grids)
    msg = h.ping("1101020121000001", maintainer="m-sch-01", ts=T0 - timedelta(hours=1))
    assert h.run([msg], T0).outcomes == ["accepted"]
    assert [c.incident.subject for c in h.sweep(T0)] == ["1101020121000002"]
    # A new job instance (a restart) reads the last scans back from the store.
    fresh = OverdueInspections(cfg, h.stage.registry)
    late, _ = fresh.overdue(h.conn, T0 + timedelta(hours=2))
    assert late.tolist() == []  # asset 2 has its case open; asset 1 was scanned an hour ago
    late, _ = fresh.overdue(h.conn, T0 + timedelta(hours=24))
    assert [h.stage.registry.asset(i).asset_id for i in late.tolist()] == ["1101020121000001"]


def test_a_late_arriving_old_scan_does_not_move_the_last_scan_back(
    tmp_path: Path, grids: GridRegistry
) -> None:
    h = Harness(asset_config(registry=kiosks(tmp_path, [row(1, interval_h=48)])), grids)
    recent = h.ping("1101020121000001", maintainer="m-sch-01", ts=T0)
    older = h.ping("1101020121000001", maintainer="m-sch-01", ts=T0 - timedelta(hours=30))
    h.run([recent], T0)
    h.run([older], T0 + timedelta(minutes=1))
    (last,) = h.conn.execute("SELECT last_valid_ms FROM asset_last_scan").fetchone()
    assert last == epoch_ms(T0)
    assert h.sweep(T0 + timedelta(hours=47)) == []
    assert len(h.sweep(T0 + timedelta(hours=49))) == 1


def test_never_scanned_assets_count_from_the_first_sweep(tmp_path: Path, grids: GridRegistry) -> None:
    h = Harness(asset_config(registry=kiosks(tmp_path, [row(1, interval_h=24)])), grids)
    assert h.sweep(T0) == []  # switching the sweep on files nothing at once
    assert h.sweep(T0 + timedelta(hours=23)) == []
    [change] = h.sweep(T0 + timedelta(hours=25))
    assert change.incident.peak_value == round(1 / 24, 2) and change.incident.window_s == 86400
