"""Typed envelopes that travel between stages.

Gateways and simulators use these same models, so a simulated device cannot drift
from the real wire format. Units are normalised on the way in: rain in mm, snow
depth and water level in cm.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def epoch_ms(ts: datetime) -> int:
    """``ts`` as integer milliseconds since the epoch, rounded to the nearest (exact).

    Integer arithmetic on purpose: a float detour (as influxdb-client's own conversion
    takes) is one millisecond short for about 1 in 8 timestamps. The store and the sink
    both key readings on this value.
    """
    us = (ts - _EPOCH) // _ONE_US
    return (us + 500) // 1000


def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError("value must be a finite number (NaN and inf are rejected)")
    return v


FiniteFloat = Annotated[float, AfterValidator(_finite)]
DeviceId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
GridCode = Annotated[str, Field(pattern=r"^\d{15}$", description="15-digit unit grid code")]


class Position(BaseModel):
    """A point, in the coordinate system named by ``crs``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: FiniteFloat = Field(ge=-90, le=90)
    lon: FiniteFloat = Field(ge=-180, le=180)
    crs: CRS = CRS.WGS84


class Reading(BaseModel):
    """One normalised gauge reading, ready for the store and the rules.

    ``value`` is in the kind's canonical unit. For rain it is the amount fallen in the
    interval ending at ``ts``; ``counter`` keeps the raw tipping-bucket total (mm) when the
    gauge sent one, so the next interval can be derived and a reset detected.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_id: DeviceId
    kind: Kind
    grid_code: GridCode
    ts: datetime
    value: FiniteFloat
    unit: str
    counter: FiniteFloat | None = None
    battery: FiniteFloat | None = Field(default=None, ge=0, le=100)
    update_interval_s: float | None = Field(default=None, gt=0, description="SenML ut, if sent")
    suspect: bool = False

    @field_validator("ts")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("timestamp must carry a timezone")
        return v


_READING_FIELDS = set(Reading.model_fields)
_set = object.__setattr__


def trusted_reading(
    device_id: str,
    kind: Kind,
    grid_code: str,
    ts: datetime,
    value: float,
    unit: str,
    counter: float | None,
    battery: float | None,
    update_interval_s: float | None,
    suspect: bool = False,
) -> Reading:
    """A ``Reading`` from fields the caller has already checked, built without validation.

    The ingest hot path checks every field itself (codec, registry, normaliser); pydantic's
    ``model_construct`` would still walk the field table for aliases and defaults, about
    5 µs a reading. This sets the same four attributes ``model_construct`` sets, for every
    field at once. tests/model/test_trusted_reading.py holds the two to the same result.
    """
    m = Reading.__new__(Reading)
    _set(
        m,
        "__dict__",
        {
            "device_id": device_id,
            "kind": kind,
            "grid_code": grid_code,
            "ts": ts,
            "value": value,
            "unit": unit,
            "counter": counter,
            "battery": battery,
            "update_interval_s": update_interval_s,
            "suspect": suspect,
        },
    )
    _set(m, "__pydantic_fields_set__", _READING_FIELDS.copy())  # model_copy updates it
    _set(m, "__pydantic_extra__", None)
    _set(m, "__pydantic_private__", None)
    return m


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
