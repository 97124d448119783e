"""Chicago hyetograph: depth equals the IDF depth, peak at r·duration; a storm cell moving over gauges."""

from __future__ import annotations

import math

import pytest

from gridsense.model.envelopes import Kind
from gridsense.model.registry import Device
from simulators.design_storm import (
    BEIJING_UNVERIFIED,
    ChicagoStorm,
    IdfCurve,
    StormTrack,
    gauge_hyetographs,
)

GRID = "110102012001001"
LAT0, LON0 = 39.94, 116.36
KM_PER_DEG_LON = 111.320 * math.cos(math.radians(LAT0))


def gauge(device_id: str, east_km: float = 0.0, north_km: float = 0.0) -> Device:
    return Device(
        device_id=device_id,
        kind=Kind.RAIN,
        grid_code=GRID,
        lat=LAT0 + north_km / 110.574,
        lon=LON0 + east_km / KM_PER_DEG_LON,
        interval_s=60,
    )


@pytest.mark.parametrize(
    ("years", "duration", "step"), [(1, 60, 1), (5, 120, 5), (10, 180, 7), (100, 90, 0.5), (2, 45, 60)]
)
def test_total_depth_is_the_idf_depth_for_the_duration(years: float, duration: float, step: float) -> None:
    idf = BEIJING_UNVERIFIED.idf(years)
    depths = ChicagoStorm(idf, duration).depths_mm(step)
    assert len(depths) == math.ceil(duration / step)
    # a / (t + b)^c · t, written out here rather than taken from IdfCurve
    expected = idf.a_mm_min / (duration + idf.b_min) ** idf.c * duration
    assert sum(depths) == pytest.approx(expected, rel=1e-12)
    assert min(depths) >= 0


@pytest.mark.parametrize(("ratio", "step"), [(0.2, 1.0), (0.4, 1.0), (0.5, 1.0), (0.7, 1.0), (0.45, 5.0)])
def test_peak_step_sits_at_r_times_the_duration(ratio: float, step: float) -> None:
    storm = ChicagoStorm(IdfCurve(12.0, 8.0, 0.711), 120, peak_ratio=ratio)
    depths = storm.depths_mm(step)
    peak = ratio * 120 / step
    # The step holding r·T; when r·T falls on a boundary, either step touching it.
    assert depths.index(max(depths)) in {math.ceil(peak) - 1, math.floor(peak)}
    fine = [storm.intensity_mm_min(k / 100) for k in range(120 * 100 + 1)]
    assert fine.index(max(fine)) / 100 == pytest.approx(ratio * 120)


@pytest.mark.parametrize("window", [5, 10, 30, 60])
def test_any_window_around_the_peak_holds_the_idf_depth(window: float) -> None:
    """The defining property of the Chicago storm: it is every duration's design storm at once."""
    idf = BEIJING_UNVERIFIED.idf(5)
    storm = ChicagoStorm(idf, 120, peak_ratio=0.4)
    lo, hi = storm.peak_min - 0.4 * window, storm.peak_min + 0.6 * window
    assert storm.cumulative_mm(hi) - storm.cumulative_mm(lo) == pytest.approx(idf.depth_mm(window), rel=1e-12)


def test_mass_curve_agrees_with_the_instantaneous_intensity() -> None:
    """The mass curve and the intensity are separate closed forms: integrate one to check the other."""
    storm = ChicagoStorm(BEIJING_UNVERIFIED.idf(2), 60, peak_ratio=0.35)
    h = 0.001
    integral = sum(storm.intensity_mm_min((k + 0.5) * h) * h for k in range(int(60 / h)))
    assert integral == pytest.approx(storm.depth_mm, rel=1e-4)


def test_beijing_formula_matches_the_design_storms_of_the_domain_notes() -> None:
    """Consistency only (the formula is unverified): 1 year ≈ 35 mm/h and 5 years ≈ 60 mm/h over 1 h."""
    assert BEIJING_UNVERIFIED.idf(1).depth_mm(60) == pytest.approx(35.8, abs=0.5)
    assert BEIJING_UNVERIFIED.idf(5).depth_mm(60) == pytest.approx(56.2, abs=0.5)


def test_offset_shifts_the_storm_without_losing_rain() -> None:
    storm = ChicagoStorm(BEIJING_UNVERIFIED.idf(3), 60)
    plain = storm.depths_mm(1.0)
    shifted = storm.depths_mm(1.0, offset_min=15, steps=90)
    assert shifted[:15] == [0.0] * 15
    assert shifted[15:75] == pytest.approx(plain, rel=1e-12)
    assert sum(shifted) == pytest.approx(storm.depth_mm, rel=1e-12)


def test_storm_cell_lags_downstream_gauges_and_fades_off_track() -> None:
    storm = ChicagoStorm(BEIJING_UNVERIFIED.idf(5), 60)
    track = StormTrack(LAT0, LON0, heading_deg=90, speed_km_h=30, half_width_km=3, floor=0.1, jitter=0.0)
    gauges = [gauge("rg-a"), gauge("rg-b", east_km=5), gauge("rg-c", north_km=3), gauge("rg-d", north_km=30)]
    series = gauge_hyetographs(storm, track, gauges, step_min=1.0)

    assert series["rg-b"].lag_min - series["rg-a"].lag_min == pytest.approx(10.0, rel=1e-9)  # 5 km at 30 km/h
    assert {len(s.depths_mm) for s in series.values()} == {70}
    a, b = series["rg-a"], series["rg-b"]
    assert b.depths_mm[10:] == pytest.approx(a.depths_mm[:60], rel=1e-9)
    assert series["rg-c"].factor == pytest.approx(0.1 + 0.9 * 0.5, rel=1e-6)  # half the core at 3 km off
    assert series["rg-d"].factor == pytest.approx(0.1, abs=1e-6)
    for s in series.values():
        assert sum(s.depths_mm) == pytest.approx(s.factor * storm.depth_mm, rel=1e-9)


def test_storm_cell_jitter_is_seeded_and_ignores_input_order() -> None:
    storm = ChicagoStorm(BEIJING_UNVERIFIED.idf(5), 60)
    track = StormTrack(LAT0, LON0, jitter=0.2)
    gauges = [gauge(f"rg-{i}", east_km=i) for i in range(6)]
    one = gauge_hyetographs(storm, track, gauges, 5.0, seed=3)
    again = gauge_hyetographs(storm, track, list(reversed(gauges)), 5.0, seed=3)
    other = gauge_hyetographs(storm, track, gauges, 5.0, seed=4)
    assert one == again
    assert one != other
    for s in one.values():
        assert 0.8 <= s.factor / track.attenuation(*_position(gauges, s.device_id)) <= 1.2


def _position(gauges: list[Device], device_id: str) -> tuple[float, float]:
    d = next(g for g in gauges if g.device_id == device_id)
    return d.lat, d.lon


def test_rejects_nonsense_parameters() -> None:
    with pytest.raises(ValueError):
        IdfCurve(12.0, 8.0, 1.2)
    with pytest.raises(ValueError):
        ChicagoStorm(IdfCurve(12.0, 8.0, 0.7), 60, peak_ratio=1.5)
    with pytest.raises(ValueError):
        BEIJING_UNVERIFIED.idf(0.5)
