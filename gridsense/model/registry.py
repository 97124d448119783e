"""Registries of grids and devices, loaded and validated from files.

Coordinates are converted to WGS-84 (the internal system) at load time, whatever
system the file declares.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gridsense.errors import ConfigError
from gridsense.model.envelopes import DeviceId, FiniteFloat, GridCode, Kind, district_of, street_of
from gridsense.model.geo import to_wgs84
from gridsense.model.tables import read_rows, validate_row


class Grid(BaseModel):
    """A unit grid (单元网格). Codes: district 6 + street 3 + community 3 + serial 3."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grid_code: GridCode
    street_name: str = Field(min_length=1, max_length=64)
    community_name: str = Field(min_length=1, max_length=64)
    lat: FiniteFloat = Field(ge=-90, le=90, description="centroid, WGS-84 after loading")
    lon: FiniteFloat = Field(ge=-180, le=180)
    polygon: tuple[tuple[float, float], ...] = Field(
        default=(), description="ring of (lat, lon), WGS-84 after loading; CSV: 'lat lon;lat lon;…'"
    )
    area_grade: Literal["A", "B", "C"] = Field(default="A", description="management grade of the area")
    address: str = Field(default="", max_length=200)

    @field_validator("polygon", mode="before")
    @classmethod
    def _parse_polygon(cls, v: object) -> object:
        if v is None:
            return ()
        if isinstance(v, str):
            pts = []
            for pair in v.split(";"):
                lat, lon = pair.split()
                pts.append((float(lat), float(lon)))
            if len(pts) < 3:
                raise ValueError("a polygon needs at least 3 points")
            return tuple(pts)
        return v

    @property
    def district_code(self) -> str:
        return district_of(self.grid_code)

    @property
    def street_code(self) -> str:
        return street_of(self.grid_code)

    @property
    def community_code(self) -> str:
        return self.grid_code[:12]


class Device(BaseModel):
    """A sensor: a gauge or a camera, bound to one grid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_id: DeviceId
    kind: Kind
    grid_code: GridCode
    lat: FiniteFloat = Field(ge=-90, le=90)
    lon: FiniteFloat = Field(ge=-180, le=180)
    interval_s: float = Field(gt=0, le=86400, description="expected reporting interval")
    name: str = Field(default="", max_length=120)

    @field_validator("kind")
    @classmethod
    def _not_asset(cls, v: Kind) -> Kind:
        if v is Kind.ASSET:
            raise ValueError("assets belong in the asset registry, not the device registry")
        return v


class GridRegistry:
    """All unit grids by code."""

    def __init__(self, grids: dict[str, Grid]) -> None:
        self._grids = grids

    @classmethod
    def load(cls, path: Path) -> GridRegistry:
        crs, rows = read_rows(path, needs_crs=True)
        assert crs is not None
        grids: dict[str, Grid] = {}
        for row in rows:
            grid = validate_row(Grid, row, path)
            lat, lon = to_wgs84(grid.lat, grid.lon, crs)
            ring = tuple(to_wgs84(la, lo, crs) for la, lo in grid.polygon)
            internal = grid.model_copy(update={"lat": lat, "lon": lon, "polygon": ring})
            if grid.grid_code in grids:
                raise ConfigError(f"{path}:{row.line}: duplicate grid code {grid.grid_code}")
            grids[grid.grid_code] = internal
        if not grids:
            raise ConfigError(f"{path}: no grids")
        return cls(grids)

    def get(self, code: str) -> Grid | None:
        return self._grids.get(code)

    def __contains__(self, code: object) -> bool:
        return code in self._grids

    def __len__(self) -> int:
        return len(self._grids)

    def __iter__(self) -> Iterator[Grid]:
        return iter(self._grids.values())


class DeviceRegistry:
    """All registered devices by id; each must sit in a known grid."""

    def __init__(self, devices: dict[str, Device]) -> None:
        #: The devices by id: a plain dict, read only. The ingest hot path looks up in it
        #: directly, without a call into this class.
        self.by_id = devices

    @classmethod
    def load(cls, path: Path, grids: GridRegistry) -> DeviceRegistry:
        crs, rows = read_rows(path, needs_crs=True)
        assert crs is not None
        devices: dict[str, Device] = {}
        for row in rows:
            device = validate_row(Device, row, path)
            lat, lon = to_wgs84(device.lat, device.lon, crs)
            if device.grid_code not in grids:
                raise ConfigError(f"{path}:{row.line}: grid {device.grid_code} is not in the grid registry")
            if device.device_id in devices:
                raise ConfigError(f"{path}:{row.line}: duplicate device id {device.device_id}")
            devices[device.device_id] = device.model_copy(update={"lat": lat, "lon": lon})
        return cls(devices)

    def get(self, device_id: str) -> Device | None:
        return self.by_id.get(device_id)

    def __len__(self) -> int:
        return len(self.by_id)

    def __iter__(self) -> Iterator[Device]:
        return iter(self.by_id.values())
