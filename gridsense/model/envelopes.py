"""Typed envelopes that travel between stages.

Gateways and simulators use these same models, so a simulated device cannot drift
from the real wire format. Units are normalised on the way in: rain in mm, snow
depth and water level in cm.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gridsense.model.geo import CRS


class Kind(StrEnum):
    """The ``<kind>`` level of a topic."""

    RAIN = "rain"
    SNOW = "snow"
    WATER = "water"
    CAMERA = "camera"
    ASSET = "asset"


GAUGE_KINDS = frozenset({Kind.RAIN, Kind.SNOW, Kind.WATER})

#: The unit each gauge kind is normalised to.
CANONICAL_UNIT: dict[Kind, str] = {Kind.RAIN: "mm", Kind.SNOW: "cm", Kind.WATER: "cm"}


def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError("value must be a finite number (NaN and inf are rejected)")
    return v


FiniteFloat = Annotated[float, AfterValidator(_finite)]
DeviceId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
GridCode = Annotated[str, Field(pattern=r"^\d{15}$", description="15-digit unit grid code")]


def district_of(grid_code: str) -> str:
    """The 6-digit district (区) code a grid code begins with."""
    return grid_code[:6]


def street_of(grid_code: str) -> str:
    """The 9-digit street (街道) code a grid code begins with."""
    return grid_code[:9]


class Position(BaseModel):
    """A point, in the coordinate system named by ``crs``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: FiniteFloat = Field(ge=-90, le=90)
    lon: FiniteFloat = Field(ge=-180, le=180)
    crs: CRS = CRS.WGS84


class Frame(BaseModel):
    """A JPEG snapshot from a street camera."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera_id: DeviceId
    grid_code: GridCode
    ts: datetime
    jpeg: bytes = Field(min_length=4)


AssetCondition = Literal[
    "ok", "damaged", "missing_parts", "graffiti", "leaning", "pest", "dirty", "missing", "other"
]


class AssetPing(BaseModel):
    """A maintainer's scan of a QR-tagged city asset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    asset_id: DeviceId
    grid_code: GridCode
    ts: datetime
    maintainer_id: str = Field(min_length=1, max_length=64)
    qr_payload: str | None = Field(default=None, max_length=512)
    position: Position | None = None
    accuracy_m: FiniteFloat | None = Field(default=None, ge=0)
    condition: AssetCondition = "ok"
    notes: str = Field(default="", max_length=2000)
    photo_jpeg: bytes | None = None
