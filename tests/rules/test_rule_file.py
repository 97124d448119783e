"""Rule files are checked at load time; every error names the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridsense.errors import ConfigError
from gridsense.model.catalog import Catalog
from rules.spec import WINDOWS, default_rules_path, load_rules

GOOD_RULE = (
    '  - {id: r1, type: window, kind: rain, aggregate: sum, window: 1h, category: "event:0111",\n'
    "     levels: [{name: orange, trigger: 70, clear: 55}, {name: red, trigger: 100, clear: 80}]}\n"
)


def write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "rules.yaml"
    p.write_text("version: 1\nrules:\n" + body)
    return p


def test_default_rule_set_loads_with_every_window_the_issue_names() -> None:
    spec = load_rules(default_rules_path(), Catalog.default())
    windows = {r.window for r in spec.rules if r.type == "window"}
    assert windows == set(WINDOWS)
    cats = {r.category for r in spec.rules}
    assert {"event:0111", "event:0112", "component:0206", "component:0701"} <= cats
    ponding = next(r for r in spec.rules if r.id == "underpass_ponding")
    assert [(lv.name, lv.trigger) for lv in ponding.levels] == [("yellow", 20), ("red", 27)]


def test_unknown_field_is_rejected_with_its_line(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        GOOD_RULE + "  - {id: r2, type: window, kind: rain, aggregate: sum, window: 1h,\n"
        '     category: "event:0111", levels: [{name: blue, trigger: 1, clear: 1}], colour: red}\n',
    )
    with pytest.raises(ConfigError, match=rf"{p}:5: rules.1.window.colour: Extra inputs"):
        load_rules(p, Catalog.default())


def test_red_below_orange_is_rejected_with_its_line(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        '  - {id: r1, type: window, kind: rain, aggregate: sum, window: 1h, category: "event:0111",\n'
        "     levels: [{name: orange, trigger: 100, clear: 80}, {name: red, trigger: 70, clear: 55}]}\n",
    )
    with pytest.raises(ConfigError, match=rf"{p}:3: .*red \(70.0\) must be above orange \(100.0\)"):
        load_rules(p, Catalog.default())


def test_clear_above_trigger_is_rejected(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        '  - {id: r1, type: window, kind: rain, aggregate: sum, window: 1h, category: "event:0111",\n'
        "     levels: [{name: blue, trigger: 10, clear: 12}]}\n",
    )
    with pytest.raises(ConfigError, match=r"clear \(12.0\) must not exceed trigger \(10.0\)"):
        load_rules(p, Catalog.default())


def test_unknown_case_code_is_rejected_with_its_line(tmp_path: Path) -> None:
    p = write(
        tmp_path, GOOD_RULE + '  - {id: r2, type: staleness, kind: rain,\n     category: "component:0999"}\n'
    )
    with pytest.raises(ConfigError, match=rf"{p}:6: rule r2: unknown case category 'component:0999'"):
        load_rules(p, Catalog.default())


def test_window_outside_the_supported_set_is_rejected(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD_RULE.replace("window: 1h", "window: 2h"))
    with pytest.raises(ConfigError, match=rf"{p}:3: .*window"):
        load_rules(p, Catalog.default())


def test_duplicate_rule_ids_are_rejected(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD_RULE + GOOD_RULE)
    with pytest.raises(ConfigError, match="duplicate rule ids"):
        load_rules(p, Catalog.default())
