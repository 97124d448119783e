"""Scene detectors inside a camera's ROIs: stationary objects, road snow, road ponding.

All work on a small copy of the frame (``scene_width`` pixels wide) with two running
averages of the grey image:

- the *long-term* background (the empty street), updated only where nothing stands;
- the *short-term* background, which follows whatever stayed for a few ``short_tau_s``.

A pixel that differs from the long-term background but agrees with the short-term one
holds something that is not moving; its *age* counts the seconds it has done so. A
passer-by never agrees with the short-term model, so it never ages; a pile of rubbish
does. Blobs older than ``stationary_after_s`` are stationary objects, placed in the ROI
where their foot (bottom centre) stands. Thresholds are multiples of the camera's own
noise, measured on the fly; a global gain corrects slow lighting drift.

Snow compares the ROI with its dry baseline: bright (``snow_brightness_ratio`` × the dry
median), unsaturated and smooth. Ponding is EXPERIMENTAL: a large, still, non-snow change
of the road surface against the dry baseline; it can ask a corroboration hook (rain or
water readings in the same grid) before opening.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np

from detectors.config import SceneThresholds
from detectors.contract import Verdict, Verdicts
from detectors.registry import PONDING_CATEGORY, SNOW_CATEGORY, VENDOR_CATEGORY, Camera, Roi

# Above this share of its ROI a change is a surface (snow, water), not an object.
_SURFACE_SHARE = 0.3


@dataclass
class _RoiModel:
    roi: Roi
    mask: np.ndarray  # uint8, scene scale
    area: int
    dry_v: float = 0.0
    snow_base: float = 0.0
    activity: float = 0.0


@dataclass
class CameraScene:
    """Background models and per-ROI baselines of one camera."""

    cfg: SceneThresholds
    camera: Camera
    size: tuple[int, int]  # (width, height) of the scene image
    frames: int = 0
    long_bg: np.ndarray | None = None
    short_bg: np.ndarray | None = None
    age: np.ndarray | None = None
    sigma: float = 2.0
    last_ts: datetime | None = None
    rois: list[_RoiModel] = field(default_factory=list)
    _learning_stack: list[np.ndarray] = field(default_factory=list)
    _suspended: bool = False

    def __post_init__(self) -> None:
        w, h = self.size
        sx, sy = w / self.camera.width, h / self.camera.height
        for roi in self.camera.rois:
            mask = np.zeros((h, w), np.uint8)
            pts = np.array([(round(x * sx), round(y * sy)) for x, y in roi.polygon], np.int32)
            cv2.fillPoly(mask, [pts], 255)
            self.rois.append(_RoiModel(roi, mask, max(1, int(np.count_nonzero(mask)))))

    @property
    def learning(self) -> bool:
        return self.frames < self.camera.learning_frames

    def observe(self, bgr: np.ndarray, ts: datetime, usable: bool) -> Verdicts:
        """Update the models; return a verdict for every (detector, ROI) evaluated this frame.

        A key that is missing was not evaluated (night, learning, an unusable frame): the
        lifecycle holds its state. ``None`` means evaluated and absent.
        """
        if not self.rois:
            return {}
        small = cv2.resize(bgr, self.size, interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)
        if self.long_bg is None or self.short_bg is None or self.age is None:
            self.long_bg, self.short_bg = gray.copy(), gray.copy()
            self.age = np.zeros_like(gray)
        if not usable:
            self._suspended = True
            return {}  # a faulty frame teaches nothing; the clock restarts on the next good one
        dt = (ts - self.last_ts).total_seconds() if self.last_ts is not None else 0.0
        self.last_ts = ts
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        if self.learning:
            self._learn(gray, hsv)
            return {}
        return self._detect(gray, hsv, max(dt, 0.0), ts)

    def _learn(self, gray: np.ndarray, hsv: np.ndarray) -> None:
        assert self.long_bg is not None and self.short_bg is not None
        self.frames += 1
        a = 1.0 / self.frames
        # The empty street is the per-pixel median of the learning frames: a mean would
        # keep a ghost of every car that passed.
        self._learning_stack.append(gray.astype(np.uint8))
        if not self.learning:
            self.long_bg = np.median(np.stack(self._learning_stack), axis=0).astype(np.float32)
            self.short_bg = self.long_bg.copy()
            self._learning_stack = []
            self.sigma = max(1.0, 1.4826 * float(np.median(np.abs(gray - self.long_bg))))
        v = hsv[..., 2]
        for rm in self.rois:
            rm.dry_v += a * (float(cv2.mean(v, rm.mask)[0]) - rm.dry_v)
            rm.snow_base += a * (self._snow_share(hsv, rm) - rm.snow_base)

    def _snow_share(self, hsv: np.ndarray, rm: _RoiModel) -> float:
        cfg = self.cfg
        sel = rm.mask > 0
        bright = hsv[..., 2][sel] >= max(cfg.snow_brightness_ratio * rm.dry_v, 60.0)
        pale = hsv[..., 1][sel] <= cfg.snow_max_saturation
        return float(np.count_nonzero(bright & pale)) / rm.area

    def _detect(self, gray: np.ndarray, hsv: np.ndarray, dt: float, ts: datetime) -> Verdicts:
        assert self.long_bg is not None and self.short_bg is not None and self.age is not None
        cfg = self.cfg
        self.frames += 1
        threshold = max(cfg.object_sigma * self.sigma, 6.0)
        quiet = self.age == 0
        gain = float(cv2.mean(gray, quiet.astype(np.uint8))[0]) / max(
            float(cv2.mean(self.long_bg, quiet.astype(np.uint8))[0]), 1.0
        )
        gray = gray / max(gain, 0.05)
        if self._suspended:
            # After a camera fault nothing seen before it may count as standing still since.
            self._suspended = False
            self.age[:] = 0
            self.short_bg[:] = gray
            dt = 0.0
        d_long = cv2.absdiff(gray, self.long_bg)
        d_short = cv2.absdiff(gray, self.short_bg)
        fg = d_long > threshold
        still = d_short < threshold
        self.age[fg & still] += dt
        # Hysteresis: noise on a faint object halves its age instead of resetting it, but a
        # lane that only now and then shows something still (traffic) never adds up.
        self.age[~fg] *= 0.5
        self.age[d_long < threshold / 2] = 0
        settled = self.age >= cfg.absorb_after_s
        if settled.any():  # a change that stays for hours is the new background
            self.long_bg[settled] = gray[settled]
            self.age[settled] = 0
        a_short = 1.0 - math.exp(-dt / cfg.short_tau_s)
        a_long = 1.0 - math.exp(-dt / cfg.long_tau_s)
        cv2.accumulateWeighted(gray, self.short_bg, a_short)
        cv2.accumulateWeighted(gray, self.long_bg, a_long, (~fg).astype(np.uint8))
        bg_diff = d_short[::3, ::3][~fg[::3, ::3]]
        if bg_diff.size > 100:
            noise = 1.4826 * float(np.median(bg_diff))
            self.sigma += 0.05 * (max(noise, 1.0) - self.sigma)

        out: Verdicts = {}
        surface: set[str] = set()
        snowlike = (hsv[..., 2] >= 60) & (hsv[..., 1] <= cfg.snow_max_saturation)
        for rm in self.rois:
            name = rm.roi.name
            allowed = [d for d in rm.roi.active_detectors if self.camera.schedule.allows(d, ts)]
            if "snow_cover" in allowed:
                share = self._snow_share(hsv, rm) - rm.snow_base
                hit = share >= cfg.snow_fraction
                out[("snow_cover", name)] = Verdict("snow_cover", name, SNOW_CATEGORY, share) if hit else None
                if hit:
                    surface.add(name)
                else:
                    rm.dry_v += a_long * (float(cv2.mean(hsv[..., 2], rm.mask)[0]) - rm.dry_v)
            if "ponding" in allowed and name not in surface:
                sel = rm.mask > 0
                wet = fg[sel] & still[sel] & ~snowlike[sel]
                share = float(np.count_nonzero(wet)) / rm.area
                hit = share >= cfg.ponding_fraction
                out[("ponding", name)] = Verdict("ponding", name, PONDING_CATEGORY, share) if hit else None
                if hit:
                    surface.add(name)
        if any(k[0] == "snow_cover" and v is not None for k, v in out.items()):
            # Snow is a surface, not an object: forget what it made "stand", judge no object.
            self.age[snowlike] = 0
            return out
        for rm in self.rois:
            if rm.roi.name in surface:
                self.age[rm.mask > 0] = 0
        self._objects(fg, still, surface, out)
        return out

    def _objects(
        self,
        fg: np.ndarray,
        still: np.ndarray,
        surface: set[str],
        out: Verdicts,
    ) -> None:
        assert self.age is not None
        cfg = self.cfg
        watched = [rm for rm in self.rois if "stationary_object" in rm.roi.active_detectors]
        if not watched:
            return
        w, h = self.size
        min_area = cfg.min_object_fraction * w * h
        moving = (fg & ~still).astype(np.uint8)
        # A stall draws people: measure movement around objects while they are still settling.
        busy: set[str] = set()
        for _share, (x, y, bw, bh), rm in self._blobs(
            self.age >= cfg.stationary_after_s / 2, watched, min_area
        ):
            ring = moving[max(0, y - bh) : y + 2 * bh, max(0, x - bw) : x + 2 * bw]
            if np.count_nonzero(ring) > 0.05 * bw * bh:
                busy.add(rm.roi.name)
        best: dict[str, tuple[float, tuple[int, int, int, int]]] = {}
        for share, box, rm in self._blobs(self.age >= cfg.stationary_after_s, watched, min_area):
            if rm.roi.name not in surface and share > best.get(rm.roi.name, (0.0, box))[0]:
                best[rm.roi.name] = (share, box)
        sx, sy = self.camera.width / w, self.camera.height / h
        for rm in watched:
            name = rm.roi.name
            if name in surface:
                continue  # snow or water covers the ROI: hold, neither open nor clear
            rm.activity += 0.2 * (float(name in busy) - rm.activity)
            if name not in best:
                out[("stationary_object", name)] = None
                continue
            share, (x, y, bw, bh) = best[name]
            category = rm.roi.object_category
            vendor_spot = rm.roi.category is None and rm.roi.type in ("sidewalk", "roadway")
            if vendor_spot and rm.activity >= cfg.vendor_activity:
                category = VENDOR_CATEGORY
            box = (round(x * sx), round(y * sy), round(bw * sx), round(bh * sy))
            out[("stationary_object", name)] = Verdict("stationary_object", name, category, share, box)

    def _blobs(
        self, mask: np.ndarray, watched: list[_RoiModel], min_area: float
    ) -> list[tuple[float, tuple[int, int, int, int], _RoiModel]]:
        """Blobs of ``mask`` big enough to count, each in the ROI its foot stands in."""
        w, h = self.size
        if not mask.any():
            return []
        m = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        n, _labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        found = []
        for i in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[i])
            if area < min_area:
                continue
            foot_x, foot_y = min(x + bw // 2, w - 1), min(y + bh - 1, h - 1)
            rm = next((r for r in watched if r.mask[foot_y, foot_x]), None)
            if rm is None or area > _SURFACE_SHARE * rm.area:
                continue
            found.append((area / (w * h), (x, y, bw, bh), rm))
        return found

    def nbytes(self) -> int:
        arrays = (self.long_bg, self.short_bg, self.age)
        return sum(a.nbytes for a in arrays if a is not None) + sum(r.mask.nbytes for r in self.rois)
