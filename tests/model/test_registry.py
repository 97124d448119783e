"""Grid and device registries loaded from CSV or YAML.

A registry declares its coordinate system once per file and is converted to WGS-84 at
load; every error names the file and the line a person has to fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from gridsense.config import packaged
from gridsense.errors import ConfigError
from gridsense.model.envelopes import Kind
from gridsense.model.geo import bd09_to_gcj02, gcj02_to_wgs84, point_in_polygon
from gridsense.model.registry import DeviceRegistry, GridRegistry

GRID_HEADER = "grid_code,street_name,community_name,lat,lon,polygon,area_grade,address"
DEVICE_HEADER = "device_id,kind,grid_code,lat,lon,interval_s,name"
GRID_1 = "110102012001001,什刹海街道,西海社区,39.945853,116.381307,,A,"
GRID_2 = "110102012001002,什刹海街道,西海社区,39.945853,116.384307,,B,"


def write(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def error_of(load: Callable[..., object], *args: object) -> str:
    with pytest.raises(ConfigError) as info:
        load(*args)
    return str(info.value)


def grids_wgs84(tmp_path: Path) -> GridRegistry:
    return GridRegistry.load(write(tmp_path, "g.csv", "# crs: wgs84", GRID_HEADER, GRID_1, GRID_2))


# --- the demo data ------------------------------------------------------------------------


def test_demo_registries_load_and_every_device_sits_in_a_known_grid() -> None:
    grids = GridRegistry.load(packaged("demo", "grids.csv"))
    devices = DeviceRegistry.load(packaged("demo", "devices.csv"), grids)
    assert len(grids) >= 1 and len(devices) >= 1
    assert all(d.grid_code in grids for d in devices)
    assert {d.kind for d in devices} <= {Kind.RAIN, Kind.SNOW, Kind.WATER, Kind.CAMERA}


def test_demo_grid_is_converted_from_gcj02_to_wgs84() -> None:
    grid = GridRegistry.load(packaged("demo", "grids.csv")).get("110102012001001")
    assert grid is not None
    # the file holds the GCJ-02 point 39.945853, 116.381307 (as copied from a web map)
    assert (grid.lat, grid.lon) == pytest.approx(gcj02_to_wgs84(39.945853, 116.381307), abs=1e-12)
    # a WGS-84 point sits several hundred metres south-west of its GCJ-02 picture in Beijing
    assert 39.944 < grid.lat < 39.945853 and 116.374 < grid.lon < 116.381307
    assert (grid.street_code, grid.district_code) == ("110102012", "110102")
    # the converted centroid still lies inside the converted polygon
    assert point_in_polygon(grid.lat, grid.lon, list(grid.polygon))


def test_demo_devices_are_converted_like_their_grids() -> None:
    grids = GridRegistry.load(packaged("demo", "grids.csv"))
    devices = DeviceRegistry.load(packaged("demo", "devices.csv"), grids)
    gauge = devices.get("rg-012001001-1")
    assert gauge is not None
    assert (gauge.lat, gauge.lon) == pytest.approx(gcj02_to_wgs84(39.945853, 116.381307), abs=1e-12)
    assert (gauge.kind, gauge.grid_code, gauge.interval_s) == (Kind.RAIN, "110102012001001", 60)


# --- coordinate systems -------------------------------------------------------------------


def test_gcj02_registry_is_converted_to_wgs84_at_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "g.csv",
        "# crs: gcj02",
        GRID_HEADER,
        "110102012001001,s,c,39.945853,116.381307,"
        "39.947353 116.379807;39.947353 116.382807;39.944353 116.382807,A,",
    )
    grid = GridRegistry.load(path).get("110102012001001")
    assert grid is not None
    assert (grid.lat, grid.lon) == pytest.approx(gcj02_to_wgs84(39.945853, 116.381307), abs=1e-12)
    expected_ring = [
        gcj02_to_wgs84(39.947353, 116.379807),
        gcj02_to_wgs84(39.947353, 116.382807),
        gcj02_to_wgs84(39.944353, 116.382807),
    ]
    assert len(grid.polygon) == 3
    for got, want in zip(grid.polygon, expected_ring, strict=True):
        assert got == pytest.approx(want, abs=1e-12)


def test_wgs84_registry_is_kept_as_it_is(tmp_path: Path) -> None:
    grid = grids_wgs84(tmp_path).get("110102012001001")
    assert grid is not None
    assert (grid.lat, grid.lon) == (39.945853, 116.381307)


def test_bd09_registry_is_converted_through_gcj02(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "# CRS : BD09", GRID_HEADER, GRID_1)
    grid = GridRegistry.load(path).get("110102012001001")
    assert grid is not None
    assert (grid.lat, grid.lon) == pytest.approx(
        gcj02_to_wgs84(*bd09_to_gcj02(39.945853, 116.381307)), abs=1e-12
    )


def test_gcj02_device_registry_is_converted(tmp_path: Path) -> None:
    grids = grids_wgs84(tmp_path)
    path = write(
        tmp_path,
        "d.csv",
        "# crs: gcj02",
        DEVICE_HEADER,
        "rg-1,rain,110102012001001,39.945853,116.381307,60,gauge",
    )
    dev = DeviceRegistry.load(path, grids).get("rg-1")
    assert dev is not None
    assert (dev.lat, dev.lon) == pytest.approx(gcj02_to_wgs84(39.945853, 116.381307), abs=1e-12)


def test_missing_crs_directive_is_an_error_on_line_1(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "# grids without a declared system", GRID_HEADER, GRID_1)
    msg = error_of(GridRegistry.load, path)
    assert msg.startswith(f"{path}:1: no coordinate system declared")


def test_crs_directive_after_the_header_does_not_count(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", GRID_HEADER, "# crs: wgs84", GRID_1)
    assert error_of(GridRegistry.load, path).startswith(f"{path}:1: no coordinate system")


def test_unknown_crs_is_an_error_naming_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "# demo grids", "# crs: mars", GRID_HEADER, GRID_1)
    msg = error_of(GridRegistry.load, path)
    assert msg.startswith(f"{path}:2: unknown coordinate system 'mars'")
    assert "wgs84, gcj02, bd09" in msg


def test_device_registry_needs_a_crs_too(tmp_path: Path) -> None:
    grids = grids_wgs84(tmp_path)
    path = write(tmp_path, "d.csv", DEVICE_HEADER, "rg-1,rain,110102012001001,39.9,116.3,60,")
    assert error_of(DeviceRegistry.load, path, grids).startswith(f"{path}:1: no coordinate system")


# --- line numbers ---------------------------------------------------------------------------


def test_bad_grid_code_is_reported_on_its_line_counting_comments(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "g.csv",
        "# Demo grids.",  # 1
        "# Coordinates copied from a web map.",  # 2
        "# crs: gcj02",  # 3
        GRID_HEADER,  # 4
        GRID_1,  # 5
        GRID_2,  # 6
        "11010201200100,s,c,39.9,116.3,,A,",  # 7: 14 digits
    )
    msg = error_of(GridRegistry.load, path)
    assert f"{path}:7:" in msg
    assert "grid_code" in msg


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("110102012001003,s,c,91,116.3,,A,", "lat"),
        ("110102012001003,s,c,39.9,nan,,A,", "lon"),
        ("110102012001003,s,c,39.9,116.3,,D,", "area_grade"),
        ("110102012001003,,c,39.9,116.3,,A,", "street_name"),
        ("110102012001003,s,c,39.9,116.3,,A,,surplus", None),
    ],
)
def test_each_bad_grid_row_names_file_line_and_field(tmp_path: Path, row: str, field: str | None) -> None:
    path = write(tmp_path, "g.csv", "# crs: wgs84", GRID_HEADER, GRID_1, row)
    msg = error_of(GridRegistry.load, path)
    assert msg.startswith(f"{path}:4: ")
    if field is not None:
        assert re.search(rf"\b{field}\b", msg)


def test_duplicate_grid_is_reported_on_the_second_line(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "# crs: wgs84", GRID_HEADER, GRID_1, GRID_2, GRID_1)
    assert error_of(GridRegistry.load, path) == (f"{path}:5: duplicate grid code 110102012001001")


def test_empty_grid_registry_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "# crs: wgs84", GRID_HEADER)
    assert error_of(GridRegistry.load, path) == f"{path}: no grids"


def test_blank_line_before_the_header_is_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "# demo", "# crs: wgs84", "", GRID_HEADER, GRID_1, "BAD")
    # the blank line is counted: the bad row is line 6
    assert error_of(GridRegistry.load, path).startswith(f"{path}:6: ")
    path.write_text(path.read_text().replace("BAD\n", ""))
    assert len(GridRegistry.load(path)) == 1


def test_empty_optional_cells_take_their_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "# crs: wgs84", GRID_HEADER, "110102012001001,s,c,39.9,116.3,,,")
    grid = GridRegistry.load(path).get("110102012001001")
    assert grid is not None
    assert (grid.polygon, grid.area_grade, grid.address) == ((), "A", "")
    devices = write(
        tmp_path, "d.csv", "# crs: wgs84", DEVICE_HEADER, "rg-1,rain,110102012001001,39.9,116.3,60,"
    )
    dev = DeviceRegistry.load(devices, GridRegistry.load(path)).get("rg-1")
    assert dev is not None and dev.name == ""


def test_an_empty_required_cell_is_reported_as_required(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "# crs: wgs84", GRID_HEADER, "110102012001001,s,,39.9,116.3,,,")
    assert error_of(GridRegistry.load, path) == f"{path}:3: community_name: Field required"


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    assert error_of(GridRegistry.load, path).startswith(f"{path}: cannot read")


def test_device_in_an_unknown_grid(tmp_path: Path) -> None:
    grids = grids_wgs84(tmp_path)
    path = write(
        tmp_path,
        "d.csv",
        "# crs: wgs84",
        DEVICE_HEADER,
        "rg-1,rain,110102012001001,39.9,116.3,60,",
        "rg-2,rain,110102012009009,39.9,116.3,60,",
    )
    assert error_of(DeviceRegistry.load, path, grids) == (
        f"{path}:4: grid 110102012009009 is not in the grid registry"
    )


def test_duplicate_device(tmp_path: Path) -> None:
    grids = grids_wgs84(tmp_path)
    path = write(
        tmp_path,
        "d.csv",
        "# crs: wgs84",
        DEVICE_HEADER,
        "rg-1,rain,110102012001001,39.9,116.3,60,",
        "rg-1,rain,110102012001002,39.9,116.3,60,",
    )
    assert error_of(DeviceRegistry.load, path, grids) == f"{path}:4: duplicate device id rg-1"


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("tag-1,asset,110102012001001,39.9,116.3,60,", "kind"),  # assets live elsewhere
        ("rg-1,hail,110102012001001,39.9,116.3,60,", "kind"),
        ("rg 1,rain,110102012001001,39.9,116.3,60,", "device_id"),
        ("rg-1,rain,110102012001001,39.9,116.3,0,", "interval_s"),
        ("rg-1,rain,110102012001001,39.9,116.3,86401,", "interval_s"),
    ],
)
def test_each_bad_device_row_names_file_line_and_field(tmp_path: Path, row: str, field: str) -> None:
    grids = grids_wgs84(tmp_path)
    path = write(tmp_path, "d.csv", "# crs: wgs84", "# second comment", DEVICE_HEADER, row)
    msg = error_of(DeviceRegistry.load, path, grids)
    assert msg.startswith(f"{path}:4: {field}")


# --- polygons -----------------------------------------------------------------------------


def test_polygon_text_is_parsed_into_points(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "g.csv",
        "# crs: wgs84",
        GRID_HEADER,
        "110102012001001,s,c,39.9,116.3,39.91 116.29;39.91 116.31; 39.89  116.31 ;39.89 116.29,A,",
    )
    grid = GridRegistry.load(path).get("110102012001001")
    assert grid is not None
    assert grid.polygon == ((39.91, 116.29), (39.91, 116.31), (39.89, 116.31), (39.89, 116.29))
    assert point_in_polygon(39.9, 116.3, list(grid.polygon))
    assert not point_in_polygon(39.95, 116.3, list(grid.polygon))


def test_grid_without_polygon_has_an_empty_ring(tmp_path: Path) -> None:
    grid = grids_wgs84(tmp_path).get("110102012001001")
    assert grid is not None and grid.polygon == ()


@pytest.mark.parametrize(
    "polygon",
    [
        "39.91 116.29;39.91 116.31",  # two points
        "39.91 116.29;39.91;39.89 116.31",  # a lone number
        "39.91 116.29;39.91 116.31;north east",  # not numbers
        "39.91,116.29",  # a comma splits the CSV field
    ],
)
def test_bad_polygons_are_reported_on_their_line(tmp_path: Path, polygon: str) -> None:
    path = write(
        tmp_path, "g.csv", "# crs: wgs84", GRID_HEADER, GRID_1, f"110102012001003,s,c,39.9,116.3,{polygon},A,"
    )
    assert error_of(GridRegistry.load, path).startswith(f"{path}:4: ")


# --- YAML ---------------------------------------------------------------------------------

YAML_GRIDS = """\
# grid registry
crs: gcj02
rows:
  - grid_code: "110102012001001"
    street_name: 什刹海街道
    community_name: 西海社区
    lat: 39.945853
    lon: 116.381307
    polygon: [[39.947353, 116.379807], [39.947353, 116.382807], [39.944353, 116.382807]]
  - grid_code: "110102012001002"
    street_name: 什刹海街道
    community_name: 西海社区
    lat: 39.945853
    lon: 116.384307
