"""Coordinate transforms (WGS-84 / GCJ-02 / BD-09), distance and point-in-polygon."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridsense.model.geo import (
    CRS,
    bd09_to_gcj02,
    distance_m,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    point_in_polygon,
    to_wgs84,
    wgs84_to_gcj02,
)

# The Beijing area the project works in (all of the municipality's plain and more).
LAT_MIN, LAT_MAX = 39.4, 41.1
LON_MIN, LON_MAX = 115.4, 117.5

# A grid over that area, 0.05° apart (35 × 43 points).
BEIJING_GRID = [
    (LAT_MIN + i * 0.05, LON_MIN + j * 0.05)
    for i in range(int((LAT_MAX - LAT_MIN) / 0.05) + 1)
    for j in range(int((LON_MAX - LON_MIN) / 0.05) + 1)
]

beijing_lat = st.floats(min_value=LAT_MIN, max_value=LAT_MAX)
beijing_lon = st.floats(min_value=LON_MIN, max_value=LON_MAX)


# --- reference pairs published by other implementations ----------------------------------

# googollee/eviltransform, go/transform_test.go (also its python/test.py and the Java, Swift
# and Scala ports): (wgs lat, wgs lon) -> (gcj lat, gcj lon).
EVILTRANSFORM_PAIRS = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),  # Shanghai
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),  # Shenzhen
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),  # Beijing
]
# A note for whoever extends this: eviltransform's BD-09 fixtures (near 29.2 N, 120.0 E) do
# not match its own algorithm (they are off by 10-40 m), so they are not used here.


@pytest.mark.parametrize(("wgs", "gcj"), EVILTRANSFORM_PAIRS)
def test_wgs84_to_gcj02_matches_published_pairs(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    got = wgs84_to_gcj02(*wgs)
    assert got == pytest.approx(gcj, abs=1e-9)


@pytest.mark.parametrize(("wgs", "gcj"), EVILTRANSFORM_PAIRS)
def test_gcj02_to_wgs84_recovers_published_pairs(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    # eviltransform's own "exact" inverse promises < 0.5 m; ours should do much better.
    assert distance_m(*gcj02_to_wgs84(*gcj), *wgs) < 0.01


# wandergis/coordtransform, test/app.js: results for the input (lon 116.404, lat 39.915),
# the usual "Tiananmen" example, written there as [lon, lat]; swapped to (lat, lon) here.
TIANANMEN = (39.915, 116.404)


def test_coordtransform_reference_values() -> None:
    assert wgs84_to_gcj02(*TIANANMEN) == pytest.approx((39.91640428150164, 116.41024449916938), abs=1e-9)
    assert gcj02_to_bd09(*TIANANMEN) == pytest.approx((39.92133699351021, 116.41036949371029), abs=1e-9)
    assert bd09_to_gcj02(*TIANANMEN) == pytest.approx((39.90865673957631, 116.39762729119315), abs=1e-9)
    # coordtransform's gcj02towgs84 is the one-step approximation (gcj - offset(gcj)), so
    # our iterated inverse only agrees with it to about a metre, not to the last digit.
    approx_wgs = (39.91359571849836, 116.39775550083061)
    assert distance_m(*gcj02_to_wgs84(*TIANANMEN), *approx_wgs) < 1.0


# --- independent checks ------------------------------------------------------------------


def test_gcj_offset_in_beijing_is_half_a_kilometre() -> None:
    # The domain notes: GCJ-02 is "about 300-600 m" from GPS in Beijing. Over the wider
    # area the published transform gives 503-614 m, so allow a little headroom at the top.
    offsets = [distance_m(lat, lon, *wgs84_to_gcj02(lat, lon)) for lat, lon in BEIJING_GRID]
    assert min(offsets) >= 300
    assert max(offsets) <= 650
    # Inside the central city (roughly within the 5th ring road) it stays within 300-600 m.
    core = [
        distance_m(lat, lon, *wgs84_to_gcj02(lat, lon))
        for lat, lon in BEIJING_GRID
        if 39.75 <= lat <= 40.05 and 116.2 <= lon <= 116.55
    ]
    assert core and all(300 <= d <= 600 for d in core)


def test_gcj_shift_in_beijing_is_north_east() -> None:
    # Known direction of the shift around Beijing: GCJ-02 lies east and slightly north.
    for lat, lon in BEIJING_GRID:
        glat, glon = wgs84_to_gcj02(lat, lon)
        assert glon > lon and glat > lat


def test_bd09_is_a_further_shift_of_about_a_kilometre() -> None:
    # BD-09 adds about +0.006° lat / +0.0065° lon on top of GCJ-02: ~0.6-1 km in Beijing.
    for lat, lon in BEIJING_GRID:
        d = distance_m(lat, lon, *gcj02_to_bd09(lat, lon))
        assert 600 < d < 1100


# --- round trips -------------------------------------------------------------------------


def test_gcj_wgs_gcj_round_trip_over_beijing_grid() -> None:
    worst = max(distance_m(lat, lon, *wgs84_to_gcj02(*gcj02_to_wgs84(lat, lon))) for lat, lon in BEIJING_GRID)
    assert worst < 0.5


def test_bd_gcj_round_trip_over_beijing_grid() -> None:
    # The published BD-09 pair is not an exact inverse: ~0.15 m is inherent to the formula.
    worst = max(distance_m(lat, lon, *bd09_to_gcj02(*gcj02_to_bd09(lat, lon))) for lat, lon in BEIJING_GRID)
    assert worst < 0.5


@settings(max_examples=500)
@given(lat=beijing_lat, lon=beijing_lon)
def test_round_trips_property(lat: float, lon: float) -> None:
    assert distance_m(lat, lon, *wgs84_to_gcj02(*gcj02_to_wgs84(lat, lon))) < 0.5
    assert distance_m(lat, lon, *gcj02_to_wgs84(*wgs84_to_gcj02(lat, lon))) < 0.5
    assert distance_m(lat, lon, *bd09_to_gcj02(*gcj02_to_bd09(lat, lon))) < 0.5
    assert distance_m(lat, lon, *gcj02_to_bd09(*bd09_to_gcj02(lat, lon))) < 0.5


@settings(max_examples=300)
@given(lat=beijing_lat, lon=beijing_lon, crs=st.sampled_from(list(CRS)))
def test_to_and_from_internal_system_round_trip(lat: float, lon: float, crs: CRS) -> None:
    assert distance_m(lat, lon, *to_wgs84(*from_wgs84(lat, lon, crs), crs)) < 0.5


def test_wgs84_is_the_internal_system() -> None:
    assert to_wgs84(*TIANANMEN, CRS.WGS84) == TIANANMEN
    assert from_wgs84(*TIANANMEN, CRS.WGS84) == TIANANMEN
    assert from_wgs84(*TIANANMEN, CRS.GCJ02) == wgs84_to_gcj02(*TIANANMEN)


@pytest.mark.parametrize(
    "point",
    [
        (35.6762, 139.6503),  # Tokyo
        (51.5074, -0.1278),  # London
        (-33.8688, 151.2093),  # Sydney
        (40.7128, -74.0060),  # New York
        (1.3521, 103.8198),  # Singapore (south of the box)
        (55.7558, 37.6173),  # Moscow
    ],
)
def test_points_outside_china_are_unchanged(point: tuple[float, float]) -> None:
    assert wgs84_to_gcj02(*point) == point
    assert gcj02_to_wgs84(*point) == point
    assert to_wgs84(*point, CRS.GCJ02) == point


# --- the trap the transforms exist for ---------------------------------------------------


def test_gcj_registry_polygon_against_wgs_ping() -> None:
    # An asset's area copied from a web map (GCJ-02): a ~220 m square around Tiananmen.
    h = 0.001
    gcj_ring = [
        (TIANANMEN[0] - h, TIANANMEN[1] - h),
        (TIANANMEN[0] - h, TIANANMEN[1] + h),
        (TIANANMEN[0] + h, TIANANMEN[1] + h),
        (TIANANMEN[0] + h, TIANANMEN[1] - h),
    ]
    # A maintainer's phone standing at the same physical spot reports WGS-84.
    ping = gcj02_to_wgs84(*TIANANMEN)
    assert not point_in_polygon(*ping, gcj_ring)  # compared raw: ~500 m off, outside
    wgs_ring = [to_wgs84(lat, lon, CRS.GCJ02) for lat, lon in gcj_ring]
    assert point_in_polygon(*ping, wgs_ring)  # converted first: inside


# --- distance ----------------------------------------------------------------------------


def test_one_degree_of_latitude() -> None:
    # Mean Earth radius 6,371.0088 km × π/180 = 111.195 km.
    assert distance_m(39.0, 116.0, 40.0, 116.0) == pytest.approx(111_195, abs=5)
    assert distance_m(-0.5, 0.0, 0.5, 0.0) == pytest.approx(111_195, abs=5)


def test_one_degree_of_longitude_shrinks_with_cos_latitude() -> None:
    # At 40° N the parallel is cos 40° = 0.76604 of the equator: 111.195 × 0.76604 ≈ 85.18 km
    # (the great circle is a hair shorter than the parallel).
    assert distance_m(40.0, 116.0, 40.0, 117.0) == pytest.approx(85_180, rel=1e-3)
    assert distance_m(0.0, 116.0, 0.0, 117.0) == pytest.approx(111_195, abs=5)


def test_distance_basics() -> None:
    assert distance_m(*TIANANMEN, *TIANANMEN) == 0.0
    a, b = (39.9042, 116.4074), (31.2304, 121.4737)  # Beijing, Shanghai city centres
    assert distance_m(*a, *b) == distance_m(*b, *a)
    # Widely quoted great-circle distance Beijing-Shanghai: about 1,067 km.
    assert distance_m(*a, *b) == pytest.approx(1_067_000, rel=0.01)
    # Half the circumference between antipodes.
    assert distance_m(0, 0, 0, 180) == pytest.approx(math.pi * 6_371_008.8, rel=1e-12)


# --- point in polygon --------------------------------------------------------------------

SQUARE = [(0.0, 0.0), (0.0, 10.0), (10.0, 10.0), (10.0, 0.0)]
# An L shape: the square minus its north-east quarter.
L_SHAPE = [(0.0, 0.0), (0.0, 10.0), (5.0, 10.0), (5.0, 5.0), (10.0, 5.0), (10.0, 0.0)]


@pytest.mark.parametrize(
    ("point", "ring", "inside"),
    [
        ((5.0, 5.0), SQUARE, True),
        ((0.1, 9.9), SQUARE, True),
        ((-1.0, 5.0), SQUARE, False),
        ((5.0, 11.0), SQUARE, False),
        ((11.0, 11.0), SQUARE, False),
        ((2.0, 2.0), L_SHAPE, True),
        ((2.0, 8.0), L_SHAPE, True),
        ((8.0, 2.0), L_SHAPE, True),
        ((8.0, 8.0), L_SHAPE, False),  # in the notch
        ((5.0, 5.0), [(0.0, 0.0), (10.0, 5.0), (0.0, 10.0)], True),  # triangle
        ((9.0, 1.0), [(0.0, 0.0), (10.0, 5.0), (0.0, 10.0)], False),
    ],
)
def test_point_in_polygon(point: tuple[float, float], ring: list[tuple[float, float]], inside: bool) -> None:
    assert point_in_polygon(*point, ring) is inside


def test_point_in_polygon_ignores_orientation_and_closing_vertex() -> None:
    closed = [*SQUARE, SQUARE[0]]
    for ring in (SQUARE, list(reversed(SQUARE)), closed):
        assert point_in_polygon(5.0, 5.0, ring)
        assert not point_in_polygon(15.0, 5.0, ring)


def test_point_in_polygon_in_beijing_coordinates() -> None:
    # A small unit grid in 什刹海 street (lat, lon), about 100 m × 100 m.
    ring = [(39.9400, 116.3850), (39.9400, 116.3862), (39.9409, 116.3862), (39.9409, 116.3850)]
    assert point_in_polygon(39.9404, 116.3856, ring)
    assert not point_in_polygon(39.9404, 116.3870, ring)
    assert not point_in_polygon(39.9390, 116.3856, ring)
