"""The declarative rule file (YAML), validated by pydantic; errors name the file and line.

A rule file holds window rules (a threshold on a rolling aggregate, with levels,
hysteresis, a duration condition and a cooldown), staleness rules (a gauge gone silent),
the physical limits that flag impossible readings as suspect, and escalation thresholds.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gridsense.errors import ConfigError
from gridsense.model.catalog import Catalog
from gridsense.model.tables import load_yaml_model, yaml_line

#: The windows a rule may use (seconds). Up to 1 h they have 1-minute resolution,
#: longer ones 10-minute resolution (see rules/series.py).
WINDOWS = {"10m": 600, "1h": 3600, "3h": 10800, "6h": 21600, "12h": 43200, "24h": 86400}
LevelName = Literal["blue", "yellow", "orange", "red"]
_ORDER = ("blue", "yellow", "orange", "red")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LevelSpec(_Spec):
    name: LevelName = Field(description="warning level")
    trigger: float = Field(description="the aggregate at or above which the level is entered")
    clear: float = Field(description="the aggregate below which the level is left (hysteresis)")

    @model_validator(mode="after")
    def _hysteresis(self) -> LevelSpec:
        if self.clear > self.trigger:
            raise ValueError(
                f"level {self.name}: clear ({self.clear}) must not exceed trigger ({self.trigger})"
            )
        return self


class WindowRule(_Spec):
    """A threshold on a rolling aggregate of one device's series."""

    type: Literal["window"] = "window"
    id: str = Field(pattern=r"^[a-z0-9_]+$", description="rule id, stable: it is part of incident ids")
    kind: Literal["rain", "snow", "water"] = Field(description="which gauges the rule reads")
    aggregate: Literal["sum", "mean", "max", "last", "rise", "rate"] = Field(
        description="sum/mean/max over the window; last value; rise = last − min (new snow);"
        " rate = change per hour between the window's first and last value"
    )
    window: Literal["10m", "1h", "3h", "6h", "12h", "24h"] = Field(description="rolling window")
    levels: tuple[LevelSpec, ...] = Field(min_length=1, description="levels in rising order")
    duration_s: float = Field(default=0, ge=0, le=86400, description="the trigger must hold this long")
    cooldown_s: float = Field(
        default=0, ge=0, le=86400, description="after leaving a level, do not re-enter it for this long"
    )
    category: str = Field(pattern=r"^(component|event):\d{4}$", description="case category filed")
    unit: str = Field(default="", description="unit of the aggregate, for case text (mm, cm, cm/h)")
    label_zh: str = Field(default="", description="what the rule measures, in Chinese, for case text")
    label_en: str = Field(default="", description="the same in English")
    verified: bool = Field(default=True, description="false: thresholds from no public source")

    @property
    def window_s(self) -> int:
        return WINDOWS[self.window]

    @model_validator(mode="after")
    def _levels_rise(self) -> WindowRule:
        names = [lv.name for lv in self.levels]
        if len(set(names)) != len(names):
            raise ValueError("a level appears twice")
        if names != sorted(names, key=_ORDER.index):
            raise ValueError(f"levels must be listed blue → red, got {names}")
        triggers = [lv.trigger for lv in self.levels]
        for (a, ta), (b, tb) in zip(
            zip(names, triggers, strict=True), zip(names[1:], triggers[1:], strict=True), strict=False
        ):
            if tb <= ta:
                raise ValueError(f"threshold order: {b} ({tb}) must be above {a} ({ta})")
        return self


class StalenessRule(_Spec):
    """A gauge that stays silent longer than its contract files a fault case for the gauge."""

    type: Literal["staleness"] = "staleness"
    id: str = Field(pattern=r"^[a-z0-9_]+$", description="rule id")
    kind: Literal["rain", "snow", "water"] = Field(description="which gauges")
    factor: float = Field(
        default=3.0,
        ge=1.0,
        le=100,
        description="silent for factor × interval (SenML ut, else the registry's)",
    )
    category: str = Field(pattern=r"^component:\d{4}$", description="the gauge's component code")


RuleSpec = Annotated[WindowRule | StalenessRule, Field(discriminator="type")]


class QualitySpec(_Spec):
    """Readings a gauge cannot physically produce are flagged suspect and never trigger alone."""

    rain_max_mm_per_5min: float = Field(default=50.0, gt=0, description="more in 5 min is a spike")
    water_max_rise_cm_per_min: float = Field(default=30.0, gt=0, description="faster rise is a spike")
    snow_max_rise_cm_per_hour: float = Field(default=30.0, gt=0, description="faster rise is a spike")


class EscalationSpec(_Spec):
    """Small matters stay in the community, big matters go up: summaries for streets and districts."""

    street_min_grids: int = Field(
        default=3, ge=2, description="grids of one street in an incident at once → a street summary"
    )
    district_min_streets: int = Field(
        default=2, ge=2, description="streets of one district in an incident at once → a district summary"
    )


class RuleFile(_Spec):
    version: Literal[1] = Field(default=1, description="rule file format version")
    incident_quiet_s: float = Field(
        default=1800,
        ge=0,
        le=86400,
        description="an incident closes once every rule in it has been clear this long",
    )
    quality: QualitySpec = Field(default_factory=QualitySpec)
    escalation: EscalationSpec = Field(default_factory=EscalationSpec)
    rules: tuple[RuleSpec, ...] = Field(min_length=1, description="the rules")

    @model_validator(mode="after")
    def _unique_ids(self) -> RuleFile:
        ids = [r.id for r in self.rules]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate rule ids: {sorted(dup)}")
        return self


def default_rules_path() -> Path:
    return Path(str(resources.files("gridsense").joinpath("data", "rules", "default.yaml")))


def load_rules(path: Path, catalog: Catalog) -> RuleFile:
    """Load and validate a rule file; an unknown case code is an error with its line."""
    spec = load_yaml_model(path, RuleFile)
    node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    for i, rule in enumerate(spec.rules):
        if rule.category not in catalog:
            line = yaml_line(node, ("rules", i, "category"))
            raise ConfigError(f"{path}:{line}: rule {rule.id}: unknown case category {rule.category!r}")
    return spec
