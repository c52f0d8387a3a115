"""Finger bones of the Anny rig from MediaPipe's 21 metric hand landmarks: per-joint curl/spread, limited,
confidence-weighted and smoothed over time, easing to the rest pose where a hand is not seen.

Per frame and hand (`solve_hand`): the palm (wrist and the four finger knuckles, landmarks 0, 5, 9, 13,
17) is aligned rigidly onto the rest palm of the person's Anny skeleton (Kabsch), which puts the
observed hand in the rest hand's frame whatever the arm does; then each finger is solved from its
base outwards: bone c's local rotation L_c is the smallest rotation taking its rest direction d_c
onto the observed segment (landmark k -> k + 1) seen from the already posed parent, split into a
curl (about d_c x p, p the palm-side normal: positive curls towards the palm) and a spread (about p),
each clamped to FINGER_LIMITS_DEG; twist is not observable from points and stays zero. Metacarpals
stay at rest (the palm is rigid in the model). Rotations are the rig's local axis-angle (the `fit`
artifact's `bone_rotations` convention: G_c = G_parent L_c, rest model axes).

The wrist (`wrist_local`): the same palm alignment gives the palm's orientation in the camera (MediaPipe's
world landmarks are in image axes); the wrist bone's local rotation is what turns the body fit's forearm
onto it, as flexion (about d x p, d the wrist bone's rest direction), deviation (about p) and twist
(about d), each clamped to WRIST_LIMITS_DEG.

Over time (`track_fingers`, `track_wrist`): the segment directions are averaged in a Gaussian window weighted by
each frame's confidence, and each joint's rotation is scaled towards zero (a slerp to rest) by the
window's mean confidence, so a hand that leaves view relaxes to rest over ~2 sigma.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

SIDES = ("left", "right")
SUFFIX = {"left": ".L", "right": ".R"}
# finger chains: (rig bones from the base, MediaPipe landmarks from the base: bone i spans lm i -> i + 1)
CHAINS = (
    (("finger1-1", "finger1-2", "finger1-3"), (1, 2, 3, 4)),      # thumb: CMC, MCP, IP
    (("finger2-1", "finger2-2", "finger2-3"), (5, 6, 7, 8)),      # index: MCP, PIP, DIP
    (("finger3-1", "finger3-2", "finger3-3"), (9, 10, 11, 12)),
    (("finger4-1", "finger4-2", "finger4-3"), (13, 14, 15, 16)),
    (("finger5-1", "finger5-2", "finger5-3"), (17, 18, 19, 20)),
)
PALM_LANDMARKS = (0, 5, 9, 13, 17)
PALM_BONES = ("wrist", "finger2-1", "finger3-1", "finger4-1", "finger5-1")   # their heads
# (curl min, curl max, spread half-range) in degrees per joint of a chain (base, middle, tip);
# ranges of motion from the hand-surgery literature, rounded (hyperextension kept small)
FINGER_LIMITS_DEG = ((-25.0, 90.0, 20.0), (-5.0, 110.0, 5.0), (-5.0, 80.0, 5.0))
THUMB_LIMITS_DEG = ((-30.0, 60.0, 45.0), (-10.0, 70.0, 15.0), (-15.0, 85.0, 5.0))
# flexion min/max, deviation and twist half-ranges; the twist is the forearm's pronation/supination
# (~+-85 deg), which BlazePose cannot see and the body fit leaves at its prior: the wrist takes it
WRIST_LIMITS_DEG = (-70.0, 80.0, 30.0, 90.0)


N_FINGER_BONES = 30   # finger_bones("left") + finger_bones("right")


def finger_bones(side: str) -> list[str]:
    """The 15 finger bones of one hand, chain by chain (thumb first), base to tip."""
    return [b + SUFFIX[side] for bones, _ in CHAINS for b in bones]


@dataclass(frozen=True)
class RestHand:
    """One hand of one rest skeleton, model axes (z up, facing -y), metres.

    palm: (5, 3) heads of PALM_BONES; dirs: (15, 3) unit rest directions of finger_bones(side);
    palm_side: (3,) unit normal pointing out of the palm; wrist_dir: (3,) the wrist bone's rest direction.
    """

    side: str
    palm: np.ndarray
    dirs: np.ndarray
    palm_side: np.ndarray
    wrist_dir: np.ndarray


def rest_hand(bone_names: list[str], heads: np.ndarray, rest_rotations: np.ndarray, side: str) -> RestHand:
    """RestHand of a skeleton: heads (J, 3), rest_rotations (J, 3, 3) whose y column is the bone's direction."""
    idx = {n: i for i, n in enumerate(bone_names)}
    palm = np.stack([heads[idx[b + SUFFIX[side]]] for b in PALM_BONES]).astype(np.float64)
    dirs = np.stack([rest_rotations[idx[b], :, 1] for b in finger_bones(side)]).astype(np.float64)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    # a right hand's (index - wrist) x (pinky - wrist) points out of the palm; a left hand mirrors it
    n = np.cross(palm[1] - palm[0], palm[4] - palm[0]) * (1.0 if side == "right" else -1.0)
    wd = rest_rotations[idx["wrist" + SUFFIX[side]], :, 1].astype(np.float64)
    return RestHand(side, palm, dirs, n / np.linalg.norm(n), wd / np.linalg.norm(wd))


def kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(3, 3) rotation R minimising sum |R (src_i - mean) - (dst_i - mean)|^2; src, dst (K, 3)."""
    a, b = src - src.mean(0), dst - dst.mean(0)
    u, _, vt = np.linalg.svd(a.T @ b)
    s = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    return (u @ s @ vt).T


def segment_directions(world: np.ndarray, rest: RestHand) -> tuple[np.ndarray, float]:
    """Unit directions (15, 3) of the observed finger segments in the rest hand's frame, and the palm
    fit's RMS residual relative to the rest palm's size (0 = a perfect rigid match).

    world: (21, 3) MediaPipe world landmarks (any rotation: the palm fixes it), metres."""
    x = np.asarray(world, np.float64)
    src = x[list(PALM_LANDMARKS)]
    r = kabsch(src, rest.palm)
    scale = np.linalg.norm(rest.palm - rest.palm.mean(0)) / max(np.linalg.norm(src - src.mean(0)), 1e-9)
    fitted = (src - src.mean(0)) @ r.T * scale + rest.palm.mean(0)
    resid = float(np.sqrt(((fitted - rest.palm) ** 2).sum(1).mean()) / np.linalg.norm(rest.palm[1] - rest.palm[0]))
    u = x @ r.T
    seg = np.stack([u[lm[i + 1]] - u[lm[i]] for _, lm in CHAINS for i in range(3)])
    return seg / np.maximum(np.linalg.norm(seg, axis=1, keepdims=True), 1e-9), resid


def _limited_swing(d: np.ndarray, t: np.ndarray, p: np.ndarray, limits: tuple[float, float, float]) -> np.ndarray:
    """Rotation vector (3,) of the smallest rotation d -> t, as curl about d x p and spread about p
    (p orthogonalised to d), each clamped to `limits` (degrees)."""
    axis = np.cross(d, t)
    ang = np.arctan2(np.linalg.norm(axis), float(d @ t))
    rv = axis / max(np.linalg.norm(axis), 1e-12) * ang
    pp = p - (p @ d) * d
    pp /= max(np.linalg.norm(pp), 1e-12)
    a_curl = np.cross(d, pp)
    lo, hi, spread = np.radians(limits)
    return np.clip(rv @ a_curl, lo, hi) * a_curl + np.clip(rv @ pp, -spread, spread) * pp


def solve_hand(dirs: np.ndarray, rest: RestHand) -> np.ndarray:
    """(15, 3) local axis-angle of finger_bones(rest.side) whose posed directions best follow `dirs`
    (15, 3) (segment_directions' output), within the joint limits."""
    out = np.zeros((15, 3))
    for c, _ in enumerate(CHAINS):
        limits = THUMB_LIMITS_DEG if c == 0 else FINGER_LIMITS_DEG
        parent = np.eye(3)       # the finger's base hangs off the (rest) palm
        for j in range(3):
            k = 3 * c + j
            d = rest.dirs[k]
            rv = _limited_swing(d, parent.T @ dirs[k], rest.palm_side, limits[j])
            out[k] = rv
            parent = parent @ Rotation.from_rotvec(rv).as_matrix()
    return out


def posed_directions(rotvecs: np.ndarray, rest: RestHand) -> np.ndarray:
    """(15, 3) posed unit directions of the finger bones in the rest hand's frame (solve_hand's inverse)."""
    out = np.zeros((15, 3))
    for c, _ in enumerate(CHAINS):
        g = np.eye(3)
        for j in range(3):
            k = 3 * c + j
            g = g @ Rotation.from_rotvec(rotvecs[k]).as_matrix()
            out[k] = g @ rest.dirs[k]
    return out


def track_fingers(frames: np.ndarray, obs_frames: np.ndarray, dirs: np.ndarray, conf: np.ndarray, rest: RestHand,
                  sigma_frames: float, full_conf: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Finger rotations of one hand over a track.

    frames (N,) the track's frames (sorted); obs_frames (M,) frames with an observation (a subset),
    dirs (M, 15, 3) their segment directions, conf (M,) their weights in [0, 1]; sigma_frames: the
    Gaussian window (0 = per frame). Returns rotations (N, 15, 3) local axis-angle and the blend
    weight (N,) in [0, 1]: the window's confidence per track frame / full_conf, capped (0 = rest pose).
    """
    from scipy.ndimage import gaussian_filter1d

    n = len(frames)
    rots, blend = np.zeros((n, 15, 3)), np.zeros(n)
    if len(obs_frames) == 0 or not np.any(conf > 0):
        return rots, blend
    f0 = int(frames.min())
    length = int(frames.max()) - f0 + 1
    cw, present = np.zeros(length), np.zeros(length)
    dsum = np.zeros((length, 15, 3))
    o = np.asarray(obs_frames, np.int64) - f0
    cw[o] = conf
    dsum[o] = conf[:, None, None] * dirs
    present[np.asarray(frames, np.int64) - f0] = 1.0
    if sigma_frames > 0:    # frames outside the track do not count: the ends keep their evidence
        g = lambda a: gaussian_filter1d(a, sigma_frames, axis=0, mode="constant", truncate=4.0)  # noqa: E731
        cw, present, dsum = g(cw), g(present), g(dsum)
    idx = np.asarray(frames, np.int64) - f0
    mass = cw[idx]
    blend = np.clip(mass / np.maximum(present[idx], 1e-9) / full_conf, 0.0, 1.0)
    for i in np.nonzero(mass > 1e-6)[0]:
        avg = dsum[idx[i]] / np.maximum(np.linalg.norm(dsum[idx[i]], axis=1, keepdims=True), 1e-9)
        rots[i] = solve_hand(avg, rest) * blend[i]
    return rots, blend


def apply_fingers(bone_rotations: np.ndarray, bone_names: list[str], frames: np.ndarray, finger_frames: np.ndarray,
                  finger_rotations: np.ndarray, wrist_rotations: np.ndarray | None = None) -> np.ndarray:
    """A copy of bone_rotations (N, J, 3) of frames (N,) whose finger bones take finger_rotations
    (M, 30, 3) (finger_bones("left") then ("right")) and, if given, whose wrist.L / wrist.R take
    wrist_rotations (M, 2, 3), where finger_frames (M,) has the frame."""
    out = np.array(bone_rotations, dtype=np.float64, copy=True)
    if len(finger_frames) == 0:
        return out
    idx = [bone_names.index(b) for s in SIDES for b in finger_bones(s)]
    wrists = [bone_names.index("wrist" + SUFFIX[s]) for s in SIDES]
    pos = {int(f): k for k, f in enumerate(finger_frames)}
    for i, f in enumerate(np.asarray(frames, np.int64)):
        k = pos.get(int(f))
        if k is not None:
            out[i, idx] = finger_rotations[k]
            if wrist_rotations is not None:
                out[i, wrists] = wrist_rotations[k]
    return out


def palm_rotation(world: np.ndarray, rest: RestHand) -> np.ndarray:
    """(3, 3) rotation taking the rest palm (model axes) onto the observed one (world (21, 3), image axes)."""
    return kabsch(rest.palm, np.asarray(world, np.float64)[list(PALM_LANDMARKS)])


def wrist_local(parent_global: np.ndarray, palm_global: np.ndarray, rest: RestHand) -> np.ndarray:
    """Local axis-angle (3,) of the wrist bone turning the forearm's global rotation parent_global (3, 3)
    (rest model -> camera axes) onto the palm's palm_global (3, 3), within WRIST_LIMITS_DEG."""
    local = Rotation.from_matrix(parent_global.T @ palm_global)
    d = rest.wrist_dir
    p = rest.palm_side - (rest.palm_side @ d) * d
    p /= np.linalg.norm(p)
    # swing-twist about d: twist = the rotation's component about d, swing = the rest
    q = local.as_quat()                                   # x, y, z, w
    proj = (q[:3] @ d) * d
    twist = Rotation.from_quat(np.r_[proj, q[3]] / max(np.linalg.norm(np.r_[proj, q[3]]), 1e-12))
    swing = (local * twist.inv()).as_rotvec()
    lo, hi, dev, tw = np.radians(WRIST_LIMITS_DEG)
    a_flex = np.cross(d, p)
    swing = np.clip(swing @ a_flex, lo, hi) * a_flex + np.clip(swing @ p, -dev, dev) * p
    t = twist.as_rotvec()
    t = np.clip(t @ d, -tw, tw) * d
    return (Rotation.from_rotvec(swing) * Rotation.from_rotvec(t)).as_rotvec()


def track_wrist(frames: np.ndarray, obs_frames: np.ndarray, local: np.ndarray, conf: np.ndarray, base: np.ndarray,
                sigma_frames: float, full_conf: float = 0.5) -> np.ndarray:
    """Wrist local rotations (N, 3) of one hand over a track: the observed ones local (M, 3) averaged in
    the Gaussian window (weights conf (M,)), blended from the body fit's base (N, 3) by the window's
    confidence (track_fingers' blend): the fit's own wrist where the hand is not seen."""
    from scipy.ndimage import gaussian_filter1d

    out = np.array(base, np.float64, copy=True)
    if len(obs_frames) == 0 or not np.any(conf > 0):
        return out
    f0 = int(frames.min())
    length = int(frames.max()) - f0 + 1
    cw, present, msum = np.zeros(length), np.zeros(length), np.zeros((length, 3, 3))
    o = np.asarray(obs_frames, np.int64) - f0
    cw[o] = conf
    msum[o] = conf[:, None, None] * Rotation.from_rotvec(local).as_matrix()
    idx = np.asarray(frames, np.int64) - f0
    present[idx] = 1.0
    if sigma_frames > 0:
        g = lambda a: gaussian_filter1d(a, sigma_frames, axis=0, mode="constant", truncate=4.0)  # noqa: E731
        cw, present, msum = g(cw), g(present), g(msum)
    for i in np.nonzero(cw[idx] > 1e-6)[0]:
        u, _, vt = np.linalg.svd(msum[idx[i]])            # chordal mean: the nearest rotation to the weighted sum
        mean = Rotation.from_matrix(u @ np.diag([1, 1, np.linalg.det(u @ vt)]) @ vt)
        b = float(np.clip(cw[idx[i]] / max(present[idx[i]], 1e-9) / full_conf, 0.0, 1.0))
        fit = Rotation.from_rotvec(base[i])
        out[i] = (fit * Rotation.from_rotvec(b * (fit.inv() * mean).as_rotvec())).as_rotvec()
    return out
