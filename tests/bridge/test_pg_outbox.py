"""Several delivery workers share one PostgreSQL outbox: each case filed once, each grid in order.

Real PostgreSQL (a fresh schema per test) and the real reference platform over a socket.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import Any, ClassVar

import pytest

from bridge.delivery import CaseDelivery
from bridge.native_adapter import NativeRestAdapter
from bridge.pg_outbox import PgCaseOutbox
from gridsense.config import BridgeConfig
from gridsense.model.case import CaseUpdate, GridCase
from simulators.platform import FaultConfig
from tests.bridge.conftest import ALL_GRIDS, StartPlatform
from tests.bridge.test_case_builder import OPENED, builder, change, incident
from tests.fixtures.postgres import PgSchema

pytestmark = pytest.mark.integration


def workload(grids: list[str], per_grid: int) -> list[GridCase | CaseUpdate]:
    """Per grid, ``per_grid`` incidents one hour apart, each: case, level raised, cleared."""
    messages: list[GridCase | CaseUpdate] = []
    build = builder()
    for grid in grids:
        for i in range(per_grid):
            inc = incident(grid, opened_at=OPENED + timedelta(hours=i))
            at = inc.opened_at + timedelta(minutes=10)
            messages.append(build.case(change(inc)))
            messages.append(build.update(change(replace(inc, level="orange"), "raised", at)))
            messages.append(build.update(change(inc, "cleared", at + timedelta(minutes=30))))
    return messages


def enqueue_all(outbox: PgCaseOutbox, messages: list[GridCase | CaseUpdate], grid_of: dict[str, str]) -> None:
    with outbox.transaction():
        for m in messages:
            if isinstance(m, GridCase):
                assert outbox.enqueue_case(m)
            else:
                assert outbox.enqueue_update(m, grid_of[m.case_key])


class GridWatch(NativeRestAdapter):
    """The native adapter, noting any moment two messages of one grid are in flight at once."""

    # Class-wide on purpose: shared by the adapters of both workers.
    lock: ClassVar[threading.Lock] = threading.Lock()
    in_flight: ClassVar[Counter[str]] = Counter()
    overlaps: ClassVar[list[str]] = []
    grid_of: ClassVar[dict[str, str]] = {}

    def _watch(self, grid: str, call: Any) -> Any:
        with self.lock:
            self.in_flight[grid] += 1
            if self.in_flight[grid] > 1:
                self.overlaps.append(grid)
        try:
            return call()
        finally:
            with self.lock:
                self.in_flight[grid] -= 1

    def create(self, case: GridCase) -> str:
        return str(self._watch(case.place.grid_code, lambda: super(GridWatch, self).create(case)))

    def update(self, platform_case_id: str, update: CaseUpdate) -> None:
        grid = self.grid_of[update.case_key]
        self._watch(grid, lambda: super(GridWatch, self).update(platform_case_id, update))


def test_claims_take_each_grid_head_once_across_workers(pg_schema: PgSchema) -> None:
    a = PgCaseOutbox(pg_schema.connect(), "worker-a", lease_s=60)
    b = PgCaseOutbox(pg_schema.connect(), "worker-b", lease_s=60)
    messages = workload(ALL_GRIDS[:3], 2)
    grid_of = {m.case_key: m.place.grid_code for m in messages if isinstance(m, GridCase)}
    enqueue_all(a, messages, grid_of)

    taken_by_a = a.due(limit=2)
    taken_by_b = b.due()

    # a took two grid heads; b gets the third grid's head and nothing behind a's claims.
    assert len(taken_by_a) == 2 and len(taken_by_b) == 1
    assert {r.grid_code for r in taken_by_a}.isdisjoint({r.grid_code for r in taken_by_b})
    assert {r.op for r in [*taken_by_a, *taken_by_b]} == {"create"}
    assert a.due() == [] and b.due() == []

    a.release(taken_by_a[1:])
    assert [r.seq for r in b.due()] == [taken_by_a[1].seq]


def test_a_dead_workers_claims_are_taken_over_when_the_lease_ends(pg_schema: PgSchema) -> None:
    a = PgCaseOutbox(pg_schema.connect(), "worker-a", lease_s=1.0)
    b = PgCaseOutbox(pg_schema.connect(), "worker-b", lease_s=60)
    messages = workload(ALL_GRIDS[:1], 1)
    enqueue_all(a, messages, {messages[0].case_key: ALL_GRIDS[0]})
    [head] = a.due()  # ... and worker a dies before settling it

    assert b.due() == []
    time.sleep(1.2)
    [taken] = b.due()
    assert taken.seq == head.seq

    # The dead worker's late answer cannot undo the new holder's claim.
    a.retry_later(head, 60, "late answer from a worker that lost its lease")
    b.delivered(taken, "BJ-000001")
    [nxt] = b.due()
    assert nxt.op == "update" and nxt.attempts == 0
    assert b.counts() == {"delivered": 1, "pending": 2}


def test_two_workers_deliver_each_case_once_and_each_grid_in_order(
    pg_schema: PgSchema, platform_factory: StartPlatform
) -> None:
    platform = platform_factory(faults=FaultConfig(error_rate=0.2, seed=11))
    grids = ALL_GRIDS[:12]
    messages = workload(grids, 4)  # 48 cases, 96 updates
    cases = [m for m in messages if isinstance(m, GridCase)]
    GridWatch.grid_of = {c.case_key: c.place.grid_code for c in cases}
    GridWatch.overlaps = []
    enqueue_all(PgCaseOutbox(pg_schema.connect(), "pipeline"), messages, GridWatch.grid_of)
    cfg = BridgeConfig(url=platform.url, timeout_s=5.0, backoff_initial_s=0.02, backoff_max_s=0.2)
    workers = [
        CaseDelivery(
            PgCaseOutbox(pg_schema.connect(), f"worker-{i}", lease_s=30), GridWatch(cfg), cfg, seed=i
        )
        for i in range(2)
    ]

    def work(delivery: CaseDelivery) -> None:
        give_up = time.monotonic() + 60
        while delivery.depth() and time.monotonic() < give_up:
            if not delivery.deliver_due():
                time.sleep(0.01)

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    stored = platform.store.cases()
    assert len(stored) == len(cases)
    assert sorted(c.external_id for c in stored) == sorted(c.case_key for c in cases)
    for case in cases:
        updates = list(platform.store.by_key(case.case_key).updates)
        assert updates == [f"{case.case_key}:raised:orange", f"{case.case_key}:cleared"]
    assert GridWatch.overlaps == []
    assert workers[0].stats.retried + workers[1].stats.retried > 0  # the faults did strike
    assert all(w.stats.delivered > 0 for w in workers)  # both did share the work
    assert sum(w.stats.delivered for w in workers) == len(messages)
    assert workers[0].depth() == 0
    outbox = PgCaseOutbox(pg_schema.connect(), "check")
    assert outbox.counts() == {"delivered": len(messages)}
    assert {outbox.platform_id(c.case_key) for c in cases} == {
        (platform.store.by_key(c.case_key).case_id, "filed") for c in cases
    }
