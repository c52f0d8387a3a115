"""Cameras and ground truth of the accuracy benchmark: projections against OpenCV, camera kinds, contacts."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from video2mesh.benchmarks.accuracy import cameras as C
from video2mesh.benchmarks.accuracy import groundtruth as G

SIZE = (640, 360)


def walk(t=120, length=8.0):
    """(1, T, 3) pelvis path: a straight walk along +Z at pelvis height 0.95 m, with a little sway."""
    z = np.linspace(-length / 2, length / 2, t)
    return np.stack([0.03 * np.sin(z * 3), np.full(t, 0.95), z], -1)[None]


def _cv_project(points, k, r, t):
    rvec, _ = cv2.Rodrigues(r)
    uv, _ = cv2.projectPoints(points.reshape(-1, 1, 3).astype(np.float64), rvec, t.astype(np.float64), k, None)
    return uv.reshape(-1, 2)


@pytest.mark.parametrize("kind", C.KINDS)
def test_projection_equals_opencv_for_every_kind(kind):
    k, r, t = C.camera_path(C.CameraSpec(kind), walk(), SIZE)
    pts = np.random.default_rng(0).uniform([-1, 0, -4], [1, 2, 4], (1, len(r), 5, 3))
    _, uv = C.project(pts, k, r, t)
    for f in (0, len(r) // 2, len(r) - 1):
        np.testing.assert_allclose(uv[0, f], _cv_project(pts[0, f], k, r[f], t[f]), atol=1e-6)
    assert np.allclose(r @ r.transpose(0, 2, 1), np.eye(3), atol=1e-9) and np.allclose(np.linalg.det(r), 1)


def test_intrinsics_field_of_view_and_centre():
    k = C.intrinsics(SIZE, 60.0)
    # a point at the left image edge (pixel -0.5) is 30 degrees off the axis
    assert np.isclose(np.degrees(np.arctan((k[0, 2] + 0.5) / k[0, 0])), 30.0)
    assert (k[0, 2], k[1, 2]) == (319.5, 179.5)


def test_look_at_puts_the_target_on_the_principal_point_upright():
    k = C.intrinsics(SIZE, 50.0)
    r, t = C.look_at(np.array([3.0, 1.7, 4.0]), np.array([0.0, 1.0, 0.0]))
    _, uv = C.project(np.array([[[[0.0, 1.0, 0.0], [0.0, 2.0, 0.0]]]]), k, r[None], t[None])
    np.testing.assert_allclose(uv[0, 0, 0], k[:2, 2], atol=1e-9)
    assert uv[0, 0, 1, 1] < uv[0, 0, 0, 1] and abs(uv[0, 0, 1, 0] - k[0, 2]) < 1e-6   # up is up, no roll


def test_static_camera_is_constant_and_sees_the_walk_from_the_side():
    k, r, t = C.camera_path(C.CameraSpec("static", distance_m=5.0, azimuth_deg=0.0), walk(), SIZE)
    assert np.ptp(r, axis=0).max() == 0 and np.ptp(t, axis=0).max() == 0
    _, uv = C.project(walk()[:, :, None], k, r, t)
    assert np.ptp(uv[0, :, 0, 0]) > 200          # the person crosses the image
    assert (np.abs(uv[0, :, 0, 0] - k[0, 2]) < 0.45 * SIZE[0]).all()   # ... and stays in it


def test_pan_keeps_the_person_near_the_image_centre():
    path = walk()
    k, r, t = C.camera_path(C.CameraSpec("pan", distance_m=4.0, aim_height_m=0.95), path, SIZE)
    centre = -np.einsum("tji,tj->ti", r, t)
    assert np.ptp(centre, axis=0).max() < 1e-9                          # rotation only
    _, uv = C.project(path[:, :, None], k, r, t)
    off = np.abs(uv[0, :, 0] - k[:2, 2])
    assert off[:, 0].max() < 0.05 * SIZE[0] and off[:, 1].max() < 0.05 * SIZE[1]


def test_dolly_keeps_its_orientation_and_its_distance():
    path = walk()
    k, r, t = C.camera_path(C.CameraSpec("dolly", distance_m=6.0), path, SIZE)
    assert np.ptp(r, axis=0).max() < 1e-12
    centre = -np.einsum("tji,tj->ti", r, t)
    d = np.linalg.norm((centre - path[0])[:, [0, 2]], axis=-1)
    assert np.ptp(centre[:, 2]) > 7.0 and np.abs(d - 6.0).max() < 0.1


def test_handheld_is_the_static_camera_plus_a_small_smooth_shake():
    spec = dict(height_m=1.6, distance_m=3.5)
    _, r0, t0 = C.camera_path(C.CameraSpec("static", **spec), walk(), SIZE)
    _, r, t = C.camera_path(C.CameraSpec("handheld", **spec), walk(), SIZE, clip_seed=3)
    ang = np.degrees(np.arccos(np.clip((np.trace(r @ r0.transpose(0, 2, 1), axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert 0.3 < ang.std() and ang.max() < 5.0
    step = np.degrees(np.arccos(np.clip((np.trace(r[1:] @ r[:-1].transpose(0, 2, 1), axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert step.max() < 0.5                                             # smooth: < 0.5 degree per frame
    c0, c = -np.einsum("tji,tj->ti", r0, t0), -np.einsum("tji,tj->ti", r, t)
    assert 0.005 < np.linalg.norm(c - c0, axis=-1).mean() < 0.08
    _, r2, _ = C.camera_path(C.CameraSpec("handheld", **spec), walk(), SIZE, clip_seed=3)
    assert np.array_equal(r, r2)                                        # seeded


def test_ground_truth_2d_is_the_opencv_projection_of_the_world_joints():
    path = walk(30)
    k, r, t = C.camera_path(C.CameraSpec("pan"), path, SIZE)
    rng = np.random.default_rng(1)
    joints = path[:, :, None] + rng.uniform(-0.3, 0.3, (1, 30, 23, 3))
    joints[..., 17:, 1] = 0.0
    verts = path[:, :, None] + rng.uniform(-0.4, 0.4, (1, 30, 200, 3))
    gt = G.ground_truth(joints, verts, k, r, t, SIZE, 30.0, {"x": 1}, verts_stride=5)
    for f in (0, 29):
        np.testing.assert_allclose(gt["joints_2d"][0, f], _cv_project(joints[0, f], k, r[f], t[f]), atol=1e-3)
        uv = _cv_project(verts[0, f], k, r[f], t[f])
        np.testing.assert_allclose(gt["bbox"][0, f], np.r_[uv.min(0), uv.max(0)], atol=1e-3)
    assert gt["joints_world"].dtype == np.float32 and gt["verts_world"].shape == (1, 6, 200, 3)
    assert gt["visible"].all() and gt["present"].all() and list(gt["floor"]) == [0, 1, 0, 0]


def test_visibility_and_box_outside_the_image_or_behind_the_camera():
    k = C.intrinsics(SIZE, 60.0)
    r, t = np.eye(3)[None], np.zeros((1, 3))
    pts = np.array([[[[0, 0, 2.0], [0, 0, -2.0], [10, 0, 2.0], [-0.5, -0.3, 2]]]])
    cam, uv = C.project(pts, k, r, t)
    assert G.visibility(cam, uv, SIZE)[0, 0].tolist() == [True, False, False, True]
    box = G.mesh_boxes(pts, k, r, t, SIZE)[0, 0]
    assert box[2] == SIZE[0] - 0.5 and box[0] < k[0, 2]                # clipped at the right edge
    assert (G.mesh_boxes(pts[..., :2, :] * [1, 1, -1], k, r, t, SIZE) == 0).all()   # all behind: empty


def test_contact_labels_on_a_synthetic_step():
    """Left foot planted for 10 frames, then lifted and swung at 1 m/s; right foot planted but sliding
    at 0.5 m/s (too fast: no contact), then still but 5 cm up (too high: no contact)."""
    t, fps = 20, 30.0
    j = np.zeros((1, t, 23, 3))
    j[0, :, 17:20, 1] = 0.01
    j[0, 10:, 17:20, 1] = 0.1
    j[0, 10:, 17:20, 2] = (np.arange(10) / fps)[:, None]
    j[0, :10, 20:23, 2] = (np.arange(10) * 0.5 / fps)[:, None]
    j[0, :10, 20:23, 1] = 0.01
    j[0, 10:, 20:23] = [0.0, 0.05, 0.5]
    c = G.foot_contact(j, fps)
    assert c[0, :9, 0].all() and not c[0, 10:, 0].any()                 # frame 9's central difference sees the lift
    assert not c[0, :10, 1].any() and not c[0, 11:, 1].any()
