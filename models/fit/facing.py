"""Front or back: which way a person faces, made continuous over a track of BlazePose landmarks.

One image does not tell a body seen from behind from the same body seen from the front, mirrored in depth with
its left and right exchanged: both give the same 2D keypoints (exactly so under weak perspective). BlazePose picks
one reading per frame from appearance, the face mostly; where that is weak (a back view, a face turned away, an
untextured body) it switches between the two from frame to frame. Its world landmarks then turn the body through
up to 180 deg in one frame, which nobody does: the torso's horizontal direction (hip line plus shoulder line in
the camera's x-z plane, angle theta from +x, the body's right) jumps to 180 - theta. Seen on the rendered Bandai
walk-turn-left under a pan: once the walker has turned away, 24 of the last 34 frames are read as a front view.

`consistent_facing` decides, per frame, BlazePose's reading or its mirror with a hidden Markov model of the
torso's yaw (bins of BIN_DEG):
- the yaw turns up to `max_turn_deg_s` (at least MIN_TURN_DEG a frame, BlazePose's own noise) at a cost that
  grows to `turn_cost` with the square of the turn (so it keeps still where frames say nothing); a larger turn
  between two frames costs `jump_cost` (a real one is possible: a track gap, a spin faster than that);
- each frame's evidence is the nearer of its two readings, a robust (capped) squared angle in units of
  `sigma_deg`, weighted by the torso landmarks' confidence; a frame whose torso BlazePose collapsed (horizontal
  extent under half the track's median: it does that while it hesitates between the readings) counts nothing;
- a frame's reading is the mirror where that is nearer the yaw by more than MIN_TURN_DEG (so never near a side
  view, theta within MIN_TURN_DEG / 2 of +-90 deg, where both readings have nearly the same yaw), and the mirror
  costs `mirror_cost` a frame, so BlazePose's reading stands wherever nothing says otherwise (a mirrored segment
  must be shorter than jump_cost / mirror_cost frames at a track end, twice that inside).
A reading whose face points back from the torso (`improper`: a mirror-image body, left and right labels exchanged
with the depth kept, which BlazePose itself does not give but a label swap makes) has its labels exchanged instead
(yaw theta + 180). `other_reading` applies the decision; `mirror_reading`: labels exchanged, depth negated.
Where both stories are equally continuous (BlazePose misreads most of a walk away), the person's travel decides:
people walk the way they face, so shrinking in the image costs the yaws facing the camera (`receding`; weaker
than a mirror, so it never overturns a reading alone: a camera dollying in reads as the person approaching).
The `fit` stage decides on a whole track at once (`Torso` summaries read a piece at a time, `facing_path`),
whatever its windows.
Shapes: T frames; BlazePose-33 landmarks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import correlate1d

from video2mesh.models.runners.blazepose import BLAZEPOSE_FLIP

TORSO = np.array([11, 12, 23, 24])     # BlazePose: left shoulder, right shoulder, left hip, right hip
BIN_DEG = 5.0
MIN_TURN_DEG = 30.0                    # a frame's allowed turn never below this (BlazePose's yaw noise is ~10-20 deg)
IMPROPER = 0.1                         # improper(): the face this far behind the torso's plane (cosine)


def torso_yaw(world33: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(theta (T,) deg, extent (T,) m): direction of the body's right (right minus left, hips plus shoulders) in
    the camera's x-z plane, measured from +x towards +z (away from the camera), and its horizontal length."""
    w = np.asarray(world33, np.float64)
    v = (w[:, 12] - w[:, 11]) + (w[:, 24] - w[:, 23])
    return np.degrees(np.arctan2(v[:, 2], v[:, 0])), np.hypot(v[:, 0], v[:, 2])


def improper(world33: np.ndarray, threshold: float = IMPROPER) -> np.ndarray:
    """(T,) bool: readings that are the mirror image of a body (left and right labels exchanged, depth kept): the
    face points backwards from the torso, (right x up) . face over the norms above `threshold`. BlazePose's own
    readings on the rendered set: -0.9 to -0.07, one frame of a torso collapsed while it hesitated +0.17 (weight 0
    in consistent_facing); the fast benchmark's label swaps of GT joints: +0.17 and +0.6, its unswapped frames
    -0.99 to -0.17 (5th to 95th percentile)."""
    w = np.asarray(world33, np.float64)
    right = (w[:, 12] - w[:, 11]) + (w[:, 24] - w[:, 23])
    up = (w[:, 11] + w[:, 12] - w[:, 23] - w[:, 24]) / 2
    face = w[:, 0] - (w[:, 11] + w[:, 12]) / 2
    normal = np.cross(right, up)
    den = np.linalg.norm(normal, axis=-1) * np.linalg.norm(face, axis=-1)
    return np.einsum("ti,ti->t", normal, face) > threshold * np.maximum(den, 1e-12)


def mirrored_yaw(theta: np.ndarray) -> np.ndarray:
    """The yaw of the mirror reading (labels exchanged, depth negated): 180 - theta, wrapped to [-180, 180)."""
    return _wrap(180.0 - np.asarray(theta, np.float64))


