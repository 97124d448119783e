"""What the camera stage takes in and gives out.

In: MQTT messages on ``<root>/<district>/<grid>/camera/<camera-id>``: a JPEG payload with
its capture time in the MQTT 5 user property ``ts`` (see ``detectors.frame_codec``).
Out: ``IncidentChange`` events (``gridsense.model.incident``) with ``source="camera"`` and
``subject=<camera-id>``: camera faults file ``component:0704`` (视频监控设备), scene events
their own event codes. Frames that can never be used are ``Rejected`` with a reason.

``CameraHandler`` (``detectors.handler``) implements ``ingest.contract.KindHandler``:
``prepare`` decodes a frame and runs the detectors into ``Verdict``s, outside the
transaction; ``commit`` turns verdicts into incident changes inside it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from detectors.registry import Camera


@dataclass(frozen=True)
class Verdict:
    """A detector saw its condition in one frame (absence is ``None`` in a verdict map)."""

    detector: str  # covered, too_dark, … or stationary_object, snow_cover, ponding
    roi: str  # "" for camera-health faults
    category: str  # "component:0704", "event:0507", …
    measure: float
    box: tuple[int, int, int, int] | None = None  # x, y, w, h in full-frame pixels


#: Verdicts of the detectors evaluated on a frame; a missing key was not evaluated.
Verdicts = dict[tuple[str, str], Verdict | None]


@dataclass(frozen=True)
class PreparedFrame:
    """A decoded, checked frame and what the detectors made of it."""

    camera: Camera
    ts: datetime
    seq: int | None
    payload: bytes  # kept for the evidence snapshot
    verdicts: Verdicts
    measures: dict[str, float] = field(default_factory=dict)
    reference: np.ndarray | None = None  # the camera's reference view, when a health fault is seen


@dataclass(frozen=True)
class SkippedFrame:
    """A frame not newer than the last one of its camera (a redelivery): nothing to do."""

    camera_id: str
    ts: datetime


class Corroboration(Protocol):
    """Asked, inside the transaction, whether other sensors in the grid agree (e.g. ponding).

    Returns the corroborating data (for the case evidence) or ``None``.
    """

    def __call__(self, conn: sqlite3.Connection, grid_code: str, at: datetime) -> dict[str, Any] | None: ...
