"""Rewrite a golden case's expected.jsonl from the current code (review the diff!)."""

import sys
from pathlib import Path

from tests.rules.harness import dump, run_case

for name in sys.argv[1:]:
    folder = Path(__file__).parent / "cases" / name
    (folder / "expected.jsonl").write_text(dump(run_case(folder)))
    print((folder / "expected.jsonl").read_text())
