"""The engine's per-device member count, which lets a quiet reading skip its rules' lookups.

``evaluate`` looks a (rule, device) pair up in the members only for a device that has one;
if the count ever disagreed with the members, a reading falling back under a rule's quiet
line would skip the rule and leave its level, and its incident, standing.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gridsense.model.catalog import Catalog
from gridsense.model.envelopes import Kind
from gridsense.model.reading import Reading
from gridsense.model.registry import Device, DeviceRegistry
from rules.engine import RuleEngine
from rules.incidents import IncidentBook
from rules.spec import default_rules_path, load_rules

GRIDS = ("110102012001001", "110102012001002")
T0 = datetime(2026, 7, 21, 6, tzinfo=UTC)
KINDS = {"rg": Kind.RAIN, "sg": Kind.SNOW, "wg": Kind.WATER}
DEVICES = {
    f"{prefix}-{i}": Device(
        device_id=f"{prefix}-{i}", kind=kind, grid_code=GRIDS[i % 2], lat=39.9, lon=116.4, interval_s=60
    )
    for prefix, kind in KINDS.items()
    for i in range(2)
}


def counted(e: RuleEngine) -> Counter[str]:
    return Counter(device for _, device in e._members)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(DEVICES)),
            st.integers(0, 90),  # minutes after T0
            # quiet, light, heavy, a storm's (mm; cm of snow or water: around each line)
            st.sampled_from([0.0, 0.2, 4.0, 6.0, 12.0, 18.0, 25.0, 30.0]),
        ),
        max_size=80,
    ),
    st.integers(0, 60),
)
def test_the_count_matches_the_members_through_rises_falls_and_a_restart(
    readings: list[tuple[str, int, float]], restart_at: int
) -> None:
    book = IncidentBook()
    rules = load_rules(default_rules_path(), Catalog.default())
    engine = RuleEngine(rules, book, DeviceRegistry(DEVICES))
    for i, (device, minute, mm) in enumerate(sorted(readings, key=lambda r: r[1])):
        if i == restart_at:  # levels come back from the open incidents, as after a restart
            engine = RuleEngine(rules, book, DeviceRegistry(DEVICES))
            engine.restore_levels(baseline=T0)
            assert engine._member_count == counted(engine)
        d = DEVICES[device]
        unit = "mm" if d.kind is Kind.RAIN else "cm"
        engine.evaluate(Reading(device, d.kind, d.grid_code, T0 + timedelta(minutes=minute), mm, unit))
        assert engine._member_count == counted(engine)
