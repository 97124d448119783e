"""A citywide storm: escalation's cost per grid incident as thousands are open at once.

    python bench/escalation_storm.py [--grids 1000 3000] [--repeat 3]

A storm spreads over N grids of six districts (30 streets each, grids in street order
shuffled), opening one grid incident after another, then clears them in another order.
Each change is reviewed as the rule engine reviews it, and every summary change it makes
is turned into its case or case update, as the pipeline queues it. The baseline, measured
in the same run on the same changes, is the escalation before it went incremental
(``tests/rules/reference_escalation.py``), which rescanned every open incident per change.
Per change, µs: flat in N is what a city needs; the rescan grows with N.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge.case_builder import case_key  # noqa: E402
from gridsense.model.incident import Incident, IncidentChange  # noqa: E402
from rules.escalation import Escalation  # noqa: E402
from rules.incidents import IncidentBook  # noqa: E402
from rules.spec import EscalationSpec  # noqa: E402
from tests.rules.reference_escalation import FullScanEscalation  # noqa: E402

T0 = datetime(2026, 7, 21, 8, 0, tzinfo=UTC)
DISTRICTS = ("110101", "110102", "110105", "110106", "110107", "110108")
CATEGORY = "event:0111"


def storm(n: int) -> tuple[list[str], list[str]]:
    """n grid codes in the order the storm reaches them, and the order it leaves them."""
    grids = [f"{DISTRICTS[i % 6]}{i // 6 % 30 + 1:03d}{i // 180 % 999 + 1:03d}001" for i in range(n)]
    rng = random.Random(7)
    arrive, leave = grids[:], grids[:]
    rng.shuffle(arrive)
    rng.shuffle(leave)
    return arrive, leave


def run(escalation: type[Escalation] | type[FullScanEscalation], n: int) -> tuple[float, int]:
    """µs per grid change, the review and the summaries' case payloads; cases the changes linked."""
    book = IncidentBook()
    esc = escalation(EscalationSpec(), book)
    arrive, leave = storm(n)
    linked = 0
    t = time.perf_counter()
    for step, grid in enumerate(arrive):
        at = T0 + timedelta(seconds=step)
        inc = Incident(f"inc-{grid}", CATEGORY, CATEGORY, grid, at, at, "blue", 21.0, "mm", 3600, grid)
        book.add(inc)
        for c in esc.review([IncidentChange("opened", inc, at)]):
            linked += len([case_key(i) for i in c.incident.linked])  # the update's linked cases
    for step, grid in enumerate(leave, start=n):
        at = T0 + timedelta(seconds=step)
        gone = book.open_for(CATEGORY, grid)
        assert gone is not None
        book.close(gone, at)
        for c in esc.review([IncidentChange("cleared", gone, at)]):
            linked += len([case_key(i) for i in c.incident.linked])
    assert not book.open_incidents(), "every summary closes with its last grid"
    return (time.perf_counter() - t) / (2 * n) * 1e6, linked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grids", type=int, nargs="+", default=[1_000, 3_000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print("grids in the storm   incremental µs/change   full rescan µs/change   rescan / incremental")
    for n in args.grids:
        inc, full = [], []
        for _ in range(args.repeat):  # A B A B: the machine is shared and noisy
            us, made = run(Escalation, n)
            inc.append(us)
            us, made_ref = run(FullScanEscalation, n)
            full.append(us)
            assert made == made_ref, (made, made_ref)
        a, b = statistics.median(inc), statistics.median(full)
        print(f"{n:18,d}   {a:21.1f}   {b:21.1f}   {b / a:20.1f}")


if __name__ == "__main__":
    main()
