"""The ``cameras`` config section: where the camera registry and evidence live, and the detector thresholds.

Thresholds are multiples or fractions of each camera's own rolling baseline, never fixed
brightness or sharpness numbers, so one config fits a dim alley and a floodlit crossing.
Durations are in data time (the frames' ``ts``), so a replay behaves like the live stream.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


def demo_camera_registry() -> Path:
    """The packaged demo registry: cameras matching the demo device registry."""
    return Path(str(resources.files("gridsense").joinpath("data", "demo", "cameras.yaml")))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HealthThresholds(_Section):
    """Camera-health faults, each judged against the camera's own rolling baseline."""

    baseline_frames: int = Field(
        default=120, ge=10, le=5000, description="healthy frames kept for each rolling median"
    )
    dark_ratio: float = Field(
        default=0.35, gt=0, lt=1, description="too dark: mean brightness below this × baseline median"
    )
    overexposed_fraction: float = Field(
        default=0.45, gt=0, lt=1, description="overexposed: this share of pixels clipped (≥ 250)…"
    )
    overexposed_ratio: float = Field(
        default=3.0, gt=1, description="…and at least this × the baseline share of clipped pixels"
    )
    covered_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="lens covered: this share of blocks lost their texture and moved away from background",
    )
    covered_texture_ratio: float = Field(
        default=0.35, gt=0, lt=1, description="a block lost its texture below this × its own baseline"
    )
    covered_entropy_drop: float = Field(
        default=0.5, ge=0, description="…and histogram entropy fell by this many bits below baseline"
    )
    blur_ratio: float = Field(
        default=0.7,
        gt=0,
        lt=1,
        description="defocus: edge sharpness (peak Laplacian / strong gradient) below this × rolling median",
    )
    moved_shift_fraction: float = Field(
        default=0.03, gt=0, lt=0.5, description="camera moved: translation above this share of the width"
    )
    moved_rotation_deg: float = Field(
        default=1.8, gt=0, le=45, description="camera moved: rotation above this many degrees"
    )
    moved_min_response: float = Field(
        default=0.04, ge=0, lt=1, description="phase-correlation peak below this is 'no evidence'"
    )
    frozen_diff_ratio: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="frozen: frame-to-frame difference below this × the camera's usual noise",
    )
    frozen_after_s: float = Field(
        default=300, gt=0, le=86400, description="frozen only after near-identical frames for this long"
    )
    reference_tau_s: float = Field(
        default=3600, gt=0, description="time constant of the reference image used for 'moved'"
    )


class SceneThresholds(_Section):
    """Detectors inside the registry's ROIs."""

    scene_width: int = Field(
        default=160, ge=64, le=640, description="width in pixels the background models work at"
    )
    short_tau_s: float = Field(
        default=30, gt=0, description="time constant of the short-term background (objects that stay)"
    )
    long_tau_s: float = Field(
        default=3 * 3600, gt=0, description="time constant of the long-term background (the empty scene)"
    )
    object_sigma: float = Field(
        default=4.0, gt=0, description="a pixel differs when it is this many noise sigmas from background"
    )
    min_object_fraction: float = Field(
        default=0.003, gt=0, lt=1, description="smallest stationary object, as a share of the frame"
    )
    absorb_after_s: float = Field(
        default=6 * 3600,
        gt=0,
        description="a change that stands this long becomes background (a new kiosk, a repainted kerb)",
    )
    stationary_after_s: float = Field(
        default=180, ge=0, description="an object must stand still this long before it counts"
    )
    vendor_activity: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="share of frames with people moving around a sidewalk object that makes it a vendor",
    )
    snow_fraction: float = Field(
        default=0.5, gt=0, le=1, description="road snow: share of the ROI bright, unsaturated and smooth"
    )
    snow_brightness_ratio: float = Field(
        default=1.5, gt=1, description="snow pixels are this × brighter than the dry road's median"
    )
    snow_max_saturation: int = Field(default=40, ge=0, le=255, description="snow pixels' HSV saturation cap")
    ponding_fraction: float = Field(
        default=0.25, gt=0, le=1, description="ponding (experimental): share of the ROI changed like water"
    )
    ponding_needs_corroboration: bool = Field(
        default=False,
        description="open a ponding incident only when a rain or water reading in the grid agrees",
    )


class CameraConfig(_Section):
    """Camera detectors: frames over MQTT → health and scene incidents."""

    enabled: bool = Field(default=True, description="handle camera frames (the registry must load)")
    registry: Path = Field(
        default_factory=demo_camera_registry, description="camera registry (YAML with crs and rows)"
    )
    evidence_dir: Path = Field(
        default=Path("evidence"), description="folder the annotated snapshots are written to"
    )
    evidence_url_base: str | None = Field(
        default=None,
        description="URL prefix the platform reaches evidence_dir under; unset = file:// URLs",
    )
    max_frame_bytes: int = Field(
        default=2_000_000, ge=1024, le=50_000_000, description="largest accepted JPEG payload"
    )
    max_frame_pixels: int = Field(
        default=3840 * 2160,
        ge=64 * 64,
        description="largest accepted image (width × height from the JPEG header)",
    )
    decode_scale: Literal[2, 4, 8] = Field(
        default=4, description="JPEG decoded at 1/scale (IMREAD_REDUCED_*): full resolution is too slow"
    )
    max_future_s: float = Field(
        default=300, ge=0, description="frames stamped further in the future than this are rejected"
    )
    persistence_frames: int = Field(
        default=3, ge=1, le=1000, description="consecutive positive frames before an incident opens"
    )
    clear_frames: int = Field(
        default=3, ge=1, le=1000, description="consecutive negative frames before an incident clears"
    )
    cooldown_s: float = Field(
        default=900, ge=0, description="after a clear, the same detector stays quiet this long"
    )
    update_growth: float = Field(
        default=1.5, gt=1, description="an open incident reports an update when its measure grows by this ×"
    )
    health: HealthThresholds = Field(default_factory=HealthThresholds)
    scene: SceneThresholds = Field(default_factory=SceneThresholds)

    @model_validator(mode="after")
    def _taus_in_order(self) -> CameraConfig:
        if self.scene.long_tau_s <= self.scene.short_tau_s:
            raise ValueError("scene.long_tau_s must be longer than scene.short_tau_s")
        return self
