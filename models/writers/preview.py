"""Mesh overlays without OpenGL: weak-perspective projection and a painter's-algorithm rasteriser.

The preview draws each body's triangles back to front with OpenCV polygon fills, flat-shaded by how
much each face turns towards the camera, blended over the video frame, plus the 2D SMPL skeleton.
That is enough to judge fit and identity at a glance; it is not a renderer (no z-buffer, so
interpenetrating parts may overlap wrongly by a triangle).
"""
from __future__ import annotations

import cv2
import numpy as np

from .animation import SMPL_PARENTS


def project_weak_perspective(vertices: np.ndarray, cam_orig: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel coordinates (V, 2) of camera-axes vertices (V, 3) (SMPL output without `transl`).

    cam_orig = [sx, sy, tx, ty] as VIBE's convert_crop_cam_to_orig_img gives them: image-normalised
    weak perspective, x_px = W/2 (1 + sx (x + tx)), y_px = H/2 (1 + sy (y + ty)) (y down).
    """
    sx, sy, tx, ty = (float(c) for c in cam_orig)
    u = width / 2.0 * (1.0 + sx * (vertices[:, 0] + tx))
    v = height / 2.0 * (1.0 + sy * (vertices[:, 1] + ty))
    return np.stack([u, v], 1)


def draw_mesh(image: np.ndarray, pix: np.ndarray, verts_cam: np.ndarray, faces: np.ndarray,
              color: tuple[int, int, int], alpha: float = 0.6) -> np.ndarray:
    """Blend one mesh over a BGR image. pix (V, 2) pixels, verts_cam (V, 3) camera axes (z = depth),
    faces (F, 3). Faces are filled far to near, shaded by |cos| of their normal to the view axis
    (no culling, so the result does not depend on the model's winding order).
    """
    tri3 = verts_cam[faces]                                            # (F, 3, 3)
    n = np.cross(tri3[:, 1] - tri3[:, 0], tri3[:, 2] - tri3[:, 0])
    shade = 0.35 + 0.65 * np.abs(n[:, 2]) / np.maximum(np.linalg.norm(n, axis=1), 1e-12)
    order = np.argsort(-tri3[:, :, 2].mean(1), kind="stable")
    fixed = (pix[faces] * 4).round().astype(np.int32)                  # 2 fractional bits
    layer = image.copy()
    mask = np.zeros(image.shape[:2], np.uint8)
    for f in order:
        cv2.fillConvexPoly(layer, fixed[f], tuple(int(ch * shade[f]) for ch in color), shift=2)
        cv2.fillConvexPoly(mask, fixed[f], 255, shift=2)
    out = image.copy()
    m = mask > 0
    out[m] = (alpha * layer[m] + (1 - alpha) * image[m]).astype(np.uint8)
    return out


def draw_skeleton(image: np.ndarray, joints_px: np.ndarray, color: tuple[int, int, int], label: str = "") -> np.ndarray:
    """Draw the 24-joint SMPL skeleton (24, 2) pixels and an optional label at the head."""
    out = image.copy()
    pts = np.round(joints_px).astype(int)
    for k, p in enumerate(SMPL_PARENTS):
        if p >= 0:
            cv2.line(out, tuple(pts[k]), tuple(pts[p]), color, 1, cv2.LINE_AA)
    for q in pts:
        cv2.circle(out, tuple(q), 2, color, -1, cv2.LINE_AA)
    if label:
        top = pts[np.argmin(pts[:, 1])]
        cv2.putText(out, label, (int(top[0]) - 10, max(int(top[1]) - 6, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1, cv2.LINE_AA)
    return out


def track_color(track_id: int) -> tuple[int, int, int]:
    """A distinct BGR colour per track id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618034 % 1.0) * 179)
    hsv = np.uint8([[[hue, 170, 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])
