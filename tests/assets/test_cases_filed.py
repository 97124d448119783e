"""What the platform receives: the asset stage's incident changes built into grid cases and
case updates by the bridge's own case builder, with the proposed category rows added."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.case_builder import CaseBuilder
from gridsense.config import BridgeConfig, packaged
from gridsense.model.catalog import Catalog
from gridsense.model.registry import GridRegistry
from gridsense.model.worktime import WorkCalendar
from tests.assets.harness import Harness

#: The rows this stage asks the lead to add to gridsense/data/categories.csv.
PROPOSED_ROWS = [
    "event,0601,标识二维码疑似伪造或篡改,suspected forged or tampered asset QR tag,"
    "1,working_days,urgent,street,no"
]

NOW = datetime(2026, 5, 12, 0, 30, tzinfo=UTC)  # Tuesday 08:30 in Beijing, no holiday near


@pytest.fixture
def builder(tmp_path: Path, grids: GridRegistry) -> CaseBuilder:
    table = tmp_path / "categories.csv"
    base = packaged("categories.csv").read_text(encoding="utf-8").rstrip("\n")
    table.write_text(base + "\n" + "\n".join(r for r in PROPOSED_ROWS if r.split(",")[1] not in base) + "\n")
    return CaseBuilder(BridgeConfig(), Catalog.load(table), grids, WorkCalendar.default())


def test_every_category_the_stage_files_is_in_the_table(harness: Harness, builder: CaseBuilder) -> None:
    catalog = builder._catalog
    for ref in harness.stage.categories:
        catalog.get(ref)


def test_a_grade_one_tree_case_is_urgent_routed_to_the_district_and_names_the_tree(
    harness: Harness, builder: CaseBuilder
) -> None:
    tree = "1101020401000001"
    [change] = harness.run(
        [harness.ping(tree, maintainer="t-xc-01", ts=NOW, condition="leaning")], NOW
    ).changes
    case = builder.case(change)
    assert (case.category.kind, case.category.code, case.subject) == ("component", "0401", tree)
    assert case.source == "qr" and case.severity == "urgent" and case.routing_level == "district"
    assert case.deadline_basis == "1 working_days"
    a = harness.asset(tree)
    assert (case.place.wgs84_lat, case.place.wgs84_lon) == (a.lat, a.lon)
    assert "银锭桥古槐" in case.description_zh and case.evidence[0].data["asset_id"] == tree


def test_a_kiosk_case_is_routine_with_a_longer_deadline(harness: Harness, builder: CaseBuilder) -> None:
    tree = "1101020401000001"
    [tree_change] = harness.run(
        [harness.ping(tree, maintainer="t-xc-01", ts=NOW, condition="pest")], NOW
    ).changes
    kiosk = "1101020121000001"
    [change] = harness.run(
        [harness.ping(kiosk, maintainer="m-sch-01", ts=NOW, condition="graffiti")], NOW
    ).changes
    case = builder.case(change)
    assert (case.category.code, case.severity, case.routing_level) == ("0121", "routine", "community")
    assert case.deadline_basis == "2 working_days" and builder.case(tree_change).deadline < case.deadline


def test_verification_arrives_as_a_verification_update_of_the_same_case(
    harness: Harness, builder: CaseBuilder
) -> None:
    kiosk = "1101020121000001"
    [opened] = harness.run(
        [harness.ping(kiosk, maintainer="m-sch-01", ts=NOW, condition="damaged")], NOW
    ).changes
    later = NOW + timedelta(hours=5)
    [verified] = harness.run([harness.ping(kiosk, maintainer="i-xc-02", ts=later)], later).changes
    update = builder.update(verified)
    assert update.case_key == builder.case(opened).case_key
    assert update.kind == "verification" and update.evidence[0].data["role"] == "verification"


def test_cart_and_tamper_cases_build(harness: Harness, builder: CaseBuilder) -> None:
    from simulators.patrol import offset

    cart = harness.asset("1101020720000001")
    away = offset(cart.lat, cart.lon, 200, 0)
    [zone] = harness.run([harness.ping(cart.asset_id, maintainer="i-xc-02", ts=NOW, at=away)], NOW).changes
    case = builder.case(zone)
    assert (case.category.kind, case.category.code) == ("event", "0504")
    assert (case.place.wgs84_lat, case.place.wgs84_lon) == pytest.approx(away)
    kiosk = "1101020121000001"
    forged = "GS1:1101020121000001:K2:AAAAAAAAAAAAAAAA"
    msgs = [
        harness.ping(kiosk, maintainer="m-sch-01", ts=NOW - timedelta(minutes=i), qr=forged) for i in range(3)
    ]
    [tamper] = harness.run(msgs, NOW).changes
    assert builder.case(tamper).category.code == "0601"
