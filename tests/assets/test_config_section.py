"""The ``assets`` config section explains itself and cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from gridsense.config_reference import _submodels
from rules.assets import config as config_module
from rules.assets.config import REJECTION_REASONS, AssetConfig

SOURCES = Path(config_module.__file__).parent


def _fields(model: type[BaseModel], prefix: str = "assets.") -> list[tuple[str, str | None]]:
    out = []
    for name, field in model.model_fields.items():
        subs = _submodels(field.annotation)
        out.append((prefix + name, field.description))
        for sub in subs:
            out.extend(_fields(sub, f"{prefix}{name}."))
    return out


def test_every_setting_is_described() -> None:
    missing = [name for name, desc in _fields(AssetConfig) if not desc]
    assert missing == []


def test_every_rejection_reason_the_code_raises_is_known() -> None:
    raised = set()
    for path in SOURCES.glob("*.py"):
        raised |= set(re.findall(r'Rejected\(\s*"([a-z_]+)"', path.read_text(encoding="utf-8")))
    assert raised == set(REJECTION_REASONS)


def test_tamper_reasons_must_be_rejection_reasons() -> None:
    with pytest.raises(ValidationError, match="unknown reasons"):
        AssetConfig(tamper_reasons=["bad_signature", "sneezed"])


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    cfg = AssetConfig.model_validate(
        {"registry": "data/assets.csv", "maintainers": "/abs/m.csv", "labels": {"font": "fonts/x.ttc"}}
    )
    done = cfg.resolved(tmp_path)
    assert done.registry == tmp_path / "data" / "assets.csv"
    assert done.maintainers == Path("/abs/m.csv")
    assert done.labels.font == tmp_path / "fonts" / "x.ttc"


def test_defaults_load_and_stay_off() -> None:
    cfg = AssetConfig()
    assert not cfg.enabled and cfg.registry.is_file() and cfg.maintainers.is_file()
    assert set(cfg.types) == {"newsstand", "ancient_tree", "breakfast_cart", "manhole_cover"}


def test_the_sample_config_in_the_readme_is_valid() -> None:
    import yaml

    text = (SOURCES / "README.md").read_text(encoding="utf-8")
    [block] = re.findall(r"```yaml\n(.*?)```", text, re.S)
    cfg = AssetConfig.model_validate(yaml.safe_load(block)["assets"])
    assert cfg.enabled and [k.state for k in cfg.keyring] == ["verify", "sign"]
