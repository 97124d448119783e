"""The camera registry: per camera its grid, image size, named ROIs, learning period and schedule.

A YAML file with ``crs:`` (for the optional camera position) and ``rows:``, one row per
camera. ROI polygons are in the camera's own image coordinates (pixels of the full
frame). Errors name the file and the row's line.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gridsense.errors import ConfigError
from gridsense.model.envelopes import DeviceId, FiniteFloat, GridCode, Kind
from gridsense.model.geo import to_wgs84
from gridsense.model.registry import DeviceRegistry
from gridsense.model.tables import read_rows, validate_row

SHANGHAI = ZoneInfo("Asia/Shanghai")

RoiType = Literal["roadway", "sidewalk", "curb", "underpass", "garbage_point"]
SceneDetector = Literal["stationary_object", "snow_cover", "ponding"]

#: Which scene detectors watch an ROI of each type unless the row says otherwise.
DEFAULT_DETECTORS: dict[str, tuple[SceneDetector, ...]] = {
    "roadway": ("stationary_object", "snow_cover", "ponding"),
    "sidewalk": ("stationary_object",),  # light paving is as bright as snow: roads only
    "curb": ("stationary_object",),
    "underpass": ("ponding", "snow_cover"),
    "garbage_point": ("stationary_object",),
}

#: Category of a stationary object by ROI type: materials piled (0507) or exposed garbage (0102).
OBJECT_CATEGORY: dict[str, str] = {
    "roadway": "event:0507",
    "sidewalk": "event:0507",
    "curb": "event:0102",
    "garbage_point": "event:0102",
    "underpass": "event:0507",
}
VENDOR_CATEGORY = "event:0501"
SNOW_CATEGORY = "event:0112"
PONDING_CATEGORY = "event:0111"
CAMERA_FAULT_CATEGORY = "component:0704"


class Roi(BaseModel):
    """A named region of interest: a polygon in full-frame pixel coordinates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="unique within the camera")
    type: RoiType
    polygon: tuple[tuple[int, int], ...] = Field(min_length=3, max_length=64, description="[[x, y], …]")
    detectors: tuple[SceneDetector, ...] | None = Field(
        default=None, description="scene detectors on this ROI; default by type"
    )
    category: str | None = Field(
        default=None,
        pattern=r"^event:\d{4}$",
        description="case category for a stationary object here (e.g. event:0501 at a vendor hotspot)",
    )

    @property
    def active_detectors(self) -> tuple[SceneDetector, ...]:
        return self.detectors if self.detectors is not None else DEFAULT_DETECTORS[self.type]

    @property
    def object_category(self) -> str:
        return self.category or OBJECT_CATEGORY[self.type]


class Schedule(BaseModel):
    """When colour-based detectors are off: ``night`` in Asia/Shanghai local time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    night: tuple[time, time] | None = Field(
        default=(time(19, 0), time(6, 30)), description="'HH:MM-HH:MM' local; null = never night"
    )
    off_at_night: tuple[SceneDetector, ...] = Field(
        default=("snow_cover", "ponding"), description="detectors that need daylight colour"
    )

    @field_validator("night", mode="before")
    @classmethod
    def _parse_night(cls, v: object) -> object:
        if isinstance(v, str):
            try:
                a, b = v.split("-")
                return (time.fromisoformat(a.strip()), time.fromisoformat(b.strip()))
            except ValueError:
                raise ValueError("night must look like '19:00-06:30'") from None
        return v

    def is_night(self, ts: datetime) -> bool:
        if self.night is None:
            return False
        t = ts.astimezone(SHANGHAI).time()
        start, end = self.night
        return (start <= t or t < end) if start > end else (start <= t < end)

    def allows(self, detector: SceneDetector, ts: datetime) -> bool:
        return not (detector in self.off_at_night and self.is_night(ts))


class Camera(BaseModel):
    """One registry row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera_id: DeviceId
    grid_code: GridCode
    width: int = Field(ge=64, le=8192, description="frame width in pixels")
    height: int = Field(ge=64, le=8192, description="frame height in pixels")
    lat: FiniteFloat | None = Field(default=None, ge=-90, le=90, description="position; default: device's")
    lon: FiniteFloat | None = Field(default=None, ge=-180, le=180)
    learning_frames: int = Field(
        default=30, ge=5, le=100_000, description="frames that build the baselines before any detection"
    )
    schedule: Schedule = Field(default_factory=Schedule)
    rois: tuple[Roi, ...] = Field(default=(), max_length=32)

    @model_validator(mode="after")
    def _check(self) -> Camera:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        names = [r.name for r in self.rois]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate ROI name in {names}")
        for i, roi in enumerate(self.rois):
            for x, y in roi.polygon:
                if not (0 <= x <= self.width and 0 <= y <= self.height):
                    size = f"{self.width}×{self.height}"
                    raise ValueError(f"rois.{i} ({roi.name}): point ({x}, {y}) is outside the {size} frame")
        return self

    @property
    def position(self) -> tuple[float, float] | None:
        return None if self.lat is None or self.lon is None else (self.lat, self.lon)


class CameraRegistry:
    """All cameras by id; each must be a camera of the device registry, in the same grid."""

    def __init__(self, cameras: dict[str, Camera]) -> None:
        self._cameras = cameras

    @classmethod
    def load(cls, path: Path, devices: DeviceRegistry | None = None) -> CameraRegistry:
        crs, rows = read_rows(path, needs_crs=True)
        assert crs is not None
        cameras: dict[str, Camera] = {}
        for row in rows:
            cam = validate_row(Camera, row, path)
            where = f"{path}:{row.line}"
            if cam.camera_id in cameras:
                raise ConfigError(f"{where}: duplicate camera id {cam.camera_id}")
            position = cam.position
            if position is not None:
                position = to_wgs84(position[0], position[1], crs)
            if devices is not None:
                dev = devices.get(cam.camera_id)
                if dev is None or dev.kind is not Kind.CAMERA:
                    raise ConfigError(f"{where}: {cam.camera_id} is not a camera in the device registry")
                if dev.grid_code != cam.grid_code:
                    raise ConfigError(
                        f"{where}: {cam.camera_id} is in grid {dev.grid_code} in the device registry, "
                        f"not {cam.grid_code}"
                    )
                if position is None:
                    position = (dev.lat, dev.lon)
            if position is not None:
                cam = cam.model_copy(update={"lat": position[0], "lon": position[1]})
            cameras[cam.camera_id] = cam
        return cls(cameras)

    def get(self, camera_id: str) -> Camera | None:
        return self._cameras.get(camera_id)

    def __len__(self) -> int:
        return len(self._cameras)

    def __iter__(self) -> Iterator[Camera]:
        return iter(self._cameras.values())
