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
Shapes: T frames; BlazePose-33 landmarks.
"""
from __future__ import annotations

import numpy as np

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


def consistent_facing(frames: np.ndarray, world33: np.ndarray, confidence: np.ndarray, fps: float,
                      max_turn_deg_s: float = 1080.0, sigma_deg: float = 20.0, cap: float = 4.0,
                      jump_cost: float = 8.0, mirror_cost: float = 0.1, turn_cost: float = 0.02) -> np.ndarray:
    """(T,) bool: frames whose BlazePose reading to replace by its mirror for a torso that turns as people do.

    frames (T,) int increasing (gaps allowed: the allowed turn grows with them); world33 (T, 33, 3) world
    landmarks (camera axes, hip-centred); confidence (T, 33) in [0, 1] (visibility x presence)."""
    frames = np.asarray(frames, np.int64)
    t_n = len(frames)
    if t_n < 2:
        return np.zeros(t_n, bool)
    theta, extent = torso_yaw(world33)
    conf = np.clip(np.asarray(confidence, np.float64)[:, TORSO].min(1), 0.0, 1.0)
    weight = np.where(extent >= 0.5 * np.median(extent), conf, 0.0)
    centres = -180.0 + BIN_DEG * (np.arange(int(round(360.0 / BIN_DEG))) + 0.5)        # (B,)
    swap = improper(world33)
    readings = np.stack([theta, np.where(swap, _wrap(theta + 180.0), mirrored_yaw(theta))], 1)   # (T, 2)
    dist = np.abs(_wrap(readings[:, :, None] - centres[None, None]))                    # (T, 2, B)
    fit = np.minimum((dist / sigma_deg) ** 2, cap)
    fit[:, 1] += mirror_cost
    # the mirror where it is nearer each yaw by more than a frame's noise (so never near a side view, where the two
    # readings' yaws differ by less: their labels there are the 2D step's to decide, models/fit/temporal.py); chosen
    # the same way where the frame's own weight is 0 (a collapsed torso still reads front or back, only its angle
    # is unreliable); the weight scales what the frame says of the yaw
    branch = dist[:, 0] - dist[:, 1] > MIN_TURN_DEG                                     # (T, B): mirror
    unary = weight[:, None] * np.where(branch, fit[:, 1], fit[:, 0])                    # (T, B)
    step = np.abs(_wrap(centres[:, None] - centres[None]))                             # (B prev, B cur)
    per_frame = max(max_turn_deg_s / max(fps, 1e-6), MIN_TURN_DEG)
    moves: dict[int, np.ndarray] = {}
    cost = unary[0].copy()
    back = np.zeros((t_n, len(centres)), np.int16)
    for t in range(1, t_n):
        gap = int(frames[t] - frames[t - 1])
        if gap not in moves:
            reach = per_frame * max(gap, 1)
            moves[gap] = np.where(step <= reach + 1e-9, turn_cost * (step / reach) ** 2, jump_cost)
        total = cost[:, None] + moves[gap]
        back[t] = total.argmin(0)
        cost = total[back[t], np.arange(len(centres))] + unary[t]
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
