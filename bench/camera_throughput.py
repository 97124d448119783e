"""Camera detector throughput and memory, as ratios against a baseline measured in the same run.

Baseline: full-resolution ``cv2.imdecode`` of the same 720p JPEG frames (what a naive
detector would pay before doing any work). Measured: the whole detector set through
``CameraHandler.prepare`` + ``commit`` (reduced-scale decode, health, scene, lifecycle,
SQLite). Runs A B A B … on one core and quotes medians. Memory: what the handler holds
per camera after its learning period (tracemalloc, numpy included), and how many cameras
fit in 2 GiB.

    python bench/camera_throughput.py [--frames 300] [--rounds 5] [--cameras 50]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np

from detectors.config import CameraConfig
from detectors.evaluate import _handler, run_frames
from detectors.registry import Camera, CameraRegistry
from gridsense.model.envelopes import Kind
from ingest.topics import Topic
from simulators.street_scene import SimFrame, StreetScene, scenario


def video_frames(path: Path, n: int) -> list[SimFrame]:
    """Frames of a video file re-encoded as 720p JPEG (quality 85), 10 s apart."""
    cap = cv2.VideoCapture(str(path))
    start = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    out: list[SimFrame] = []
    while len(out) < n:
        ok, img = cap.read()
        if not ok:
            break
        jpeg = cv2.imencode(".jpg", cv2.resize(img, (1280, 720)), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
        out.append(SimFrame(len(out), start + timedelta(seconds=10 * len(out)), jpeg))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--cameras", type=int, default=50)
    p.add_argument("--video", type=Path, help="real footage instead (e.g. vtest.avi), scaled to 1280×720")
    args = p.parse_args()
    cv2.setNumThreads(1)  # per core
    n = args.frames
    frames = video_frames(args.video, n) if args.video else list(scenario("scene", 7))[:n]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = CameraConfig(evidence_dir=Path(tmp))
        registry = CameraRegistry.load(cfg.registry)
        cam = registry.get("cam-012001002-1")
        assert cam is not None
        topic = Topic(cam.grid_code[:6], cam.grid_code, Kind.CAMERA, cam.camera_id)
        full, ours = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            for f in frames:
                cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR)
            full.append(time.perf_counter() - t0)
            handler, conn = _handler(cfg, registry)
            t0 = time.perf_counter()
            run_frames(handler, conn, topic, frames)
            ours.append(time.perf_counter() - t0)
        n = len(frames)
        full_fps, our_fps = n / statistics.median(full), n / statistics.median(ours)
        size = sum(len(f.jpeg) for f in frames) / n / 1024
        source = args.video or "simulated street"
        print(f"frames: {n} × 1280×720 JPEG ({size:.0f} KiB avg, {source}), {args.rounds} rounds A/B")
        print(f"full-resolution imdecode only : {full_fps:8.1f} frames/s")
        print(f"whole detector set            : {our_fps:8.1f} frames/s")
        print(f"ratio detector set / full decode: {our_fps / full_fps:.2f} (must be > 1)")

        # Memory: many cameras past their learning period.
        cams = {}
        for i in range(args.cameras):
            cid = f"cam-bench-{i}"
            cams[cid] = Camera.model_validate({**cam.model_dump(), "camera_id": cid})
        reg = CameraRegistry(cams)
        handler, conn = _handler(cfg, reg)
        warm = list(StreetScene(frames=cam.learning_frames + 5, seed=3))
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        for cid in cams:
            t = Topic(cam.grid_code[:6], cam.grid_code, Kind.CAMERA, cid)
            run_frames(handler, conn, t, warm)
        gc.collect()
        traced = (tracemalloc.get_traced_memory()[0] - base) / len(cams)
        tracemalloc.stop()
        buffers = handler.state_bytes() / len(cams)
        print(
            f"state per camera: {traced / 1024:.0f} KiB allocated (numpy buffers {buffers / 1024:.0f} KiB)"
            f" → {2**31 / traced:,.0f} cameras in 2 GiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
