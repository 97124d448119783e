"""A synthetic street camera: procedurally drawn 1280×720 street scenes with labelled events.

The scene (far sidewalk, two-lane road, curb, near sidewalk, garbage point) matches the
ROIs of ``gridsense/data/demo/cameras.yaml``. Every frame has lighting drift, sensor noise
and JPEG artefacts; passers-by and vehicles cross it. Events are injected over frame
ranges and written as ground truth (``.jsonl``): scene events (garbage pile, vendor stall,
snow, ponding), camera faults (lens covered, blur, camera shift, frozen, too dark,
overexposed) and ``night``, which is not a fault and must not raise one.

Frames reach the pipeline like a real camera's: JPEG payload over MQTT 5 with the
capture time in the ``ts`` user property (see ``detectors/frame_codec.py``).
"""

from __future__ import annotations

import argparse
import math
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import orjson

W, H = 1280, 720

EventKind = Literal[
    "garbage_pile",
    "vendor_stall",
    "snow",
    "ponding",
    "lens_covered",
    "blur",
    "camera_shift",
    "frozen",
    "dark",
    "overexposed",
    "night",
]

#: The detector that must report each event kind (None: nothing must fire).
EVENT_DETECTOR: dict[str, str | None] = {
    "garbage_pile": "stationary_object",
    "vendor_stall": "stationary_object",
    "snow": "snow_cover",
    "ponding": "ponding",
    "lens_covered": "covered",
    "blur": "blurred",
    "camera_shift": "moved",
    "frozen": "frozen",
    "dark": "too_dark",
    "overexposed": "overexposed",
    "night": None,
}

# Layout, in full-frame pixels (rows): the demo registry's ROIs follow it.
SKY_END, FAR_WALK, ROAD_TOP, ROAD_BOTTOM, CURB_BOTTOM = 150, 300, 365, 556, 590
GARBAGE_X = 960


@dataclass(frozen=True)
class SceneEvent:
    """One injected event over frames [start, end)."""

    kind: EventKind
    start: int
    end: int
    box: tuple[int, int, int, int] | None = None  # x, y, w, h of an object, full frame
    strength: float = 0.0  # coverage share, blur sigma, shift share of width
    rotation_deg: float = 0.0

    def active(self, i: int) -> bool:
        return self.start <= i < self.end


@dataclass(frozen=True)
class SimFrame:
    index: int
    ts: datetime
    jpeg: bytes


@dataclass
class _Walker:
    lane_y: int  # foot line
    x0: float
    speed: float  # px/s, signed
    t0: float
    size: float
    colour: tuple[int, int, int]
    vehicle: bool
    linger_at: float = -1.0  # x where a passer-by stops for a while
    linger_s: float = 0.0

    def x_at(self, t: float) -> float:
        dt = t - self.t0
        if self.linger_at < 0:
            return self.x0 + self.speed * dt
        reach = (self.linger_at - self.x0) / self.speed
        if dt < reach:
            return self.x0 + self.speed * dt
        if dt < reach + self.linger_s:
            return self.linger_at
        return self.linger_at + self.speed * (dt - reach - self.linger_s)


