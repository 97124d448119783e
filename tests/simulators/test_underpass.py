"""Underpass ponding: rain above the drainage design fills the sag past the yellow and red lines."""

from __future__ import annotations

from itertools import pairwise

import pytest

from simulators.design_storm import BEIJING_UNVERIFIED, ChicagoStorm
from simulators.underpass import RED_LINE_CM, YELLOW_LINE_CM, UnderpassPonding

DESIGN_35 = UnderpassPonding()  # the defaults: 35 mm/h drainage


def steady(mm_h: float, minutes: int, step_min: float = 1.0) -> list[float]:
    return [mm_h * step_min / 60.0] * int(minutes / step_min)


def test_an_hour_at_60_mm_h_passes_the_yellow_line_but_not_the_red() -> None:
    peak = max(DESIGN_35.levels_cm(steady(60, 60), 1.0))
    assert YELLOW_LINE_CM < peak < RED_LINE_CM
    assert peak == pytest.approx(0.9 * 10 * (60 - 35) / 10)  # C·R·excess, mm → cm


def test_a_stronger_storm_passes_the_red_line() -> None:
    assert max(DESIGN_35.levels_cm(steady(70, 60), 1.0)) > RED_LINE_CM


def test_rain_within_the_design_never_ponds() -> None:
    assert max(DESIGN_35.levels_cm(steady(34, 180), 5.0)) == 0.0


def test_pumps_empty_the_sag_after_the_rain() -> None:
    levels = DESIGN_35.levels_cm(steady(80, 30) + steady(0, 60), 1.0)
    after = levels[30:]
    assert all(b <= a for a, b in pairwise(after))
    assert levels[-1] == 0.0
    # Falls at C·R·35 mm/h = 31.5 cm/h while water is left.
    assert levels[29] - levels[39] == pytest.approx(31.5 * 10 / 60)


def test_level_does_not_depend_on_the_step_for_steady_rain() -> None:
    fine = DESIGN_35.levels_cm(steady(60, 60, 1.0), 1.0)
    coarse = DESIGN_35.levels_cm(steady(60, 60, 5.0), 5.0)
    assert coarse[-1] == pytest.approx(fine[-1])


def test_design_storms_against_the_lines() -> None:
    """With the (unverified) Beijing IDF: a 5-year hour reaches yellow, a 10-year hour red."""
    five = ChicagoStorm(BEIJING_UNVERIFIED.idf(5), 60).depths_mm(1.0)
    ten = ChicagoStorm(BEIJING_UNVERIFIED.idf(10), 60).depths_mm(1.0)
    assert YELLOW_LINE_CM < max(DESIGN_35.levels_cm(five, 1.0)) < RED_LINE_CM
    assert max(DESIGN_35.levels_cm(ten, 1.0)) > RED_LINE_CM


def test_a_better_drained_underpass_stays_lower() -> None:
    rain = steady(60, 60)
    pumped = UnderpassPonding(design_mm_h=45.0)
    assert max(pumped.levels_cm(rain, 1.0)) < YELLOW_LINE_CM < max(DESIGN_35.levels_cm(rain, 1.0))


def test_rejects_negative_rain_and_bad_parameters() -> None:
    with pytest.raises(ValueError):
        DESIGN_35.levels_cm([1.0, -0.1], 1.0)
    with pytest.raises(ValueError):
        UnderpassPonding(runoff_coeff=1.5)
