"""Status sync: the configurable status map, final statuses, and the policies when the platform
and the sensors disagree (closed while the problem persists; cleared before dispatch)."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bridge.config import StatusMapConfig, StatusSyncConfig
from bridge.contract import PlatformStatus
from bridge.delivery import CaseDelivery
from bridge.native_adapter import NativeRestAdapter
from bridge.outbox import CaseOutbox
from bridge.status_sync import SqliteIncidents, StatusSync, linked_case_key
from gridsense.config import BridgeConfig
from gridsense.db import connect
from gridsense.model.case import GridCase
from gridsense.model.worktime import WorkCalendar
from gridsense.txn import transaction
from simulators.platform import PlatformConfig, WorkflowConfig
from tests.bridge.conftest import ScriptedServer, StartPlatform, build_cases, enqueue, wait_until
from tests.bridge.test_case_builder import builder, change, incident

pytestmark = pytest.mark.integration


def delivery_to(
    tmp_path: Path, url: str, sync: StatusSyncConfig | None = None, calendar: WorkCalendar | None = None
) -> CaseDelivery:
    cfg = BridgeConfig(url=url, timeout_s=5.0, backoff_initial_s=0.05, backoff_max_s=0.5)
    return CaseDelivery(
        connect(tmp_path / "state.db"),
        NativeRestAdapter(cfg),
        cfg,
        seed=1,
        status_sync=sync,
        calendar=calendar,
    )


def drain(delivery: CaseDelivery) -> None:
    give_up = time.monotonic() + 15
    while delivery.depth() and time.monotonic() < give_up:
        if not delivery.deliver_due():
            time.sleep(0.05)
    assert delivery.depth() == 0


def filed_case(conn: sqlite3.Connection, platform_id: str = "X-1") -> GridCase:
    """A case the bridge has filed under ``platform_id``."""
    [case] = build_cases(1)
    enqueue(conn, [case])
    outbox = CaseOutbox(conn)
    [row] = outbox.due()
    outbox.delivered(row, platform_id)
    return case


def record_incident(conn: sqlite3.Connection, case: GridCase, closed: bool) -> None:
    """The incident as the rules store it: open (closed_at NULL) or closed."""
    conn.execute(
        "INSERT INTO incidents (incident_id, rule_id, subject, grid_code, category_ref, source, opened_at,"
        " updated_at, closed_at, level, peak_value, unit, window_s, state)"
        " VALUES (?, 'rain-1h', ?, ?, 'event:0111', 'sensor', ?, ?, ?, 'yellow', 32.5, 'mm', 3600, '{}')",
        (
            case.incident_id,
            case.place.grid_code,
            case.place.grid_code,
            case.filed_at.isoformat(),
            case.filed_at.isoformat(),
            (case.filed_at + timedelta(hours=1)).isoformat() if closed else None,
        ),
    )


def case_statuses(conn: sqlite3.Connection) -> dict[str, tuple[str, int | None]]:
    return {k: (s, c) for k, s, c in conn.execute("SELECT case_key, status, status_code FROM cases")}


@pytest.mark.parametrize(
    ("name", "code", "ours"),
    [
        ("待处置", None, "派遣"),  # 待处置 / 处置中 / 已办结 / 已驳回
        ("处置中", None, "处置"),
        ("已办结", None, "结案"),
        ("已驳回", None, "作废"),
        ("待复核", None, "核查"),  # 新建 / 立案 / 处置中 / 处置结束 / 待复核 / 已复核 / 结案
        ("缓办/挂账", 8, "缓办"),
        ("STATE_6", 6, "结案"),  # an unknown name falls back to the most common deployment's codes
    ],
)
def test_the_default_map_reads_real_platforms_status_sets(
    scripted_platform: ScriptedServer,
    state_db: sqlite3.Connection,
    tmp_path: Path,
    name: str,
    code: int | None,
    ours: str,
) -> None:
    answer = {"case_id": "X-1", "status": name, "status_code": code}
    url, _ = scripted_platform(
        {("GET", "/api/v1/cases/X-1"): (200, "application/json", json.dumps(answer).encode())}
    )
    case = filed_case(state_db)

    changed = delivery_to(tmp_path, url).poll_status()

    assert changed == 1
    assert case_statuses(state_db)[case.case_key] == (ours, code)


def test_an_unknown_status_changes_nothing_is_counted_and_a_configured_map_fixes_it(
    scripted_platform: ScriptedServer,
    state_db: sqlite3.Connection,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    answer = {"case_id": "X-1", "status": "审核中", "status_code": 42}
    url, _ = scripted_platform(
        {("GET", "/api/v1/cases/X-1"): (200, "application/json", json.dumps(answer).encode())}
    )
    case = filed_case(state_db)
    delivery = delivery_to(tmp_path, url)

    with caplog.at_level(logging.ERROR, "gridsense.bridge.status"):
        assert delivery.poll_status() == 0

    assert delivery.stats.unknown_status == 1
    assert case_statuses(state_db)[case.case_key] == ("filed", None)
    assert "unknown platform status" in caplog.text and "审核中" in caplog.text

    custom = StatusSyncConfig(status_map=StatusMapConfig(names={"审核中": "核查"}, codes={}))
    assert delivery_to(tmp_path, url, custom).poll_status() == 1
    assert case_statuses(state_db)[case.case_key] == ("核查", 42)


def test_a_closed_case_is_never_reopened(
    state_db: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    case = filed_case(state_db)
    sync = StatusSync(CaseOutbox(state_db))
    assert sync.apply(case.case_key, PlatformStatus("X-1", "结案", 6)) == "changed"

    with caplog.at_level(logging.WARNING, "gridsense.bridge.status"):
        outcome = sync.apply(case.case_key, PlatformStatus("X-1", "处置", 4))

    assert outcome == "final"
    assert sync.stats.after_final == 1
    assert case_statuses(state_db)[case.case_key] == ("结案", 6)
    assert "never reopened" in caplog.text
    assert sync.apply(case.case_key, PlatformStatus("X-1", "结案", 6)) == "unchanged"


def poll_until_closed(delivery: CaseDelivery, conn: sqlite3.Connection, key: str) -> None:
    def closed() -> bool:
        delivery.poll_status()
        return case_statuses(conn)[key][0] == "结案"

    assert wait_until(closed, 10)


def test_a_case_closed_while_the_sensors_still_show_the_problem_files_a_linked_case(
    platform_factory: StartPlatform, state_db: sqlite3.Connection, tmp_path: Path
) -> None:
    platform = platform_factory()
    [case] = build_cases(1)
    enqueue(state_db, [case])
    record_incident(state_db, case, closed=False)
    # The sensors are asked 1 s after the closure (an hour by default).
    sync = StatusSyncConfig(closed_while_active_grace_s=1.0)
    delivery = delivery_to(tmp_path, platform.url, sync, calendar=WorkCalendar.default())
    drain(delivery)

    poll_until_closed(delivery, state_db, case.case_key)
    new_key = linked_case_key(case.case_key)
    assert CaseOutbox(state_db).platform_id(new_key) == (None, "unknown")  # not yet: grace
    # The bridge restarts meanwhile; the new process still finds the closure.
    delivery = delivery_to(tmp_path, platform.url, sync, calendar=WorkCalendar.default())
    time.sleep(1.1)
    delivery.poll_status()
    assert CaseOutbox(state_db).platform_id(new_key) == (None, "queued")
    # The sensors clear before the new case closes: no third case.
    state_db.execute(
        "UPDATE incidents SET closed_at = ? WHERE incident_id = ?",
        ("2026-07-21T10:00:00+08:00", case.incident_id),
    )
    drain(delivery)
    poll_until_closed(delivery, state_db, new_key)

    stored = platform.store.cases()
    assert [c.external_id for c in stored] == [case.case_key, new_key]
    linked = stored[1].case
    assert linked.linked_cases == [case.case_key]
    assert linked.incident_id == case.incident_id
    assert linked.title_zh.endswith("（原案卷已结案，问题仍在）")
    assert case.case_key in linked.description_zh
    assert linked.deadline - linked.filed_at == timedelta(hours=2)  # 0111: 2 clock hours, from now
    assert linked.filed_at > case.filed_at
    assert case_statuses(state_db)[case.case_key] == ("结案", 6)  # the closed case stays closed
    assert delivery.sync.stats.linked_cases == 1


def test_the_linked_case_is_filed_once_however_often_the_closure_is_seen(
    state_db: sqlite3.Connection, tmp_path: Path
) -> None:
    case = filed_case(state_db)
    record_incident(state_db, case, closed=False)
    # The poller and the webhook receiver, each on its own connection, both see the closure.
    other = connect(tmp_path / "state.db")
    at_once = StatusSyncConfig(closed_while_active_grace_s=0)
    poller = StatusSync(CaseOutbox(state_db), at_once, incidents=SqliteIncidents(state_db))
    receiver = StatusSync(CaseOutbox(other), at_once, incidents=SqliteIncidents(other))

    assert poller.apply(case.case_key, PlatformStatus("X-1", "结案", 6)) == "changed"
    assert receiver.apply(case.case_key, PlatformStatus("X-1", "结案", 6)) == "unchanged"

    assert CaseOutbox(state_db).counts() == {"delivered": 1, "pending": 1}
    assert poller.stats.linked_cases + receiver.stats.linked_cases == 1
    # Even a second closure report on a fresh sync cannot queue a second linked case.
    other.execute("UPDATE cases SET status = 'filed' WHERE case_key = ?", (case.case_key,))
    receiver.apply(case.case_key, PlatformStatus("X-1", "结案", 6))
    assert CaseOutbox(state_db).counts() == {"delivered": 1, "pending": 1}
    other.close()


@pytest.mark.parametrize("incident_closed", [True, False])
def test_no_linked_case_when_the_problem_is_gone_or_the_policy_only_logs(
    state_db: sqlite3.Connection, caplog: pytest.LogCaptureFixture, incident_closed: bool
) -> None:
    case = filed_case(state_db)
    record_incident(state_db, case, closed=incident_closed)
    sync = StatusSync(
        CaseOutbox(state_db),
        StatusSyncConfig(on_closed_while_active="log_only", closed_while_active_grace_s=0),
        incidents=SqliteIncidents(state_db),
    )

    with caplog.at_level(logging.WARNING, "gridsense.bridge.status"):
        sync.apply(case.case_key, PlatformStatus("X-1", "结案", 6))

    assert CaseOutbox(state_db).counts() == {"delivered": 1}
    assert ("still active (policy log_only)" in caplog.text) is (not incident_closed)


def clear_before_dispatch(
    platform_factory: StartPlatform,
    conn: sqlite3.Connection,
    tmp_path: Path,
    withdraw: bool,
    dispatched: bool,
) -> tuple[CaseDelivery, GridCase, str]:
    # Steps of 5 s: a case filed now stays 立案 for 5 s, unless the test waits for dispatch.
    now = [datetime.now().astimezone()]
    platform = platform_factory(
        PlatformConfig(workflow=WorkflowConfig(step_delay_s=(5.0, 5.0))), clock=lambda: now[0]
    )
    inc = incident()
    case = builder().case(change(inc))
    cleared = builder().update(change(inc, "cleared"))
    enqueue(conn, [case])
    delivery = delivery_to(tmp_path, platform.url, StatusSyncConfig(withdraw_on_clear=withdraw))
    drain(delivery)
    if dispatched:
        now[0] += timedelta(seconds=6)
        delivery.poll_status()
    with transaction(conn):
        CaseOutbox(conn).enqueue_update(cleared, inc.grid_code)
    drain(delivery)
    stored = platform.store.by_key(case.case_key)
    assert list(stored.updates) == [cleared.update_key]  # annotated in every case
    return delivery, case, stored.status(now[0]).value


def test_a_condition_cleared_before_dispatch_is_only_annotated_by_default(
    platform_factory: StartPlatform, state_db: sqlite3.Connection, tmp_path: Path
) -> None:
    delivery, _, status = clear_before_dispatch(platform_factory, state_db, tmp_path, False, False)

    assert status == "立案"
    assert delivery.stats.withdrawn == 0


def test_withdraw_on_clear_voids_a_case_not_yet_dispatched(
    platform_factory: StartPlatform, state_db: sqlite3.Connection, tmp_path: Path
) -> None:
    delivery, case, status = clear_before_dispatch(platform_factory, state_db, tmp_path, True, False)

    assert status == "作废"
    assert delivery.stats.withdrawn == 1
    delivery.poll_status()
    assert case_statuses(state_db)[case.case_key] == ("作废", 7)


def test_withdraw_on_clear_leaves_a_dispatched_case_alone(
    platform_factory: StartPlatform, state_db: sqlite3.Connection, tmp_path: Path
) -> None:
    delivery, _, status = clear_before_dispatch(platform_factory, state_db, tmp_path, True, True)

    assert status == "派遣"
    assert delivery.stats.withdrawn == 0


def test_by_default_the_sensors_get_an_hour_before_a_closure_is_questioned(
    state_db: sqlite3.Connection,
) -> None:
    case = filed_case(state_db)
    record_incident(state_db, case, closed=False)
    sync = StatusSync(CaseOutbox(state_db), incidents=SqliteIncidents(state_db))

    sync.apply(case.case_key, PlatformStatus("X-1", "结案", 6))

    assert sync.check_closures() == 0
    assert CaseOutbox(state_db).counts() == {"delivered": 1}
    assert StatusSyncConfig().closed_while_active_grace_s == 3600


def test_a_chain_of_closures_files_one_case_each_citing_the_one_before(state_db: sqlite3.Connection) -> None:
    case = filed_case(state_db, "X-1")
    record_incident(state_db, case, closed=False)
    outbox = CaseOutbox(state_db)
    sync = StatusSync(outbox, StatusSyncConfig(closed_while_active_grace_s=0), SqliteIncidents(state_db))

    sync.apply(case.case_key, PlatformStatus("X-1", "结案", 6))
    [second_row] = outbox.due()
    outbox.delivered(second_row, "X-2")
    sync.apply(second_row.case_key, PlatformStatus("X-2", "结案", 6))
    [third_row] = outbox.due()

    second = GridCase.model_validate_json(second_row.body)
    third = GridCase.model_validate_json(third_row.body)
    assert (second.case_key, third.case_key) == (
        linked_case_key(case.case_key),
        linked_case_key(second.case_key),
    )
    assert third.linked_cases == [second.case_key]
    assert third.title_zh == case.title_zh + "（原案卷已结案，问题仍在）"
    assert third.description_zh.count("原案卷") == 1 and second.case_key in third.description_zh
    assert third.description_zh.startswith(case.description_zh)
