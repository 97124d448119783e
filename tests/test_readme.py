"""The README stays true: its two commands, its config reference, its topic scheme."""

from __future__ import annotations

import re
from pathlib import Path

from gridsense.config_reference import reference
from ingest.topics import TopicScheme

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_exactly_two_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first_block is not None and README.index("```sh") < README.index("## ")
    commands = [line for line in first_block.group(1).splitlines() if line.strip()]
    assert commands == [
        "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/gridsense demo",
        "scripts/test",
    ]
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "scripts/test" in ci


def test_config_reference_matches_the_models() -> None:
    block = README.split("<!-- config-reference:start -->\n", 1)[1].split("<!-- config-reference:end -->")[0]
    assert block == reference(), "run: python scripts/update_readme_reference.py"


def test_topic_scheme_in_readme_is_the_one_the_code_uses() -> None:
    scheme = TopicScheme("city")
    assert scheme.subscription in README
    assert scheme.deadletter in README
    example = scheme.topic("110102012001001", "rain", "rg-012001001-1")
    assert example in README
