"""The asset and maintainer registries: columnar loading, errors with file and line, permits."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from gridsense.config import packaged
from gridsense.errors import ConfigError
from gridsense.model.geo import CRS, distance_m, gcj02_to_wgs84, to_wgs84
from gridsense.model.registry import GridRegistry
from rules.assets import geo_array
from rules.assets.config import AssetConfig, default_types
from rules.assets.maintainers import MaintainerRegistry
from rules.assets.permits import Circle, Polygon, parse_hours, parse_places
from rules.assets.registry import AssetRegistry

HEADER = (
    "code,type,name,grid_code,lat,lon,owner,grade,status,permit_id,permit_places,permit_hours,permit_until"
)
TREE_ROW = "1101020401000001,ancient_tree,古槐,110102012001002,39.9453,116.3898,园林局,一级,active,,,,"
TYPES = default_types()


def write(tmp_path: Path, *rows: str, crs: str = "wgs84", name: str = "assets.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([f"# crs: {crs}", HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def error_of(path: Path, grids: GridRegistry | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        AssetRegistry.load(path, TYPES, grids)
    return str(info.value)


def test_the_demo_registry_loads_and_converts_to_wgs84(grids: GridRegistry) -> None:
    cfg = AssetConfig()
    reg = AssetRegistry.load(cfg.registry, cfg.types, grids)
    assert len(reg) >= 12
    assert {a.type for a in reg} == {"newsstand", "ancient_tree", "breakfast_cart", "manhole_cover"}
    tree = reg.get("1101020401000001")
    assert tree is not None and tree.grade == "一级" and tree.interval_s == 30 * 86400
    # The file is GCJ-02; the registry holds WGS-84, some 500 m from the numbers in the file.
    assert 300 < distance_m(tree.lat, tree.lon, 39.945353, 116.389807) < 700
    assert tree.category_ref == "component:0401" and tree.short_id == "02-0401-000001"
    cart = reg.get("1101020720000002")
    assert cart is not None and cart.permit is not None and isinstance(cart.permit.places[0], Polygon)
    assert [m.maintainer_id for m in MaintainerRegistry.load(cfg.maintainers, cfg.types)][:1] == ["m-sch-01"]


def test_lookup_is_by_binary_search_on_codes(tmp_path: Path) -> None:
    rows = [
        f"110102040100{n:04d},ancient_tree,树{n},110102012001002,39.94,116.38,园林局,二级,active,,,,"
        for n in (9, 3, 7, 1)
    ]
    reg = AssetRegistry.load(write(tmp_path, *rows), TYPES)
    assert [a.name for a in reg] == ["树1", "树3", "树7", "树9"]
    assert reg.index_of("1101020401000007") == 2
    assert reg.index_of("1101020401000002") == -1 and reg.index_of("not-a-code") == -1
    codes = np.array([1101020401000009, 5, 1101020401000003], dtype=np.int64)
    assert reg.indices_of(codes).tolist() == [3, -1, 1]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("110102040100001,ancient_tree,古槐,110102012001002,39.9,116.3,园林局,一级,,,,,", "16-digit"),
        ("1101020401000001,bridge,古槐,110102012001002,39.9,116.3,园林局,一级,,,,,", "type 'bridge'"),
        ("1101020121000001,ancient_tree,古槐,110102012001002,39.9,116.3,园林局,一级,,,,,", "class 0121"),
        ("1101020401000000,ancient_tree,古槐,110102012001002,39.9,116.3,园林局,一级,,,,,", "serial 000000"),
        ("1101050401000001,ancient_tree,古槐,110102012001002,39.9,116.3,园林局,一级,,,,,", "area 110105"),
        ("1101020401000001,ancient_tree,古槐,110102012001002,39.9,116.3,园林局,,,,,,", "grade is required"),
        ("1101020401000001,ancient_tree,古槐,110102012001002,39.9,116.3,园林局,三级,,,,,", "grade '三级'"),
        ("1101020401000001,ancient_tree,古槐,110102012001002,99.9,116.3,园林局,一级,,,,,", "lat 99.9"),
        ("1101020401000001,ancient_tree,古槐,110102012001002,39.9,east,园林局,一级,,,,,", "not a number"),
        ("1101020401000001,ancient_tree,,110102012001002,39.9,116.3,园林局,一级,,,,,", "name is required"),
        (
            "1101020401000001,ancient_tree,古槐,110102012001002,39.9,116.3,园林局,一级,gone,,,,",
            "status 'gone'",
        ),
        ("1101020121000001,newsstand,亭,110102012001001,39.9,116.3,站,,,P-1,39.9 116.3 r30,,", "only mobile"),
        (
            "1101020720000001,breakfast_cart,车,110102012001001,39.9,116.3,站,,,P-1,,06:00-10:00,",
            "permit_places",
        ),
        ("1101020720000001,breakfast_cart,车,110102012001001,39.9,116.3,站,,,P-1,39.9 116.3,,", "r<metres>"),
        (
            "1101020720000001,breakfast_cart,车,110102012001001,39.9,116.3,站,,,P-1,39.9 116.3 r30,6-10,",
            "HH:MM",
        ),
        (
            "1101020720000001,breakfast_cart,车,110102012001001,39.9,116.3,站,,,P-1,39.9 116.3 r30,,31/12",
            "YYYY",
        ),
    ],
)
def test_row_errors_name_the_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    path = write(tmp_path, TREE_ROW.replace("0001,", "0009,"), row)
    err = error_of(path)
    assert err.startswith(f"{path}:4: ")
    assert message in err


def test_grid_must_be_registered_and_codes_unique(tmp_path: Path, grids: GridRegistry) -> None:
    path = write(tmp_path, TREE_ROW.replace("110102012001002", "110102012009009"))
    assert "grid 110102012009009 is not in the grid registry" in error_of(path, grids)
    dup = write(tmp_path, TREE_ROW, TREE_ROW.replace("古槐", "另一棵"), name="dup.csv")
    assert error_of(dup).startswith(f"{dup}:4: duplicate code 1101020401000001 (first on line 3)")


def test_many_errors_are_reported_together(tmp_path: Path) -> None:
    bad = [TREE_ROW.replace("0001,", f"{n:04d},").replace("一级", "") for n in range(1, 6)]
    err = error_of(write(tmp_path, *bad))
    assert [line.split(": ")[0].rsplit(":", 1)[1] for line in err.splitlines()] == ["3", "4", "5", "6", "7"]


def test_unknown_columns_and_a_missing_crs_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(f"{HEADER}\n{TREE_ROW}\n", encoding="utf-8")
    assert "no coordinate system declared" in error_of(path)
    path.write_text(f"# crs: wgs84\n{HEADER},colour\n{TREE_ROW},green\n", encoding="utf-8")
    assert "unknown column(s) colour" in error_of(path)


def test_a_yaml_registry_with_structured_permits(tmp_path: Path, grids: GridRegistry) -> None:
    path = tmp_path / "assets.yaml"
    path.write_text(
        """crs: gcj02
