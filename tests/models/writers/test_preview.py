"""Preview projection against the crop-camera reading it inverts; rasteriser order and coverage."""
from __future__ import annotations

import numpy as np

from video2mesh.models.writers import preview


def vibe_crop_to_orig(cam, bbox, w, h):
    """VIBE's convert_crop_cam_to_orig_img written from its formula (cam [s, tx, ty], bbox [cx, cy, side])."""
    s, tx, ty = cam
    cx, cy, side = bbox
    sx, sy = s * side / w, s * side / h
    return [sx, sy, (cx - w / 2) / (w / 2) / sx + tx, (cy - h / 2) / (h / 2) / sy + ty]


def test_projection_equals_crop_camera_mapped_to_the_image():
    rng = np.random.default_rng(0)
    w, h = 640, 360
    cam, bbox = [0.9, 0.05, -0.1], [400.0, 150.0, 220.0]
    v = rng.normal(0, 0.4, (50, 3))
    got = preview.project_weak_perspective(v, vibe_crop_to_orig(cam, bbox, w, h), w, h)
    # crop convention: normalised crop coordinates s (x + t) span [-1, 1] over the square box
    want = np.stack([bbox[0] + cam[0] * (v[:, 0] + cam[1]) * bbox[2] / 2,
                     bbox[1] + cam[0] * (v[:, 1] + cam[2]) * bbox[2] / 2], 1)
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_draw_mesh_fills_triangles_far_to_near():
    img = np.zeros((50, 50, 3), np.uint8)
    pix = np.array([[5, 5], [45, 5], [5, 45], [10, 10], [40, 10], [10, 40]], float)
    z = np.array([5, 9, 5, 1, 1, 1], float)                       # far triangle tilted (darker), near one flat
    verts = np.concatenate([pix / 10, z[:, None]], 1)
    faces = np.array([[3, 4, 5], [0, 1, 2]])                       # near one listed first on purpose
    out = preview.draw_mesh(img, pix, verts, faces, (0, 0, 200), alpha=1.0)
    assert 70 < out[7, 7, 2] < 200                                 # far only: shaded by its tilt
    assert out[15, 15, 2] == 200                                   # overlap: the near, flat face wins
    assert (out[48, 48] == 0).all()                                # outside both: untouched
    out2 = preview.draw_mesh(img, pix, verts, faces, (0, 0, 200), alpha=0.5)
    assert out2[15, 15, 2] == 100
