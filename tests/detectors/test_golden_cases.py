"""Golden cases: ``cases/<name>/{config,input,expected}.yaml`` → the incident changes filed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from detectors.handler import CameraHandler
from simulators.street_scene import SceneEvent, StreetScene
from tests.detectors.conftest import run

CASES = sorted(p for p in (Path(__file__).parent / "cases").iterdir() if p.is_dir())
START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # 10:00 in Beijing: daylight


def load_case(path: Path) -> tuple[dict, StreetScene, list[dict]]:  # type: ignore[type-arg]
    config = yaml.safe_load((path / "config.yaml").read_text()) or {}
    spec = yaml.safe_load((path / "input.yaml").read_text())
    events = [SceneEvent(**{**e, "box": tuple(e["box"]) if "box" in e else None}) for e in spec.pop("events")]
    scene = StreetScene(start=START, events=events, **spec)
    expected = yaml.safe_load((path / "expected.yaml").read_text())["changes"]
    return config, scene, expected


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Path, make_handler) -> None:  # type: ignore[no-untyped-def]
    config, scene, expected = load_case(case)
    handler, conn = make_handler(**config)
    changes = run(handler, conn, scene.camera_id, scene.grid_code, scene)
    got = [(c.kind, c.incident.rule_id, c.incident.category_ref, scene_index(scene, c.at)) for c in changes]
    got = [g for g in got if g[0] != "updated"]
    assert len(got) == len(expected), f"changes filed: {got}"
    for (kind, rule, category, frame), exp in zip(got, expected, strict=True):
        assert (kind, rule, category) == (exp["kind"], exp["rule_id"], exp["category"]), got
        assert exp["frame_min"] <= frame <= exp["frame_max"], f"{kind} {rule} at frame {frame}"
    for c in changes:
        assert c.incident.source == "camera"
        assert c.incident.subject == scene.camera_id
        assert c.incident.location is not None  # the camera's own position
        if c.kind == "opened":
            snap = next(e for e in c.evidence if e.kind == "snapshot")
            assert snap.url is not None and snap.url.startswith("file://")
            path = Path(snap.url.removeprefix("file://"))
            import hashlib

            assert hashlib.sha256(path.read_bytes()).hexdigest() == snap.sha256


def scene_index(scene: StreetScene, at: datetime) -> int:
    return round((at - scene.start).total_seconds() / scene.interval_s)


def test_replay_gives_the_same_incident_ids(make_handler) -> None:  # type: ignore[no-untyped-def]
    """A redelivered or replayed sequence files the same incident ids: no duplicate cases."""
    config, scene, _ = load_case(Path(__file__).parent / "cases" / "lens_covered")
    ids = []
    for _ in range(2):
        handler, conn = make_handler(**config)
        ids.append(
            [c.incident.incident_id for c in run(handler, conn, scene.camera_id, scene.grid_code, scene)]
        )
    assert ids[0] and ids[0] == ids[1]


def test_restart_keeps_the_open_incident(make_handler) -> None:  # type: ignore[no-untyped-def]
    """After a restart the open incident is reloaded; re-sent old frames are skipped, not re-filed."""
    config, scene, _ = load_case(Path(__file__).parent / "cases" / "lens_covered")
    frames = list(scene)
    handler, conn = make_handler(**config)
    first = run(handler, conn, scene.camera_id, scene.grid_code, frames[:50])
    assert [c.kind for c in first] == ["opened"]
    again = CameraHandler(handler.cfg, handler.cameras)
    again.restore(conn)
    assert [i.incident_id for i in again.lifecycle.open_incidents()] == [first[0].incident.incident_id]
    assert run(again, conn, scene.camera_id, scene.grid_code, frames[:50]) == []
    assert again.counters["frames_skipped"] == 50
