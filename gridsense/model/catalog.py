"""The case category table: codes, names, handling limits and severity, kept as data."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gridsense.errors import ConfigError
from gridsense.model.case import CaseCategory, RoutingLevel, Severity
from gridsense.model.tables import read_rows, validate_row

LimitUnitName = Literal["clock_hours", "working_hours", "working_days"]


class CategoryRow(BaseModel):
    """One row of ``categories.csv``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["component", "event"]
    code: str = Field(pattern=r"^\d{4}$")
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    limit: float = Field(gt=0, description="handling limit (处置时限), in limit_unit")
    limit_unit: LimitUnitName
    severity: Severity
    routing_level: RoutingLevel
    verified: Literal["yes", "no"]

    @property
    def ref(self) -> str:
        """``event:0111``: how rules and detectors name a category."""
        return f"{self.kind}:{self.code}"

    def category(self) -> CaseCategory:
        return CaseCategory(kind=self.kind, code=self.code, name_zh=self.name_zh, name_en=self.name_en)


class Catalog:
    """Lookup of categories by reference (``kind:code``)."""

    def __init__(self, rows: dict[str, CategoryRow]) -> None:
        self._rows = rows

    @classmethod
    def load(cls, path: Path) -> Catalog:
        _, rows = read_rows(path, needs_crs=False)
        table: dict[str, CategoryRow] = {}
        for row in rows:
            cat = validate_row(CategoryRow, row, path)
            if cat.ref in table:
                raise ConfigError(f"{path}:{row.line}: duplicate category {cat.ref}")
            table[cat.ref] = cat
        return cls(table)

    @classmethod
    def default(cls) -> Catalog:
        with resources.as_file(resources.files("gridsense") / "data" / "categories.csv") as p:
            return cls.load(p)

    def get(self, ref: str) -> CategoryRow:
        try:
            return self._rows[ref]
        except KeyError:
            raise ConfigError(
                f"unknown case category {ref!r}; known: {', '.join(sorted(self._rows))}"
            ) from None

    def __contains__(self, ref: object) -> bool:
        return ref in self._rows
