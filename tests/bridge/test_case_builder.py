"""CaseBuilder: incident changes become grid cases and updates with the right codes, places and deadline.

The helpers at the top (``incident``, ``change``, ``builder``) are shared by the outbox and
delivery tests of this folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bridge.case_builder import CaseBuilder, case_key, updates_to_send
from gridsense.config import BridgeConfig
from gridsense.model.case import Evidence
from gridsense.model.catalog import Catalog
from gridsense.model.geo import CRS, wgs84_to_gcj02
from gridsense.model.incident import ChangeKind, Incident, IncidentChange, incident_id
from gridsense.model.registry import GridRegistry
from gridsense.model.worktime import WorkCalendar

DEMO_GRIDS = Path(__file__).resolve().parents[2] / "gridsense" / "data" / "demo" / "grids.csv"
GRID = "110102012001001"  # 什刹海街道 西海社区, first demo grid
SHANGHAI = ZoneInfo("Asia/Shanghai")
# 2026-07-21 00:30 UTC is 08:30 in Beijing.
OPENED = datetime(2026, 7, 21, 0, 30, tzinfo=UTC)
RULE = "rain-1h"


def incident(
    grid: str = GRID,
    *,
    opened_at: datetime = OPENED,
    level: str | None = "yellow",
    peak: float = 32.5,
) -> Incident:
    """A road-waterlogging (event:0111) incident opened by the 1 h rain rule in ``grid``."""
    return Incident(
        incident_id=incident_id(RULE, grid, opened_at),
        rule_id=RULE,
        category_ref="event:0111",
        grid_code=grid,
        opened_at=opened_at,
        updated_at=opened_at,
        level=level,
        peak_value=peak,
        unit="mm",
        window_s=3600,
        subject=grid,
        summary_zh=f"雨量计 rg-0001 近60分钟累计降雨 {peak:.1f} 毫米",
        summary_en=f"gauge rg-0001 measured {peak:.1f} mm in 60 min",
        device_levels={"rg-0001": level} if level else {},
        peak_device="rg-0001",
    )


def readings(inc: Incident) -> Evidence:
    """The breaching series as the rain rule attaches it: (iso time, mm) per 10 min bucket."""
    start = inc.opened_at - timedelta(minutes=20)
    series = [[(start + timedelta(minutes=10 * i)).isoformat(), 10.5 + 11 * i] for i in range(3)]
    return Evidence.of_data("readings", "rg-0001: 60 min window, mm per bucket", series)


def change(inc: Incident, kind: ChangeKind = "opened", at: datetime | None = None) -> IncidentChange:
    return IncidentChange(kind, inc, at or inc.updated_at, (readings(inc),))


def builder(cfg: BridgeConfig | None = None) -> CaseBuilder:
    return CaseBuilder(
        cfg or BridgeConfig(), Catalog.default(), GridRegistry.load(DEMO_GRIDS), WorkCalendar.default()
    )


def canonical_sha256(data: object) -> str:
    """sha256 of canonical JSON (sorted keys, no spaces, UTF-8): what ``Evidence.sha256`` covers."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_case_carries_grid_codes_and_registry_names() -> None:
    case = builder().case(change(incident()))

    place = case.place
    assert place.grid_code == "110102012001001"
    assert (place.district_code, place.street_code, place.community_code) == (
        "110102",
        "110102012",
        "110102012001",
    )
    assert (place.street_name, place.community_name) == ("什刹海街道", "西海社区")
    assert place.address == "北京市西城区什刹海街道西海社区第1网格"
    assert case.title_zh == "什刹海街道西海社区网格001道路积水（黄色）"
    assert case.responsible_unit == "西海社区工作站"  # 0111 is routed to the community
    assert case.source == "sensor" and case.source_code == 41


