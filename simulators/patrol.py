"""Patrol simulator: maintainers walk their routes and scan QR-tagged assets, over MQTT.

Each active maintainer walks, nearest asset first, through the assets they may scan,
at walking pace, and scans each tag: most send the scanned payload, some a photo of the
tag (the real label, rendered, seen in perspective and blurred by the phone). Some report
damage, some skip an asset, one maintainer tries forged tags on one asset (a wrong
signature, a pasted-over URL, another asset's tag), and breakfast carts wander out of their
permitted places. Every scan carries what the server should make of it (``expect``), so a
test can hold the pipeline to it message by message.

Timestamps are data time, from ``start``: a patrol of several hours replays in seconds.
"""

from __future__ import annotations

import argparse
import io
import math
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from gridsense.model.envelopes import Kind
from gridsense.model.geo import CRS, EARTH_RADIUS_M, distance_m, from_wgs84
from ingest.topics import TopicScheme
from rules.assets.config import LabelConfig
from rules.assets.labels import LabelRenderer, LabelText, qr_matrix
from rules.assets.maintainers import Maintainer, MaintainerRegistry
from rules.assets.ping_codec import encode_ping
from rules.assets.registry import Asset, AssetRegistry
from rules.assets.tags import KeyRing

_M_PER_DEG = math.radians(1) * EARTH_RADIUS_M


@dataclass(frozen=True)
class PlannedScan:
    """One message the simulator sends, and what the server should make of it."""

    topic: str
    payload: bytes
    maintainer_id: str
    asset_id: str
    ts: datetime
    condition: str
    expect: str  # "accepted", "flagged:<flag>[,<flag>]" or "rejected:<reason>"


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point ``north_m`` / ``east_m`` metres from (lat, lon)."""
    return lat + north_m / _M_PER_DEG, lon + east_m / (_M_PER_DEG * math.cos(math.radians(lat)))


def photograph(label_png: bytes, rng: random.Random, blur: float = 1.0, tilt: float = 0.12) -> bytes:
    """A 1280×720 phone JPEG of a label: placed, tilted in perspective, blurred, compressed."""
    label = np.asarray(Image.open(io.BytesIO(label_png)).convert("L"))
    h_img, w_img = 720, 1280
    noise = np.random.default_rng(rng.randrange(2**32))
    scene = np.clip(noise.normal(110, 18, (h_img, w_img)), 0, 255).astype(np.uint8)
    h, w = label.shape
    scale = rng.uniform(0.75, 0.95) * 560 / w
    cx, cy = w_img / 2 + rng.uniform(-120, 120), h_img / 2 + rng.uniform(-60, 60)
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]]) * scale
    corners += np.array([[rng.uniform(-tilt, tilt) * w * scale / 2 for _ in range(2)] for _ in range(4)])
    corners += np.array([cx, cy])
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(src, corners.astype(np.float32))
    warped = cv2.warpPerspective(label, m, (w_img, h_img), borderValue=0)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), m, (w_img, h_img))
    shot = np.where(mask > 0, warped, scene).astype(np.uint8)
    blurred = cv2.GaussianBlur(shot, (0, 0), blur) if blur > 0 else shot
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(blurred, cv2.COLOR_GRAY2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return jpeg.tobytes()


@dataclass
class PatrolScenario:
    """A day's patrol over the registry; ``scans()`` yields it in time order per maintainer."""

    registry: AssetRegistry
    maintainers: MaintainerRegistry
    keyring: KeyRing
    start: datetime
    scheme: TopicScheme
    seed: int = 7
    photo_share: float = 0.2
    damage_share: float = 0.15
    skip_share: float = 0.1
    wander_share: float = 0.5
    gcj02_share: float = 0.1  # apps that report GCJ-02 (and say so)
    forger: str | None = None  # maintainer id who tries forged tags on their first asset
    walk_mps: float = 1.2
    scan_s: float = 90.0
    labels: LabelConfig | None = None

    def __post_init__(self) -> None:
        self._renderer = LabelRenderer(self.labels or LabelConfig())

    def route(self, m: Maintainer) -> list[Asset]:
        """The maintainer's active assets, nearest next, from the first in code order."""
        todo = [a for a in self.registry if a.active and m.may_scan(a.type, a.grid_code)]
        if not todo:
            return []
        route = [todo.pop(0)]
        while todo:
            here = route[-1]
            nxt = min(todo, key=lambda a: distance_m(here.lat, here.lon, a.lat, a.lon))
            todo.remove(nxt)
            route.append(nxt)
        return route

    def scans(self) -> Iterator[PlannedScan]:
        rng = random.Random(self.seed)
        people = [m for m in self.maintainers if m.active]
        # Maintainers first, inspectors an hour later: their ok scans verify the day's reports.
        for m in sorted(people, key=lambda p: (p.role == "inspector", p.maintainer_id)):
            t = self.start + timedelta(hours=1 if m.role == "inspector" else 0)
            prev: Asset | None = None
            for n, asset in enumerate(self.route(m)):
                if prev is not None:
                    t += timedelta(
                        seconds=distance_m(prev.lat, prev.lon, asset.lat, asset.lon) / self.walk_mps
                    )
                prev = asset
                t += timedelta(seconds=self.scan_s)
                if m.maintainer_id == self.forger and n == 0:
                    yield from self._forgeries(m, asset, t, rng)
                    continue
                if rng.random() < self.skip_share:
                    continue
                yield self._scan(m, asset, t, rng)

    def _scan(self, m: Maintainer, asset: Asset, t: datetime, rng: random.Random) -> PlannedScan:
        atype = self.registry.types[asset.type]
        accuracy = round(rng.uniform(4, 12), 1)
        north, east = rng.gauss(0, accuracy / 2), rng.gauss(0, accuracy / 2)
        flags: list[str] = []
        if atype.mobile and rng.random() < self.wander_share:
            bearing = rng.uniform(0, 2 * math.pi)
            far = rng.uniform(150, 300)  # well past any demo permit's place
            north, east = far * math.cos(bearing), far * math.sin(bearing)
        lat, lon = offset(asset.lat, asset.lon, north, east)
        if atype.mobile and asset.permit is not None:
            flags, _ = asset.permit.check(lat, lon, min(accuracy, 50.0), t)
        elif atype.mobile:
            flags = ["no_permit"]
        crs = CRS.GCJ02 if rng.random() < self.gcj02_share else CRS.WGS84
        send_lat, send_lon = from_wgs84(lat, lon, crs)
        damaged = [c for c in atype.conditions if c != "ok"]
        condition = rng.choice(damaged) if rng.random() < self.damage_share else "ok"
        tag = self.keyring.sign(asset.asset_id)
        qr: str | None = tag
        photo = None
        if rng.random() < self.photo_share:
            photo = photograph(self.label_png(asset, tag), rng)
            qr = None  # sent as a photo only: the server reads the tag
        payload = encode_ping(
            maintainer=m.maintainer_id,
            ts=t,
            qr=qr,
            photo_jpeg=photo,
            lat=round(send_lat, 7),
            lon=round(send_lon, 7),
            accuracy_m=accuracy,
            crs=crs,
            condition=condition,
            notes="巡检发现问题" if condition != "ok" else "",
            ping_id=str(uuid.UUID(int=rng.getrandbits(128))),
        )
        expect = "flagged:" + ",".join(flags) if flags else "accepted"
        return PlannedScan(self._topic(asset), payload, m.maintainer_id, asset.asset_id, t, condition, expect)

    def _forgeries(
        self, m: Maintainer, asset: Asset, t: datetime, rng: random.Random
    ) -> Iterator[PlannedScan]:
        genuine = self.keyring.sign(asset.asset_id)
        flipped = genuine[:-1] + ("A" if genuine[-1] != "A" else "B")
        other = next(a for a in self.registry if a.asset_id != asset.asset_id)
        attempts = [
            (flipped, "bad_signature"),
            ("https://pay.example.cn/qr/8817263", "foreign_qr"),
            (self.keyring.sign(other.asset_id), "asset_mismatch"),
        ]
        for k, (qr, reason) in enumerate(attempts):
            payload = encode_ping(
                maintainer=m.maintainer_id,
                ts=t + timedelta(seconds=20 * k),
                qr=qr,
                lat=round(asset.lat, 7),
                lon=round(asset.lon, 7),
                accuracy_m=5.0,
                ping_id=str(uuid.UUID(int=rng.getrandbits(128))),
            )
            yield PlannedScan(
                self._topic(asset), payload, m.maintainer_id, asset.asset_id, t, "ok", f"rejected:{reason}"
            )

    def label_png(self, asset: Asset, qr: str) -> bytes:
        t = self.registry.types[asset.type]
        return self._renderer.png(qr_matrix(qr), LabelText.of(asset, t.name_zh, t.name_en))

    def _topic(self, asset: Asset) -> str:
        return self.scheme.topic(asset.grid_code, Kind.ASSET, asset.asset_id)


