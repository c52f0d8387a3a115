"""Cheap appearance of a person's box: colour histograms of the torso and the legs, and how much of the
box other people in front cover. Used by `appearance` (per tracked box) and `tracklets` (stitching).

The descriptor is two L1-normalised HSV histograms (H 8 x S 3 x V 3 bins = 72 each): the torso band
(15-50 % of the box height) and the legs band (50-85 %), both over the middle 40 % of the box width, so
background at the box's sides (BlazePose's body box is as wide as half its height, about twice a
walker's width) and the head/feet (hair, shoes, floor) weigh little. Two bands keep the
"red top, blue trousers" layout that one histogram of the whole box would lose.
"""
from __future__ import annotations

import numpy as np

BINS = (8, 3, 3)                 # H, S, V
DIM = 2 * int(np.prod(BINS))     # torso + legs
BANDS = ((0.15, 0.50), (0.50, 0.85))
SIDE_MARGIN = 0.3                # fraction of the width dropped on each side
BORDER_SHARE = 0.5               # hidden share assumed for a box touching the image border
MAX_COVERED = 0.2                # a box hidden more than this (by people in front, the border) shows others' colours


def box_descriptor(frame_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(DIM,) float32 descriptor of `box` (x1, y1, x2, y2 pixels) in a BGR frame (H, W, 3) uint8; each
    band's histogram sums to 1, or is all zeros when the band falls outside the image."""
    import cv2

    h_img, w_img = frame_bgr.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    xa, xb = int(max(0, x1 + SIDE_MARGIN * w)), int(min(w_img, x2 - SIDE_MARGIN * w))
    parts = []
    for lo, hi in BANDS:
        ya, yb = int(max(0, y1 + lo * h)), int(min(h_img, y1 + hi * h))
        if xb - xa < 2 or yb - ya < 2:
            parts.append(np.zeros(int(np.prod(BINS)), np.float32))
            continue
        hsv = cv2.cvtColor(np.ascontiguousarray(frame_bgr[ya:yb, xa:xb]), cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, list(BINS), [0, 180, 0, 256, 0, 256]).ravel()
        parts.append((hist / max(hist.sum(), 1.0)).astype(np.float32))
    return np.concatenate(parts)


def covered_fraction(boxes: np.ndarray) -> np.ndarray:
    """(K,) share of each box (K, 4) covered by the boxes in front of it (lower bottom edge = nearer
    the camera on a floor), the sum of pairwise overlaps capped at 1."""
    b = np.asarray(boxes, float).reshape(-1, 4)
    lo = np.maximum(b[:, None, :2], b[None, :, :2])
    hi = np.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), -1)
    area = np.prod(np.clip(b[:, 2:] - b[:, :2], 1e-6, None), -1)
    in_front = b[None, :, 3] > b[:, None, 3]
    return np.minimum((inter * in_front).sum(1) / area, 1.0)


def outside_fraction(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(K,) share of each box (K, 4) outside the image, at least BORDER_SHARE for a box that touches the
    border (a detector clips its box there: the person is cut off by an unknown amount). A person entering
    at the border shows part of their clothes, which changes the descriptor as much as an occluder does."""
    b = np.asarray(boxes, float).reshape(-1, 4)
    inside = np.prod(np.clip(np.minimum(b[:, 2:], [width, height]) - np.maximum(b[:, :2], 0), 0, None), -1)
    area = np.prod(np.clip(b[:, 2:] - b[:, :2], 1e-6, None), -1)
    touches = (b[:, 0] <= 1) | (b[:, 1] <= 1) | (b[:, 2] >= width - 1) | (b[:, 3] >= height - 1)
    return np.maximum(np.clip(1.0 - inside / area, 0.0, 1.0), np.where(touches, BORDER_SHARE, 0.0))


def mean_descriptor(desc: np.ndarray, covered: np.ndarray, max_covered: float = MAX_COVERED) -> np.ndarray | None:
    """(DIM,) mean of a tracklet's descriptors (N, DIM) over its unoccluded rows (covered <= max_covered;
    all rows when none is); None when no row has any colour (e.g. no `appearance` rows)."""
    rows = desc[covered <= max_covered] if (covered <= max_covered).any() else desc
    rows = rows[rows.sum(1) > 0]
    return rows.mean(0) if len(rows) else None


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Hellinger distance in [0, 1] between two descriptors, the largest over the bands with colour in both
    (two people in the same trousers differ by the shirt: a mean over bands would halve that)."""
    n = int(np.prod(BINS))
    ds = []
    for k in range(len(BANDS)):
        p, q = a[k * n:(k + 1) * n], b[k * n:(k + 1) * n]
        if p.sum() > 0 and q.sum() > 0:
            bc = np.sum(np.sqrt(p / p.sum() * q / q.sum()))
            ds.append(np.sqrt(max(0.0, 1.0 - bc)))
    return float(np.max(ds)) if ds else 0.0


