"""Snow storm: depth profile per gauge and a blizzard-grade episode."""

from __future__ import annotations

from itertools import pairwise

import pytest

from simulators.snow import BLIZZARD_EPISODE, SnowPhase, SnowStorm, gauge_snow_depths

STEP = 5.0  # minutes; snow gauges report every 5 min


def rolling_max(values: list[float], window: int) -> float:
    return max(sum(values[i : i + window]) for i in range(len(values) - window + 1))


def test_blizzard_episode_reaches_the_red_signal() -> None:
    swe = SnowStorm().swe_mm(STEP)
    assert len(swe) == 12 * 60 / STEP
    assert rolling_max(swe, int(6 * 60 / STEP)) >= 15.0  # red: ≥ 15 mm in 6 h
    assert rolling_max(swe, int(12 * 60 / STEP)) >= 6.0  # yellow: ≥ 6 mm in 12 h
    assert sum(swe) == pytest.approx(3 * 0.5 + 6 * 2.6 + 3 * 0.4)


def test_depth_profile_follows_the_accumulation() -> None:
    depths = SnowStorm(initial_depth_cm=2.0).depths_cm(STEP)
    assert all(b >= a for a, b in pairwise(depths))
    assert depths[-1] == pytest.approx(2.0 + 18.3)  # 10:1, so 1 mm of water is 1 cm of snow
    per_hour = int(60 / STEP)
    assert depths[per_hour * 3 - 1] == pytest.approx(2.0 + 1.5)  # after 3 light hours
    assert depths[per_hour * 5 - 1] - depths[per_hour * 4 - 1] == pytest.approx(2.6)  # blizzard hour


def test_snow_to_liquid_ratio_scales_the_depth() -> None:
    dry = SnowStorm(snow_to_liquid=15.0).depths_cm(STEP)
    assert dry[-1] == pytest.approx(18.3 * 1.5)


def test_settling_and_melt_lower_the_pack_but_never_below_zero() -> None:
    plain = SnowStorm().depths_cm(STEP)
    settled = SnowStorm(settling_per_h=0.02).depths_cm(STEP)
    assert settled[-1] < plain[-1]
    melting = SnowStorm(phases=(SnowPhase(1.0, 1.0), SnowPhase(3.0, 0.0)), melt_cm_h=0.5).depths_cm(STEP)
    assert max(melting) < 1.0
    assert melting[-1] == 0.0


def test_steps_need_not_divide_the_phases() -> None:
    swe = SnowStorm(phases=BLIZZARD_EPISODE).swe_mm(7.0)
    assert sum(swe) == pytest.approx(18.3)


def test_gauges_vary_by_a_seeded_factor() -> None:
    storm = SnowStorm()
    ids = ["sd-3", "sd-1", "sd-2"]
    one = gauge_snow_depths(storm, ids, STEP, seed=5)
    assert one == gauge_snow_depths(storm, sorted(ids), STEP, seed=5)
    assert one != gauge_snow_depths(storm, ids, STEP, seed=6)
    for depths in one.values():
        assert 18.3 * 0.85 <= depths[-1] <= 18.3 * 1.15