"""


def test_yaml_registry_loads_and_converts(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(YAML_GRIDS, encoding="utf-8")
    grids = GridRegistry.load(path)
    assert len(grids) == 2
    grid = grids.get("110102012001001")
    assert grid is not None
    assert (grid.lat, grid.lon) == pytest.approx(gcj02_to_wgs84(39.945853, 116.381307), abs=1e-12)
    assert grid.polygon[0] == pytest.approx(gcj02_to_wgs84(39.947353, 116.379807), abs=1e-12)


def test_yaml_row_error_names_the_rows_line(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(
        YAML_GRIDS
        + '  - grid_code: "11010201200100"\n'  # line 15
        + "    street_name: s\n    community_name: c\n    lat: 39.9\n    lon: 116.3\n",
        encoding="utf-8",
    )
    msg = error_of(GridRegistry.load, path)
    assert msg.startswith(f"{path}:15: grid_code")


def test_yaml_duplicate_grid_names_the_rows_line(tmp_path: Path) -> None:
    path = tmp_path / "g.yml"
    path.write_text(YAML_GRIDS.replace('"110102012001002"', '"110102012001001"'), encoding="utf-8")
    assert error_of(GridRegistry.load, path) == f"{path}:10: duplicate grid code 110102012001001"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rows: []\n", ":1: no coordinate system declared"),
        ("crs: mars\nrows: []\n", ":1: unknown coordinate system 'mars'"),
        ("crs: wgs84\n", ":1: expected a mapping with a 'rows:' list"),
        ("- a\n- b\n", ":1: expected a mapping with a 'rows:' list"),
        ("crs: wgs84\nrows:\n  - 5\n", ":3: each row must be a mapping"),
        ("crs: wgs84\nrows: [\n", ": not valid YAML"),
        ("crs: wgs84\nrows: []\n", ": no grids"),
    ],
)
def test_yaml_file_level_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(text, encoding="utf-8")
    assert error_of(GridRegistry.load, path).startswith(f"{path}{expected}")


def test_yaml_device_registry(tmp_path: Path) -> None:
    grids = grids_wgs84(tmp_path)
    path = tmp_path / "d.yaml"
    path.write_text(
        "crs: wgs84\n"
        "rows:\n"
        "  - {device_id: wl-1, kind: water, grid_code: '110102012001001',"
        " lat: 39.9, lon: 116.3, interval_s: 60}\n"
        "  - device_id: wl-2\n"  # line 4
        "    kind: water\n"
        "    grid_code: '110102012009009'\n"
        "    lat: 39.9\n    lon: 116.3\n    interval_s: 60\n",
        encoding="utf-8",
    )
    assert error_of(DeviceRegistry.load, path, grids) == (
        f"{path}:4: grid 110102012009009 is not in the grid registry"
    )
