#!/usr/bin/env python3
"""Print the fault scenarios' counts as a Markdown table, for the README.

    scripts/reliability_report.py          # read test-artifacts/reliability/*.json
    scripts/reliability_report.py --run    # run tests/faults first (needs mosquitto, faketime)

Each fault test writes one JSON file when it has counted (tests/faults/harness.py, Tally).
"lost" is messages with no outcome (neither stored nor dead-lettered) plus expected cases
that never reached the platform; "duplicates" is cases beyond one per grid and one summary.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "reliability"
COLUMNS = (
    ("scenario", "scenario"),
    ("injected", "injected"),
    ("sent", "sent"),
    ("stored", "stored"),
    ("dead_lettered", "dead-lettered"),
    ("cases_expected", "cases expected"),
    ("cases_delivered", "cases delivered"),
    ("duplicates", "duplicates"),
    ("lost", "lost"),
)


def load(folder: Path) -> list[dict[str, object]]:
    rows = []
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text())
        doc["lost"] = int(doc["lost_messages"]) + int(doc["lost_cases"])
        rows.append(doc)
    return rows


def table(rows: list[dict[str, object]]) -> str:
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[key]) for key, _ in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="store_true", help="run tests/faults first")
    ap.add_argument("--dir", type=Path, default=ARTIFACTS, help="folder of the scenario JSON files")
    args = ap.parse_args()
    if args.run:
        for stale in args.dir.glob("*.json"):  # a scenario that fails to count leaves no row
            stale.unlink()
        rc = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/faults"], cwd=ROOT).returncode
        if rc != 0:
            print("the fault tests failed; the table shows what they counted", file=sys.stderr)
    rows = load(args.dir)
    if not rows:
        print(f"no results in {args.dir}: run scripts/reliability_report.py --run", file=sys.stderr)
        return 1
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
