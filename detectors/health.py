"""Camera-health detectors, each judged against the camera's own rolling baseline.

Per frame (grey, at the reduced decode scale) a handful of statistics are measured; a
fault is signalled when a statistic leaves the camera's own normal range, never against
a fixed number:

- ``too_dark`` / ``overexposed``: mean brightness, and the share of clipped pixels;
- ``covered`` (lens covered or occluded): blocks that lost their texture *and* moved
  away from their background, with the histogram entropy falling;
- ``blurred`` (defocus): the Laplacian on the strongest edges relative to their gradient
  (so neither dusk nor snow looks like blur) against its rolling median;
- ``moved``: phase correlation (``cv2.phaseCorrelate``) of four tiles against the
  reference image gives a translation and a rotation;
- ``frozen``: frame-to-frame difference far below the camera's usual noise for
  ``frozen_after_s`` of data time.

Baselines are updated only from frames with no fault signal, so a lasting fault never
becomes the new normal.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np

from detectors.config import HealthThresholds

FAULTS = ("frozen", "covered", "too_dark", "overexposed", "blurred", "moved")
_BLOCKS_X, _BLOCKS_Y = 8, 6


@dataclass(frozen=True)
class HealthReading:
    """What the health detectors saw in one frame."""

    faults: dict[str, float]  # fault → its measure this frame (ratio, share, degrees…)
    measures: dict[str, float]
    usable: bool  # the frame may feed the scene detectors
    learning: bool


def _median(values: deque[float]) -> float:
    return float(np.median(np.fromiter(values, float, len(values)))) if values else 0.0


def _entropy(gray: np.ndarray) -> float:
    hist = cv2.calcHist([gray], [0], None, [64], [0, 256]).ravel()
    p = hist[hist > 0] / hist.sum()
    return float(-(p * np.log2(p)).sum())


def _top(values: np.ndarray, q: float = 0.995) -> float:
    """The q-quantile of a uint8 image, from its histogram (no sort)."""
    hist = cv2.calcHist([values], [0], None, [256], [0, 256]).ravel()
    return float(np.searchsorted(np.cumsum(hist), q * values.size))


def _edge_sharpness(gray: np.ndarray) -> float:
    """Peak Laplacian (the sharpest edges) over the typical strong gradient.

    Defocus halves the second derivative of an edge while the gradient field barely
    changes; a gain (dusk) scales both alike; snow smooths the road but leaves the
    facades' edges, so neither looks like blur (a whole-image Laplacian variance would).
    """
    lap = cv2.convertScaleAbs(cv2.Laplacian(gray, cv2.CV_16S), alpha=0.5)
    gx = cv2.convertScaleAbs(cv2.Sobel(gray, cv2.CV_16S, 1, 0), alpha=0.25)
    gy = cv2.convertScaleAbs(cv2.Sobel(gray, cv2.CV_16S, 0, 1), alpha=0.25)
    return _top(lap, 0.995) / max(_top(cv2.add(gx, gy), 0.95), 1.0)


def _blocks(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-block mean and standard deviation on an 8×6 grid (area resampling: one pass each)."""
    g = gray.astype(np.float32)
    mean = cv2.resize(g, (_BLOCKS_X, _BLOCKS_Y), interpolation=cv2.INTER_AREA)
    square = cv2.resize(g * g, (_BLOCKS_X, _BLOCKS_Y), interpolation=cv2.INTER_AREA)
    return mean, np.sqrt(np.maximum(square - mean * mean, 0.0))


