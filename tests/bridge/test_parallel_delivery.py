"""One worker with several messages in flight: still each case once, each grid in order.

The sending threads take only a backlog; a pass of a few rows goes out on the delivery's
own thread, so that a storm's steady flow of cases does not compete with ingest.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bridge.delivery import CaseDelivery
from bridge.outbox import CaseOutbox
from gridsense.config import BridgeConfig
from gridsense.db import connect
from gridsense.model.case import CaseUpdate, GridCase
from gridsense.txn import transaction
from simulators.platform import FaultConfig
from tests.bridge.conftest import ALL_GRIDS, StartPlatform
from tests.bridge.test_pg_outbox import GridWatch, workload

pytestmark = pytest.mark.integration


class ThreadWatch(GridWatch):
    """``GridWatch``, also counting the threads the messages were sent from."""

    threads: ClassVar[Counter[str]] = Counter()

    def _watch(self, grid: str, call: Any) -> Any:
        with self.lock:
            self.threads[threading.current_thread().name.split("_")[0]] += 1
        return super()._watch(grid, call)


def queue(
    state_db: sqlite3.Connection, messages: list[GridCase | CaseUpdate]
) -> tuple[list[GridCase], CaseOutbox]:
    """Put the messages in the outbox, and reset what the adapters note."""
    cases = [m for m in messages if isinstance(m, GridCase)]
    ThreadWatch.threads = Counter()
    GridWatch.grid_of = {c.case_key: c.place.grid_code for c in cases}
    GridWatch.overlaps = []
    outbox = CaseOutbox(state_db)
    with transaction(state_db):
        for m in messages:
            if isinstance(m, GridCase):
                outbox.enqueue_case(m)
            else:
                outbox.enqueue_update(m, GridWatch.grid_of[m.case_key])
    return cases, outbox


def test_eight_in_flight_file_each_case_once_and_keep_grid_order(
    platform_factory: StartPlatform, state_db: sqlite3.Connection, tmp_path: Path
) -> None:
    platform = platform_factory(faults=FaultConfig(error_rate=0.2, seed=4))
    messages = workload(ALL_GRIDS, 2)  # 30 cases, 60 updates over 15 grids
    cases, outbox = queue(state_db, messages)
    cfg = BridgeConfig(url=platform.url, timeout_s=5.0, backoff_initial_s=0.02, backoff_max_s=0.2)
    delivery = CaseDelivery(
        connect(tmp_path / "state.db"), ThreadWatch(cfg), cfg, seed=2, concurrency=8, backlog_rows=2
    )

    give_up = time.monotonic() + 60
    while delivery.depth() and time.monotonic() < give_up:
        if not delivery.deliver_due():
            time.sleep(0.01)
    delivery.stop()

    assert sorted(c.external_id for c in platform.store.cases()) == sorted(c.case_key for c in cases)
    for case in cases:
        assert list(platform.store.by_key(case.case_key).updates) == [
            f"{case.case_key}:raised:orange",
            f"{case.case_key}:cleared",
        ]
    assert GridWatch.overlaps == []
    assert ThreadWatch.threads["case-send"] > 0
    assert delivery.stats.retried > 0
    assert delivery.stats.delivered == len(messages)
    assert outbox.counts() == {"delivered": len(messages)}


def test_passes_smaller_than_a_backlog_go_out_on_the_delivery_thread(
    platform_factory: StartPlatform, state_db: sqlite3.Connection, tmp_path: Path
) -> None:
    platform = platform_factory()
    messages = workload(ALL_GRIDS, 1)  # passes of at most 15 rows, one per grid
    cases, outbox = queue(state_db, messages)
    cfg = BridgeConfig(url=platform.url, timeout_s=5.0)
    delivery = CaseDelivery(connect(tmp_path / "state.db"), ThreadWatch(cfg), cfg, concurrency=8)
    give_up = time.monotonic() + 60
    while delivery.depth() and time.monotonic() < give_up:
        delivery.deliver_due()
    delivery.stop()
    assert sorted(c.external_id for c in platform.store.cases()) == sorted(c.case_key for c in cases)
    assert outbox.counts() == {"delivered": len(messages)}
    assert dict(ThreadWatch.threads) == {threading.current_thread().name.split("_")[0]: len(messages)}