def test_case_category_is_event_0111_road_waterlogging() -> None:
    case = builder().case(change(incident()))

    assert case.category.kind == "event"
    assert case.category.code == "0111"
    assert (case.category.major, case.category.minor) == ("01", "11")
    assert case.category.name_zh == "道路积水"
    assert case.routing_level == "community"


@pytest.mark.parametrize(
    ("level", "severity", "title_end"),
    [
        # 0111 is 'urgent' in the category table: a low level never lowers it.
        ("blue", "urgent", "道路积水（蓝色）"),
        ("yellow", "urgent", "道路积水（黄色）"),
        ("orange", "urgent", "道路积水（橙色）"),
        ("red", "most_urgent", "道路积水（红色）"),
        (None, "urgent", "道路积水"),  # a rule without levels files at the category's severity
    ],
)
def test_severity_follows_warning_level_but_never_below_the_category(
    level: str | None, severity: str, title_end: str
) -> None:
    case = builder().case(change(incident(level=level)))

    assert case.severity == severity
    assert case.warning_level == level
    assert case.title_zh.endswith(title_end)


def test_deadline_is_two_clock_hours_after_filing_in_shanghai() -> None:
    case = builder().case(change(incident()))

    assert case.filed_at == datetime(2026, 7, 21, 8, 30, tzinfo=SHANGHAI)
    assert case.deadline == datetime(2026, 7, 21, 10, 30, tzinfo=SHANGHAI)
    assert case.deadline.isoformat() == "2026-07-21T10:30:00+08:00"
    assert case.deadline_basis == "2 clock_hours"


def test_clock_hour_deadline_runs_through_the_night() -> None:
    # 15:00 UTC is 23:00 in Beijing; clock hours ignore working time, so 01:00 next day.
    case = builder().case(change(incident(opened_at=datetime(2026, 7, 21, 15, 0, tzinfo=UTC))))

    assert case.filed_at.isoformat() == "2026-07-21T23:00:00+08:00"
    assert case.deadline.isoformat() == "2026-07-22T01:00:00+08:00"


def test_coordinates_in_the_platform_crs_keep_the_internal_point() -> None:
    grid = GridRegistry.load(DEMO_GRIDS).get(GRID)
    assert grid is not None

    gcj = builder(BridgeConfig(crs=CRS.GCJ02)).case(change(incident())).place
    wgs = builder(BridgeConfig(crs=CRS.WGS84)).case(change(incident())).place

    assert gcj.crs == CRS.GCJ02
    assert (gcj.lat, gcj.lon) == pytest.approx(wgs84_to_gcj02(grid.lat, grid.lon), abs=1e-12)
    # The demo file is GCJ-02, so the round trip lands back on the file's numbers.
    assert (gcj.lat, gcj.lon) == pytest.approx((39.945853, 116.381307), abs=1e-7)
    assert (gcj.wgs84_lat, gcj.wgs84_lon) == (grid.lat, grid.lon)
    # The GCJ-02 shift in Beijing is a few hundred metres: the two points must differ.
    assert abs(gcj.lat - gcj.wgs84_lat) > 5e-4 and abs(gcj.lon - gcj.wgs84_lon) > 5e-3
    assert wgs.crs == CRS.WGS84
    assert (wgs.lat, wgs.lon) == (wgs.wgs84_lat, wgs.wgs84_lon) == (grid.lat, grid.lon)


def test_evidence_hash_covers_the_canonical_json_of_its_data() -> None:
    ch = change(incident())
    case = builder().case(ch)

    [ev] = case.evidence
    assert ev.kind == "readings"
    assert ev.data == [
        ["2026-07-21T00:10:00+00:00", 10.5],
        ["2026-07-21T00:20:00+00:00", 21.5],
        ["2026-07-21T00:30:00+00:00", 32.5],
    ]
    assert ev == ch.evidence[0]
    assert ev.sha256 == canonical_sha256(ev.data)
    # The hash survives the wire: the JSON the platform receives hashes the same.
    wire = json.loads(case.model_dump_json())
    assert canonical_sha256(wire["evidence"][0]["data"]) == ev.sha256