def change_points(desc: np.ndarray, covered: np.ndarray, window: int, threshold: float,
                  max_covered: float = MAX_COVERED) -> list[int]:
    """Row indices where one track's appearance changes (its tracker followed someone else), sorted.

    desc (N, DIM), covered (N,) of one track's rows in time order. At each row t, the mean descriptors of
    the unoccluded rows in [t - g - window, t - g) and [t + g, t + g + window) are compared, g = 2/3 window
    (while two people cross, the detector's boxes mix both for a while: comparing right next to t blurs the
    change); each side needs window / 3 such rows. The largest distance above `threshold` splits, and each
    side is searched again."""
    clean = (covered <= max_covered) & (desc.sum(1) > 0)
    c = np.concatenate([np.zeros((1, desc.shape[1])), np.cumsum(desc * clean[:, None], 0)])
    k = np.concatenate([[0], np.cumsum(clean)])
    g, need = 2 * window // 3, max(1, window // 3)

    def best(lo: int, hi: int) -> list[int]:
        scores = []
        for t in range(lo + 1, hi):
            a0, a1 = max(lo, t - g - window), max(lo, t - g)
            b0, b1 = min(hi, t + g), min(hi, t + g + window)
            na, nb = k[a1] - k[a0], k[b1] - k[b0]
            if min(na, nb) < need:
                continue
            scores.append((distance((c[a1] - c[a0]) / na, (c[b1] - c[b0]) / nb), t))
        top = max(scores, default=(0.0, 0))[0]
        if top <= threshold:
            return []
        ties = [t for d, t in scores if d >= top - 1e-6]     # a clean change scores the same over a plateau:
        t = ties[len(ties) // 2]                             # its middle is the change
        return best(lo, t - g) + [t] + best(t + g, hi)   # rows within g of a split mix both: no second split there

    return best(0, len(desc))


def place_change(desc: np.ndarray, covered: np.ndarray, t: int, window: int, frames: np.ndarray,
                 max_covered: float = MAX_COVERED) -> int:
    """Where within g rows of `t` (a row `change_points` returned for the same desc, covered, window) the change
    is: `change_points` compares windows g = 2/3 window away from t, which leaves the change anywhere in [t - g,
    t + g]. It goes where the fewest unoccluded rows fall on the wrong side (closer to the other side's mean
    colour), among equals after the longest gap in `frames` (each row's frame: a tracker that lost its person
    takes someone else when it finds a box again), then in the middle."""
    clean = (covered <= max_covered) & (desc.sum(1) > 0)
    g, n = 2 * window // 3, len(desc)
    side = lambda a, b: desc[a:b][clean[a:b]].mean(0)                          # noqa: E731
    before, after = side(max(0, t - g - window), max(0, t - g)), side(min(n, t + g), min(n, t + g + window))
    cand = np.arange(max(1, t - g), min(n - 1, t + g) + 1)                  # a cut before row s
    rows = np.arange(cand[0] - 1, cand[-1] + 1)
    d = np.array([[distance(desc[r], before), distance(desc[r], after)] if clean[r] else [0.0, 0.0] for r in rows])
    looks_after, looks_before = d[:, 1] < d[:, 0], d[:, 0] < d[:, 1]
    wrong = np.array([looks_after[:s - rows[0]].sum() + looks_before[s - rows[0]:].sum() for s in cand])
    ok = cand[wrong == wrong.min()]
    gap = np.diff(frames)[ok - 1]
    longest = ok[gap == gap.max()]
    return int(longest[len(longest) // 2])
