"""The ``cameras`` config section documents itself and refuses what it does not know."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from detectors.config import CameraConfig


def test_every_setting_is_described() -> None:
    def walk(model: type[BaseModel], prefix: str) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                missing += walk(ann, f"{prefix}{name}.")
            elif not field.description:
                missing.append(prefix + name)
        return missing

    assert walk(CameraConfig, "") == []


@pytest.mark.parametrize(
    "bad",
    [
        {"decode_scale": 3},
        {"persistence_frames": 0},
        {"max_frame_bytes": 60_000_000},
        {"health": {"dark_ratio": 1.5}},
        {"scene": {"short_tau_s": 7200, "long_tau_s": 3600}},
        {"thresholds": {}},
    ],
)
def test_bad_settings_are_refused(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError):
        CameraConfig.model_validate(bad)
