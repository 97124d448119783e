"""A storm scenario for the gauge fleet: a moving rain cell over some grids, light rain elsewhere.

Readings are one per gauge per minute. The scenario is generated for data time, so a
90-minute storm can be replayed in seconds with its real timestamps: the rules work on
the readings' own time, not on the wall clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from gridsense.model.envelopes import Kind
from gridsense.model.registry import Device
from ingest.gauge_codec import Sample, encode_json, encode_senml
from ingest.topics import TopicScheme


@dataclass(frozen=True)
class StormScenario:
    """Rain over ``minutes`` minutes; ``hit_grids`` get the cell (peak ``peak_mm_per_min``)."""

    start: datetime
    minutes: int = 90
    hit_grids: frozenset[str] = frozenset()
    peak_mm_per_min: float = 3.0
    background_mm_per_min: float = 0.15
    seed: int = 7

    def intensity(self, grid_code: str, minute: int, rng: random.Random) -> float:
        """mm fallen in one minute: a bell-shaped cell peaking at 60 % of the storm."""
        centre = 0.6 * self.minutes
        spread = self.minutes / 5
        bell = math.exp(-(((minute - centre) / spread) ** 2))
        base = self.peak_mm_per_min * bell if grid_code in self.hit_grids else self.background_mm_per_min
        return max(0.0, round(base * rng.uniform(0.85, 1.15), 2))

    @staticmethod
    def counter_gauges(devices: list[Device]) -> set[str]:
        """Gauges that send tipping-bucket counters (SenML ``s``); the others send amounts."""
        gauges = [d for d in devices if d.kind is Kind.RAIN]
        return {d.device_id for i, d in enumerate(gauges) if i % 2}

    def samples(self, devices: list[Device]) -> Iterator[Sample]:
        """Per minute, one sample per rain gauge: a counter or an interval amount."""
        rng = random.Random(self.seed)
        gauges = [d for d in devices if d.kind is Kind.RAIN]
        counter_ids = self.counter_gauges(devices)
        counters = {d.device_id: 100.0 * (i % 3) for i, d in enumerate(gauges)}
        for minute in range(self.minutes):
            ts = self.start + timedelta(minutes=minute)
            for dev in gauges:
                mm = self.intensity(dev.grid_code, minute, rng)
                battery = round(95 - minute * 0.01, 1)
                if dev.device_id in counter_ids:
                    counters[dev.device_id] += mm
                    total = round(counters[dev.device_id], 2)
                    yield Sample(dev.device_id, Kind.RAIN, ts, "counter", total, battery, dev.interval_s)
                else:
                    yield Sample(dev.device_id, Kind.RAIN, ts, "amount", mm, battery)


def to_messages(
    samples: Iterator[Sample], devices: dict[str, Device], scheme: TopicScheme
) -> Iterator[tuple[str, bytes]]:
    """Topic and wire payload per sample: counters go as SenML, amounts as JSON."""
    for s in samples:
        dev = devices[s.device_id]
        payload = encode_senml(s) if s.measure == "counter" else encode_json(s)
        yield scheme.topic(dev.grid_code, dev.kind, dev.device_id), payload


def expected_totals(scenario: StormScenario, devices: list[Device]) -> dict[str, list[float]]:
    """Per gauge, the mm per minute the scenario sends (for tests' independent checks)."""
    rng = random.Random(scenario.seed)
    gauges = [d for d in devices if d.kind is Kind.RAIN]
    out: dict[str, list[float]] = {d.device_id: [] for d in gauges}
    for minute in range(scenario.minutes):
        for dev in gauges:
            out[dev.device_id].append(scenario.intensity(dev.grid_code, minute, rng))
    return out