@dataclass
class StreetScene:
    """A deterministic frame sequence for one camera (same seed → same bytes)."""

    camera_id: str = "cam-012001002-1"
    grid_code: str = "110102012001002"
    start: datetime = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
    frames: int = 200
    interval_s: float = 10.0
    seed: int = 1
    events: list[SceneEvent] = field(default_factory=list)
    noise_sigma: float = 3.0
    jpeg_quality: int = 80
    drift: float = 0.15  # amplitude of the lighting drift (share of brightness)
    drift_period_s: float = 3 * 3600
    pedestrians_per_min: float = 12.0
    vehicles_per_min: float = 10.0

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._base = _draw_base(np.random.default_rng(self.seed + 1000))
        self._noise = _noise_bank(np.random.default_rng(self.seed + 2000), self.noise_sigma)
        self._walkers = self._spawn()
        self._overlays: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    # --- ground truth ----------------------------------------------------------------

    def ts(self, i: int) -> datetime:
        return self.start + timedelta(seconds=i * self.interval_s)

    def truth(self) -> list[dict[str, object]]:
        """One record per event: what must be detected, from when to when (data time)."""
        out: list[dict[str, object]] = []
        for ev in self.events:
            rec = asdict(ev)
            rec.update(
                camera_id=self.camera_id,
                detector=EVENT_DETECTOR[ev.kind],
                start_ts=self.ts(ev.start).isoformat(),
                end_ts=self.ts(ev.end).isoformat(),
            )
            out.append(rec)
        return out

    def write_truth(self, path: Path) -> None:
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in self.truth()))

    # --- frames -----------------------------------------------------------------------

    def __iter__(self) -> Iterator[SimFrame]:
        frozen_jpeg: dict[int, bytes] = {}
        for i in range(self.frames):
            frozen = next((e for e in self.events if e.kind == "frozen" and e.active(i)), None)
            if frozen is not None and id(frozen) in frozen_jpeg:
                yield SimFrame(i, self.ts(i), frozen_jpeg[id(frozen)])
                continue
            img = self.render(i)
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            assert ok
            jpeg = buf.tobytes()
            if frozen is not None:
                frozen_jpeg[id(frozen)] = jpeg
            yield SimFrame(i, self.ts(i), jpeg)

    def render(self, i: int) -> np.ndarray:
        t = i * self.interval_s
        img = self._base.copy()
        active = [e for e in self.events if e.active(i)]
        for ev in active:
            if ev.kind in ("snow", "ponding"):
                over, mask = self._overlay(ev)
                cv2.copyTo(over, mask, img)
        for ev in active:
            if ev.kind == "garbage_pile":
                _draw_pile(img, ev, self.seed)
            elif ev.kind == "vendor_stall":
                _draw_stall(img, ev, t, self.seed)
        for w in self._walkers:
            _draw_walker(img, w, t)
        gain = 1.0 + self.drift * math.sin(2 * math.pi * t / self.drift_period_s)
        for ev in active:
            if ev.kind == "night":
                dusk = 1800 / self.interval_s  # dusk and dawn take half an hour each
                ramp = min(1.0, (i - ev.start + 1) / dusk, (ev.end - i) / dusk)
                gain *= 1.0 - 0.7 * ramp
            elif ev.kind == "dark":
                gain *= 0.12
            elif ev.kind == "overexposed":
                gain *= 3.5
        img = cv2.convertScaleAbs(img, alpha=gain, beta=40 if gain > 2 else 0)
        for ev in active:
            if ev.kind == "camera_shift":
                img = _shift(img, ev)
            elif ev.kind == "blur":
                img = cv2.GaussianBlur(img, (0, 0), ev.strength)
            elif ev.kind == "lens_covered":
                over, mask = self._overlay(ev)
                cv2.copyTo(over, mask, img)
        k = int(self._rng.integers(len(self._noise)))
        plus, minus = self._noise[k]
        img = cv2.subtract(cv2.add(img, plus), minus)
        return img

    def _overlay(self, ev: SceneEvent) -> tuple[np.ndarray, np.ndarray]:
        key = id(ev)
        if key not in self._overlays:
            rng = np.random.default_rng(self.seed + ev.start)
            if ev.kind == "snow":
                self._overlays[key] = _snow(rng)
            elif ev.kind == "ponding":
                self._overlays[key] = _ponding(self._base, rng)
            else:
                self._overlays[key] = _cover(ev.strength or 0.8, rng)
        return self._overlays[key]

    def _spawn(self) -> list[_Walker]:
        rng = np.random.default_rng(self.seed + 3000)
        span = self.frames * self.interval_s + 120
        walkers: list[_Walker] = []
        n_ped = rng.poisson(self.pedestrians_per_min * span / 60)
        for _ in range(n_ped):
            lane = int(rng.choice([FAR_WALK + 50, CURB_BOTTOM + 60, CURB_BOTTOM + 110]))
            speed = float(rng.uniform(25, 60)) * (1 if rng.random() < 0.5 else -1)
            x0 = -40.0 if speed > 0 else W + 40.0
            t0 = float(rng.uniform(-120, span))
            scale = lane / 560
            colour = tuple(int(c) for c in rng.integers(20, 230, 3))
            w = _Walker(lane, x0, speed, t0, 1.15 * scale, colour, False)  # type: ignore[arg-type]
            if rng.random() < 0.1:  # some stop to chat or look at a phone, then walk on
                w.linger_at = float(rng.uniform(100, W - 100))
                w.linger_s = float(rng.uniform(20, 90))
            walkers.append(w)
        n_veh = rng.poisson(self.vehicles_per_min * span / 60)
        for _ in range(n_veh):
            east = rng.random() < 0.5
            lane = 440 if east else 540
            speed = float(rng.uniform(150, 400)) * (1 if east else -1)
            x0 = -300.0 if east else W + 300.0
            colour = tuple(int(c) for c in rng.integers(10, 240, 3))
            v = _Walker(lane, x0, speed, float(rng.uniform(-60, span)), 1.0, colour, True)  # type: ignore[arg-type]
            if rng.random() < 0.1:  # a stop at the lights
                v.linger_at = float(rng.uniform(200, W - 200))
                v.linger_s = float(rng.uniform(20, 90))
            walkers.append(v)
        return walkers


