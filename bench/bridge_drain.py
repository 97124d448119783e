"""Backlog drain after an outage: cases per second from the SQLite outbox to the reference platform.

    python bench/bridge_drain.py [--cases 3000] [--grids 500] [--rounds 3]

The platform runs in its own process (uvicorn, access log off) on loopback. A backlog of
``--cases`` cases over ``--grids`` grids is queued while no platform is reachable, then
drained by one ``CaseDelivery`` with the native adapter. Baselines, in the same run and
alternated with the measured side (A B A B), medians quoted:

- drain (one at a time, and ``--concurrency`` in flight): bare sequential httpx POSTs of the
  same bodies to the same platform;
- outbox write: a bare INSERT of the same JSON into a plain table of the same database,
  in the same batches (100 cases per transaction, as the pipeline commits a batch).

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from platform_process import platform_process  # noqa: E402

from bridge.delivery import CaseDelivery  # noqa: E402
from bridge.native_adapter import NativeRestAdapter  # noqa: E402
from bridge.outbox import CaseOutbox  # noqa: E402
from gridsense.config import BridgeConfig  # noqa: E402
from gridsense.db import connect  # noqa: E402
from gridsense.model.case import GridCase  # noqa: E402
from gridsense.txn import transaction  # noqa: E402

BATCH = 100


def template() -> GridCase:
    from tests.bridge.conftest import build_cases

    return build_cases(1)[0]


def backlog(base: GridCase, tag: str, n: int, grids: int) -> list[GridCase]:
    return [
        base.model_copy(
            update={
                "case_key": f"bench-{tag}-{i:08d}",
                "incident_id": f"inc-bench-{tag}-{i}",
                "place": base.place.model_copy(update={"grid_code": f"110102{i % grids:09d}"}),
            }
        )
        for i in range(n)
    ]


def enqueue_cost(db: Path, cases: list[GridCase]) -> float:
    """Seconds per case to enqueue, in transactions of BATCH cases."""
    conn = connect(db)
    outbox = CaseOutbox(conn)
    start = time.perf_counter()
    for i in range(0, len(cases), BATCH):
        with transaction(conn):
            for case in cases[i : i + BATCH]:
                outbox.enqueue_case(case)
    took = time.perf_counter() - start
    conn.close()
    return took / len(cases)


def bare_insert_cost(db: Path, cases: list[GridCase]) -> float:
    conn = connect(db)
    conn.execute("CREATE TABLE IF NOT EXISTS bare (k TEXT PRIMARY KEY, body TEXT NOT NULL)")
    start = time.perf_counter()
    for i in range(0, len(cases), BATCH):
        with transaction(conn):
            for case in cases[i : i + BATCH]:
                conn.execute("INSERT INTO bare VALUES (?, ?)", (case.case_key, case.model_dump_json()))
    took = time.perf_counter() - start
    conn.close()
    return took / len(cases)


def drain_rate(db: Path, url: str, n: int, concurrency: int) -> float:
    """Cases per second for one delivery worker to empty an outbox holding ``n`` cases."""
    cfg = BridgeConfig(url=url, timeout_s=10.0)
    conn = connect(db, create=False)
    adapter = NativeRestAdapter(cfg)
    delivery = CaseDelivery(conn, adapter, cfg, concurrency=concurrency)
    start = time.perf_counter()
    while delivery.depth():
        delivery.deliver_due()
    took = time.perf_counter() - start
    assert delivery.stats.delivered == n and delivery.stats.retried == 0, delivery.stats
    delivery.stop()
    adapter.close()
    conn.close()
    return n / took


def raw_rate(url: str, cases: list[GridCase]) -> float:
    bodies = [(c.case_key, c.model_dump_json()) for c in cases]
    with httpx.Client(base_url=url, timeout=10.0) as http:
        start = time.perf_counter()
        for key, body in bodies:
            resp = http.post(
                "/api/v1/cases",
                content=body,
                headers={"Idempotency-Key": key, "Content-Type": "application/json"},
            )
            assert resp.status_code == 201, resp.text
        took = time.perf_counter() - start
    return len(bodies) / took


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=3000)
    p.add_argument("--grids", type=int, default=500)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=8, help="in-flight sends of the parallel side")
    args = p.parse_args()

    with platform_process() as url:
        base = template()
        raw: list[float] = []
        drained: list[float] = []
        parallel: list[float] = []
        enq: list[float] = []
        bare: list[float] = []
        with tempfile.TemporaryDirectory(prefix="gridsense-bench-") as tmp:
            for r in range(args.rounds):
                raw.append(raw_rate(url, backlog(base, f"raw{r}", args.cases, args.grids)))
                for side, concurrency, rates in (("seq", 1, drained), ("par", args.concurrency, parallel)):
                    db = Path(tmp) / f"state-{side}-{r}.db"
                    cases = backlog(base, f"{side}{r}", args.cases, args.grids)
                    if side == "seq":
                        bare.append(bare_insert_cost(db, backlog(base, f"bare{r}", args.cases, args.grids)))
                        enq.append(enqueue_cost(db, cases))  # the backlog queued during the outage
                    else:
                        enqueue_cost(db, cases)
                    rates.append(drain_rate(db, url, args.cases, concurrency))
                print(
                    f"round {r + 1}: raw POST {raw[-1]:.0f}/s, drain {drained[-1]:.0f}/s, "
                    f"drain x{args.concurrency} {parallel[-1]:.0f}/s; "
                    f"enqueue {enq[-1] * 1e6:.0f} us/case, bare insert {bare[-1] * 1e6:.0f} us/row",
                    flush=True,
                )
        filed = httpx.get(f"{url}/api/v1/indicators").json()["filed"]
        assert filed == 3 * args.rounds * args.cases, filed  # raw + both drains, each case once

    m_raw, m_drain, m_par = (statistics.median(x) for x in (raw, drained, parallel))
    m_enq, m_bare = statistics.median(enq), statistics.median(bare)
    print()
    print(f"backlog {args.cases} cases over {args.grids} grids, {args.rounds} rounds, medians:")
    print("| what | figure | baseline | ratio |")
    print("|---|---|---|---|")
    for label, rate in (("1 in flight", m_drain), (f"{args.concurrency} in flight", m_par)):
        print(
            f"| drain, native adapter, {label} | {rate:.0f} cases/s "
            f"| raw POST {m_raw:.0f}/s | {rate / m_raw:.2f} |"
        )
    print(
        f"| outbox write | {m_enq * 1e6:.0f} us/case "
        f"| bare INSERT {m_bare * 1e6:.0f} us/row | {m_enq / m_bare:.2f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
