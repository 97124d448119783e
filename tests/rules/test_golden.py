"""Golden cases: tests/rules/cases/<name>/{rules.yaml, input.jsonl, expected.jsonl}.

Each expected file was checked by hand against the case's README line (the first line
of input.jsonl). To regenerate after an intended change:
``python -m tests.rules.regenerate <name>`` — then read the diff before committing it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.rules.harness import run_case

CASES = sorted(p for p in (Path(__file__).parent / "cases").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case(case: Path) -> None:
    expected = [json.loads(line) for line in (case / "expected.jsonl").read_text().splitlines() if line]
    assert run_case(case) == expected
