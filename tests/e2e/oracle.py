"""An independent oracle for the storm scenario: which grids must get a case, at which level.

It recomputes 1-hour rolling totals from the minute amounts the simulator sends, with
plain list sums, sharing no code with the rules stage.
"""

from __future__ import annotations

from pathlib import Path

from simulators.storm import StormScenario, expected_totals

THRESHOLDS = (("blue", 20.0), ("orange", 70.0), ("red", 100.0))  # the lines of rules_1h.yaml
RULES_1H = Path(__file__).with_name("rules_1h.yaml")


def peak_totals(scenario: StormScenario, devices: list, counter_gauges: set[str]) -> dict[str, float]:  # type: ignore[type-arg]
    """Per gauge, the highest 60-minute total. A counter gauge's first minute is its baseline."""
    per_minute = expected_totals(scenario, devices)
    peaks = {}
    for dev, amounts in per_minute.items():
        amounts = list(amounts)
        if dev in counter_gauges:
            amounts[0] = 0.0
        peaks[dev] = max(sum(amounts[max(0, m - 59) : m + 1]) for m in range(len(amounts)))
    return peaks


def level_of(total: float) -> str | None:
    level = None
    for name, line in THRESHOLDS:
        if total >= line:
            level = name
    return level


def expected_grid_levels(scenario: StormScenario, devices: list, counter_gauges: set[str]) -> dict[str, str]:  # type: ignore[type-arg]
    """Grid → highest level any of its gauges reached; grids with no breach are absent."""
    grid_of = {d.device_id: d.grid_code for d in devices}
    ranks = {name: i for i, (name, _) in enumerate(THRESHOLDS)}
    out: dict[str, str] = {}
    for dev, peak in peak_totals(scenario, devices, counter_gauges).items():
        lv = level_of(peak)
        if lv is None:
            continue
        grid = grid_of[dev]
        if grid not in out or ranks[lv] > ranks[out[grid]]:
            out[grid] = lv
    return out


def margin(scenario: StormScenario, devices: list, counter_gauges: set[str]) -> float:  # type: ignore[type-arg]
    """Smallest distance of any gauge's peak to a threshold (the oracle is only sharp above ~0.05)."""
    peaks = peak_totals(scenario, devices, counter_gauges).values()
    return min(abs(p - line) for p in peaks for _, line in THRESHOLDS)