def _wrap(a: np.ndarray) -> np.ndarray:
    return (np.asarray(a) + 180.0) % 360.0 - 180.0


@dataclass(frozen=True)
class Torso:
    """What decides a track's facing, per frame: the torso's yaw theta (deg) and horizontal extent (m, torso_yaw),
    its landmarks' confidence (the least of shoulders and hips), and whether the reading is `improper`. Each is
    per frame, so a long track's is built a piece at a time and joined (Torso.join): ~35 bytes a frame."""

    theta: np.ndarray
    extent: np.ndarray
    confidence: np.ndarray
    improper: np.ndarray
    size_px: np.ndarray | None = None

    @classmethod
    def of(cls, world33: np.ndarray, confidence: np.ndarray, landmarks: np.ndarray | None = None) -> Torso:
        """world33 (T, 33, 3) world landmarks (camera axes, hip-centred); confidence (T, 33) in [0, 1]; landmarks
        (T, 33, >=2) image px, for the person's size in the image (body_size_px; None = no travel evidence)."""
        theta, extent = torso_yaw(world33)
        conf = np.clip(np.asarray(confidence, np.float64)[:, TORSO].min(1), 0.0, 1.0)
        size = None if landmarks is None else body_size_px(landmarks)
        return cls(theta, extent, conf, improper(world33), size)

    @classmethod
    def join(cls, parts: list[Torso]) -> Torso:
        cat = lambda f: None if any(getattr(p, f) is None for p in parts) else np.concatenate(  # noqa: E731
            [getattr(p, f) for p in parts])
        return cls(*(cat(f) for f in ("theta", "extent", "confidence", "improper", "size_px")))


def body_size_px(landmarks: np.ndarray) -> np.ndarray:
    """(T,) shoulders' midpoint to hips' to ankles' in the image, px: a length that arms and head do not change."""
    p = np.asarray(landmarks, np.float64)[..., :2]
    sh, hip, ank = (p[:, 11] + p[:, 12]) / 2, (p[:, 23] + p[:, 24]) / 2, (p[:, 27] + p[:, 28]) / 2
    return np.linalg.norm(sh - hip, axis=-1) + np.linalg.norm(hip - ank, axis=-1)


def receding(frames: np.ndarray, size_px: np.ndarray, fps: float, focal_px: float, half_window_s: float = 0.5,
             length_m: float = 1.3, walk_mps: float = 1.0, min_mps: float = 0.3) -> np.ndarray:
    """(T,) in [-1, 1]: how clearly the person travels away from the camera (+1 at walking speed `walk_mps` or
    more) or towards it (-1); 0 under `min_mps`. From the slope of log(size) over +-half_window_s (a weighted local
    line on the frame grid), at the depth a `length_m` body_size_px gives at `focal_px`. A camera that only turns
    does not change a person's size; one that travels towards or away from them does, and reads as their travel."""
    frames = np.asarray(frames, np.int64)
    f = frames - frames[0]
    n = int(f[-1]) + 1
    y, w = np.zeros(n), np.zeros(n)
    ok = np.asarray(size_px) > 8.0
    y[f[ok]], w[f[ok]] = np.log(np.asarray(size_px, np.float64)[ok]), 1.0
    h = max(int(round(half_window_s * fps)), 1)
    j = np.arange(-h, h + 1, dtype=np.float64)
    mom = [correlate1d(w, j ** k, mode="constant") for k in range(3)]
    b0, b1 = correlate1d(w * y, np.ones_like(j), mode="constant"), correlate1d(w * y, j, mode="constant")
    den = mom[0] * mom[2] - mom[1] ** 2
    slope = np.where((den > 1e-9) & (mom[0] >= h), (mom[0] * b1 - mom[1] * b0) / np.maximum(den, 1e-9), 0.0)
    depth = focal_px * length_m / np.maximum(np.exp(np.where(w > 0, y, np.log(1e3))), 1.0)
    speed = -depth * slope * fps                                                      # m/s, + away
    out = np.clip(speed / walk_mps, -1.0, 1.0) * (np.abs(speed) >= min_mps)
    return out[f]


def consistent_facing(frames: np.ndarray, world33: np.ndarray, confidence: np.ndarray, fps: float,
                      landmarks: np.ndarray | None = None, **kw) -> np.ndarray:
    """(T,) bool: frames whose BlazePose reading to replace by its other one (other_reading) for a torso that turns
    as people do. frames (T,) int increasing (gaps allowed: the allowed turn grows with them); world33 (T, 33, 3)
    world landmarks (camera axes, hip-centred); confidence (T, 33) in [0, 1] (visibility x presence); landmarks
    (T, 33, >=2) image px (with kw focal_px: the travel evidence); kw: facing_path's parameters."""
    return facing_path(frames, Torso.of(world33, confidence, landmarks), fps, **kw)


BLOCK = 4096                           # frames whose evidence facing_path holds at once (~5 MB)