def test_evidence_hash_is_canonical_whatever_the_key_order() -> None:
    inc = incident()
    data = {"water_cm": 22, "device": "rg-0001", "note": "下凹桥积水"}
    same = {"note": "下凹桥积水", "device": "rg-0001", "water_cm": 22}
    ev = Evidence.of_data("readings", "depth", data)

    case = builder().case(IncidentChange("opened", inc, OPENED, (ev,)))

    assert case.evidence[0].sha256 == canonical_sha256(data) == canonical_sha256(same)
    assert case.evidence[0].sha256 == Evidence.of_data("readings", "depth", same).sha256


def test_case_key_is_stable_for_the_same_incident() -> None:
    inc = incident()
    first = builder().case(change(inc))
    # A restart: new builder, incident rebuilt from the same data, later evidence.
    again = builder().case(change(incident(), at=OPENED + timedelta(minutes=5)))
    other = builder().case(change(incident(opened_at=OPENED + timedelta(hours=1))))

    assert first.case_key == again.case_key == case_key(inc.incident_id)
    assert first.case_key.startswith("gs-") and len(first.case_key) == 35
    assert first.incident_id == inc.incident_id
    assert other.case_key != first.case_key


def test_raised_update_is_keyed_by_case_and_level() -> None:
    inc = incident()
    key = case_key(inc.incident_id)
    at = OPENED + timedelta(minutes=15)
    orange = replace(inc, level="orange", peak_value=55.0, updated_at=at)

    up = builder().update(change(orange, "raised", at))

    assert up.update_key == f"{key}:raised:orange"
    assert up.case_key == key
    assert up.kind == "level_raised"
    assert (up.warning_level, up.severity) == ("orange", "urgent")
    assert up.at == datetime(2026, 7, 21, 8, 45, tzinfo=SHANGHAI)
    assert up.peak_value == 55.0
    assert up.evidence and up.evidence[0].sha256 == canonical_sha256(up.evidence[0].data)
    # Raising to the same level again is the same message; to another level a new one.
    assert builder().update(change(orange, "raised", at)).update_key == up.update_key
    red = replace(inc, level="red", peak_value=80.0)
    assert builder().update(change(red, "raised", at)).update_key == f"{key}:raised:red"


def test_cleared_update_is_keyed_by_case() -> None:
    inc = incident()
    at = OPENED + timedelta(hours=1)

    up = builder().update(change(replace(inc, closed_at=at), "cleared", at))

    assert up.update_key == f"{case_key(inc.incident_id)}:cleared"
    assert up.case_key == case_key(inc.incident_id)
    assert up.kind == "condition_cleared"
    assert up.at.isoformat() == "2026-07-21T09:30:00+08:00"


def test_unknown_grid_is_refused() -> None:
    with pytest.raises(KeyError, match="110102099001001"):
        builder().case(change(incident("110102099001001")))


def test_a_batch_sends_one_update_per_summary_not_one_per_child_that_joined() -> None:
    """Updates are built from the incidents' state after the batch: a superseded "updated"
    change would send the later one's note again under another key."""
    district, street, grid = incident("110102012001001"), incident("110102012001002"), incident()
    t = [OPENED + timedelta(seconds=s) for s in range(6)]
    first = IncidentChange("updated", district, t[0])
    proof = IncidentChange("updated", street, t[1], (readings(street),))  # evidence: never dropped
    opened = IncidentChange("opened", grid, t[2])
    raised = IncidentChange("raised", district, t[3])
    street_last = IncidentChange("updated", street, t[4])
    last = IncidentChange("updated", district, t[5])
    batch = [first, proof, opened, raised, street_last, last]
    assert updates_to_send(batch) == [proof, opened, raised, street_last, last]
    assert updates_to_send([first]) == [first]
    assert updates_to_send([]) == []
