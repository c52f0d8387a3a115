"""Person candidates from motion (issue 18): what moves against the background, camera pan removed.

BlazePose's detector finds people by the face, so someone walking with their back to the camera is
never found. They still move against the background. For frame t, frame t - gap is registered onto t
with a background homography (a grid of points tracked by pyramidal Lucas-Kanade, points inside known
person boxes left out, `robust_homography`'s refitted DLT), the two are differenced at a working
resolution, thresholded, closed/opened, and each connected blob big enough to be a person becomes a
person-shaped candidate box (grown to an aspect of at least `aspect` w/h, plus a margin). A candidate
is only a place to look: the landmark model verifies it (its presence flag) and follows it.

A static camera is the special case H = identity; a pure pan leaves (near) nothing after registration.
The blob of a walker covers them at t and at t - gap (the ghost), a few pixels wider at walking speed.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .camera_motion import background_grid, robust_homography, track_points_lk


@dataclass(frozen=True)
class MotionConfig:
    """Sizes are fractions of the working frame (long side `work_long` px); thresholds in grey levels."""

    gap: int = 3                 # frames between the two differenced frames
    work_long: int = 480         # working resolution's long side (px)
    diff: float = 18.0           # |grey difference| counted as motion (0..255)
    grid: int = 24               # background grid points per side for the homography
    min_height: float = 0.06     # a blob shorter than this x frame height is noise
    max_height: float = 0.9      # ... taller is a registration failure (the whole frame moved)
    aspect: float = 0.4          # candidate box grown to at least this width / height
    margin: float = 0.1          # and by this x its height on every side
    split: float = 0.5           # a blob wider than this x its height is also cut into strips this wide
    covered: float = 0.8         # a blob this much inside a known person box is that person
    max_candidates: int = 6      # biggest blobs first


def motion_mask(prev: np.ndarray, cur: np.ndarray, boxes: np.ndarray, cfg: MotionConfig) -> tuple[np.ndarray, bool]:
    """(h, w) uint8 0/255 mask of what moved between grey frames prev and cur (working resolution), prev
    registered onto cur by a background homography (boxes (K, 4) working px: known people, left out of the
    fit). Returns the mask and whether the registration held (False: empty mask, nothing can be said)."""
    h, w = cur.shape
    pts, keep = background_grid(w, h, boxes, cfg.grid, 0.1)
    dst, ok = track_points_lk(prev, cur, pts)
    hom, valid, _, _ = robust_homography(pts, dst, keep & ok)
    if not valid:
        return np.zeros_like(cur), False
    warped = cv2.warpPerspective(prev, hom, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpPerspective(np.full_like(prev, 255), hom, (w, h), flags=cv2.INTER_NEAREST)
    inside = cv2.erode(inside, np.ones((5, 5), np.uint8))                 # resampled border pixels differ too
    d = cv2.absdiff(cv2.GaussianBlur(cur, (5, 5), 0), cv2.GaussianBlur(warped, (5, 5), 0))
    m = np.where((d >= cfg.diff) & (inside > 0), 255, 0).astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))    # single-pixel noise
    k = max(3, int(round(0.02 * h)) | 1)                                  # join a body's moving edges into one blob
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, 2 * k + 1)))
    return m, True


def blob_boxes(mask: np.ndarray, boxes: np.ndarray, cfg: MotionConfig) -> np.ndarray:
    """Person-shaped candidate boxes (M, 4) x1 y1 x2 y2 (mask px) from a motion mask's connected blobs, those
    mostly inside a known box (K, 4) dropped, biggest first, at most cfg.max_candidates. A blob wider than
    one person (walkers overlapping in the view merge into one) is also cut into `split`-wide column
    strips, each boxed by its own pixels' extent: one of them is the person the others hide."""
    h, w = mask.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    out = []
    for i, (x, y, bw, bh, area) in enumerate(stats[1:], 1):
        if not cfg.min_height * h <= bh <= cfg.max_height * h:
            continue
        parts = [np.array([x, y, x + bw, y + bh], np.float64)]
        k = int(round(bw / (cfg.split * bh)))
        if k > 1:
            cols = np.linspace(x, x + bw, k + 1).round().astype(int)
            for a, b in zip(cols[:-1], cols[1:]):
                rows = np.flatnonzero((labels[y:y + bh, a:b] == i).any(1))
                if len(rows) and rows[-1] - rows[0] >= cfg.min_height * h:
                    parts.append(np.array([a, y + rows[0], b, y + rows[-1] + 1], np.float64))
        for p in parts:
            if _inside_share(p, boxes) < cfg.covered:
                out.append((area * (p[2] - p[0]) / bw, _person_shape(p, cfg, w, h)))
    out.sort(key=lambda a: -a[0])
    return np.array([b for _, b in out[: cfg.max_candidates]], np.float64).reshape(-1, 4)


def _inside_share(b: np.ndarray, boxes: np.ndarray) -> float:
    """The largest share of box b (4,) inside one of boxes (K, 4)."""
    if len(boxes) == 0:
        return 0.0
    lo, hi = np.maximum(b[:2], boxes[:, :2]), np.minimum(b[2:], boxes[:, 2:4])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    return float(inter.max() / max((b[2] - b[0]) * (b[3] - b[1]), 1e-9))


def _person_shape(b: np.ndarray, cfg: MotionConfig, w: int, h: int) -> np.ndarray:
    """Grow a blob box to width >= aspect x height (about its centre), add the margin, clip to the frame."""
    cx, bw, bh = (b[0] + b[2]) / 2, b[2] - b[0], b[3] - b[1]
    bw = max(bw, cfg.aspect * bh)
    m = cfg.margin * bh
    out = np.array([cx - bw / 2 - m, b[1] - m, cx + bw / 2 + m, b[3] + m])
    return np.clip(out, 0, [w, h, w, h])


class MotionProposer:
    """Candidate boxes frame after frame: `__call__(rgb, known)` once per frame, in order; proposes on every
    `every`-th frame (others return none) once `gap` frames are held."""

    def __init__(self, cfg: MotionConfig = MotionConfig(), every: int = 1):
        self.cfg, self.every, self.greys, self.frame = cfg, max(1, every), [], 0
        self.last = np.zeros((0, 4))     # the last call's candidates (for drawing)
        self.ran = False                 # whether the last call proposed (its schedule frame, registration held)

    def __call__(self, rgb: np.ndarray, known: np.ndarray) -> np.ndarray:
        """(M, 4) x1 y1 x2 y2 frame px for one (H, W, 3) uint8 RGB frame; known (K, 4+) frame px: people
        already found (left out of the homography fit and of the proposals)."""
        H, W = rgb.shape[:2]
        s = self.cfg.work_long / max(H, W)
        grey = cv2.cvtColor(cv2.resize(rgb, (round(W * s), round(H * s)), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        self.greys = (self.greys + [grey])[-(self.cfg.gap + 1):]
        t, self.frame = self.frame, self.frame + 1
        self.last, self.ran = np.zeros((0, 4)), False
        if t % self.every or len(self.greys) <= self.cfg.gap:
            return self.last
        kb = np.asarray(known, np.float64).reshape(-1, np.shape(known)[-1] if np.size(known) else 4)[:, :4] * s
        mask, ok = motion_mask(self.greys[0], grey, kb, self.cfg)
        self.ran = True
        if ok:
            self.last = blob_boxes(mask, kb, self.cfg) / s
        return self.last