def _fit_motion(
    shifts: np.ndarray, centres: np.ndarray, responses: np.ndarray, width: int, min_response: float
) -> tuple[float, float, float]:
    """Fit translation t and small rotation θ to tile shifts: s = t + θ·(−p_y, p_x).

    Tiles whose correlation peak is weak (a featureless or busy tile) are left out; with
    fewer than three good tiles there is no evidence either way (response 0).
    """
    good = responses >= min_response
    if np.count_nonzero(good) < 3:
        return 0.0, 0.0, 0.0
    s, p, r = shifts[good], centres[good], responses[good]
    while True:
        perp = np.stack([-p[:, 1], p[:, 0]], axis=1)
        q = perp - perp.mean(axis=0)
        theta = float(((s - s.mean(axis=0)) * q).sum() / max(float((q * q).sum()), 1e-9))
        t = s.mean(axis=0) - theta * perp.mean(axis=0)
        resid = np.hypot(*(s - t - theta * perp).T)
        if resid.max() <= 2.0 or len(s) == 3:
            break
        keep = resid < resid.max()  # one bad tile (a bus passing) must not bend the fit
        s, p, r = s[keep], p[keep], r[keep]
    if resid.max() > 2.0:
        return 0.0, 0.0, 0.0
    return float(np.hypot(*t)) / width, abs(math.degrees(theta)), float(r.min())


