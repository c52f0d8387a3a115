"""World frame maths on a synthetic walk/run with a known contact pattern (tests/models/fit/walk.py)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from video2mesh.models.fit.world import MODEL_FORWARD, fit_floor, solve_world, world_to_camera_gl

from .walk import camera, observe, walk

FPS = 30.0


def world_of(kind: str, run: bool = False, n: int = 150, noise: float = 0.0):
    root, pts, contact = walk(n, FPS, run=run)
    rcw, eyes = camera(kind, root)
    rc, orient, feet_c, c = observe(root, pts, rcw, eyes)
    if noise:
        rng = np.random.default_rng(0)
        feet_c = feet_c + rng.normal(0, noise, feet_c.shape)
        rc = rc + rng.normal(0, noise, rc.shape)
    still = np.ones(n) if kind == "still" else np.zeros(n)
    w = solve_world(rc, orient, feet_c, c, still, FPS)
    feet_c = feet_c + np.repeat(w.foot_shift, 3, axis=1)     # what the leg IK moves (the stage does it)
    to_world = lambda x: np.einsum("tij,t...j->t...i", w.A, x) + w.b.reshape(n, *([1] * (x.ndim - 2)), 3)  # noqa: E731
    return w, root, contact, to_world(rc), to_world(feet_c), (rc, orient, feet_c)


@pytest.mark.parametrize("kind", ["still", "pan", "travel"])
@pytest.mark.parametrize("run", [False, True])
def test_odometry_recovers_the_distance_travelled(kind, run):
    """A panning (tripod) or travelling camera keeps the walker near the image centre: camera space
    says centimetres (the treadmill); odometry must give the true 6.95 m."""
    w, root, contact, root_w, _, (rc, *_) = world_of(kind, run)
    true = np.linalg.norm(root[-1] - root[0])
    est = np.linalg.norm((root_w[-1] - root_w[0])[[0, 2]])
    assert est == pytest.approx(true, rel=0.01)
    assert (w.contact == contact).mean() > 0.9
    if kind == "travel":
        assert np.linalg.norm(rc[-1] - rc[0]) < 0.2 * true   # the treadmill in camera space


def test_still_camera_follows_the_camera_space_root():
    w, root, _, root_w, _, _ = world_of("still")
    disp_true = root - root[0]
    disp = root_w - root_w[0]
    # equal up to the world's rotation about the vertical: compare horizontal lengths and heights
    np.testing.assert_allclose(np.linalg.norm(disp[:, [0, 2]], axis=1), np.linalg.norm(disp_true[:, [0, 2]], axis=1), atol=0.01)
    np.testing.assert_allclose(disp[:, 1], disp_true[:, 1], atol=0.01)


@pytest.mark.parametrize("kind", ["still", "pan"])
def test_world_conventions(kind):
    """Feet on y = 0 in contact, nothing under the floor, root above the origin at frame 0, facing +Z."""
    w, root, _, root_w, feet_w, (rc, orient, _) = world_of(kind)
    low = feet_w.reshape(-1, 2, 3, 3)[..., 1].min(2)          # (T, 2) lowest point per foot
    # root-only planting averages the two feet in double support: a floor estimated 0.3 deg off leaves
    # a few mm there (a leg IK would remove it); single support is exact
    assert np.abs(low[w.contact]).max() < 0.005
    single = w.contact & ~w.contact[:, ::-1]
    assert np.abs(low[single]).max() < 1e-4
    assert feet_w[..., 1].min() > -1e-6
    np.testing.assert_allclose(root_w[0, [0, 2]], 0.0, atol=1e-9)
    assert root_w[0, 1] == pytest.approx(root[0, 1], abs=0.01)   # root height above the floor
    fwd = w.A[0] @ orient[0] @ MODEL_FORWARD
    assert fwd[2] > 0.999


def test_planted_feet_do_not_slide_with_noisy_input():
    w, _, _, _, feet_w, _ = world_of("pan", noise=0.005)
    mid = feet_w.reshape(-1, 2, 3, 3).mean(2)
    both = w.contact[1:] & w.contact[:-1]
    step = np.linalg.norm(np.diff(mid[..., [0, 2]], axis=0), axis=-1)
    assert (step * both).sum() / both.sum() < 0.003          # < 3 mm/frame (5 mm input noise)


def test_camera_trajectory_reprojects_camera_space_exactly():
    w, _, _, _, feet_w, (_, _, feet_c) = world_of("travel")
    r, t = world_to_camera_gl(w.A, w.b)
    gl = np.einsum("tij,tkj->tki", r, feet_w) + t[:, None]
    np.testing.assert_allclose(gl * [1.0, -1.0, -1.0], feet_c, atol=1e-6)
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.tile(np.eye(3), (len(r), 1, 1)), atol=1e-9)


def test_floor_plane_from_noisy_contact_points():
    rng = np.random.default_rng(1)
    n_true = Rotation.from_euler("xz", [8.0, -5.0], degrees=True).apply([0.0, 1.0, 0.0])
    u = np.cross(n_true, [0.0, 0.0, 1.0]); u /= np.linalg.norm(u)
    v = np.cross(n_true, u)
    pts = rng.uniform(-3, 3, (200, 1)) * u + rng.uniform(-0.3, 0.3, (200, 1)) * v + 0.7 * n_true
    pts += rng.normal(0, 0.01, pts.shape)
    pts[:10] += 0.5 * n_true                                    # outliers: a foot on a step
    n, d = fit_floor(pts, np.array([0.0, 1.0, 0.0]), prior_m=0.05)
    assert np.degrees(np.arccos(n @ n_true)) < 1.0
    assert d == pytest.approx(0.7, abs=0.01)


def test_flight_only_between_contacts_and_short():
    from video2mesh.models.fit.world import flight_frames

    support = np.array([1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0], bool)
    np.testing.assert_array_equal(flight_frames(support, 3), [0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    assert not flight_frames(np.zeros(20, bool), 5).any()    # no contact at all: no parabola
