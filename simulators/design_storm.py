"""Design storms: the Chicago hyetograph (Keifer & Chu 1957) and a storm cell moving over the gauges.

Units: durations and times in minutes, intensities in mm/min (× 60 for mm/h; 1 mm/min over
one hectare is 166.7 L/s, the unit Chinese storm-intensity formulas give ``q`` in).

The hyetograph is built from its mass curve, so every step's depth is a difference of
cumulative depths: the steps sum to the IDF depth for the duration whatever the step, and
any window of length t placed around the peak with the same ratio holds the IDF depth for t.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

from gridsense.model.registry import Device

_KM_PER_DEG_LAT = 110.574
_KM_PER_DEG_LON_EQUATOR = 111.320


@dataclass(frozen=True)
class IdfCurve:
    """Average intensity over a duration of t minutes: i = a / (t + b)^c, in mm/min."""

    a_mm_min: float
    b_min: float
    c: float

    def __post_init__(self) -> None:
        if self.a_mm_min <= 0 or self.b_min < 0 or not 0 < self.c < 1:
            raise ValueError(f"IDF parameters out of range: {self}")

    def intensity_mm_min(self, minutes: float) -> float:
        return self.a_mm_min / (minutes + self.b_min) ** self.c

    def depth_mm(self, minutes: float) -> float:
        """Depth over a duration: i(t)·t."""
        return self.intensity_mm_min(minutes) * minutes


@dataclass(frozen=True)
class StormIntensityFormula:
    """The Chinese design form q = A1 (1 + C lg P) / (t + b)^n, with A1 converted to mm/min."""

    a1_mm_min: float
    c_lg: float
    b_min: float
    n: float

    def idf(self, return_period_years: float) -> IdfCurve:
        if return_period_years < 1:
            raise ValueError("the formula is fitted for return periods of 1 year and more")
        a = self.a1_mm_min * (1 + self.c_lg * math.log10(return_period_years))
        return IdfCurve(a, self.b_min, self.n)


#: *Unverified.* Beijing's older formula as printed in Chinese drainage design handbooks,
#: q = 2001 (1 + 0.811 lg P) / (t + 8)^0.711 L/(s·ha), quoted from memory and not checked
#: against a primary source; DB11/T 969-2016 has since split Beijing into two zones with
#: their own formulas, which are not used here. As a sanity check only, it gives 35.8 mm/h
#: for a 1-year 60-minute storm and 56 mm/h for 5 years, close to the 35 mm/h and 60 mm/h
#: design storms the domain notes quote. Pass your own formula where it matters.
BEIJING_UNVERIFIED = StormIntensityFormula(a1_mm_min=2001 / 166.67, c_lg=0.811, b_min=8.0, n=0.711)


@dataclass(frozen=True)
class ChicagoStorm:
    """A Chicago hyetograph of ``duration_min`` with its peak at ``peak_ratio``·duration."""

    idf: IdfCurve
    duration_min: float
    peak_ratio: float = 0.4

    def __post_init__(self) -> None:
        if self.duration_min <= 0 or not 0 <= self.peak_ratio <= 1:
            raise ValueError(f"duration must be > 0 and peak ratio within 0–1: {self}")

    @property
    def peak_min(self) -> float:
        return self.peak_ratio * self.duration_min

    @property
    def depth_mm(self) -> float:
        """Total depth: the IDF depth for the duration."""
        return self.idf.depth_mm(self.duration_min)

    def cumulative_mm(self, t_min: float) -> float:
        """Depth fallen from the start to ``t_min`` (clamped to the storm)."""
        t = min(max(t_min, 0.0), self.duration_min)
        tp = self.peak_min
        if t <= tp:
            return self._before(tp) - self._before(tp - t)
        return self._before(tp) + self._after(t - tp)

    def intensity_mm_min(self, t_min: float) -> float:
        """Instantaneous intensity at ``t_min`` (Keifer & Chu's two branches)."""
        a, b, c = self.idf.a_mm_min, self.idf.b_min, self.idf.c
        if not 0 <= t_min <= self.duration_min:
            return 0.0
        x, share = (
            (self.peak_min - t_min, self.peak_ratio)
            if t_min <= self.peak_min
            else (t_min - self.peak_min, 1 - self.peak_ratio)
        )
        s = x / share
        return a * ((1 - c) * s + b) / (s + b) ** (1 + c)

    def depths_mm(self, step_min: float, offset_min: float = 0.0, steps: int | None = None) -> list[float]:
        """mm per step; the storm starts ``offset_min`` after step 0 begins.

        Without ``steps``, enough steps to hold the whole storm.
        """
        if step_min <= 0:
            raise ValueError("step must be positive")
        if steps is None:
            steps = math.ceil((offset_min + self.duration_min) / step_min - 1e-9)
        cum = [self.cumulative_mm(k * step_min - offset_min) for k in range(steps + 1)]
        return [hi - lo for lo, hi in pairwise(cum)]

    def _before(self, x: float) -> float:
        """Depth within ``x`` minutes before the peak."""
        if x <= 0:
            return 0.0
        a, b, c = self.idf.a_mm_min, self.idf.b_min, self.idf.c
        return a * x / (x / self.peak_ratio + b) ** c

    def _after(self, x: float) -> float:
        """Depth within ``x`` minutes after the peak."""
        if x <= 0:
            return 0.0
        a, b, c = self.idf.a_mm_min, self.idf.b_min, self.idf.c
        return a * x / (x / (1 - self.peak_ratio) + b) ** c


@dataclass(frozen=True)
class StormTrack:
    """A storm cell moving in a straight line; it passes (``lat``, ``lon``, WGS-84) at storm time 0.

    A gauge's depth is the hyetograph scaled by a Gaussian of its distance from the track
    (half the core depth at ``half_width_km``), never below ``floor`` of the core; its rain
    starts when the cell arrives, i.e. lags by the along-track distance over the speed.
    """

    lat: float
    lon: float
    heading_deg: float = 90.0  # direction of travel, clockwise from north: 90 = eastward
    speed_km_h: float = 20.0
    half_width_km: float = 3.0
    floor: float = 0.1
    jitter: float = 0.1  # each gauge's depth varies by up to ± this fraction, seeded

    def __post_init__(self) -> None:
        if self.speed_km_h <= 0 or self.half_width_km <= 0 or not 0 <= self.floor <= 1:
            raise ValueError(f"storm track parameters out of range: {self}")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be within 0–1")

    def offsets_km(self, lat: float, lon: float) -> tuple[float, float]:
        """(along-track, cross-track) position of a point, in km, on a local flat projection."""
        east = (lon - self.lon) * _KM_PER_DEG_LON_EQUATOR * math.cos(math.radians(self.lat))
        north = (lat - self.lat) * _KM_PER_DEG_LAT
        h = math.radians(self.heading_deg)
        return east * math.sin(h) + north * math.cos(h), east * math.cos(h) - north * math.sin(h)

    def lag_min(self, lat: float, lon: float) -> float:
        """When the cell reaches the point, in minutes after it passed the track origin."""
        return self.offsets_km(lat, lon)[0] / self.speed_km_h * 60.0

    def attenuation(self, lat: float, lon: float) -> float:
        """Fraction of the core depth that falls at the point (before jitter)."""
        cross = self.offsets_km(lat, lon)[1]
        core = 0.5 ** ((cross / self.half_width_km) ** 2)
        return self.floor + (1 - self.floor) * core


@dataclass(frozen=True)
class GaugeHyetograph:
    """One gauge's share of a moving storm: mm per step from the fleet's common start."""

    device_id: str
    factor: float
    lag_min: float  # after the first gauge the cell reaches
    depths_mm: list[float]


def gauge_hyetographs(
    storm: ChicagoStorm, track: StormTrack, gauges: Iterable[Device], step_min: float, seed: int = 7
) -> dict[str, GaugeHyetograph]:
    """Per gauge, the storm scaled and shifted by the moving cell; all series have one length.

    Step 0 begins when the cell reaches the first gauge, so every lag is ≥ 0. Each gauge's
    series sums to ``factor`` × the storm depth.
    """
    gauges = sorted(gauges, key=lambda d: d.device_id)  # the seeded jitter must not depend on input order
    if not gauges:
        return {}
    rng = random.Random(seed)
    lags = {d.device_id: track.lag_min(d.lat, d.lon) for d in gauges}
    first = min(lags.values())
    steps = math.ceil((max(lags.values()) - first + storm.duration_min) / step_min - 1e-9)
    out = {}
    for d in gauges:
        lag = lags[d.device_id] - first
        factor = track.attenuation(d.lat, d.lon) * rng.uniform(1 - track.jitter, 1 + track.jitter)
        depths = [factor * mm for mm in storm.depths_mm(step_min, lag, steps)]
        out[d.device_id] = GaugeHyetograph(d.device_id, factor, lag, depths)
    return out
