"""Golden cases for the asset rules: ``cases/<name>/{config,input,expected}.yaml``.

``input.yaml`` is a list of steps, each a batch at server time ``at``: ``pings`` (each
with ``asset``, ``maintainer`` and optionally ``ts``, ``condition``, ``notes``,
``offset_m: [north, east]`` from the asset, ``accuracy_m``, ``crs``, ``photo: true`` and
``qr``: ``@tag``, ``@tag:<key id>``, ``@forged``, ``@tag-of:<asset>`` or a literal), or
``sweep: true`` (the scheduled jobs). ``expected.yaml`` holds, per step, each ping's
outcome and the incident changes. ``GOLDEN_UPDATE=1`` rewrites the expected files.
"""

from __future__ import annotations

import os
import random
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridsense.model.geo import CRS
from gridsense.model.incident import IncidentChange
from gridsense.model.registry import GridRegistry
from ingest.contract import InboundMessage
from simulators.patrol import PatrolScenario, offset, photograph
from tests.assets.harness import Harness, asset_config

CASES = Path(__file__).parent / "cases"


def _qr(h: Harness, spec: str | None, asset_id: str) -> str | None:
    ring = h.stage.keyring
    if spec is None or spec == "@tag":
        return ring.sign(asset_id)
    if spec.startswith("@tag:"):
        return ring.sign(asset_id, key_id=spec[5:])
    if spec == "@forged":
        genuine = ring.sign(asset_id)
        return genuine[:-1] + ("A" if genuine[-1] != "A" else "B")
    if spec.startswith("@tag-of:"):
        return ring.sign(spec[8:])
    return spec


def _message(h: Harness, spec: dict[str, Any], at: datetime) -> InboundMessage:
    asset_id = str(spec["asset"])
    a = h.stage.registry.get(asset_id)
    base = (a.lat, a.lon) if a is not None else tuple(spec["at_wgs84"])
    north, east = spec.get("offset_m", [0, 0])
    ts = datetime.fromisoformat(str(spec["ts"])) if "ts" in spec else at
    qr = _qr(h, spec.get("qr"), asset_id)
    extra: dict[str, Any] = {}
    if spec.get("photo"):
        scenario = PatrolScenario(h.stage.registry, h.stage.maintainers, h.stage.keyring, at, h.scheme)
        assert a is not None and qr is not None
        extra["photo_jpeg"] = photograph(scenario.label_png(a, qr), random.Random(1))
        qr = None
    return h.ping(
        asset_id,
        maintainer=str(spec["maintainer"]),
        ts=ts,
        qr=qr,
        at=offset(base[0], base[1], north, east),
        crs=CRS(spec.get("crs", "wgs84")),
        accuracy_m=spec.get("accuracy_m", 5.0),
        condition=spec.get("condition", "ok"),
        notes=spec.get("notes", ""),
        **extra,
    )


def _change(c: IncidentChange) -> dict[str, Any]:
    inc = c.incident
    out: dict[str, Any] = {
        "kind": c.kind,
        "rule": inc.rule_id,
        "category": inc.category_ref,
        "subject": inc.subject,
        "grid": inc.grid_code,
        "peak": inc.peak_value,
        "unit": inc.unit,
        "closed": inc.closed_at is not None,
        "summary": inc.summary_zh,
    }
    if inc.routing_level:
        out["routing"] = inc.routing_level
    roles = [e.data.get("role", e.data.get("reason")) for e in c.evidence if isinstance(e.data, dict)]
    if roles:
        out["evidence"] = roles
    return out


def run_case(folder: Path, grids: GridRegistry) -> list[dict[str, Any]]:
    overrides = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")) or {}
    h = Harness(asset_config(**overrides), grids)
    steps = yaml.safe_load((folder / "input.yaml").read_text(encoding="utf-8"))
    results: list[dict[str, Any]] = []
    for step in steps:
        at = datetime.fromisoformat(str(step["at"]))
        if step.get("sweep"):
            results.append({"sweep": [_change(c) for c in h.sweep(at)]})
            continue
        batch = h.run([_message(h, p, at) for p in step["pings"]], at)
        results.append({"outcomes": batch.outcomes, "changes": [_change(c) for c in batch.changes]})
    return results


@pytest.mark.parametrize("name", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_golden_case(name: str, grids: GridRegistry) -> None:
    folder = CASES / name
    got = run_case(folder, grids)
    expected_file = folder / "expected.yaml"
    if os.environ.get("GOLDEN_UPDATE"):
        expected_file.write_text(
            yaml.safe_dump(got, allow_unicode=True, sort_keys=False, width=200), encoding="utf-8"
        )
    expected = yaml.safe_load(expected_file.read_text(encoding="utf-8"))
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, f"step {i} of {name}"
