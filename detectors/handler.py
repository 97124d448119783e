"""CameraHandler: the camera stage as an ``ingest.contract.KindHandler`` for kind ``camera``.

``prepare`` (outside the transaction) checks and decodes a frame and runs the health and
scene detectors; every check that can reject a frame runs before the camera's state is
touched. ``commit`` (inside the batch transaction) runs the incident lifecycle, writes
evidence snapshots and its own tables (``SCHEMA``), and returns the incident changes.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import cv2

from detectors.config import CameraConfig
from detectors.contract import Corroboration, PreparedFrame, SkippedFrame, Verdict, Verdicts
from detectors.evidence import EvidenceStore
from detectors.frame_codec import check_jpeg, decode_reduced, read_meta
from detectors.health import CameraHealth
from detectors.lifecycle import SCHEMA, Lifecycle
from detectors.registry import CAMERA_FAULT_CATEGORY, Camera, CameraRegistry
from detectors.scene import CameraScene
from gridsense.errors import Rejected
from gridsense.model.case import Evidence
from gridsense.model.envelopes import Kind
from gridsense.model.incident import IncidentChange
from ingest.contract import InboundMessage, KindHandler
from ingest.topics import Topic

__all__ = ["SCHEMA", "CameraHandler"]

log = logging.getLogger("gridsense.detectors")

#: Faults judged on every frame whose exposure is sane, and the ones that need a live image.
_EXPOSURE = ("overexposed", "covered", "too_dark")
_LIVE = ("blurred", "moved")


@dataclass
class CameraState:
    """Everything the detectors remember about one camera (in memory)."""

    health: CameraHealth
    scene: CameraScene
    last_ts: datetime | None = None

    def nbytes(self) -> int:
        return self.health.nbytes() + self.scene.nbytes()


class CameraHandler:
    """Frames in, camera incidents out."""

    kind = Kind.CAMERA

    def __init__(
        self,
        cfg: CameraConfig,
        cameras: CameraRegistry,
        corroboration: Corroboration | None = None,
    ) -> None:
        self.cfg = cfg
        self.cameras = cameras
        self.corroboration = corroboration
        self.lifecycle = Lifecycle(cfg)
        self.evidence = EvidenceStore(cfg.evidence_dir, cfg.evidence_url_base)
        self.states: dict[str, CameraState] = {}
        self._restored: dict[str, datetime] = {}  # last frame time per camera, from the store
        self.counters: Counter[str] = Counter()

    # --- prepare (CPU work, outside the transaction) ---------------------------------------

    def prepare(self, msg: InboundMessage, topic: Topic, now: datetime) -> object:
        camera = self.cameras.get(topic.device_id)
        if camera is None:
            raise Rejected("unknown_camera", f"{topic.device_id} is not in the camera registry")
        if camera.grid_code != topic.grid_code:
            raise Rejected("wrong_grid", f"{camera.camera_id} belongs to grid {camera.grid_code}")
        meta = read_meta(msg.user_properties, now, self.cfg.max_future_s)
        width, height = check_jpeg(msg.payload, self.cfg.max_frame_bytes, self.cfg.max_frame_pixels)
        if (width, height) != (camera.width, camera.height):
            raise Rejected(
                "frame_size_mismatch",
                f"{width}×{height}, the registry says {camera.width}×{camera.height} (ROIs would not fit)",
            )
        bgr = decode_reduced(msg.payload, self.cfg.decode_scale)
        # Only now, with a good frame in hand, does the camera's state change.
        state = self.states.get(camera.camera_id) or self._new_state(camera, bgr.shape[1], bgr.shape[0])
        self.states[camera.camera_id] = state
        if state.last_ts is not None and meta.ts <= state.last_ts:
            self.counters["frames_skipped"] += 1
            return SkippedFrame(camera.camera_id, meta.ts)
        state.last_ts = meta.ts
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        health = state.health.observe(gray, meta.ts)
        verdicts: Verdicts = {}
        if not health.learning:
            still = not health.usable and not health.faults  # near-identical to the last frame
            evaluated = list(_EXPOSURE)
            if not any(f in health.faults for f in _EXPOSURE):
                evaluated.append("frozen")
                if not still and "frozen" not in health.faults:
                    evaluated.extend(_LIVE)
            for fault in evaluated:
                measure = health.faults.get(fault)
                verdicts[(fault, "")] = (
                    Verdict(fault, "", CAMERA_FAULT_CATEGORY, measure) if measure is not None else None
                )
        verdicts.update(state.scene.observe(bgr, meta.ts, health.usable))
        self.counters["frames"] += 1
        reference = None
        if health.faults and state.health.reference is not None:
            reference = state.health.reference.copy()
        return PreparedFrame(camera, meta.ts, meta.seq, msg.payload, verdicts, health.measures, reference)

    def _new_state(self, camera: Camera, width: int, height: int) -> CameraState:
        scene_w = min(self.cfg.scene.scene_width, width)
        scene_h = max(8, round(height * scene_w / width))
        return CameraState(
            CameraHealth(self.cfg.health, camera.learning_frames),
            CameraScene(self.cfg.scene, camera, (scene_w, scene_h)),
            self._restored.get(camera.camera_id),
        )

    # --- commit (inside the batch transaction) ----------------------------------------------

    def commit(self, conn: sqlite3.Connection, prepared: list[object], now: datetime) -> list[IncidentChange]:
        changes: list[IncidentChange] = []
        cursor: dict[str, datetime] = {}
        for item in prepared:
            if not isinstance(item, PreparedFrame):
                continue
            cursor[item.camera.camera_id] = item.ts
            for (detector, roi), verdict in sorted(item.verdicts.items()):
                changes.extend(self._observe(conn, item, detector, roi, verdict))
        self.lifecycle.flush(conn)
        for camera_id, ts in cursor.items():
            conn.execute(
                "INSERT INTO camera_cursor (camera_id, last_ts) VALUES (?, ?)"
                " ON CONFLICT (camera_id) DO UPDATE SET last_ts=excluded.last_ts",
                (camera_id, ts.isoformat()),
            )
        for ch in changes:
            self._record(conn, ch)
            log.info(
                "camera incident %s id=%s camera=%s rule=%s category=%s",
                ch.kind,
                ch.incident.incident_id,
                ch.incident.subject,
                ch.incident.rule_id,
                ch.incident.category_ref,
            )
        self.counters["changes"] += len(changes)
        return changes

    def _observe(
        self, conn: sqlite3.Connection, item: PreparedFrame, detector: str, roi: str, verdict: Verdict | None
    ) -> list[IncidentChange]:
        corroborated: dict[str, object] | None = None
        if verdict is not None and detector == "ponding" and self.corroboration is not None:
            corroborated = self.corroboration(conn, item.camera.grid_code, item.ts)
            if corroborated is None and self.cfg.scene.ponding_needs_corroboration:
                verdict = None  # no gauge agrees: treat the frame as dry
        result = self.lifecycle.observe(item.camera, detector, roi, verdict, item.ts)
        if result is None:
            return []
        kind, incident = result
        evidence: list[Evidence] = []
        if kind in ("opened", "updated") and verdict is not None:
            stamp = item.ts.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
            evidence.append(self.evidence.snapshot(item.payload, item.camera, verdict, stamp, item.reference))
            data = {"detector": detector, "roi": roi, "measure": round(verdict.measure, 4)}
            data.update({k: round(v, 4) for k, v in item.measures.items()})
            evidence.append(Evidence.of_data("readings", "detector measures at this frame", data))
            if corroborated is not None:
                evidence.append(Evidence.of_data("readings", "gauges in the same grid agree", corroborated))
        return [IncidentChange(kind, incident, item.ts, tuple(evidence))]

    def _record(self, conn: sqlite3.Connection, ch: IncidentChange) -> None:
        inc = ch.incident
        detector = inc.rule_id.split(".")[1]
        roi = inc.rule_id.split(".", 2)[2] if inc.rule_id.count(".") >= 2 else ""
        conn.execute(
            "INSERT OR IGNORE INTO camera_events (incident_id, kind, at, camera_id, detector, roi,"
            " category_ref, measure, evidence) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                inc.incident_id,
                ch.kind,
                ch.at.isoformat(),
                inc.subject,
                detector,
                roi,
                inc.category_ref,
                inc.peak_value,
                json.dumps([e.model_dump(mode="json") for e in ch.evidence], ensure_ascii=False),
            ),
        )

    # --- restart ---------------------------------------------------------------------------

    def restore(self, conn: sqlite3.Connection) -> None:
        """Reload incident tracks and per-camera cursors after a restart or a rolled-back batch.

        Image baselines are not persisted: each camera learns again for ``learning_frames``
        frames; open incidents stay open meanwhile and are judged again afterwards.
        """
        self.lifecycle.load(conn)
        self.states.clear()
        self._restored = {
            camera_id: datetime.fromisoformat(last)
            for camera_id, last in conn.execute("SELECT camera_id, last_ts FROM camera_cursor")
        }

    def state_bytes(self) -> int:
        """Memory held by the image models of all cameras (numpy buffers)."""
        return sum(s.nbytes() for s in self.states.values())


def _is_a_kind_handler(handler: CameraHandler) -> KindHandler:
    """Never called: mypy checks here that CameraHandler satisfies the ingest protocol."""
    return handler
