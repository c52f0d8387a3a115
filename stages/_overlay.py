"""Overlay frame drawers: every track's mesh and skeleton over a video frame (Anny fit; SMPL mesh).

For the whole-clip video (stages._report_media) speed matters more than shading: the mesh is drawn
as a translucent silhouette (all faces filled in one OpenCV call, outlined) under the skeleton of the
fit's 3D keypoints, both projected with the fit's pinhole camera (focal `focal_px`, principal point
at the image centre). The three still previews keep the shaded painter's rendering.
"""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from video2mesh.models.writers import preview
from video2mesh.models.writers.animation import SMPL_PARENTS

COCO_EDGES = ((0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (6, 12),
              (11, 12), (11, 13), (13, 15), (12, 14), (14, 16))


def project_pinhole(v_cam: np.ndarray, focal_px: float, width: int, height: int) -> np.ndarray:
    """Pixels (V, 2) of camera-axes points (V, 3) (x right, y down, z forward) with the fit's camera."""
    z = np.maximum(v_cam[:, 2], 1e-6)
    return np.stack([focal_px * v_cam[:, 0] / z + width / 2.0, focal_px * v_cam[:, 1] / z + height / 2.0], 1)


def draw_silhouette(img: np.ndarray, pix: np.ndarray, faces: np.ndarray, color, alpha: float = 0.45) -> None:
    """Blend the filled silhouette of a mesh (pix (V, 2), faces (F, 3)) over `img` in place, outlined."""
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(mask, list((pix[faces] * 4).round().astype(np.int32)), 255, shift=2)
    m = mask > 0
    img[m] = (alpha * np.asarray(color, np.float64) + (1 - alpha) * img[m]).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(img, contours, -1, color, max(1, img.shape[1] // 500), cv2.LINE_AA)


def draw_skeleton(img: np.ndarray, pts: np.ndarray, edges, color) -> None:
    """Bones and joints of `pts` (J, 2) pixels over `img` in place (dark halo for contrast)."""
    th = max(2, img.shape[1] // 300)
    p = np.round(pts).astype(int)
    for a, b in edges:
        cv2.line(img, tuple(p[a]), tuple(p[b]), (0, 0, 0), th + 2, cv2.LINE_AA)
        cv2.line(img, tuple(p[a]), tuple(p[b]), color, th, cv2.LINE_AA)
    for q in p:
        cv2.circle(img, tuple(q), th + 1, color, -1, cv2.LINE_AA)


def to_camera(v: np.ndarray, cam_r: np.ndarray, cam_t: np.ndarray) -> np.ndarray:
    """(V, 3) points in the `world` artifact's camera-convention output axes -> the frame's camera axes
    (x right, y down, z forward): x_cv = F (cam_R (F x) + cam_t), F = diag(1, -1, -1)."""
    f = np.array([1.0, -1.0, -1.0])
    return ((v * f) @ np.asarray(cam_r, np.float64).reshape(3, 3).T + np.asarray(cam_t, np.float64)) * f


def fit_drawer(body, fit: pd.DataFrame):
    """draw(frame, bgr) -> [(track_id, box)] over `fit` rows (see stages._report_media); `body` the
    loaded AnnyBody the fit used."""
    import torch

    from video2mesh.models.body.anny_body import pose_rig

    faces = np.asarray(body.faces)
    by_frame = {int(f): g for f, g in fit.groupby("frame")}
    skeletons: dict[int, object] = {}

    def draw(f: int, img: np.ndarray):
        out = []
        for r in by_frame.get(f, fit.iloc[:0]).itertuples():
            tid = int(r.track_id)
            if tid not in skeletons:
                with torch.no_grad():
                    skeletons[tid] = body.skeleton(torch.as_tensor(np.asarray(r.phenotype, np.float64)[None], dtype=body.dtype))
            v = pose_rig(body, skeletons[tid], np.asarray(r.bone_rotations, np.float64).reshape(1, -1, 3),
                         np.asarray(r.global_orient, np.float64)[None], np.asarray(r.transl, np.float64)[None])["vertices"][0]
            kp = np.asarray(r.keypoints3d, np.float64).reshape(17, 3)
            if hasattr(r, "cam_R"):        # `world` rows: back into this frame's camera to draw over the video
                v, kp = to_camera(v, r.cam_R, r.cam_t), to_camera(kp, r.cam_R, r.cam_t)
            h, w = img.shape[:2]
            pix = project_pinhole(v, float(r.focal_px), w, h)
            color = preview.track_color(tid)
            draw_silhouette(img, pix, faces, color)
            kp = project_pinhole(kp, float(r.focal_px), w, h)
            draw_skeleton(img, kp, COCO_EDGES, color)
            lo, hi = pix.min(0), pix.max(0)
            out.append((tid, (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))))
        return out

    return draw


SMPL_EDGES = tuple((k, p) for k, p in enumerate(SMPL_PARENTS) if p >= 0)


def smpl_drawer(mesh: pd.DataFrame, faces: np.ndarray, vertices_of):
    """draw(frame, bgr) -> [(track_id, box)] over `mesh` rows: SMPL silhouette (`vertices_of(row)` ->
    (V, 3) camera axes without translation, weak perspective `cam_orig`) and the skeleton `joints2d`."""
    by_frame = {int(f): g for f, g in mesh.groupby("frame")}
    faces = np.asarray(faces)

    def draw(f: int, img: np.ndarray):
        out = []
        for r in by_frame.get(f, mesh.iloc[:0]).itertuples():
            tid = int(r.track_id)
            v = vertices_of(r)
            pix = preview.project_weak_perspective(v, np.asarray(r.cam_orig), img.shape[1], img.shape[0])
            color = preview.track_color(tid)
            draw_silhouette(img, pix, faces, color)
            draw_skeleton(img, np.asarray(r.joints2d, np.float64).reshape(24, 2), SMPL_EDGES, color)
            lo, hi = pix.min(0), pix.max(0)
            out.append((tid, (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))))
        return out

    return draw
