"""``gridsense cameras …``: evaluate the detectors, simulate a camera, check a camera registry.

The composition root calls ``register(subparsers)`` from ``gridsense/cli.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _evaluate(args: argparse.Namespace) -> int:
    from detectors.evaluate import run

    return run(args)


def _simulate(args: argparse.Namespace) -> int:
    from simulators.street_scene import main

    argv = [
        "--scenario",
        args.scenario,
        "--seed",
        str(args.seed),
        "--camera",
        args.camera,
        "--grid",
        args.grid,
    ]
    argv += ["--interval-s", str(args.interval_s), "--frames", str(args.frames)]
    argv += ["--host", args.host, "--port", str(args.port), "--topic-root", args.topic_root]
    if args.out:
        argv += ["--out", str(args.out)]
    return main(argv)


def _check(args: argparse.Namespace) -> int:
    from detectors.registry import CameraRegistry
    from gridsense.model.registry import DeviceRegistry, GridRegistry

    devices = None
    if args.devices:
        devices = DeviceRegistry.load(args.devices, GridRegistry.load(args.grids))
    reg = CameraRegistry.load(args.file, devices)
    rois = sum(len(c.rois) for c in reg)
    print(f"{args.file}: OK ({len(reg)} cameras, {rois} ROIs)")
    return 0


def register(subparsers: Any) -> None:
    """Add ``cameras evaluate|simulate|check`` to the ``gridsense`` command."""
    from detectors.evaluate import add_arguments

    cameras = subparsers.add_parser("cameras", help="camera detectors").add_subparsers(
        dest="cameras_command", required=True
    )
    ev = cameras.add_parser("evaluate", help="precision, recall, delay and false alarms on synthetic footage")
    add_arguments(ev)
    ev.set_defaults(func=_evaluate)

    sim = cameras.add_parser("simulate", help="a synthetic street camera: publish over MQTT or write files")
    sim.add_argument("--scenario", choices=["health", "scene", "quiet"], default="scene")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--camera", default="cam-012001002-1")
    sim.add_argument("--grid", default="110102012001002")
    sim.add_argument("--interval-s", type=float, default=10.0)
    sim.add_argument("--frames", type=int, default=2000, help="length of a quiet sequence")
    sim.add_argument("--out", type=Path, help="write JPEG files and truth.jsonl here instead of publishing")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=1883)
    sim.add_argument("--topic-root", default="city")
    sim.set_defaults(func=_simulate)

    check = cameras.add_parser("check", help="validate a camera registry (errors name file and line)")
    check.add_argument("file", type=Path)
    check.add_argument("--devices", type=Path, help="device registry to cross-check camera ids and grids")
    check.add_argument("--grids", type=Path, help="grid registry the device registry refers to")
    check.set_defaults(func=_check)
