"""The case category table (部件 / 事件 classes, handling limits), kept as data."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridsense.errors import ConfigError
from gridsense.model.catalog import Catalog
from rules.spec import default_rules_path, load_rules

HEADER = "kind,code,name_zh,name_en,limit,limit_unit,severity,routing_level,verified"
WATERLOGGING = "event,0111,道路积水,road waterlogging,2,clock_hours,urgent,community,no"
GARBAGE = "event,0102,暴露垃圾,exposed garbage,1,working_days,routine,community,yes"


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "categories.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        Catalog.load(path)
    return str(info.value)


def test_road_waterlogging_counts_in_clock_hours() -> None:
    row = Catalog.default().get("event:0111")
    assert (row.name_zh, row.name_en) == ("道路积水", "road waterlogging")
    # urgent categories are limited in clock hours, not working time
    assert (row.limit, row.limit_unit, row.severity) == (2, "clock_hours", "urgent")
    assert row.ref == "event:0111"
    cat = row.category()
    assert (cat.kind, cat.code, cat.name_zh) == ("event", "0111", "道路积水")


@pytest.mark.parametrize(
    ("ref", "name_zh"),
    [
        ("component:0101", "上水井盖"),
        ("component:0102", "污水井盖"),
        ("component:0103", "雨水井盖"),
        ("component:0104", "雨水箅子"),
        ("component:0121", "报刊亭"),
        ("component:0206", "地下通道"),
        ("component:0207", "高架立交桥"),
        ("component:0401", "古树名木"),
        ("event:0102", "暴露垃圾"),
        ("event:0103", "积存垃圾渣土"),
        ("event:0112", "积雪、结冰"),
        ("event:0501", "无照经营游商"),
        ("event:0504", "店外经营"),
        ("event:0507", "乱堆物堆料"),
    ],
)
def test_default_table_has_the_domain_codes(ref: str, name_zh: str) -> None:
    assert Catalog.default().get(ref).name_zh == name_zh


def test_documented_local_limits_in_the_default_table() -> None:
    cat = Catalog.default()
    # exposed garbage: 1 working day; accumulated garbage or debris: 4 working days
    assert (cat.get("event:0102").limit, cat.get("event:0102").limit_unit) == (1, "working_days")
    assert (cat.get("event:0103").limit, cat.get("event:0103").limit_unit) == (4, "working_days")
    # a manhole cover is repaired within 6 clock hours
    assert (cat.get("component:0101").limit, cat.get("component:0101").limit_unit) == (
        6,
        "clock_hours",
    )


def test_every_default_rule_files_a_known_category() -> None:
    cat = Catalog.default()
    for rule in load_rules(default_rules_path(), cat).rules:
        assert rule.category in cat


@pytest.mark.parametrize("ref", ["event:9999", "component:0111", "0111", "event:111", ""])
def test_unknown_reference_is_a_config_error(ref: str) -> None:
    with pytest.raises(ConfigError) as info:
        Catalog.default().get(ref)
    assert f"unknown case category {ref!r}" in str(info.value)
    assert "event:0111" in str(info.value)  # the message lists what is known


def test_kind_and_code_together_make_the_reference(tmp_path: Path) -> None:
    # the same code in both kinds is two categories (component 0102 is not event 0102)
    cat = Catalog.load(
        write(
            tmp_path,
            HEADER,
            GARBAGE,
            "component,0102,污水井盖,sewage cover,6,clock_hours,urgent,community,yes",
        )
    )
    assert cat.get("event:0102").name_zh == "暴露垃圾"
    assert cat.get("component:0102").name_zh == "污水井盖"


def test_duplicate_row_is_rejected_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "# local table", "# second comment", HEADER, WATERLOGGING, GARBAGE, WATERLOGGING)
    assert load_error(path) == f"{path}:6: duplicate category event:0111"


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("event,111,道路积水,road waterlogging,2,clock_hours,urgent,community,no", "code"),
        ("event,0111,道路积水,road waterlogging,0,clock_hours,urgent,community,no", "limit"),
        ("event,0111,道路积水,road waterlogging,2,fortnights,urgent,community,no", "limit_unit"),
        ("incident,0111,道路积水,road waterlogging,2,clock_hours,urgent,community,no", "kind"),
        ("event,0111,道路积水,road waterlogging,2,clock_hours,urgent,community,maybe", "verified"),
        ("event,0111,,road waterlogging,2,clock_hours,urgent,community,no", "name_zh"),
    ],
)
def test_bad_row_names_file_line_and_field(tmp_path: Path, row: str, field: str) -> None:
    path = write(tmp_path, "# comment", HEADER, GARBAGE, row)
    assert load_error(path).startswith(f"{path}:4: {field}: ")


def test_catalog_needs_no_coordinate_system(tmp_path: Path) -> None:
    assert "event:0111" in Catalog.load(write(tmp_path, HEADER, WATERLOGGING))
