"""A snow storm as snow depth per gauge: a water-equivalent snowfall profile turned into centimetres.

New snow depth (cm) = water equivalent (mm) × snow-to-liquid ratio / 10. The default ratio
10:1 (1 mm of water → 1 cm of snow) is a textbook rule of thumb, *unverified* for Beijing,
where dry cold-wave snow can run well above it. The pack can settle (a fraction per hour)
and melt (cm per hour); both default to zero so the depth is exactly the accumulated snow.

``BLIZZARD_EPISODE`` reaches the red blizzard signal (≥ 15 mm water equivalent in 6 h,
domain notes section 3): 3 h of light snow, 6 h at 2.6 mm/h (15.6 mm), 3 h tapering.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise


@dataclass(frozen=True)
class SnowPhase:
    """``hours`` of snowfall at a steady ``swe_mm_h`` (water equivalent per hour)."""

    hours: float
    swe_mm_h: float

    def __post_init__(self) -> None:
        if self.hours <= 0 or self.swe_mm_h < 0:
            raise ValueError(f"snow phase out of range: {self}")


BLIZZARD_EPISODE = (SnowPhase(3.0, 0.5), SnowPhase(6.0, 2.6), SnowPhase(3.0, 0.4))


@dataclass(frozen=True)
class SnowStorm:
    """Snowfall phases one after another, and how the pack they build settles and melts."""

    phases: tuple[SnowPhase, ...] = BLIZZARD_EPISODE
    snow_to_liquid: float = 10.0
    initial_depth_cm: float = 0.0
    settling_per_h: float = 0.0  # fraction of the pack lost to compaction per hour
    melt_cm_h: float = 0.0

    def __post_init__(self) -> None:
        if not self.phases or self.snow_to_liquid <= 0 or self.initial_depth_cm < 0:
            raise ValueError(f"snow storm out of range: {self}")
        if not 0 <= self.settling_per_h < 1 or self.melt_cm_h < 0:
            raise ValueError("settling must be within 0–1 per hour and melt ≥ 0")

    @property
    def hours(self) -> float:
        return sum(p.hours for p in self.phases)

    def swe_until_mm(self, hours: float) -> float:
        """Water equivalent fallen from the start until ``hours``."""
        total, t0 = 0.0, 0.0
        for p in self.phases:
            total += p.swe_mm_h * min(max(hours - t0, 0.0), p.hours)
            t0 += p.hours
        return total

    def swe_mm(self, step_min: float) -> list[float]:
        """Water equivalent per step over the whole storm."""
        steps = self._steps(step_min)
        cum = [self.swe_until_mm(k * step_min / 60.0) for k in range(steps + 1)]
        return [hi - lo for lo, hi in pairwise(cum)]

    def depths_cm(self, step_min: float, scale: float = 1.0) -> list[float]:
        """Snow depth at the end of each step; ``scale`` multiplies this gauge's snowfall."""
        dt_h = step_min / 60.0
        keep = (1 - self.settling_per_h) ** dt_h
        depth, out = self.initial_depth_cm, []
        for swe in self.swe_mm(step_min):
            depth = depth * keep + scale * swe * self.snow_to_liquid / 10.0 - self.melt_cm_h * dt_h
            depth = max(depth, 0.0)
            out.append(depth)
        return out

    def _steps(self, step_min: float) -> int:
        if step_min <= 0:
            raise ValueError("step must be positive")
        return math.ceil(self.hours * 60.0 / step_min - 1e-9)


def gauge_snow_depths(
    storm: SnowStorm, device_ids: Iterable[str], step_min: float, seed: int = 7, spread: float = 0.15
) -> dict[str, list[float]]:
    """Per gauge, the storm's depth with its snowfall scaled by a seeded factor within ±``spread``."""
    if not 0 <= spread < 1:
        raise ValueError("spread must be within 0–1")
    rng = random.Random(seed)
    # Sorted, so the seeded factors do not depend on the caller's order.
    return {d: storm.depths_cm(step_min, rng.uniform(1 - spread, 1 + spread)) for d in sorted(device_ids)}