# --- drawing ---------------------------------------------------------------------------


def _texture(rng: np.random.Generator, h: int, w: int, amp: float, blur: float = 0.8) -> np.ndarray:
    t = rng.normal(0, amp, (h, w)).astype(np.float32)
    return cv2.GaussianBlur(t, (0, 0), blur)


def _draw_base(rng: np.random.Generator) -> np.ndarray:
    img = np.zeros((H, W, 3), np.float32)
    for y in range(SKY_END):
        img[y] = (235 - y * 0.3, 205 - y * 0.25, 170 - y * 0.2)
    img[SKY_END:FAR_WALK] = (150, 155, 160)
    x = 0
    while x < W:  # buildings with windows
        bw = int(rng.integers(90, 220))
        top = int(rng.integers(40, 160))
        colour = rng.integers(70, 200, 3).astype(np.float32)
        img[top:FAR_WALK, x : x + bw] = colour
        for wy in range(top + 15, FAR_WALK - 30, 38):
            for wx in range(x + 12, x + bw - 25, 34):
                img[wy : wy + 20, wx : wx + 16] = colour * 0.45
        x += bw + int(rng.integers(0, 30))
    img[FAR_WALK:ROAD_TOP] = (175, 180, 182)
    img[ROAD_TOP:ROAD_BOTTOM] = (92, 90, 88)
    img[ROAD_BOTTOM:CURB_BOTTOM] = (185, 188, 190)
    img[CURB_BOTTOM:] = (150, 160, 172)
    for gx in range(0, W, 48):  # paving joints
        img[FAR_WALK:ROAD_TOP, gx : gx + 2] *= 0.8
        img[CURB_BOTTOM:, gx : gx + 2] *= 0.8
    for gy in range(CURB_BOTTOM, H, 40):
        img[gy : gy + 2] *= 0.8
    for dx in range(0, W, 120):  # lane marking
        img[458:464, dx : dx + 60] = (230, 230, 230)
    img[ROAD_TOP + 4 : ROAD_TOP + 8] = (220, 220, 220)
    for px in (180, 620, 1100):  # poles
        img[SKY_END : FAR_WALK + 40, px : px + 8] = (60, 60, 65)
    for bx in (1010, 1090, 1170):  # the garbage point's bins
        img[CURB_BOTTOM + 10 : CURB_BOTTOM + 70, bx : bx + 50] = (40, 120, 40)
        img[CURB_BOTTOM + 10 : CURB_BOTTOM + 16, bx - 3 : bx + 53] = (30, 90, 30)
    tex = _texture(rng, H, W, 14.0)
    img += tex[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _noise_bank(rng: np.random.Generator, sigma: float, n: int = 12) -> list[tuple[np.ndarray, np.ndarray]]:
    bank = []
    for _ in range(n):
        noise = rng.normal(0, sigma, (H, W, 3))
        bank.append((np.clip(noise, 0, 255).astype(np.uint8), np.clip(-noise, 0, 255).astype(np.uint8)))
    return bank


def _draw_walker(img: np.ndarray, w: _Walker, t: float) -> None:
    x = w.x_at(t)
    if not -300 < x < W + 300:
        return
    if w.vehicle:
        length, height = 220, 80
        x0, y1 = int(x - length / 2), w.lane_y
        cv2.rectangle(img, (x0, y1 - height), (x0 + length, y1 - 12), w.colour, -1)
        cv2.rectangle(img, (x0 + 40, y1 - height - 30), (x0 + 170, y1 - height), w.colour, -1)
        for wx in (x0 + 40, x0 + 180):
            cv2.circle(img, (wx, y1 - 12), 14, (20, 20, 20), -1)
        return
    s = w.size
    cx, foot = int(x), w.lane_y
    body_h, body_w = int(70 * s), int(26 * s)
    cv2.rectangle(img, (cx - body_w // 2, foot - body_h), (cx + body_w // 2, foot), w.colour, -1)
    cv2.circle(img, (cx, foot - body_h - int(11 * s)), int(11 * s), (80, 110, 150), -1)


def _draw_pile(img: np.ndarray, ev: SceneEvent, seed: int) -> None:
    assert ev.box is not None
    x, y, w, h = ev.box
    rng = np.random.default_rng(seed + ev.start)
    for _ in range(9):
        bw, bh = int(rng.uniform(0.35, 0.6) * w), int(rng.uniform(0.35, 0.6) * h)
        bx, by = x + int(rng.uniform(0, w - bw)), y + int(rng.uniform(0, h - bh))
        colour = tuple(
            int(c) for c in rng.choice([(25, 25, 25), (200, 200, 60), (60, 60, 160), (220, 220, 220)])
        )
        cv2.ellipse(img, (bx + bw // 2, by + bh // 2), (bw // 2, bh // 2), 0, 0, 360, colour, -1)


def _draw_stall(img: np.ndarray, ev: SceneEvent, t: float, seed: int) -> None:
    assert ev.box is not None
    x, y, w, h = ev.box
    cv2.rectangle(img, (x, y + h // 3), (x + w, y + h), (40, 90, 160), -1)  # the cart
    cv2.rectangle(img, (x - 6, y), (x + w + 6, y + h // 3), (30, 30, 200), -1)  # the canopy
    for k in range(0, w, 24):
        cv2.rectangle(img, (x + k, y), (x + k + 12, y + h // 3), (240, 240, 240), -1)
    rng = np.random.default_rng(seed + int(t))  # the vendor and customers shuffle around it
    for side in (-1, 1):
        cx = x + w // 2 + side * (w // 2 + 22) + int(rng.integers(-10, 11))
        cv2.rectangle(img, (cx - 12, y + h - 70), (cx + 12, y + h), (70, 50, 30), -1)
        cv2.circle(img, (cx, y + h - 82), 11, (80, 110, 150), -1)


def _snow(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    over = np.full((H, W, 3), 228, np.float32)
    over += _texture(rng, H, W, 3.0, 2.0)[..., None]
    over[..., 0] += 6  # a cold cast
    for lane in (440, 540):  # tyre tracks
        over[lane - 30 : lane - 18] -= 60
    mask = np.zeros((H, W), np.uint8)
    mask[FAR_WALK:] = 255
    return np.clip(over, 0, 255).astype(np.uint8), mask


def _ponding(base: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    mask = np.zeros((H, W), np.uint8)
    for _ in range(3):
        cx, cy = int(rng.integers(200, W - 200)), int(rng.integers(ROAD_TOP + 50, ROAD_BOTTOM - 40))
        cv2.ellipse(
            mask, (cx, cy), (int(rng.integers(220, 330)), int(rng.integers(50, 80))), 0, 0, 360, 255, -1
        )
    # Standing water: darker, smooth, mirroring the sky and the facades above it.
    sky = cv2.resize(cv2.flip(base[:FAR_WALK], 0), (W, ROAD_BOTTOM - ROAD_TOP))
    over = base.copy()
    region = cv2.GaussianBlur(sky, (0, 0), 6).astype(np.float32) * 0.55 + 15
    over[ROAD_TOP:ROAD_BOTTOM] = np.clip(region, 0, 255).astype(np.uint8)
    return over, mask


def _cover(share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A hand, a bag or a leaf over the lens: dark, textureless, with a soft edge."""
    mask = np.zeros((H, W), np.uint8)
    edge = int(W * share)
    wobble = rng.integers(-40, 41, 8)
    pts = [(0, 0), (edge + int(wobble[0]), 0)]
    pts += [(edge + int(wobble[k]), int(H * k / 7)) for k in range(1, 7)]
    pts += [(edge + int(wobble[7]), H), (0, H)]
    cv2.fillPoly(mask, [np.array(pts, np.int32)], 255)
    colour = rng.uniform(20, 60, 3)
    over = np.empty((H, W, 3), np.uint8)
    over[:] = colour.astype(np.uint8)
    return over, mask


def _shift(img: np.ndarray, ev: SceneEvent) -> np.ndarray:
    m = cv2.getRotationMatrix2D((W / 2, H / 2), ev.rotation_deg, 1.0)
    m[0, 2] += ev.strength * W
    return cv2.warpAffine(img, m, (W, H), borderMode=cv2.BORDER_REFLECT)


# --- scenarios ---------------------------------------------------------------------------

SCENARIOS = ("health", "scene", "quiet")


def scenario(name: str, seed: int = 1, camera_id: str = "cam-012001002-1", **kw: object) -> StreetScene:
    """Preset sequences: ``health`` (camera faults), ``scene`` (ROI events), ``quiet`` (none)."""
    rng = np.random.default_rng(seed)
    events: list[SceneEvent] = []
    learn = 40
    gap = 70
    if name == "health":
        kinds: list[tuple[EventKind, float, float]] = [
            ("lens_covered", float(rng.uniform(0.7, 0.95)), 0.0),
            ("blur", float(rng.uniform(2.0, 4.0)), 0.0),
            ("camera_shift", float(rng.uniform(0.05, 0.1)) * rng.choice([-1, 1]), 0.0),
            ("camera_shift", 0.0, float(rng.uniform(3.0, 6.0)) * rng.choice([-1, 1])),
            ("frozen", 0.0, 0.0),
            ("dark", 0.0, 0.0),
            ("overexposed", 0.0, 0.0),
        ]
        order = rng.permutation(len(kinds))
        i = learn
        for k in order:
            kind, strength, rot = kinds[k]
            length = 45 if kind == "frozen" else 25
            events.append(SceneEvent(kind, i, i + length, strength=strength, rotation_deg=rot))
            i += length + gap
        frames = i
    elif name == "scene":
        i = learn
        spots = [
            ("garbage_pile", (1010 + int(rng.integers(-30, 60)), 600, 100, 70)),
            ("garbage_pile", (int(rng.integers(100, 1000)), 540, 110, 60)),
            ("vendor_stall", (int(rng.integers(100, 700)), 600, 120, 90)),
            ("garbage_pile", (int(rng.integers(100, 1100)), 470, 90, 60)),
        ]
        for kind, box in spots:
            events.append(SceneEvent(kind, i, i + 60, box=box))  # type: ignore[arg-type]
            i += 60 + gap
        events.append(SceneEvent("snow", i, i + 40))
        i += 40 + gap
        events.append(SceneEvent("ponding", i, i + 40))
        i += 40 + gap
        frames = i
    elif name == "quiet":
        frames = int(kw.pop("frames", 2000))  # type: ignore[call-overload]
        day = 86400 / float(kw.get("interval_s", 10.0))  # type: ignore[arg-type]
        # One night per simulated day: a slow dusk, then a slow dawn.
        n = 0
        while n * day + day / 2 < frames:
            s = int(n * day + day / 2)
            events.append(SceneEvent("night", s, min(frames, s + int(day / 3))))
            n += 1
    else:
        raise ValueError(f"unknown scenario {name!r}; use one of {SCENARIOS}")
    return StreetScene(camera_id=camera_id, frames=frames, seed=seed, events=events, **kw)  # type: ignore[arg-type]


# --- over MQTT, like a camera ------------------------------------------------------------


def frame_properties(frame: SimFrame) -> object:
    """MQTT 5 PUBLISH properties carrying the frame's metadata."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("ts", frame.ts.isoformat()), ("seq", str(frame.index))]
    props.ContentType = "image/jpeg"
    return props


class CameraPublisher:
    """Publishes frames at QoS 1 with their metadata as MQTT 5 user properties."""

    def __init__(self, host: str, port: int, client_id: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        connected = threading.Event()
        self._client.on_connect = lambda *_a: connected.set()
        self._client.connect(host, port, keepalive=30)
        self._client.loop_start()
        if not connected.wait(10):
            raise ConnectionError(f"cannot connect to the broker at {host}:{port}")

    def publish(
        self, topic: str, frames: Iterable[SimFrame], raw: Iterable[tuple[bytes, object]] = ()
    ) -> int:
        """Publish frames (and raw payload/properties pairs) and wait for every PUBACK."""
        infos = [
            self._client.publish(topic, f.jpeg, qos=1, properties=frame_properties(f))  # type: ignore[arg-type]
            for f in frames
        ]
        infos += [self._client.publish(topic, p, qos=1, properties=props) for p, props in raw]  # type: ignore[arg-type]
        for info in infos:
            info.wait_for_publish(30)
        return len(infos)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="synthetic street camera")
    p.add_argument("--scenario", choices=SCENARIOS, default="scene")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--camera", default="cam-012001002-1")
    p.add_argument("--grid", default="110102012001002")
    p.add_argument("--interval-s", type=float, default=10.0)
    p.add_argument("--frames", type=int, default=2000, help="length of a quiet sequence")
    p.add_argument("--out", type=Path, help="write frames as JPEG files and truth.jsonl here")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--topic-root", default="city")
    args = p.parse_args(argv)
    kw: dict[str, object] = {"interval_s": args.interval_s, "grid_code": args.grid}
    if args.scenario == "quiet":
        kw["frames"] = args.frames
    scene = scenario(args.scenario, args.seed, args.camera, **kw)
    start = datetime.now(UTC) - timedelta(seconds=scene.frames * scene.interval_s)
    scene.start = start.replace(microsecond=0)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        scene.write_truth(args.out / "truth.jsonl")
        for f in scene:
            (args.out / f"{f.index:06d}_{int(f.ts.timestamp())}.jpg").write_bytes(f.jpeg)
        print(f"wrote {scene.frames} frames and truth.jsonl to {args.out}")
        return 0
    topic = f"{args.topic_root}/{args.grid[:6]}/{args.grid}/camera/{args.camera}"
    pub = CameraPublisher(args.host, args.port, f"street-scene-{args.camera}")
    try:
        n = pub.publish(topic, scene)
    finally:
        pub.close()
    print(f"published {n} frames to {topic}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
