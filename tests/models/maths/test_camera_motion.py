"""Camera rotation from homographies: closed form K R K^-1, and DIS flow on a synthetically panned image."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from video2mesh.models.maths.camera_motion import (background_grid, chain_rotations, fill_rotations, intrinsics,
                                                   nearest_rotation, rotation_from_homography)
from video2mesh.models.nets.flow import DISFlow, resize_rgb
from video2mesh.stages.camera_motion import CameraMotionConfig, pair_homography

W, H = 640, 360
K = intrinsics(float(max(W, H)), W, H)


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.linalg.norm(Rotation.from_matrix(a.T @ b).as_rotvec())))


@pytest.mark.parametrize("euler", [(0.0, 0.0, 0.0), (1.5, -0.7, 0.3), (-4.0, 10.0, 2.0)])
def test_rotation_from_exact_homography(euler):
    r = Rotation.from_euler("xyz", euler, degrees=True).as_matrix()
    h = K @ r @ np.linalg.inv(K)
    h = h / h[0, 0] * 3.7                                  # any scale
    got, err = rotation_from_homography(h, K)
    assert angle_deg(got, r) < 0.01
    assert err < 1e-9


def test_zoom_is_reported_as_not_a_rotation():
    h = K @ np.diag([1.02, 1.02, 1.0]) @ np.linalg.inv(K)  # 2% zoom
    _, err = rotation_from_homography(h, K)
    s = 1.02 ** (2 / 3)                                    # cube root of the determinant
    assert err == pytest.approx(np.sqrt(2 * (1.02 / s - 1) ** 2 + (1 / s - 1) ** 2), rel=1e-6)
    assert err > 0.015


def test_nearest_rotation_is_orthonormal_and_keeps_rotations():
    r = Rotation.random(5, random_state=0).as_matrix()
    np.testing.assert_allclose(nearest_rotation(r), r, atol=1e-12)
    noisy = nearest_rotation(r + 0.01 * np.random.default_rng(0).standard_normal(r.shape))
    np.testing.assert_allclose(noisy @ np.swapaxes(noisy, 1, 2), np.tile(np.eye(3), (5, 1, 1)), atol=1e-12)
    assert np.allclose(np.linalg.det(noisy), 1.0)


def texture(seed: int = 0) -> np.ndarray:
    """A textured BGR image (blurred noise at several scales: DIS needs texture everywhere)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((H, W), np.float32)
    for s in (3, 9, 27):
        img += cv2.GaussianBlur(rng.random((H, W)).astype(np.float32), (0, 0), s) * s
    img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


def test_rotation_from_dis_flow_of_a_panned_texture_with_a_moving_person():
    r = Rotation.from_euler("xyz", (0.4, -1.2, 0.2), degrees=True).as_matrix()  # a pan with a little tilt and roll
    h = K @ r @ np.linalg.inv(K)
    a = texture(0)
    b = cv2.warpPerspective(a, h, (W, H), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    box = np.array([[260.0, 80.0, 360.0, 330.0]])           # a "person" moving against the background
    b[90:330, 280:350] = texture(1)[:240, :70]
    cfg = CameraMotionConfig(work_long_side=640)
    size = (W, H)
    flow = DISFlow("medium")(resize_rgb(a, size)[None], resize_rgb(b, size)[None])[0]
    h_est, ok, n, med = pair_homography(flow, (W, H), box, cfg)
    assert ok and n >= cfg.min_points and med < 0.5
    got, err = rotation_from_homography(h_est, K)
    assert angle_deg(got, r) < 0.05, angle_deg(got, r)
    assert err < 0.01


def test_background_grid_masks_grown_boxes():
    pts, keep = background_grid(100, 100, np.array([[40.0, 40.0, 60.0, 60.0]]), 10, 0.5)
    inside = (pts[:, 0] >= 30) & (pts[:, 0] <= 70) & (pts[:, 1] >= 30) & (pts[:, 1] <= 70)
    np.testing.assert_array_equal(keep, ~inside)


def test_chain_fills_dropouts_with_the_neighbours_turn():
    step = Rotation.from_euler("y", 0.5, degrees=True).as_matrix()
    r = np.tile(step, (10, 1, 1))
    valid = np.ones(10, bool)
    valid[[4, 5]] = False
    broken = r.copy()
    broken[[4, 5]] = np.eye(3) * 7                           # garbage where invalid
    c = chain_rotations(fill_rotations(broken, valid))
    assert angle_deg(c[-1], np.linalg.matrix_power(step, 9)) < 1e-6
    assert np.allclose(fill_rotations(broken, np.zeros(10, bool)), np.eye(3))
