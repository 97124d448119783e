"""Real footage: OpenCV's vtest.avi (768×576, a pedestrian plaza) from Debian's opencv-doc.

The video is not committed: the fixture downloads the package and extracts the file at
test time (cached under the temp dir). Under CI=true a failure to get it fails the test.
Untampered footage must file no camera fault; covered, blurred and shifted copies must.
"""

from __future__ import annotations

import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors.registry import CameraRegistry
from simulators.street_scene import SimFrame
from tests.detectors.conftest import run

MEMBER = "./usr/share/doc/opencv-doc/examples/data/vtest.avi"
CACHE = Path(tempfile.gettempdir()) / "gridsense-opencv-doc" / "vtest.avi"
CAM, GRID = "cam-vtest-1", "110102012001002"


def _fetch() -> Path:
    if CACHE.exists():
        return CACHE
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["apt-get", "download", "opencv-doc"], cwd=tmp, check=True, capture_output=True, timeout=600
        )
        deb = next(Path(tmp).glob("opencv-doc_*.deb"))
        tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", tmp, MEMBER], input=tar.stdout, check=True, capture_output=True)
        (Path(tmp) / MEMBER).replace(CACHE)
    return CACHE


@pytest.fixture(scope="module")
def vtest_frames() -> list[np.ndarray]:
    try:
        path = _fetch()
    except (OSError, subprocess.SubprocessError, StopIteration) as exc:
        pytest.fail(f"cannot get vtest.avi from Debian's opencv-doc (scripts/test refreshes apt): {exc!r}")
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < 170:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
        cap.grab()  # every second frame: 5 fps of a 10 fps video
    assert len(frames) >= 150, "vtest.avi is shorter than expected"
    return frames


@pytest.fixture
def registry(tmp_path: Path) -> CameraRegistry:
    path = tmp_path / "cameras.yaml"
    path.write_text(
        f'crs: wgs84\nrows:\n  - camera_id: {CAM}\n    grid_code: "{GRID}"\n    width: 768\n'
        "    height: 576\n    lat: 39.94\n    lon: 116.38\n    learning_frames: 30\n    rois:\n"
        "      - {name: plaza, type: sidewalk, polygon: [[0, 200], [768, 200], [768, 576], [0, 576]]}\n"
    )
    return CameraRegistry.load(path)


def _cover(img: np.ndarray) -> np.ndarray:
    out = img.copy()
    h, w = out.shape[:2]
    pts = np.array([(0, 0), (int(0.78 * w), 0), (int(0.72 * w), h), (0, h)], np.int32)
    cv2.fillPoly(out, [pts], (35, 40, 45))
    return out


def _shift(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    m = np.float32([[1, 0, 0.06 * w], [0, 1, 0]])  # type: ignore[list-item]
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)


TAMPER = {
    "untampered": (lambda img: img, None),
    "covered": (_cover, "covered"),
    "blurred": (lambda img: cv2.GaussianBlur(img, (0, 0), 2.5), "blurred"),
    "shifted": (_shift, "moved"),
}


@pytest.mark.parametrize("name", list(TAMPER))
def test_real_footage(name: str, vtest_frames, registry, make_handler) -> None:  # type: ignore[no-untyped-def]
    tamper, expected = TAMPER[name]
    start = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    frames = []
    for i, img in enumerate(vtest_frames):
        shown = tamper(img) if i >= 80 else img
        jpeg = cv2.imencode(".jpg", shown, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
        frames.append(SimFrame(i, start + timedelta(seconds=i), jpeg))
    handler, conn = make_handler(registry, scene={"stationary_after_s": 60})
    changes = run(handler, conn, CAM, GRID, frames)
    faults = {
        c.incident.rule_id.split(".")[1] for c in changes if c.incident.category_ref == "component:0704"
    }
    if expected is None:
        assert faults == set(), [c.incident.rule_id for c in changes]
    else:
        assert expected in faults, [c.incident.rule_id for c in changes]
