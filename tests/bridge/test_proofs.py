"""Proofs of "every incident becomes exactly one case", counted on the real platform over a socket.

An outage mid-stream (3 s here instead of the 30 s a real one might last, to keep the
suite short), the bridge SIGKILLed while a create's answer is on its way, and a refusal
dead-lettered with the platform's answer and replayed with the CLI after the config fix.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from bridge.cli import register
from bridge.delivery import CaseDelivery
from bridge.native_adapter import NativeRestAdapter
from bridge.outbox import CaseOutbox
from gridsense.config import BridgeConfig
from gridsense.db import connect
from gridsense.model.case import GridCase
from simulators.platform import FaultConfig, PlatformConfig, PlatformServer
from tests.bridge.conftest import (
    ALL_GRIDS,
    FAST,
    StartPlatform,
    build_cases,
    enqueue,
    outbox_rows,
    wait_until,
)
from tests.bridge.test_case_builder import OPENED, builder, change, incident

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
OUTAGE_S = 3.0


def assert_each_filed_once(platform: PlatformServer, conn: sqlite3.Connection, cases: list[GridCase]) -> None:
    stored = platform.store.cases()
    assert sorted(c.external_id for c in stored) == sorted(c.case_key for c in cases)
    assert CaseOutbox(conn).counts() == {"delivered": len(cases)}
    assert dict(conn.execute("SELECT case_key, platform_case_id FROM cases")) == {
        c.external_id: c.case_id for c in stored
    }


def delivered(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'delivered'").fetchone()[0])


def test_an_outage_mid_stream_delays_but_files_every_case_once(
    platform_factory: StartPlatform, state_db: sqlite3.Connection, tmp_path: Path
) -> None:
    platform = platform_factory(faults=FaultConfig(slow_s=0.02))
    # Four incidents in each of the 15 demo grids: a pass takes one per grid, so four passes.
    build = builder()
    cases = [
        build.case(change(incident(g, opened_at=OPENED + timedelta(hours=i))))
        for i in range(4)
        for g in ALL_GRIDS
    ]
    enqueue(state_db, cases)
    cfg = BridgeConfig(
        url=platform.url, timeout_s=5.0, backoff_initial_s=0.05, backoff_max_s=0.5, poll_interval_s=0.05
    )
    delivery = CaseDelivery(connect(tmp_path / "state.db"), NativeRestAdapter(cfg), cfg, seed=3)
    delivery.start()
    try:
        assert wait_until(lambda: len(platform.store.cases()) >= 20, 10)
        platform.set_down(True)
        time.sleep(0.2)  # a request already past the outage switch may still land
        down_at = len(platform.store.cases())
        time.sleep(OUTAGE_S - 0.2)
        during = len(platform.store.cases())
        opened = delivery.breaker.opened_at is not None
        platform.set_down(False)
        assert wait_until(lambda: delivery.depth() == 0, 20)
    finally:
        delivery.stop()

    assert during == down_at < len(cases)  # nothing got through while the platform was down
    assert opened  # and the breaker stopped hammering it
    assert delivery.stats.retried > 0
    assert_each_filed_once(platform, state_db, cases)


def test_a_bridge_killed_while_an_answer_is_on_its_way_files_no_case_twice_and_loses_none(
    platform_factory: StartPlatform, state_db: sqlite3.Connection, tmp_path: Path
) -> None:
    # Each create is stored at once but answered 0.3 s later: a kill then leaves outcomes unknown
    # (a pass's outcomes are committed together at its end, so several may be).
    platform = platform_factory(faults=FaultConfig(response_delay_s=0.3))
    cases = build_cases(10)
    enqueue(state_db, cases)
    db = str(tmp_path / "state.db")
    log = tmp_path / "child.log"

    def child() -> subprocess.Popen[bytes]:
        with log.open("ab") as fh:
            return subprocess.Popen(
                [sys.executable, "-m", "tests.bridge.delivery_child", db, platform.url],
                cwd=REPO,
                stdout=fh,
                stderr=fh,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )

    first = child()
    mid_flight = wait_until(
        lambda: len(platform.store.cases()) >= 4 and len(platform.store.cases()) > delivered(state_db),
        30,
        0.01,
    )
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    stored_at_kill, delivered_at_kill = len(platform.store.cases()), delivered(state_db)

    assert mid_flight, log.read_text()
    assert stored_at_kill > delivered_at_kill  # cases filed whose answers the bridge never recorded
    assert first.returncode == -signal.SIGKILL

    platform.faults.config = FaultConfig()
    second = child()
    assert second.wait(60) == 0, log.read_text()

    assert_each_filed_once(platform, state_db, cases)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="gridsense")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    code = int(args.func(args))
    return code, capsys.readouterr().out


def test_a_refused_case_is_dead_lettered_with_the_answer_and_replayed_after_the_fix(
    platform_factory: StartPlatform,
    state_db: sqlite3.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    platform = platform_factory(PlatformConfig(workflow=FAST, api_token="the-right-token"))
    cases = build_cases(3)
    enqueue(state_db, cases)
    db = str(tmp_path / "state.db")

    def delivery(token: str) -> CaseDelivery:
        cfg = BridgeConfig(url=platform.url, token=SecretStr(token), timeout_s=5.0, backoff_initial_s=0.05)
        return CaseDelivery(connect(db), NativeRestAdapter(cfg), cfg)

    wrong = delivery("a-stale-token")
    while wrong.depth():
        wrong.deliver_due()

    assert wrong.stats.rejected == 3 and platform.store.cases() == []
    assert {(s, a) for s, a, _ in outbox_rows(state_db).values()} == {("rejected", 1)}
    code, listing = cli(capsys, "bridge", "deadletters", "list", "--db", db)
    assert code == 0 and "3 refused row(s)" in listing
    assert all(c.case_key in listing for c in cases) and "http_401" in listing
    [seq, *_] = [d.seq for d in CaseOutbox(state_db).dead_letters()]
    code, shown = cli(capsys, "bridge", "deadletters", "show", str(seq), "--db", db)
    assert code == 0
    assert 'error:       http_401: {"detail":"missing or wrong bearer token"}' in shown
    assert json.loads(shown.split("body:\n", 1)[1])["case_key"] == cases[0].case_key

    # The operator fixes the token in the config, then replays every refused row.
    code, replayed = cli(capsys, "bridge", "deadletters", "replay", "--all", "--db", db)
    assert code == 0 and replayed.count("replayed ") == 3
    fixed = delivery("the-right-token")
    while fixed.depth():
        fixed.deliver_due()

    assert_each_filed_once(platform, state_db, cases)
    assert cli(capsys, "bridge", "deadletters", "list", "--db", db)[1].endswith("0 refused row(s)\n")