@dataclass
class CameraHealth:
    """Rolling baselines and the reference image of one camera."""

    cfg: HealthThresholds
    learning_frames: int
    frames: int = 0
    history: dict[str, deque[float]] = field(default_factory=dict)
    block_mean: np.ndarray | None = None
    block_std: np.ndarray | None = None
    reference: np.ndarray | None = None  # float32 grey, for 'moved'
    window: np.ndarray | None = None
    previous: np.ndarray | None = None
    previous_ts: datetime | None = None
    still_since: datetime | None = None
    _base: dict[str, float] | None = None

    def __post_init__(self) -> None:
        for k in ("mean", "clipped", "entropy", "sharpness", "diff"):
            self.history.setdefault(k, deque(maxlen=self.cfg.baseline_frames))

    @property
    def learning(self) -> bool:
        return self.frames < self.learning_frames

    def observe(self, gray: np.ndarray, ts: datetime) -> HealthReading:
        """Measure one frame, signal faults, and learn from it when it looks healthy."""
        cfg = self.cfg
        m: dict[str, float] = {}
        m["mean"] = float(cv2.mean(gray)[0])
        m["clipped"] = float(np.count_nonzero(gray >= 250)) / gray.size
        half = cv2.pyrDown(gray)  # motion and the histogram work at half scale
        m["entropy"] = _entropy(half)
        m["sharpness"] = _edge_sharpness(gray)
        m["diff"] = (
            float(cv2.norm(gray, self.previous, cv2.NORM_L1)) / gray.size
            if self.previous is not None
            else -1.0
        )
        bmean, bstd = _blocks(gray)
        faults: dict[str, float] = {}
        if self.learning:
            self._learn(half, m, bmean, bstd, ts)
            self._advance(gray, ts, still=False)
            return HealthReading(faults, m, usable=True, learning=True)

        if self._base is None or self.frames % 10 == 0:  # medians move slowly: refresh now and then
            self._base = {k: _median(v) for k, v in self.history.items()}
        base = self._base
        assert self.block_mean is not None and self.block_std is not None
        # Exposure first: a blank (clipped, black or covered) image is still by nature.
        if m["clipped"] >= cfg.overexposed_fraction and m["clipped"] >= cfg.overexposed_ratio * (
            base["clipped"] + 0.01
        ):
            faults["overexposed"] = m["clipped"]
        else:
            far = np.abs(bmean - self.block_mean) > 0.15 * self.block_mean + 5
            # Texture relative to brightness: a uniformly darker scene keeps its contrast ratio.
            flat = bstd / (bmean + 1) < cfg.covered_texture_ratio * self.block_std / (self.block_mean + 1)
            covered = float(np.count_nonzero(far & flat)) / far.size
            m["covered_share"] = covered
            if covered >= cfg.covered_fraction and m["entropy"] <= base["entropy"] - cfg.covered_entropy_drop:
                faults["covered"] = covered
        m["brightness_ratio"] = m["mean"] / max(base["mean"], 1.0)
        if m["brightness_ratio"] < cfg.dark_ratio and not faults:
            faults["too_dark"] = m["brightness_ratio"]
        still = False
        if not faults:
            still = 0 <= m["diff"] < max(0.05, cfg.frozen_diff_ratio * base["diff"])
            if still and self.still_since is not None:
                still_s = (ts - self.still_since).total_seconds()
                if still_s >= cfg.frozen_after_s:
                    faults["frozen"] = still_s
        if not faults and not still:
            m["sharpness_ratio"] = m["sharpness"] / max(base["sharpness"], 1e-6)
            if m["sharpness_ratio"] < cfg.blur_ratio:
                faults["blurred"] = m["sharpness_ratio"]
            shift, rot, resp = self._motion(half)
            m.update(shift_fraction=shift, rotation_deg=rot, motion_response=resp)
            if resp >= cfg.moved_min_response and (
                shift >= cfg.moved_shift_fraction or rot >= cfg.moved_rotation_deg
            ):
                faults["moved"] = max(shift / cfg.moved_shift_fraction, rot / cfg.moved_rotation_deg)
            aligned = resp >= cfg.moved_min_response and (
                shift < cfg.moved_shift_fraction / 3 and rot < cfg.moved_rotation_deg / 3
            )
            if not faults and aligned:
                self._learn(half, m, bmean, bstd, ts)
        self._advance(gray, ts, still)
        return HealthReading(faults, m, usable=not faults and not still, learning=False)

    def _advance(self, gray: np.ndarray, ts: datetime, still: bool) -> None:
        if not still:
            self.still_since = ts
        self.previous = gray
        self.previous_ts = ts
        self.frames += 1

    def _learn(
        self, half: np.ndarray, m: dict[str, float], bmean: np.ndarray, bstd: np.ndarray, ts: datetime
    ) -> None:
        for k in ("mean", "clipped", "entropy", "sharpness", "diff"):
            if m[k] >= 0:
                self.history[k].append(m[k])
        g = half.astype(np.float32)
        if self.reference is None or self.block_mean is None or self.block_std is None:
            self.reference, self.block_mean, self.block_std = g, bmean, bstd
            self.window = cv2.createHanningWindow((g.shape[1] // 2, g.shape[0] // 2), cv2.CV_32F)
            return
        if self.learning:
            a = 1.0 / (self.frames + 1)
        else:
            dt = (ts - self.previous_ts).total_seconds() if self.previous_ts else 0.0
            a = 1.0 - math.exp(-max(dt, 0.0) / self.cfg.reference_tau_s)
            a = max(a, 1.0 / self.cfg.baseline_frames)
        cv2.accumulateWeighted(g, self.reference, a)
        self.block_mean += a * (bmean - self.block_mean)
        self.block_std += a * (bstd - self.block_std)

    def _motion(self, half: np.ndarray) -> tuple[float, float, float]:
        """(translation as a share of the width, rotation in degrees, weakest tile response)."""
        assert self.reference is not None and self.window is not None
        h, w = self.reference.shape
        th, tw = h // 2, w // 2
        g = half.astype(np.float32)
        shifts, centres, responses = [], [], []
        for y0 in (0, h - th):
            for x0 in (0, w - tw):
                # Copies: OpenCV 5's phaseCorrelate multiplies its inputs by the window in place.
                (dx, dy), resp = cv2.phaseCorrelate(
                    self.reference[y0 : y0 + th, x0 : x0 + tw].copy(),
                    g[y0 : y0 + th, x0 : x0 + tw].copy(),
                    self.window,
                )
                shifts.append((dx, dy))
                centres.append((x0 + tw / 2 - w / 2, y0 + th / 2 - h / 2))
                responses.append(resp)
        return _fit_motion(
            np.array(shifts), np.array(centres), np.array(responses), w, self.cfg.moved_min_response
        )

    def nbytes(self) -> int:
        arrays = (self.reference, self.previous, self.window, self.block_mean, self.block_std)
        return sum(a.nbytes for a in arrays if a is not None) + sum(8 * len(v) for v in self.history.values())
