"""Evaluate the camera detectors on labelled synthetic sequences.

For every detector: precision, recall and detection delay (data time from the event's
first frame to the ``opened`` change) over the ``health`` and ``scene`` sequences, and
false alarms per camera-hour over event-free ``quiet`` sequences with lighting drift and
night. The frames go through ``CameraHandler`` exactly as they would from MQTT.

    python -m detectors.evaluate --seeds 3 --quiet-hours 24
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from detectors.config import CameraConfig
from detectors.handler import SCHEMA, CameraHandler
from detectors.registry import CameraRegistry
from gridsense.model.envelopes import Kind
from gridsense.model.incident import IncidentChange
from gridsense.txn import transaction
from ingest.contract import InboundMessage
from ingest.topics import Topic
from simulators.street_scene import SimFrame, StreetScene, scenario

GRACE_FRAMES = 3  # a detection this many frames after the event's end still counts


def frame_message(topic: Topic, frame: SimFrame, root: str = "city") -> InboundMessage:
    """The message a camera would publish for ``frame``."""
    return InboundMessage(
        topic=f"{root}/{topic.district}/{topic.grid_code}/camera/{topic.device_id}",
        payload=frame.jpeg,
        received_at=frame.ts,
        user_properties=(("ts", frame.ts.isoformat()), ("seq", str(frame.index))),
    )


def run_frames(
    handler: CameraHandler,
    conn: sqlite3.Connection,
    topic: Topic,
    frames: Iterable[SimFrame],
    batch: int = 50,
) -> list[IncidentChange]:
    """Drive frames through prepare/commit in batches, as the pipeline does."""
    changes: list[IncidentChange] = []
    pending: list[object] = []
    last = datetime.now(UTC)
    for f in frames:
        now = max(f.ts + timedelta(seconds=1), last)
        pending.append(handler.prepare(frame_message(topic, f), topic, now))
        if len(pending) >= batch:
            with transaction(conn):
                changes.extend(handler.commit(conn, pending, now))
            pending = []
    if pending:
        with transaction(conn):
            changes.extend(handler.commit(conn, pending, datetime.now(UTC)))
    return changes


def detector_of(change: IncidentChange) -> str:
    return change.incident.rule_id.split(".")[1]


@dataclass
class Score:
    events: int = 0
    detected: int = 0
    opened: int = 0
    true_opened: int = 0
    delays: list[float] = field(default_factory=list)
    categories_ok: int = 0

    def line(self, name: str) -> str:
        recall = self.detected / self.events if self.events else float("nan")
        precision = self.true_opened / self.opened if self.opened else float("nan")
        delay = statistics.median(self.delays) if self.delays else float("nan")
        cat = f"{self.categories_ok}/{self.detected}" if name == "stationary_object" else ""
        return (
            f"{name:<18} {self.events:>6} {self.detected:>8} {recall:>7.2f} {self.opened:>7} "
            f"{precision:>9.2f} {delay:>9.0f} {cat:>9}"
        )


def expected_category(ev: dict[str, object]) -> str:
    if ev["kind"] == "vendor_stall":
        return "event:0501"
    box = ev["box"]
    assert isinstance(box, list | tuple)
    foot = box[1] + box[3]
    return "event:0102" if foot > 556 else "event:0507"  # curb and garbage point vs road


def score(scene: StreetScene, changes: list[IncidentChange], scores: dict[str, Score]) -> None:
    truth = [t for t in scene.truth() if t["detector"] is not None]
    spans = []
    for t in truth:
        det = str(t["detector"])
        start = scene.ts(int(t["start"]))  # type: ignore[call-overload]
        end = scene.ts(int(t["end"]) + GRACE_FRAMES)  # type: ignore[call-overload]
        spans.append((det, start, end, t))
        scores[det].events += 1
    opened = [c for c in changes if c.kind == "opened"]
    for c in opened:
        det = detector_of(c)
        scores[det].opened += 1
        if any(d == det and s <= c.incident.opened_at <= e for d, s, e, _ in spans):
            scores[det].true_opened += 1
    for det, start, end, t in spans:
        hits = [c for c in opened if detector_of(c) == det and start <= c.incident.opened_at <= end]
        if hits:
            first = min(hits, key=lambda c: c.at)
            scores[det].detected += 1
            scores[det].delays.append((first.at - start).total_seconds())
            if det == "stationary_object" and first.incident.category_ref == expected_category(t):
                scores[det].categories_ok += 1


def _handler(cfg: CameraConfig, registry: CameraRegistry) -> tuple[CameraHandler, sqlite3.Connection]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(SCHEMA)
    return CameraHandler(cfg, registry), conn


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, default=3, help="labelled sequences per kind (health, scene)")
    p.add_argument("--quiet-hours", type=float, default=24.0, help="camera-hours of event-free footage")
    p.add_argument("--interval-s", type=float, default=10.0, help="seconds between frames")
    p.add_argument("--registry", type=Path, help="camera registry (default: the packaged demo)")
    p.add_argument("--camera", default="cam-012001002-1", help="camera id the sequences come from")
    p.add_argument("--config", type=Path, help="YAML with CameraConfig fields to override")
    p.add_argument("--only", choices=["health", "scene", "quiet"], action="append", help="run only these")


def run(args: argparse.Namespace) -> int:
    overrides = yaml.safe_load(args.config.read_text()) if args.config else {}
    with tempfile.TemporaryDirectory(prefix="gridsense-eval-") as tmp:
        base = CameraConfig.model_validate({"evidence_dir": tmp, **(overrides or {})})
        cfg = base.model_copy(update={"registry": args.registry}) if args.registry else base
        registry = CameraRegistry.load(cfg.registry)
        camera = registry.get(args.camera)
        if camera is None:
            print(f"camera {args.camera} is not in {cfg.registry}", file=sys.stderr)
            return 2
        topic = Topic(camera.grid_code[:6], camera.grid_code, Kind.CAMERA, camera.camera_id)
        kinds = args.only or ["health", "scene", "quiet"]
        scores: dict[str, Score] = defaultdict(Score)
        frames_total = 0
        for kind in ("health", "scene"):
            if kind not in kinds:
                continue
            for seed in range(1, args.seeds + 1):
                scene = scenario(kind, seed, camera.camera_id, interval_s=args.interval_s)
                handler, conn = _handler(cfg, registry)
                changes = run_frames(handler, conn, topic, scene)
                score(scene, changes, scores)
                frames_total += scene.frames
        print(f"labelled sequences: {frames_total} frames, one every {args.interval_s:g} s")
        print(
            f"{'detector':<18} {'events':>6} {'detected':>8} {'recall':>7} {'opened':>7} "
            f"{'precision':>9} {'delay_s':>9} {'category':>9}"
        )
        for name in sorted(scores):
            print(scores[name].line(name))
        if "quiet" in kinds:
            frames = int(args.quiet_hours * 3600 / args.interval_s)
            scene = scenario("quiet", 101, camera.camera_id, interval_s=args.interval_s, frames=frames)
            handler, conn = _handler(cfg, registry)
            changes = run_frames(handler, conn, topic, scene)
            opened = [c for c in changes if c.kind == "opened"]
            hours = frames * args.interval_s / 3600
            per_det: dict[str, int] = defaultdict(int)
            for c in opened:
                per_det[detector_of(c)] += 1
            health = sum(
                n for d, n in per_det.items() if d not in ("stationary_object", "snow_cover", "ponding")
            )
            print(
                f"event-free: {hours:.1f} camera-hours with lighting drift and night: "
                f"{len(opened)} false alarms ({len(opened) / hours * 24:.2f} per camera-day; "
                f"camera faults {health / hours * 24:.2f} per camera-day) {dict(per_det)}"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gridsense cameras evaluate", description=__doc__.split("\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