def facing_path(frames: np.ndarray, torso: Torso, fps: float, max_turn_deg_s: float = 1080.0,
                sigma_deg: float = 20.0, cap: float = 4.0, jump_cost: float = 8.0, mirror_cost: float = 0.1,
                turn_cost: float = 0.02, focal_px: float | None = None, travel_cost: float = 0.08) -> np.ndarray:
    """consistent_facing on a track's Torso summary (T frames). Memory: 2 bytes a frame and yaw bin (~150 bytes a
    frame) besides the summary; the per-bin evidence is made BLOCK frames at a time."""
    frames = np.asarray(frames, np.int64)
    t_n = len(frames)
    if t_n < 2:
        return np.zeros(t_n, bool)
    weight = np.where(torso.extent >= 0.5 * np.median(torso.extent), torso.confidence, 0.0)
    centres = -180.0 + BIN_DEG * (np.arange(int(round(360.0 / BIN_DEG))) + 0.5)        # (B,)
    away = (np.zeros(t_n) if focal_px is None or torso.size_px is None
            else receding(frames, torso.size_px, fps, focal_px))
    forward_z = np.cos(np.radians(centres))                # a yaw's facing along the camera axis (+1 = away)
    b_n = len(centres)
    branch = np.zeros((t_n, b_n), bool)
    back = np.zeros((t_n, b_n), np.int8)
    step = np.abs(_wrap(centres[:, None] - centres[None]))                             # (B prev, B cur)
    per_frame = max(max_turn_deg_s / max(fps, 1e-6), MIN_TURN_DEG)
    moves: dict[int, np.ndarray] = {}
    cols = np.arange(b_n)
    cost = None
    for lo in range(0, t_n, BLOCK):
        sl = slice(lo, min(lo + BLOCK, t_n))
        theta = torso.theta[sl]
        other = np.where(torso.improper[sl], _wrap(theta + 180.0), mirrored_yaw(theta))
        dist = np.abs(_wrap(np.stack([theta, other], 1)[:, :, None] - centres[None, None]))   # (n, 2, B)
        fit = np.minimum((dist / sigma_deg) ** 2, cap)
        fit[:, 1] += mirror_cost
        # the other reading where it is nearer each yaw by more than a frame's noise (so never near a side view,
        # where a mirror's yaw differs by less: the labels there are the 2D step's to decide, models/fit/temporal.py);
        # chosen the same way where the frame's own weight is 0 (a collapsed torso still reads front or back, only
        # its angle is unreliable); the weight scales what the frame says of the yaw
        branch[sl] = dist[:, 0] - dist[:, 1] > MIN_TURN_DEG
        unary = weight[sl, None] * np.where(branch[sl], fit[:, 1], fit[:, 0])          # (n, B)
        # people walk the way they face: travel away from (towards) the camera costs the yaws facing it (away)
        unary += travel_cost * np.maximum(-away[sl, None] * forward_z[None], 0.0)
        for i in range(len(unary)):
            t = lo + i
            if cost is None:
                cost = unary[0].copy()
                continue
            gap = int(frames[t] - frames[t - 1])
            if gap not in moves:
                reach = per_frame * max(gap, 1)
                moves[gap] = np.where(step <= reach + 1e-9, turn_cost * (step / reach) ** 2, jump_cost)
            total = cost[:, None] + moves[gap]
            prev = total.argmin(0)
            back[t] = prev
            cost = total[prev, cols] + unary[i]
    state = np.zeros(t_n, np.int64)
    state[-1] = int(cost.argmin())
    for t in range(t_n - 1, 0, -1):
        state[t - 1] = back[t, state[t]]
    return branch[np.arange(t_n), state]


def other_reading(landmarks: np.ndarray, world33: np.ndarray, change: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The frames `change` (T,) bool (consistent_facing's answer) replaced by their other reading: a proper body's
    mirror (mirror_reading), an improper one's labels exchanged (its depth kept: it becomes the proper body)."""
    change = np.asarray(change, bool)
    swap = change & improper(world33)
    lm, wl = mirror_reading(landmarks, world33, change & ~swap)
    lm[swap] = lm[swap][:, BLAZEPOSE_FLIP]
    wl[swap] = wl[swap][:, BLAZEPOSE_FLIP]
    return lm, wl


def mirror_reading(landmarks: np.ndarray, world33: np.ndarray, mirror: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Copies of landmarks (T, 33, >=3: x px, y px, z, ...) and world33 (T, 33, 3) with the frames `mirror` (T,)
    bool replaced by their mirror reading: left/right labels exchanged and the depth (z, hip-centred in both)
    negated, which leaves the image positions where they were."""
    lm = np.array(landmarks, np.float64, copy=True)
    wl = np.array(world33, np.float64, copy=True)
    m = np.asarray(mirror, bool)
    lm[m] = lm[m][:, BLAZEPOSE_FLIP]
    lm[m, :, 2] *= -1.0
    wl[m] = wl[m][:, BLAZEPOSE_FLIP] * np.array([1.0, 1.0, -1.0])
    return lm, wl
