"""A rule window rebuilt from the store after a restart holds what the live window held.

The store keeps a reading's time to the millisecond (``ts_ms``); a gauge may stamp finer. The
live windows run on the same key as the rebuilt ones, so a reading stamped a fraction of a
millisecond before a bucket boundary lands in the same bucket either way, and a restart
cannot make an incident open that the live pipeline would not have opened, or the reverse.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gridsense.model.catalog import Catalog
from gridsense.model.envelopes import Kind
from gridsense.model.reading import Reading
from gridsense.model.registry import Device, DeviceRegistry
from ingest.reading_store import reading_from_row, reading_row
from rules.engine import RuleEngine
from rules.incidents import IncidentBook
from rules.spec import default_rules_path, load_rules

GRID = "110102012001001"
#: On the hour, so a boundary of every bucket size; the first reading is 0.4 ms before it.
HOUR = datetime(2026, 7, 21, 6, tzinfo=UTC)


def engine() -> RuleEngine:
    device = Device(device_id="rg-1", kind=Kind.RAIN, grid_code=GRID, lat=39.9, lon=116.4, interval_s=60)
    return RuleEngine(
        load_rules(default_rules_path(), Catalog.default()), IncidentBook(), DeviceRegistry({"rg-1": device})
    )


def rain(ts: datetime, mm: float) -> Reading:
    return Reading("rg-1", Kind.RAIN, GRID, ts, mm, "mm")


def outcome(e: RuleEngine, r: Reading) -> list[tuple[str, str, float]]:
    return [(c.kind, c.incident.rule_id, c.incident.peak_value) for c in e.evaluate(r)]


def test_a_restarted_engine_opens_exactly_what_the_live_one_opens() -> None:
    first = rain(HOUR - timedelta(microseconds=400), 12.0)  # 12 + 12 crosses the 20 mm hour
    assert first.ts_ms == int(HOUR.timestamp() * 1000)  # the key rounds it onto the hour
    opened = 0
    # The second reading an hour later, give or take: wherever the first one's bucket
    # leaves the 1 h window, the two engines must agree.
    for offset_s in range(3300, 3900, 30):
        live, restarted = engine(), engine()
        assert outcome(live, first) == []
        restarted.warm(reading_from_row(*reading_row(first)))  # what a restart replays
        second = rain(first.ts + timedelta(seconds=offset_s), 12.0)
        expected = outcome(live, second)
        assert outcome(restarted, second) == expected, f"second reading {offset_s} s later"
        opened += bool(expected)
    assert 0 < opened < 20  # the sweep crosses the window's edge: some open, some do not
