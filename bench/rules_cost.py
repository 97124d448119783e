"""Cost of the full default rule set per reading (µs) and window state per sensor (bytes).

    python bench/rules_cost.py [--sensors 10000 100000]

The baseline, measured in the same run, is the bare cost of building the ``Reading``
envelope the rules receive, so the ratio says how much the rules add on top of ingest's
own per-reading work. State is measured after a full 24 h of 1-minute readings.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from gridsense.model.catalog import Catalog
from gridsense.model.envelopes import Kind
from gridsense.model.reading import Reading
from gridsense.model.registry import Device, DeviceRegistry
from rules.engine import RuleEngine
from rules.incidents import IncidentBook
from rules.spec import default_rules_path, load_rules

T0 = datetime(2026, 7, 21, tzinfo=UTC)


def fleet(n: int) -> DeviceRegistry:
    devices = {}
    for i in range(n):
        grid = f"110102012{i % 500 // 50 + 1:03d}{i % 50 + 1:03d}"
        devices[f"rg-{i}"] = Device(
            device_id=f"rg-{i}", kind=Kind.RAIN, grid_code=grid, lat=39.9, lon=116.4, interval_s=60
        )
    return DeviceRegistry(devices)


def readings(devices: DeviceRegistry, minutes: int, start_min: int = 0) -> list[Reading]:
    out = []
    for m in range(start_min, start_min + minutes):
        ts = T0 + timedelta(minutes=m)
        for d in devices:
            out.append(
                Reading(
                    device_id=d.device_id,
                    kind=Kind.RAIN,
                    grid_code=d.grid_code,
                    ts=ts,
                    value=0.1 * (m % 7),
                    unit="mm",
                )
            )
    return out


def per_reading_us(n_sensors: int, rounds: int = 5) -> tuple[float, float]:
    devices = fleet(n_sensors)
    spec = load_rules(default_rules_path(), Catalog.default())
    engine = RuleEngine(spec, IncidentBook(), devices)
    warm = readings(devices, 30)
    for r in warm:
        engine.evaluate(engine.check_quality(r))
    rules_us, build_us = [], []
    for k in range(rounds):
        t = time.perf_counter()
        batch = readings(devices, 2, 30 + 2 * k)
        build_us.append((time.perf_counter() - t) / len(batch) * 1e6)
        t = time.perf_counter()
        for r in batch:
            engine.evaluate(engine.check_quality(r))
        rules_us.append((time.perf_counter() - t) / len(batch) * 1e6)
    return statistics.median(rules_us), statistics.median(build_us)


def state_per_sensor(n_sensors: int) -> float:
    devices = fleet(n_sensors)
    spec = load_rules(default_rules_path(), Catalog.default())
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    engine = RuleEngine(spec, IncidentBook(), devices)
    for m in range(0, 24 * 60, 10):  # every bucket of both rings gets touched across 24 h
        ts = T0 + timedelta(minutes=m)
        for d in devices:
            engine.warm(
                Reading(
                    device_id=d.device_id, kind=Kind.RAIN, grid_code=d.grid_code, ts=ts, value=0.2, unit="mm"
                )
            )
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    return grown / n_sensors


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sensors", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--cost-sensors", type=int, default=2_000)
    args = ap.parse_args()
    rules_us, build_us = per_reading_us(args.cost_sensors)
    n_rules = len(load_rules(default_rules_path(), Catalog.default()).rules)
    print(f"default rule set ({n_rules} rules), {args.cost_sensors} rain gauges:")
    print(f"  rules per reading          {rules_us:8.1f} µs  (target ≤ 20 µs)")
    print(f"  baseline: build a Reading  {build_us:8.1f} µs  → rules/baseline = {rules_us / build_us:.2f}")
    for n in args.sensors:
        b = state_per_sensor(n)
        print(f"  window state, {n:>7} sensors, 24 h at 1-min readings: {b:7.0f} B/sensor (target ≤ 2048)")


if __name__ == "__main__":
    main()
