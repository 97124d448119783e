"""The camera registry: demo cameras match the demo devices; errors name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.config import CameraConfig
from detectors.registry import CameraRegistry
from gridsense.errors import ConfigError
from tests.detectors.conftest import demo_devices


def test_demo_registry_matches_the_demo_devices() -> None:
    devices = demo_devices()
    reg = CameraRegistry.load(CameraConfig().registry, devices)
    assert {c.camera_id for c in reg} == {"cam-012001002-1", "cam-003001002-1"}
    for cam in reg:
        dev = devices.get(cam.camera_id)
        assert dev is not None and cam.position == (dev.lat, dev.lon)  # WGS-84, from the device
        assert {r.type for r in cam.rois} >= {"roadway", "curb", "garbage_point"}


ROW = """crs: wgs84
rows:
  - camera_id: cam-012001002-1
    grid_code: "110102012001002"
    width: 1280
    height: 720
    rois:
      - {name: road, type: roadway, polygon: [[0, 368], [1280, 368], [1280, 556]]}
  - camera_id: cam-003001002-1
    grid_code: "110102003001002"
    width: 1280
    height: 720
    rois:
      - {name: road, type: roadway, polygon: [[0, 368], [1279, 368], [1280, 556]]}
"""


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        (ROW.replace("1279", "1400"), ":9:", "outside the 1280×720 frame"),
        (ROW.replace("crs: wgs84\n", ""), ":1:", "no coordinate system"),
        (
            ROW.replace("roadway, polygon: [[0, 368], [1279", "river, polygon: [[0, 368], [1279"),
            ":9:",
            "rois.0.type",
        ),
        (ROW.replace('"110102003001002"', '"110102003001001"'), ":9:", "is in grid 110102003001002"),
        (ROW.replace("cam-003001002-1", "cam-012001002-1"), ":9:", "duplicate camera id"),
        (ROW.replace("cam-003001002-1", "cam-x"), ":9:", "not a camera in the device registry"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, where: str, words: str) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        CameraRegistry.load(path, demo_devices())
    assert f"{path}{where}" in str(info.value) and words in str(info.value)
