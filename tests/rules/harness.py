"""Golden-case harness: feed a case's input through the real decode → normalise → quality →
dedupe → rules path and record what comes out, in a stable, comparable form.

Input lines are gauge JSON payloads as devices send them (plus ``topic_device`` to forge a
mismatch), or ``{"tick": "<iso time>"}`` to let time pass without a reading.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from gridsense.config import packaged
from gridsense.errors import Rejected
from gridsense.model.catalog import Catalog
from gridsense.model.registry import DeviceRegistry, GridRegistry
from ingest.gauge_codec import decode_gauge
from ingest.normalise import GaugeNormaliser
from ingest.topics import TopicScheme
from rules.engine import RuleEngine
from rules.incidents import IncidentBook
from rules.spec import load_rules

HERE = Path(__file__).parent
DEVICES = HERE / "devices.csv"
MAX_FUTURE = timedelta(days=1)


def run_case(folder: Path, lateness_s: float = 3600) -> list[dict[str, Any]]:
    grids = GridRegistry.load(packaged("demo", "grids.csv"))
    devices = DeviceRegistry.load(DEVICES, grids)
    spec = load_rules(folder / "rules.yaml", Catalog.default())
    book = IncidentBook()
    engine = RuleEngine(spec, book, devices)
    normaliser = GaugeNormaliser(devices, lateness_s)
    scheme = TopicScheme("city")
    seen: set[tuple[str, datetime]] = set()
    out: list[dict[str, Any]] = []
    lines = (folder / "input.jsonl").read_text().splitlines()
    start: datetime | None = None
    for raw in lines:
        if not raw.strip() or raw.startswith("#"):
            continue
        doc = json.loads(raw)
        if "tick" in doc:
            now = datetime.fromisoformat(doc["tick"])
            if start is None:
                start = now
                engine.restore_levels(now)
            out += [_change(c) for c in engine.tick(now)]
            continue
        dev = devices.get(doc.get("topic_device", doc["device_id"]))
        assert dev is not None, doc
        topic = scheme.parse(scheme.topic(dev.grid_code, dev.kind, dev.device_id))
        payload = {k: v for k, v in doc.items() if k != "topic_device"}
        ts = datetime.fromisoformat(payload["ts"])
        if start is None:
            start = ts
            engine.restore_levels(ts)
        try:
            for sample in decode_gauge(orjson.dumps(payload), ts, MAX_FUTURE):
                reading = engine.check_quality(normaliser.normalise(topic, sample))
                if reading.suspect:
                    out.append({"suspect": reading.device_id, "ts": reading.ts.isoformat()})
                key = (reading.device_id, reading.ts)
                if key in seen:
                    out.append({"duplicate": reading.device_id, "ts": reading.ts.isoformat()})
                    continue
                seen.add(key)
                out += [_change(c) for c in engine.evaluate(reading)]
        except Rejected as exc:
            out.append({"dead_letter": exc.reason, "device_id": doc["device_id"], "ts": payload["ts"]})
    return out


def _change(c: Any) -> dict[str, Any]:
    inc = c.incident
    d: dict[str, Any] = {
        "change": c.kind,
        "at": c.at.astimezone(UTC).isoformat(),
        "incident": inc.rule_id,
        "subject": inc.subject,
        "category": inc.category_ref,
        "level": inc.level,
        "peak": round(inc.peak_value, 3),
    }
    if inc.linked:
        d["linked"] = len(inc.linked)
    return d


def dump(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