def main(argv: list[str] | None = None) -> int:
    """``python -m simulators.patrol --config FILE``: publish one patrol to the broker."""
    from gridsense.model.registry import GridRegistry
    from rules.assets.cli import load_settings
    from rules.assets.stage import load_registries
    from simulators.publisher import MqttPublisher

    p = argparse.ArgumentParser(prog="patrol", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="gridsense YAML config with an assets: section")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--root", default="city", help="topic root")
    p.add_argument("--hours-ago", type=float, default=6.0, help="when the patrol started (data time)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--forger", default="m-sch-01", help="maintainer id who tries forged tags ('' = none)")
    args = p.parse_args(argv)
    s = load_settings(Path(args.config))
    registry, maintainers = load_registries(s.assets, GridRegistry.load(s.grids))
    scenario = PatrolScenario(
        registry,
        maintainers,
        KeyRing(s.assets.keyring),
        datetime.now(UTC) - timedelta(hours=args.hours_ago),
        TopicScheme(args.root),
        seed=args.seed,
        forger=args.forger or None,
        labels=s.assets.labels,
    )
    plan = list(scenario.scans())
    with MqttPublisher(args.host, args.port, "gridsense-patrol-sim") as pub:
        n = pub.publish((s.topic, s.payload) for s in plan)
    outcomes = Counter(s.expect.split(":")[0] for s in plan)
    print(f"published {n} scans: {dict(outcomes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
