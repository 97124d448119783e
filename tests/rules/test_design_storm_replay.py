"""Replay: a 24 h Chicago design storm over 50 gauges in 10 grids, through the real rule engine
with the default rule set, against an independent computation of the cases it must file.

The oracle below shares no code with ``rules/``: it recomputes the windows from the
minute series with plain sums (1-minute buckets up to 1 h, 10-minute buckets beyond, as
the rule file documents), runs each level's hysteresis, groups per grid, applies the
quiet period and the street and district escalation, and lists the cases with their
peak levels.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gridsense.config import packaged
from gridsense.model.catalog import Catalog
from gridsense.model.envelopes import Kind
from gridsense.model.reading import Reading
from gridsense.model.registry import Device, DeviceRegistry, GridRegistry
from rules.engine import RuleEngine
from rules.incidents import IncidentBook
from rules.spec import WindowRule, default_rules_path, load_rules
from simulators.design_storm import BEIJING_UNVERIFIED, ChicagoStorm, StormTrack, gauge_hyetographs

ORDER = ["blue", "yellow", "orange", "red"]
START = datetime(2026, 7, 21, 0, 0, tzinfo=UTC)  # a 10-minute boundary, as real time would not be


def fleet() -> DeviceRegistry:
    grids = GridRegistry.load(packaged("demo", "grids.csv"))
    chosen = sorted(g.grid_code for g in grids)[:10]  # 4 + 4 grids of two streets, 2 of a third
    devices = {}
    for g in chosen:
        grid = grids.get(g)
        assert grid is not None
        for k in range(5):
            dev = f"rg-{g[-9:]}-{k}"
            devices[dev] = Device(
                device_id=dev,
                kind=Kind.RAIN,
                grid_code=g,
                lat=grid.lat + 0.0004 * k,
                lon=grid.lon - 0.0003 * k,
                interval_s=60,
            )
    return DeviceRegistry(devices)


def storm_series(devices: DeviceRegistry) -> dict[str, list[float]]:
    storm = ChicagoStorm(BEIJING_UNVERIFIED.idf(20), duration_min=1440, peak_ratio=0.4)
    lat = sum(d.lat for d in devices) / len(devices)
    lon = min(d.lon for d in devices) - 0.01
    track = StormTrack(lat=lat + 0.004, lon=lon, heading_deg=90, speed_km_h=15, half_width_km=1.5, floor=0.2)
    hyeto = gauge_hyetographs(storm, track, list(devices), step_min=1, seed=11)
    # Round as a gauge reports (0.01 mm), so the oracle and the engine see the same numbers.
    return {d: [round(v, 2) for v in h.depths_mm] for d, h in hyeto.items()}


# --- the oracle -----------------------------------------------------------------------------


def window_value(series: list[float], minute: int, window_s: int) -> float:
    if window_s <= 3600:
        k = window_s // 60
        return sum(series[max(0, minute - k + 1) : minute + 1])
    k = window_s // 600
    head = minute // 10
    first_minute = (head - k + 1) * 10
    return sum(series[max(0, first_minute) : minute + 1])


def member_levels(rule: WindowRule, series: list[float]) -> list[str | None]:
    levels: list[str | None] = []
    level: str | None = None
    names = [lv.name for lv in rule.levels]
    for minute in range(len(series)):
        v = round(window_value(series, minute, rule.window_s), 3)
        up = max((lv.name for lv in rule.levels if v >= lv.trigger), key=ORDER.index, default=None)
        down = level
        while down is not None and v < rule.levels[names.index(down)].clear:
            i = names.index(down)
            down = names[i - 1] if i else None
        rank = {None: -1, **{n: ORDER.index(n) for n in ORDER}}
        level = up if rank[up] > rank[down] else down
        levels.append(level)
    return levels


def oracle(
    devices: DeviceRegistry, series: dict[str, list[float]], quiet_min: int, rules: list[WindowRule]
) -> tuple[list[tuple[str, str, str]], dict[str, list[tuple[int, int]]]]:
    """(routing, subject, peak level) of every case, and each grid's open intervals."""
    n = len(next(iter(series.values())))
    by_grid: dict[str, list[list[str | None]]] = {}
    for d in devices:
        for rule in rules:
            by_grid.setdefault(d.grid_code, []).append(member_levels(rule, series[d.device_id]))
    cases: list[tuple[str, str, str]] = []
    intervals: dict[str, list[tuple[int, int]]] = {}
    grid_level_at: dict[str, list[str | None]] = {}
    for grid, members in by_grid.items():
        open_since: int | None = None
        peak: str | None = None
        quiet_from: int | None = None
        at: list[str | None] = []
        for m in range(n):
            now = [lv for lv in (mem[m] for mem in members) if lv is not None]
            if now:
                top = max(now, key=ORDER.index)
                if open_since is None:
                    open_since, peak = m, top
                elif ORDER.index(top) > ORDER.index(peak):  # type: ignore[arg-type]
                    peak = top
                quiet_from = None
            elif open_since is not None:
                quiet_from = m if quiet_from is None else quiet_from
                if m - quiet_from >= quiet_min:
                    cases.append(("community", grid, peak))  # type: ignore[arg-type]
                    intervals.setdefault(grid, []).append((open_since, m))
                    open_since, peak, quiet_from = None, None, None
            at.append(peak if open_since is not None else None)
        if open_since is not None:
            cases.append(("community", grid, peak))  # type: ignore[arg-type]
            intervals.setdefault(grid, []).append((open_since, n))
        grid_level_at[grid] = at
    # Escalation: a street with ≥ 3 grids open at once, a district with ≥ 2 streets.
    for routing, key_len, minimum, count in (("street", 9, 3, "grids"), ("district", 6, 2, "streets")):
        subjects = {g[:key_len] for g in grid_level_at}
        for subject in sorted(subjects):
            summary_peak: str | None = None
            active = False
            for m in range(n):
                open_grids = [g for g in grid_level_at if g.startswith(subject) and grid_level_at[g][m]]
                size = len(open_grids) if count == "grids" else len({g[:9] for g in open_grids})
                if not active and size >= minimum:
                    active = True
                if active:
                    if not open_grids:
                        cases.append((routing, subject, summary_peak))  # type: ignore[arg-type]
                        active, summary_peak = False, None
                        continue
                    top = max((grid_level_at[g][m] for g in open_grids), key=ORDER.index)  # type: ignore[arg-type]
                    if summary_peak is None or ORDER.index(top) > ORDER.index(summary_peak):  # type: ignore[arg-type]
                        summary_peak = top
            if active:
                cases.append((routing, subject, summary_peak))  # type: ignore[arg-type]
    return sorted(cases), intervals


