"""Evidence snapshots: the frame with the ROI and the object's box drawn, stored by digest.

A snapshot is decoded at half scale (enough to see a rubbish pile, cheap to make) and
written under ``evidence_dir/<camera>/<yyyymmdd>/``. For a camera fault where it helps
(moved, covered, blurred) the camera's reference view is put beside the current one.
The case references the file by URL together with its sha256 (``Evidence.of_file``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np

from detectors.contract import Verdict
from detectors.frame_codec import decode_reduced
from detectors.registry import Camera
from gridsense.model.case import Evidence

_SCALE = 2
_RED, _YELLOW = (0, 0, 255), (0, 220, 255)
_WITH_REFERENCE = frozenset({"moved", "covered", "blurred"})


def annotate(payload: bytes, camera: Camera, verdict: Verdict, reference: np.ndarray | None) -> bytes:
    """JPEG bytes of the annotated snapshot (with the reference beside it for some faults)."""
    img = decode_reduced(payload, _SCALE)
    h, w = img.shape[:2]
    sx, sy = w / camera.width, h / camera.height
    roi = next((r for r in camera.rois if r.name == verdict.roi), None)
    if roi is not None:
        pts = np.array([(round(x * sx), round(y * sy)) for x, y in roi.polygon], np.int32)
        cv2.polylines(img, [pts], True, _YELLOW, 2)
    if verdict.box is not None:
        x, y, bw, bh = verdict.box
        cv2.rectangle(
            img, (round(x * sx), round(y * sy)), (round((x + bw) * sx), round((y + bh) * sy)), _RED, 2
        )
    label = f"{camera.camera_id} {verdict.detector} {verdict.category} {verdict.measure:.3g}"
    cv2.putText(img, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, _RED, 2, cv2.LINE_AA)
    if reference is not None and verdict.detector in _WITH_REFERENCE:
        ref = cv2.cvtColor(cv2.resize(reference.astype(np.uint8), (w, h)), cv2.COLOR_GRAY2BGR)
        cv2.putText(ref, "reference", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, _YELLOW, 2, cv2.LINE_AA)
        img = np.hstack([ref, img])
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return buf.tobytes()


class EvidenceStore:
    """Writes snapshots under a folder; names carry the digest, so a retry rewrites nothing."""

    def __init__(self, root: Path, url_base: str | None = None) -> None:
        self.root = root
        self.url_base = url_base.rstrip("/") if url_base else None

    def put(self, camera_id: str, stamp: str, detector: str, content: bytes) -> str:
        """Store ``content`` and return the URL the platform fetches it from."""
        digest = hashlib.sha256(content).hexdigest()
        rel = Path(camera_id) / stamp[:8] / f"{stamp}_{detector}_{digest[:16]}.jpg"
        path = self.root / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(content)
            os.replace(tmp, path)  # never a half-written file under the final name
        if self.url_base:
            return f"{self.url_base}/{rel.as_posix()}"
        return path.resolve().as_uri()

    def snapshot(
        self, payload: bytes, camera: Camera, verdict: Verdict, stamp: str, reference: np.ndarray | None
    ) -> Evidence:
        content = annotate(payload, camera, verdict, reference)
        url = self.put(camera.camera_id, stamp, verdict.detector, content)
        what = f"{verdict.detector} {verdict.roi}".strip()
        return Evidence.of_file("snapshot", f"camera {camera.camera_id}: {what}", content, url)
