"""Ground truth of one rendered clip (GT_FORMAT.md): joints in world, camera and pixels, visibility, boxes,
foot contacts, the floor, and gt.npz reading/writing.

Foot contact (per foot, per frame): any of its three foot points (big toe, small toe, heel) is lower than
CONTACT_HEIGHT_M above the floor and moves slower than CONTACT_SPEED_MS (central differences), the usual
height + velocity rule of foot-skate metrics. The foot points are skin vertices on the sole, ~1.5 cm above
the lowest vertex at rest, hence a 3 cm height band.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from video2mesh.models.body.anny_keypoints import JOINT_NAMES_23

from .cameras import project

CONTACT_HEIGHT_M = 0.03
CONTACT_SPEED_MS = 0.2
FLOOR = np.array([0.0, 1.0, 0.0, 0.0])
TORSO = [5, 6, 11, 12]               # COCO shoulders and hips: "present" needs one of them visible
LEFT_FOOT, RIGHT_FOOT = [17, 18, 19], [20, 21, 22]


def foot_contact(joints_world: np.ndarray, fps: float) -> np.ndarray:
    """(P, T, 2) bool left/right contact from joints_world (P, T, 23, 3) (floor y = 0)."""
    vel = np.gradient(joints_world, axis=1) * fps if joints_world.shape[1] > 1 else np.zeros_like(joints_world)
    speed = np.linalg.norm(vel, axis=-1)                                        # (P, T, 23)
    low = joints_world[..., 1] < CONTACT_HEIGHT_M
    still = speed < CONTACT_SPEED_MS
    on = low & still
    return np.stack([on[..., LEFT_FOOT].any(-1), on[..., RIGHT_FOOT].any(-1)], -1)


def visibility(cam: np.ndarray, uv: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(..., N) bool: in front of the camera and inside the image (pixel centres at integers)."""
    w, h = size
    return (cam[..., 2] > 1e-3) & (uv[..., 0] >= -0.5) & (uv[..., 0] <= w - 0.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] <= h - 0.5)


def mesh_boxes(verts: np.ndarray, k, r_wc, t_wc, size: tuple[int, int]) -> np.ndarray:
    """(P, T, 4) x0, y0, x1, y1 of the projected mesh (P, T, V, 3), its part in front of the camera, clipped
    to the image; zeros where nothing is in view."""
    w, h = size
    cam, uv = project(verts, k, r_wc, t_wc)
    front = cam[..., 2:3] > 1e-3                                                # (P, T, V, 1)
    lo = np.where(front, uv, np.inf).min(2)                                     # (P, T, 2)
    hi = np.where(front, uv, -np.inf).max(2)
    lo, hi = np.clip(lo, -0.5, [w - 0.5, h - 0.5]), np.clip(hi, -0.5, [w - 0.5, h - 0.5])
    box = np.concatenate([lo, hi], -1)
    empty = ~((hi > lo).all(-1))
    box[empty] = 0.0
    return box.astype(np.float32)


def ground_truth(joints_world: np.ndarray, verts: np.ndarray, k: np.ndarray, r_wc: np.ndarray, t_wc: np.ndarray,
                 size: tuple[int, int], fps: float, meta: dict, verts_stride: int = 10) -> dict[str, np.ndarray]:
    """gt.npz contents from joints_world (P, T, 23, 3) and vertices (P, T, V, 3), world metres."""
    cam, uv = project(joints_world, k, r_wc, t_wc)
    vis = visibility(cam, uv, size)
    gt = {
        "fps": np.float64(fps), "width": np.int64(size[0]), "height": np.int64(size[1]),
        "K": k.astype(np.float64), "R_wc": r_wc.astype(np.float64), "t_wc": t_wc.astype(np.float64),
        "joint_names": np.array(JOINT_NAMES_23),
        "joints_world": joints_world.astype(np.float32), "joints_cam": cam.astype(np.float32),
        "joints_2d": uv.astype(np.float32), "visible": vis, "present": vis[..., TORSO].any(-1),
        "bbox": mesh_boxes(verts, k, r_wc, t_wc, size), "contact": foot_contact(joints_world, fps),
        "floor": FLOOR.copy(), "meta": np.array(json.dumps(meta, sort_keys=True)),
    }
    if verts_stride:
        gt["verts_world"] = verts[:, ::verts_stride].astype(np.float16)
        gt["verts_stride"] = np.int64(verts_stride)
    return gt


def write_gt(path: Path, gt: dict[str, np.ndarray]) -> None:
    np.savez_compressed(path, **gt)


def read_gt(path: Path) -> dict:
    """gt.npz as a dict of arrays, meta decoded from JSON."""
    with np.load(path) as z:
        out = {k: z[k] for k in z.files}
    out["meta"] = json.loads(str(out["meta"]))
    return out