# --- the test -------------------------------------------------------------------------------


def test_24h_design_storm_over_50_gauges_files_exactly_the_oracles_cases() -> None:
    devices = fleet()
    series = storm_series(devices)
    spec = load_rules(default_rules_path(), Catalog.default())
    rain_rules = [r for r in spec.rules if isinstance(r, WindowRule) and r.kind == "rain"]
    expected, intervals = oracle(devices, series, int(spec.incident_quiet_s // 60), rain_rules)

    book = IncidentBook()
    engine = RuleEngine(spec, book, devices)
    engine.restore_levels(START)
    filed: dict[str, tuple[str, str, str | None]] = {}
    peaks: dict[str, str | None] = {}
    n = len(next(iter(series.values())))
    order = sorted(devices, key=lambda d: d.device_id)
    for m in range(n + 60):  # and an hour of dry reports, so incidents can clear
        ts = START + timedelta(minutes=m)
        for d in order:
            value = series[d.device_id][m] if m < n else 0.0
            r = engine.check_quality(
                Reading(
                    device_id=d.device_id,
                    kind=Kind.RAIN,
                    grid_code=d.grid_code,
                    ts=ts,
                    value=value,
                    unit="mm",
                )
            )
            assert not r.suspect
            for c in engine.evaluate(r):
                inc = c.incident
                routing = inc.routing_level or "community"
                if c.kind == "opened":
                    filed[inc.incident_id] = (routing, inc.subject, inc.level)
                if c.kind in ("opened", "raised", "updated"):
                    peaks[inc.incident_id] = max(
                        filter(None, [peaks.get(inc.incident_id), inc.level]), key=ORDER.index
                    )
        for c in engine.tick(ts + timedelta(seconds=59)):
            if c.kind == "opened":
                filed[c.incident.incident_id] = (
                    c.incident.routing_level or "community",
                    c.incident.subject,
                    c.incident.level,
                )
    got = sorted((routing, subject, peaks[i]) for i, (routing, subject, _) in filed.items())
    # The oracle stops at the storm's end; the dry hour only closes what it listed as open.
    assert got == expected
    # The storm must exercise the rule set: several grids, two streets, a red line reached.
    community = [c for c in expected if c[0] == "community"]
    assert len(community) >= 5
    assert {"street", "district"} <= {c[0] for c in expected}
    assert "red" in {c[2] for c in community}
    assert all(len(v) == 1 for v in intervals.values()), "one continuous incident per grid"
