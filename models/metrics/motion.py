"""Smoothness and quality metrics of 3D joint trajectories (no ground truth needed, except accel error).

Units: positions in metres in, millimetres out; time in frames (accelerations in mm/frame^2, the
unit of all public accel-error code). Trajectories are (T, J, 3) over consecutive frames.

Definitions:
- acceleration: a_t = || x_{t-1} - 2 x_t + x_{t+1} || x 1000, for t = 1..T-2, per joint.
- acceleration error (eval): mean over joints of || a_pred,t - a_gt,t || x 1000 (vector difference
  of the second differences), per frame t = 1..T-2.
- jitter: the high-frequency part of the acceleration. The second-difference vectors (T-2, J, 3) are
  split with a real FFT along time into bins below and at/above `cutoff_hz`; jitter_mm is the RMS
  over time of the norm of the high band (the inverse FFT of those bins), per joint, in mm/frame^2;
  jitter_ratio is the high band's share of the acceleration energy (0..1). Human motion lies mostly
  below 6 Hz, so energy above it is mostly estimation noise.
- foot contact: a foot joint is in contact when its height above the track's ground (the 5th
  percentile of that joint's height over the track) is below `contact_height_m` and its vertical
  speed is below `contact_vspeed_mm` per frame. Foot sliding: the mean horizontal (x, z) speed of
  the joint over consecutive frames both in contact, mm/frame. Height is along +Y of the Y-up frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# SMPL-24 joints by body part (the pelvis trajectory is reported separately as "root").
BODY_PARTS: dict[str, tuple[int, ...]] = {
    "torso": (3, 6, 9),                 # spine; the pelvis is the root
    "head": (12, 15),
    "arm_left": (13, 16, 18, 20, 22),
    "arm_right": (14, 17, 19, 21, 23),
    "leg_left": (1, 4, 7, 10),
    "leg_right": (2, 5, 8, 11),
}
FOOT_JOINTS = {"ankle_left": 7, "ankle_right": 8, "foot_left": 10, "foot_right": 11}

# COCO-17 keypoints by body part (reference point: the hip midpoint; the shoulders stand for the torso).
COCO_BODY_PARTS: dict[str, tuple[int, ...]] = {
    "torso": (5, 6),
    "head": (0, 1, 2, 3, 4),
    "arm_left": (7, 9),
    "arm_right": (8, 10),
    "leg_left": (11, 13, 15),
    "leg_right": (12, 14, 16),
}
COCO_FOOT_JOINTS = {"ankle_left": 15, "ankle_right": 16}


@dataclass(frozen=True)
class JointSet:
    """How to read a (T, J, 3) joint array: body parts, foot joints, and the joints whose mean is the
    body's reference point (joints are reported relative to it; its own motion is the root's)."""

    name: str
    n_joints: int
    parts: dict[str, tuple[int, ...]]
    feet: dict[str, int]
    reference: tuple[int, ...]
    reference_name: str


SMPL_24 = JointSet("SMPL-24 joints", 24, BODY_PARTS, FOOT_JOINTS, (0,), "pelvis")
COCO_17 = JointSet("COCO-17 keypoints", 17, COCO_BODY_PARTS, COCO_FOOT_JOINTS, (11, 12), "hip midpoint")


def _check_traj(name: str, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"{name}: expected shape (T, J, 3), got {x.shape}")
    return x


def second_difference(x: np.ndarray) -> np.ndarray:
    """(T, J, 3) -> (T-2, J, 3): x_{t-1} - 2 x_t + x_{t+1} (same units as x)."""
    x = _check_traj("x", x)
    return x[:-2] - 2 * x[1:-1] + x[2:]


def acceleration_mm(x_m: np.ndarray) -> np.ndarray:
    """(T, J, 3) metres -> (T-2, J) acceleration magnitude in mm/frame^2 (frames 1..T-2)."""
    return np.linalg.norm(second_difference(x_m), axis=-1) * 1000.0


@dataclass(frozen=True)
class Jitter:
    """Per joint (J,): RMS of the high-band acceleration (mm/frame^2) and its energy share (0..1)."""

    rms_mm: np.ndarray
    ratio: np.ndarray


def effective_cutoff_hz(cutoff_hz: float, fps: float) -> float:
    """The jitter cutoff actually used: at most a quarter of the frame rate, so that a low-fps video
    (12 fps: Nyquist 6 Hz) still has a high band to measure, the same for every track."""
    return min(cutoff_hz, fps / 4.0)


def jitter(x_m: np.ndarray, fps: float, cutoff_hz: float = 6.0) -> Jitter:
    """High-frequency acceleration of (T, J, 3) trajectories in metres (see the module docstring).

    Fewer than 4 frames, or a cutoff above Nyquist, give zeros (no bins to measure).
    """
    a = second_difference(x_m) * 1000.0                                # (M, J, 3) mm/frame^2
    m = a.shape[0]
    if m < 2:
        return Jitter(np.zeros(a.shape[1]), np.zeros(a.shape[1]))
    spec = np.fft.rfft(a, axis=0)                                      # (M//2+1, J, 3)
    freqs = np.fft.rfftfreq(m, d=1.0 / fps)
    high = np.where((freqs >= cutoff_hz)[:, None, None], spec, 0)
    hp = np.fft.irfft(high, n=m, axis=0)                               # (M, J, 3)
    rms = np.sqrt((hp ** 2).sum(-1).mean(0))
    total = (a ** 2).sum(-1).sum(0)
    ratio = np.where(total > 0, (hp ** 2).sum(-1).sum(0) / np.where(total > 0, total, 1), 0.0)
    return Jitter(rms, ratio)


@dataclass(frozen=True)
class FootSliding:
    """Per foot joint (F,): contact mask (T, F), share of frames in contact, sliding mm/frame (NaN if never)."""

    contact: np.ndarray
    contact_share: np.ndarray
    sliding_mm: np.ndarray


def foot_sliding(feet_m: np.ndarray, contact_height_m: float = 0.05, contact_vspeed_mm: float = 10.0,
                 ground_percentile: float = 5.0, contact: np.ndarray | None = None) -> FootSliding:
    """Foot contact and sliding of (T, F, 3) foot-joint positions, metres, Y up (see module docstring).

    `contact` (T, F) bool: contacts known from elsewhere (e.g. the world stage), used instead of the
    height/speed rule."""
    feet = _check_traj("feet_m", feet_m)
    t, f, _ = feet.shape
    if t < 2:
        return FootSliding(np.zeros((t, f), bool), np.zeros(f), np.full(f, np.nan))
    height = feet[:, :, 1] - np.percentile(feet[:, :, 1], ground_percentile, axis=0)
    vspeed = np.zeros((t, f))
    vspeed[1:] = np.abs(np.diff(feet[:, :, 1], axis=0)) * 1000.0
    vspeed[0] = vspeed[1]
    contact = (height < contact_height_m) & (vspeed < contact_vspeed_mm) if contact is None else np.asarray(contact, bool)
    step = np.linalg.norm(np.diff(feet[:, :, [0, 2]], axis=0), axis=-1) * 1000.0   # (T-1, F)
    both = contact[1:] & contact[:-1]
    n = both.sum(0)
    sliding = np.where(n > 0, (step * both).sum(0) / np.maximum(n, 1), np.nan)
    return FootSliding(contact, contact.mean(0), sliding)


def part_means(per_joint: np.ndarray, parts: dict[str, tuple[int, ...]] = BODY_PARTS) -> dict[str, np.ndarray]:
    """(..., J) per-joint values -> {part: (...) mean over the part's joints} (default: SMPL-24 parts)."""
    return {name: per_joint[..., list(ids)].mean(-1) for name, ids in parts.items()}