rows:
  - {code: "1101020720000001", type: breakfast_cart, name: 早餐车1号, grid_code: "110102012002002",
     lat: 39.937853, lon: 116.389307, owner: 便民服务中心, permit_id: P-1,
     permit_places: [{lat: 39.937853, lon: 116.389307, radius_m: 30},
                     {polygon: [[39.9381, 116.3890], [39.9381, 116.3900], [39.9371, 116.3900]]}],
     permit_hours: ["06:00-10:00", "22:00-02:00"], permit_until: 2030-12-31}
  - {code: "1101020401000001", type: ancient_tree, name: 古槐, grid_code: "110102012001002",
     lat: 39.9453, lon: 116.3898, owner: 园林局}
""",
        encoding="utf-8",
    )
    assert error_of(path, grids).startswith(f"{path}:8: grade is required for ancient_tree")
    path.write_text(path.read_text(encoding="utf-8").replace("owner: 园林局}", "owner: 园林局, grade: 二级}"))
    reg = AssetRegistry.load(path, TYPES, grids)
    cart = reg.get("1101020720000001")
    assert cart is not None and cart.permit is not None
    circle = cart.permit.places[0]
    assert isinstance(circle, Circle) and (circle.lat, circle.lon) == pytest.approx(
        gcj02_to_wgs84(39.937853, 116.389307)
    )
    assert cart.permit.until == date(2030, 12, 31) and len(cart.permit.hours) == 2


def test_vectorised_conversion_matches_the_scalar_one() -> None:
    rng = np.random.default_rng(5)
    lat = rng.uniform(39.6, 40.3, 2000)
    lon = rng.uniform(115.9, 117.0, 2000)
    for crs in CRS:
        vlat, vlon = geo_array.to_wgs84(lat, lon, crs)
        for i in range(0, 2000, 97):
            slat, slon = to_wgs84(float(lat[i]), float(lon[i]), crs)
            assert distance_m(float(vlat[i]), float(vlon[i]), slat, slon) < 1e-3
    out_lat, out_lon = geo_array.to_wgs84(np.array([51.5]), np.array([-0.12]), CRS.GCJ02)
    assert (out_lat[0], out_lon[0]) == (51.5, -0.12)  # outside China: unchanged


def test_trading_hours_and_places() -> None:
    hours = parse_hours("06:00-10:00,22:00-02:00")
    assert [hours[0].contains(m) for m in (359, 360, 599, 600)] == [False, True, True, False]
    assert hours[1].contains(23 * 60) and hours[1].contains(60) and not hours[1].contains(3 * 60)
    with pytest.raises(ValueError):
        parse_hours("10:00-10:00")
    [poly] = parse_places(
        "39.9000 116.3000;39.9000 116.3010;39.8990 116.3010;39.8990 116.3000", lambda a, b: (a, b)
    )
    assert isinstance(poly, Polygon)
    assert poly.distance_outside(39.8995, 116.3005) == 0.0
    assert poly.distance_outside(39.8995, 116.3010 + 100 / 85_000) == pytest.approx(100, rel=0.05)


def test_permit_check_flags(grids: GridRegistry) -> None:
    cfg = AssetConfig()
    reg = AssetRegistry.load(cfg.registry, cfg.types, grids)
    cart = reg.get("1101020720000001")  # 06:00-10:00, 30 m circle
    assert cart is not None and cart.permit is not None
    morning = datetime(2026, 5, 4, 0, 30, tzinfo=UTC)  # 08:30 local
    evening = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)  # 20:00 local
    assert cart.permit.check(cart.lat, cart.lon, 5, morning)[0] == []
    assert cart.permit.check(cart.lat, cart.lon, 5, evening)[0] == ["outside_permit_hours"]
    far_flags, far = cart.permit.check(cart.lat + 0.001, cart.lon, 5, morning)
    assert far_flags == ["outside_permit_zone"] and 75 < far < 85
    expired = reg.get("1101020720000003")
    assert expired is not None and expired.permit is not None
    assert "permit_expired" in expired.permit.check(expired.lat, expired.lon, 5, morning)[0]


def test_maintainer_registry_errors(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    head = "maintainer_id,name,role,unit,types,areas,active"
    path.write_text(f"{head}\nm1,甲,maintainer,所,bridge,110102,true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{path}:2: unknown asset type\(s\) bridge"):
        MaintainerRegistry.load(path, TYPES)
    path.write_text(f"{head}\nm1,甲,maintainer,所,*,1101,true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{path}:2: areas"):
        MaintainerRegistry.load(path, TYPES)
    path.write_text(f"{head}\nm1,甲,boss,所,*,*,true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{path}:2: role"):
        MaintainerRegistry.load(path, TYPES)


def test_packaged_demo_files_exist() -> None:
    assert packaged("demo", "assets.csv").is_file() and packaged("demo", "maintainers.csv").is_file()
