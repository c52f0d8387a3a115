"""One body seen by several tracks: which track's keypoints are someone else's (the person is hidden there).

BlazePose follows each tracklet on its own (stages/blazepose.py). When a person walks behind another, the
landmark model's crop holds the nearer body, and it gives that body's landmarks, confidently, to the hidden
person's track too: on the rendered 5-person crowd clip, four tracks at once carried one walker's skeleton,
100-240 px from their own people. Fitted as they are, the hidden person's body jumps onto the other one and
back. Two tracks whose skeletons coincide in a frame (median keypoint distance under `same_body` x the
larger person's size; two people standing apart, even side by side, are tens of times further) cannot both
be right: the body belongs to the track the detector saw in that frame (tracklets' rows that are detected,
not filled in), then to the track whose box agrees best with the skeleton's box (IoU). Another track of that
body whose own box holds the skeleton less than OWN_BOX_SHARE as well as the owner's is a stranger there: its
keypoints that frame are "borrowed". One whose box holds it about as well is left alone: two people
overlapping closely blend into one skeleton that is partly each one's. `borrowed_frames` finds them;
`fill_borrowed` replaces a track's borrowed frames by the in-between of its own frames, where the fit starts
from (models/fit/temporal.prepare_track gives them weight 0: the dynamics prior carries the body there).

Shapes: N rows of (frame, track); COCO-17 keypoints (x px, y px, score); boxes x1 y1 x2 y2 px.
"""
from __future__ import annotations

import numpy as np

from video2mesh.models.metrics.tracking import iou_matrix

MIN_SCORE = 0.5          # keypoints compared: both tracks' scores at least this
OWN_BOX_SHARE = 0.5      # borrowed: the skeleton fits the track's own box at most this share as well as the owner's


def _points(kp: np.ndarray) -> np.ndarray:
    """(K, 2) the keypoints scored >= MIN_SCORE (all of them when fewer than 3 are)."""
    good = kp[:, 2] >= MIN_SCORE
    return kp[good, :2] if np.count_nonzero(good) >= 3 else kp[:, :2]


def _size(kp: np.ndarray) -> float:
    """Diagonal (px) of the box of the well-scored keypoints, at least 16."""
    return max(float(np.linalg.norm(np.ptp(_points(kp), axis=0))), 16.0)


def _box(kp: np.ndarray) -> np.ndarray:
    pts = _points(kp)
    return np.r_[pts.min(0), pts.max(0)]


def same_body_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Median distance of the keypoints two skeletons (17, 3) both score >= MIN_SCORE, in units of the larger
    skeleton's size; inf when they share fewer than 3 such keypoints."""
    both = (a[:, 2] >= MIN_SCORE) & (b[:, 2] >= MIN_SCORE)
    if np.count_nonzero(both) < 3:
        return float("inf")
    d = np.linalg.norm(a[both, :2] - b[both, :2], axis=1)
    return float(np.median(d) / max(_size(a), _size(b)))


def borrowed_frames(frames: np.ndarray, keypoints: np.ndarray, boxes: np.ndarray, detected: np.ndarray,
                    same_body: float) -> np.ndarray:
    """(N,) bool: the row's keypoints are another row's body in the same frame, which that row owns.

    frames (N,) int; keypoints (N, 17, 3); boxes (N, 4) the tracklet boxes of the same rows; detected (N,)
    bool: the detector saw this track in this frame (not filled in by `tracklets`). Rows whose skeletons
    lie within `same_body` of each other form one body (linked transitively); its owner is the row ranked
    first by (detected, IoU of its box with the skeleton's box), and every other row of it is borrowed.
    same_body <= 0: nothing is borrowed."""
    frames = np.asarray(frames)
    out = np.zeros(len(frames), bool)
    if same_body <= 0 or len(frames) < 2:
        return out
    order = np.argsort(frames, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(frames[order]) != 0])
    for rows in np.split(order, starts[1:]):
        if len(rows) < 2:
            continue
        parent = {int(r): int(r) for r in rows}

        def root(r: int) -> int:
            while parent[r] != r:
                r = parent[r]
            return r

        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                if same_body_distance(keypoints[a], keypoints[b]) < same_body:
                    parent[root(int(b))] = root(int(a))
        groups: dict[int, list[int]] = {}
        for r in rows:
            groups.setdefault(root(int(r)), []).append(int(r))
        for members in groups.values():
            if len(members) < 2:
                continue
            fit = [float(iou_matrix(boxes[r], _box(keypoints[r]))[0, 0]) for r in members]
            rank = [(bool(detected[r]), fit[k]) for k, r in enumerate(members)]
            best = max(range(len(members)), key=lambda k: rank[k])
            # a track whose own box holds the skeleton about as well as the owner's does may be the person
            # seen (two bodies overlapping closely blend into one skeleton): only a clear stranger is borrowed
            out[[r for k, r in enumerate(members) if k != best and fit[k] < OWN_BOX_SHARE * fit[best]]] = True
    return out


def fill_borrowed(frames: np.ndarray, values: np.ndarray, borrowed: np.ndarray) -> np.ndarray:
    """values (T, ...) of one track with its borrowed frames (T,) replaced by the linear in-between of its own
    frames (held at the ends); unchanged when every frame is borrowed."""
    own = ~np.asarray(borrowed, bool)
    if own.all() or not own.any():
        return values.copy()
    f = np.asarray(frames, np.float64)
    flat = values.reshape(len(values), -1).astype(np.float64)
    filled = np.stack([np.interp(f, f[own], flat[own, k]) for k in range(flat.shape[1])], 1)
    return filled.reshape(values.shape).astype(values.dtype, copy=False)
