"""The asset registry: every QR-tagged asset, held as columns so a city's 1.4 M fit and load fast.

File format (CSV, or YAML with ``crs:`` and ``rows:``), one row per asset; the file declares
its coordinate system (``# crs: gcj02``) and points are converted to WGS-84 at load:

| column | required | meaning |
|---|---|---|
| ``code`` | yes | 16-digit component code: area 6 + major 2 + minor 2 + serial 6; also the asset id |
| ``type`` | yes | a configured asset type (``newsstand``, ``ancient_tree``, ``breakfast_cart``, …) |
| ``name`` | yes | what the label and the case call it (侧柏 #17) |
| ``grid_code`` | yes | 15-digit unit grid; its district must be the code's area |
| ``lat``, ``lon`` | yes | location (a cart: where it is kept) |
| ``owner`` | yes | owner or responsible unit |
| ``grade`` | per type | protection grade (古树: 一级 / 二级), sets the inspection interval |
| ``status`` | no | ``active`` (default), ``suspended`` or ``retired``: only active assets may be scanned |
| ``interval_h`` | no | inspection interval override, hours |
| ``installed`` | no | ``YYYY-MM-DD`` the tag went up; an unscanned asset is due one interval after |
| ``short_id`` | no | printed under the code; default ``<district 2>-<class 4>-<serial 6>`` |
| ``permit_id``, ``permit_places``, ``permit_hours``, ``permit_until`` | mobile types | see ``permits`` |

Rows are checked a column at a time (``registry_loader``), not as one model object each
(that alone would take longer than the load budget); every error names the file and line.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gridsense.errors import ConfigError
from gridsense.model.registry import GridRegistry
from rules.assets import geo_array
from rules.assets.config import AssetTypeConfig
from rules.assets.permits import CartPermit
from rules.assets.registry_loader import MAX_ERRORS, STATUSES, load_columns

_ACTIVE = STATUSES.index("active")


def default_short_id(code: str) -> str:
    """``02-0401-000017``: district (last 2 of the area), class, serial; what a person reads out."""
    return f"{code[4:6]}-{code[6:10]}-{code[10:]}"


@dataclass(slots=True)  # not frozen: a frozen __init__ costs µs the per-ping budget lacks
class Asset:
    """One asset, materialised from the columns when a ping or a label needs it."""

    index: int
    asset_id: str
    type: str
    name: str
    grid_code: str
    lat: float  # WGS-84
    lon: float
    owner: str
    grade: str | None
    status: str
    interval_s: int
    short_id: str
    permit: CartPermit | None

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def category_ref(self) -> str:
        """The asset's own component class, as the category table names it (``component:0401``)."""
        return f"component:{self.asset_id[6:10]}"


class AssetRegistry:
    """All tagged assets, sorted by code; one row is found by binary search on the int64 codes."""

    def __init__(
        self,
        types: dict[str, AssetTypeConfig],
        columns: dict[str, NDArray[Any]],
        names: list[str],
        owners: list[str],
        grades: list[str],
        short_ids: dict[int, str],
        permits: dict[int, CartPermit],
    ) -> None:
        self.types = types
        self.type_names = list(types)
        self.code: NDArray[np.int64] = columns["code"]
        self.type_idx: NDArray[np.uint8] = columns["type"]
        self.grade_idx: NDArray[np.int16] = columns["grade"]
        self.grid: NDArray[np.int64] = columns["grid"]
        self.lat: NDArray[np.float64] = columns["lat"]
        self.lon: NDArray[np.float64] = columns["lon"]
        self.status: NDArray[np.uint8] = columns["status"]
        self.interval_s: NDArray[np.int64] = columns["interval_s"]
        self.installed_ms: NDArray[np.int64] = columns["installed_ms"]
        self.owner_idx: NDArray[np.int32] = columns["owner"]
        self.names = names
        self.owners = owners
        self.grades = grades
        self.short_ids = short_ids
        self.permits = permits

    def __len__(self) -> int:
        return len(self.code)

    @property
    def active(self) -> NDArray[np.bool_]:
        return self.status == _ACTIVE

    def index_of(self, asset_id: str) -> int:
        """Row of ``asset_id``, or -1 when it is not registered."""
        if not (len(asset_id) == 16 and asset_id.isascii() and asset_id.isdigit()):
            return -1
        key = int(asset_id)
        i = int(self.code.searchsorted(key))
        return i if i < len(self.code) and int(self.code[i]) == key else -1

    def indices_of(self, codes: NDArray[np.int64]) -> NDArray[np.int64]:
        """Rows of many int64 codes at once; -1 where a code is not registered."""
        if len(self.code) == 0:
            return np.full(len(codes), -1, dtype=np.int64)
        idx = np.minimum(np.searchsorted(self.code, codes), len(self.code) - 1)
        return np.where(self.code[idx] == codes, idx, -1).astype(np.int64)

    def get(self, asset_id: str) -> Asset | None:
        i = self.index_of(asset_id)
        return None if i < 0 else self.asset(i)

    def asset(self, i: int) -> Asset:
        code = f"{int(self.code[i]):016d}"
        g = int(self.grade_idx[i])
        return Asset(
            index=i,
            asset_id=code,
            type=self.type_names[int(self.type_idx[i])],
            name=self.names[i],
            grid_code=f"{int(self.grid[i]):015d}",
            lat=float(self.lat[i]),
            lon=float(self.lon[i]),
            owner=self.owners[int(self.owner_idx[i])],
            grade=self.grades[g] if g >= 0 else None,
            status=STATUSES[int(self.status[i])],
            interval_s=int(self.interval_s[i]),
            short_id=self.short_ids.get(i) or default_short_id(code),
            permit=self.permits.get(i),
        )

    def __iter__(self) -> Iterator[Asset]:
        return (self.asset(i) for i in range(len(self)))

    @classmethod
    def load(
        cls, path: Path, types: dict[str, AssetTypeConfig], grids: GridRegistry | None = None
    ) -> AssetRegistry:
        """Read, check and convert a registry file; errors name the file and line."""
        # Millions of short-lived strings would trigger a full collection again and again,
        # each walking every live object; nothing built here forms a reference cycle.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return cls._load(path, types, grids)
        finally:
            if collecting:
                gc.enable()

    @classmethod
    def _load(
        cls, path: Path, types: dict[str, AssetTypeConfig], grids: GridRegistry | None
    ) -> AssetRegistry:
        loader = load_columns(path, types, grids)
        columns = {k: np.concatenate(v) for k, v in loader.parts.items()}
        lines = columns.pop("line")
        columns["lat"], columns["lon"] = geo_array.to_wgs84(columns["lat"], columns["lon"], loader.crs)
        order = np.argsort(columns["code"], kind="stable")
        for k in columns:
            columns[k] = np.ascontiguousarray(columns[k][order])
        lines = lines[order]
        dup = np.flatnonzero(np.diff(columns["code"]) == 0)
        if len(dup):
            raise ConfigError(
                "\n".join(
                    f"{path}:{int(lines[i + 1])}: duplicate code {int(columns['code'][i]):016d} "
                    f"(first on line {int(lines[i])})"
                    for i in dup[:MAX_ERRORS]
                )
            )
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        names = [loader.names[i] for i in order.tolist()]
        return cls(
            types,
            columns,
            names,
            list(loader.owners),
            list(loader.grades),
            {int(position[i]): sid for i, sid in loader.short_ids.items()},
            {int(position[i]): p for i, p in loader.permits.items()},
        )
