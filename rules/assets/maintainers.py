"""The maintainer registry: who may scan which assets (by type and by area).

CSV (or YAML ``rows:``), no coordinates, so no ``crs`` line is needed::

    maintainer_id,name,role,unit,types,areas,active
    t-xc-01,王强,maintainer,西城区园林绿化局古树养护队,ancient_tree,110102
    i-xc-01,李娜,inspector,西城区城市管理监督指挥中心,*,110102

- ``role``: ``maintainer`` (looks after assets) or ``inspector`` (城管监督员: reports and
  verifies, 核查);
- ``types``: asset types separated by ``;``, or ``*`` for every type;
- ``areas``: grid-code prefixes separated by ``;`` (district 6, street 9, community 12 or grid
  15 digits), or ``*`` for the whole city.

A scan is authorised when the asset's type **and** its grid are both covered; ``*`` on
either side leaves only the other.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gridsense.errors import ConfigError
from gridsense.model.tables import read_rows, validate_row

Role = Literal["maintainer", "inspector"]


def _split(v: object) -> object:
    if isinstance(v, str):
        return [p.strip() for p in v.split(";") if p.strip()]
    return v


class Maintainer(BaseModel):
    """One person who scans tags."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    maintainer_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    name: str = Field(min_length=1, max_length=40)
    role: Role
    unit: str = Field(min_length=1, max_length=80, description="employing or responsible unit")
    types: tuple[str, ...] = Field(min_length=1, description="asset types, or ('*',)")
    areas: tuple[str, ...] = Field(min_length=1, description="grid-code prefixes, or ('*',)")
    active: bool = True

    @field_validator("types", "areas", mode="before")
    @classmethod
    def _lists(cls, v: object) -> object:
        return _split(v)

    @field_validator("areas")
    @classmethod
    def _prefixes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for a in v:
            if a != "*" and not (len(a) in (6, 9, 12, 15) and a.isascii() and a.isdigit()):
                raise ValueError(f"area {a!r} must be a 6, 9, 12 or 15-digit grid-code prefix, or '*'")
        return v

    def may_scan(self, asset_type: str, grid_code: str) -> bool:
        type_ok = "*" in self.types or asset_type in self.types
        return type_ok and ("*" in self.areas or any(grid_code.startswith(a) for a in self.areas))


class MaintainerRegistry:
    """Maintainers by id."""

    def __init__(self, people: dict[str, Maintainer]) -> None:
        self._people = people

    @classmethod
    def load(cls, path: Path, asset_types: Collection[str]) -> MaintainerRegistry:
        _, rows = read_rows(path, needs_crs=False)
        people: dict[str, Maintainer] = {}
        for row in rows:
            m = validate_row(Maintainer, row, path)
            unknown = [t for t in m.types if t != "*" and t not in asset_types]
            if unknown:
                raise ConfigError(f"{path}:{row.line}: unknown asset type(s) {', '.join(unknown)}")
            if m.maintainer_id in people:
                raise ConfigError(f"{path}:{row.line}: duplicate maintainer id {m.maintainer_id}")
            people[m.maintainer_id] = m
        return cls(people)

    def get(self, maintainer_id: str) -> Maintainer | None:
        return self._people.get(maintainer_id)

    def __len__(self) -> int:
        return len(self._people)

    def __iter__(self) -> Iterator[Maintainer]:
        return iter(self._people.values())
