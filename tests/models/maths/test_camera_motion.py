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


def test_rotation_from_lk_tracks_of_a_panned_texture_with_a_moving_person():
    """The default tracker on the same scene, at half resolution (work size 320 x 180: coordinates map
    back per axis), with a person moving against the background (closed form: H = K R K^-1); no motion
    reads as the identity."""
    from video2mesh.stages.camera_motion import pair_homography_lk

    r = Rotation.from_euler("xyz", (0.4, -1.2, 0.2), degrees=True).as_matrix()
    h = K @ r @ np.linalg.inv(K)
    a = texture(0)
    b = cv2.warpPerspective(a, h, (W, H), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    box = np.array([[260.0, 80.0, 360.0, 330.0]])
    b[90:330, 280:350] = texture(1)[:240, :70]
    for size in ((W, H), (W // 2, H // 2)):
        cfg = CameraMotionConfig(work_long_side=max(size))
        grey = [cv2.cvtColor(resize_rgb(x, size), cv2.COLOR_RGB2GRAY) for x in (a, b)]
        h_est, ok, n, med = pair_homography_lk(grey[0], grey[1], (W, H), box, cfg)
        assert ok and n >= cfg.min_points and med < 0.5, (size, ok, n, med)
        got, err = rotation_from_homography(h_est, K)
        assert angle_deg(got, r) < 0.05, (size, angle_deg(got, r))
        assert err < 0.01
    still = pair_homography_lk(grey[0], grey[0], (W, H), box, cfg)[0]
    np.testing.assert_allclose(still / still[2, 2], np.eye(3), atol=1e-6)     # no motion reads as none


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


def test_floor_homography_of_a_travelling_camera_gives_its_rotation():
    """A camera 1.6 m above the floor moving 5 cm and turning 2 deg between frames: the floor's
    homography K (R + t n^T / d) K^-1 is no rotation (the nearest one is degrees off); read with the
    floor's normal it gives R exactly. With t = 0 any plane's normal gives R."""
    from video2mesh.models.maths.camera_motion import rotation_from_plane_homography, rotation_from_homography

    k = intrinsics(500.0, 640, 360)
    tilt = Rotation.from_euler("x", -20.0, degrees=True).as_matrix()        # looking 20 deg down
    n = tilt @ np.array([0.0, -1.0, 0.0])                                   # floor normal (up) in the camera
    d = 1.6
    r = Rotation.from_euler("yx", [2.0, 0.5], degrees=True).as_matrix()
    t = np.array([0.05, 0.0, 0.02])
    h = 3.0 * k @ (r + np.outer(t, -n) / d) @ np.linalg.inv(k)              # plane -n . x = d (floor below)
    assert np.degrees(Rotation.from_matrix(rotation_from_homography(h, k)[0] @ r.T).magnitude()) > 0.5
    np.testing.assert_allclose(rotation_from_plane_homography(h, k, n), r, atol=1e-9)
    np.testing.assert_allclose(rotation_from_plane_homography(k @ r @ np.linalg.inv(k), k, [0.3, 0.2, 0.9]), r, atol=1e-9)


def test_chained_floor_rotations_of_a_dolly_stay_still():
    """A camera translating along the floor without turning: chained floor-aware rotations stay the
    identity (the nearest-rotation chain turns)."""
    from video2mesh.models.maths.camera_motion import chain_plane_rotations, rotation_from_homography

    k = intrinsics(500.0, 640, 360)
    tilt = Rotation.from_euler("x", -30.0, degrees=True).as_matrix()
    n_ref = tilt @ np.array([0.0, -1.0, 0.0])
    t = tilt @ np.array([0.04, 0.0, 0.0])
    h = np.tile(k @ (np.eye(3) + np.outer(t, -n_ref) / 2.5) @ np.linalg.inv(k), (40, 1, 1))
    ok = np.ones(40, bool)
    r, _ = rotation_from_homography(h, k)
    c = chain_plane_rotations(h, ok, k, n_ref, r)
    np.testing.assert_allclose(c, np.tile(np.eye(3), (40, 1, 1)), atol=1e-9)
    assert np.degrees(Rotation.from_matrix(chain_rotations(r)[-1]).magnitude()) > 5.0


def _turning_camera(k: np.ndarray, n: int = 90, seed: int = 0) -> np.ndarray:
    """(n, 3, 3) frame-to-frame homographies K R_t K^-1 of a camera panning ~0.5 deg/frame with some
    tilt and roll wobble (any scale per frame), h[0] = identity."""
    rng = np.random.default_rng(seed)
    h = np.tile(np.eye(3), (n, 1, 1))
    for t in range(1, n):
        r = Rotation.from_euler("yxz", [0.5 + 0.1 * rng.standard_normal(), 0.2 * rng.standard_normal(),
                                        0.1 * rng.standard_normal()], degrees=True).as_matrix()
        h[t] = rng.uniform(0.5, 2.0) * k @ r @ np.linalg.inv(k)
    return h


@pytest.mark.parametrize("fov_deg", [40.0, 60.0, 90.0])
def test_focal_of_a_turning_camera_is_its_true_focal_length(fov_deg):
    """H = K R K^-1 holds only at the true K: the pan's homographies give the focal length they were
    made with (the render's 0.5 W / tan(fov / 2)), not the 640 px guess, within the grid's 1 % step."""
    from video2mesh.models.maths.camera_motion import focal_from_rotation

    f_true = 0.5 * W / np.tan(np.radians(fov_deg) / 2)
    h = _turning_camera(intrinsics(f_true, W, H))
    f, table = focal_from_rotation(h, np.ones(len(h), bool), W, H)
    assert f is not None and abs(f / f_true - 1) < 0.011
    assert table[:, 1].min() < 0.005                       # the grid point next to f_true: nearly a rotation


def test_focal_is_not_claimed_without_evidence():
    """A still camera (no turn: every f explains it) and a dolly along the floor (parallax: no f makes
    it a rotation) leave the focal length undetermined; so do invalid steps."""
    from video2mesh.models.maths.camera_motion import focal_from_rotation

    k = intrinsics(554.0, W, H)
    ok = np.ones(60, bool)
    assert focal_from_rotation(np.tile(np.eye(3), (60, 1, 1)), ok, W, H)[0] is None
    tilt = Rotation.from_euler("x", -20.0, degrees=True).as_matrix()
    n = tilt @ np.array([0.0, -1.0, 0.0])
    dolly = k @ (np.eye(3) + np.outer(tilt @ np.array([0.0, 0.0, 0.04]), -n) / 1.6) @ np.linalg.inv(k)
    assert focal_from_rotation(np.tile(dolly, (60, 1, 1)), ok, W, H)[0] is None
    assert focal_from_rotation(_turning_camera(k, 60), np.zeros(60, bool), W, H)[0] is None


def test_floor_homography_gives_a_travelling_cameras_metric_translation():
    """X_t = R X_{t-1} + t over the floor n . X = d (n pointing down from the camera, d its height):
    K (R + t n^T / d) K^-1 at any scale gives back t in metres; a pure rotation gives t = 0."""
    from video2mesh.models.maths.camera_motion import translation_from_plane_homography

    k = intrinsics(554.0, 640, 360)
    tilt = Rotation.from_euler("x", -25.0, degrees=True).as_matrix()
    down = tilt @ np.array([0.0, 1.0, 0.0])                                 # OpenCV y points down
    d = 2.5
    r = Rotation.from_euler("yxz", [1.5, -0.4, 0.2], degrees=True).as_matrix()
    t = np.array([0.03, -0.01, 0.04])
    h = -2.0 * k @ (r + np.outer(t, down) / d) @ np.linalg.inv(k)           # any scale, even negative
    np.testing.assert_allclose(translation_from_plane_homography(h, k, r, down, d), t, atol=1e-12)
    np.testing.assert_allclose(translation_from_plane_homography(k @ r @ np.linalg.inv(k), k, r, down, d), 0.0,
                               atol=1e-12)


def test_chained_floor_centres_follow_a_turning_dolly():
    """A camera 2.5 m above the floor, looking 30 deg down, driving a curve (3 cm/frame, turning 0.4
    deg/frame about the vertical): the centres chained from its exact floor homographies are its true
    centres in the first camera's axes; an invalid step counts as no travel."""
    from video2mesh.models.maths.camera_motion import chain_plane_centres

    k = intrinsics(554.0, 640, 360)
    tilt = Rotation.from_euler("x", -30.0, degrees=True).as_matrix()       # world (y down) -> camera 0
    n_world = np.array([0.0, 1.0, 0.0])                                     # down, the floor at y = 2.5
    n, steps = 60, np.array([0.0, 0.0, 0.03])
    rot = [tilt]                                                            # world -> camera t
    pos = [np.zeros(3)]                                                     # camera centres, world
    yaw = Rotation.from_euler("y", 0.4, degrees=True).as_matrix()
    for t in range(1, n):
        rot.append(rot[-1] @ yaw.T)
        pos.append(pos[-1] + np.linalg.matrix_power(yaw, t) @ steps)      # forward along the heading, level
    h = np.tile(np.eye(3), (n, 1, 1))
    for t in range(1, n):
        r = rot[t] @ rot[t - 1].T
        tr = -rot[t] @ (pos[t] - pos[t - 1])                                # X_t = r X_{t-1} + tr
        nd = rot[t - 1] @ n_world
        h[t] = k @ (r + np.outer(tr, nd) / (2.5 - pos[t - 1][1])) @ np.linalg.inv(k)
    c = np.array([rt @ tilt.T for rt in rot])                               # first camera's axes -> camera t
    truth = np.array([tilt @ (p - pos[0]) for p in pos])
    got = chain_plane_centres(h, np.ones(n, bool), k, c, tilt @ n_world, np.full(n, 2.5))
    np.testing.assert_allclose(got, truth, atol=1e-9)
    ok = np.ones(n, bool)
    ok[10] = False
    got = chain_plane_centres(h, ok, k, c, tilt @ n_world, np.full(n, 2.5))
    np.testing.assert_allclose(got[-1], truth[-1] - (truth[10] - truth[9]), atol=1e-9)
