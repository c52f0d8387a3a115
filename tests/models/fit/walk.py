"""A synthetic walk with a known contact pattern, seen by a still, a panning or a travelling camera.

World: Y up, floor y = 0, walking along +X at `speed` m/s; camera axes OpenCV (x right, y down, z forward).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

# rest model (z up, facing -y) -> world (Y up) for a body facing +X
MODEL_TO_WORLD = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]])
FOOT_SHAPE = np.array([[0.12, 0.0, -0.02], [0.10, 0.0, 0.03], [-0.08, 0.0, 0.0]])   # big toe, small toe, heel: forward, up, outward


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World -> OpenCV camera rotation looking from eye at target, world Y up."""
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 1.0, 0.0])   # right: y down in the camera
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def walk(n: int = 120, fps: float = 30.0, step_m: float = 0.7, step_frames: int = 15, run: bool = False):
    """Root (T, 3), feet points (T, 6, 3) and true contact (T, 2) in the world frame."""
    t = np.arange(n)
    speed = step_m / step_frames                       # metres per frame
    feet = np.zeros((n, 2, 3))
    contact = np.zeros((n, 2), bool)
    stance = step_frames * (0.6 if run else 1.2)       # frames a foot stays down per stride of 2 steps
    for f in range(2):
        phase = (t + f * step_frames) % (2 * step_frames)
        stride = (t + f * step_frames) // (2 * step_frames)
        down = phase < stance
        contact[:, f] = down
        x0 = stride * 2 * step_m - f * step_m
        swing = np.clip((phase - stance) / (2 * step_frames - stance), 0, 1)
        feet[:, f, 0] = x0 + np.where(down, 0.0, swing * 2 * step_m)
        feet[:, f, 1] = np.where(down, 0.0, 0.12 * np.sin(np.pi * swing))
        feet[:, f, 2] = 0.1 if f == 0 else -0.1            # left foot on +Z (the body's left when facing +X)
    root = np.stack([speed * t + 0.1, 0.92 + 0.02 * np.cos(4 * np.pi * t / (2 * step_frames)), np.zeros(n)], 1)
    if run:
        root[:, 1] += 0.05 * (~contact.any(1))
    side = np.array([1.0, -1.0])[:, None, None]            # outward is +Z for the left foot
    pts = feet[:, :, None, :] + FOOT_SHAPE[None, None] * np.concatenate([np.ones((2, 1, 2)), side], -1)[None]
    pts = pts.reshape(n, 6, 3)
    return root, pts, contact


def camera(kind: str, root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World -> camera rotations (T, 3, 3) and camera centres (T, 3): 'still', 'pan' (tripod following
    the root) or 'travel' (a camera moving alongside, turning slightly)."""
    n = len(root)
    eye0 = np.array([1.5, 1.6, -5.0])
    eyes = np.tile(eye0, (n, 1))
    if kind == "travel":
        eyes[:, 0] += root[:, 0] - root[0, 0]
    target = root.copy() if kind != "still" else np.tile([1.5, 1.0, 0.0], (n, 1))
    target[:, 1] = 1.0
    r = np.stack([look_at(e, g) for e, g in zip(eyes, target)])
    if kind == "travel":   # a slow deliberate turn so the camera is not still
        r = Rotation.from_euler("y", np.linspace(0, 10, n)[:, None], degrees=True).as_matrix() @ r
    return r, eyes


def observe(root, pts, rcw, eyes):
    """Camera-space root (T, 3), rest model -> camera orientation (T, 3, 3), feet (T, 6, 3), and the
    camera rotations C_t (first camera -> camera t)."""
    root_c = np.einsum("tij,tj->ti", rcw, root - eyes)
    feet_c = np.einsum("tij,tkj->tki", rcw, pts - eyes[:, None])
    orient = rcw @ MODEL_TO_WORLD
    c = rcw @ rcw[0].T
    return root_c, orient, feet_c, c
