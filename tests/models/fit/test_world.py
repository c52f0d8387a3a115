"""World frame maths on a synthetic walk/run with a known contact pattern (tests/models/fit/walk.py)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from video2mesh.models.fit.world import MODEL_FORWARD, fit_floor, solve_world, world_to_camera_gl

from .walk import FOOT_SHAPE, camera, observe, walk

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


def test_foot_lock_holds_the_segment_mean_rotation_and_fades():
    """In a contact segment every frame's locked rotation is the segment's chordal mean (for rotations
    about one axis: the rotation by the mean angle, to second order); k frames outside it the turn is
    (1 - k / (fade + 1)) of the way; far outside it is the identity."""
    from video2mesh.models.fit.world import foot_lock

    n, fade = 30, 3
    ang = np.radians(np.linspace(-4.0, 4.0, n)) + np.radians(2.0)      # the fit's foot yaw drifting 8 deg
    rot = np.tile(np.eye(3), (n, 2, 1, 1))
    rot[:, 0] = Rotation.from_euler("y", ang[:, None]).as_matrix()
    contact = np.zeros((n, 2), bool)
    contact[10:20, 0] = True
    turn = foot_lock(rot, contact, fade)
    locked = np.einsum("tij,tjk->tik", turn[:, 0], rot[:, 0])
    want = Rotation.from_euler("y", ang[10:20].mean()).as_matrix()
    np.testing.assert_allclose(locked[10:20], np.broadcast_to(want, (10, 3, 3)), atol=1e-4)
    for k in range(1, fade + 1):
        w = 1.0 - k / (fade + 1)
        for t in (10 - k, 19 + k):
            got = Rotation.from_matrix(turn[t, 0]).as_rotvec()
            np.testing.assert_allclose(got, [0.0, w * (ang[10:20].mean() - ang[t]), 0.0], atol=1e-4)
    np.testing.assert_allclose(turn[:10 - fade, 0], np.broadcast_to(np.eye(3), (10 - fade, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(turn[:, 1], np.broadcast_to(np.eye(3), (n, 3, 3)), atol=1e-12)   # never planted


def test_locked_feet_do_not_slide_when_the_fit_turns_them():
    """The fit's foot wobbling about its ankle (+-3 deg, ~7 mm at the toes) slides planted foot points;
    locking the foot's rotation (and planting its midpoint) holds every point of a contact foot still."""
    n = 150
    root, pts, contact = walk(n, FPS)
    rcw, eyes = camera("pan", root)
    rc, orient, feet_c, c = observe(root, pts, rcw, eyes)
    rng = np.random.default_rng(3)
    wobble = Rotation.from_rotvec(rng.normal(0, np.radians(3.0), (n * 2, 3))).as_matrix().reshape(n, 2, 3, 3)
    mid_c = feet_c.reshape(n, 2, 3, 3).mean(2)
    ankle_c = mid_c + np.einsum("tij,j->ti", rcw, [0.0, 0.08, 0.0])[:, None]        # 8 cm above the foot
    foot_rot_c = np.einsum("tfij,tjk->tfik", wobble, orient)
    feet_c = (ankle_c[:, :, None] + np.einsum("tfij,tfkj->tfki", wobble, feet_c.reshape(n, 2, 3, 3) - ankle_c[:, :, None]))
    still = np.zeros(n)

    def skate(lock: bool) -> float:
        from video2mesh.models.fit.world import WorldConfig
        w = solve_world(rc, orient, feet_c.reshape(n, 6, 3), c, still, FPS, WorldConfig(foot_lock=lock),
                        ankle_cam=ankle_c, foot_rot_cam=foot_rot_c)
        turn = w.foot_turn if w.foot_turn is not None else np.tile(np.eye(3), (n, 2, 1, 1))
        new_ankle = ankle_c + w.foot_shift                                             # what the leg IK does
        f = new_ankle[:, :, None] + np.einsum("tfij,tfkj->tfki", turn, feet_c - ankle_c[:, :, None])
        fw = np.einsum("tij,tfkj->tfki", w.A, f) + w.b[:, None, None]
        both = w.contact[1:] & w.contact[:-1]
        step = np.linalg.norm(np.diff(fw[..., [0, 2]], axis=0), axis=-1).mean(-1)   # (T-1, 2)
        return float(step[both].mean())

    assert skate(False) > 0.002
    assert skate(True) < 1e-6


def test_a_pivoting_foot_is_not_locked():
    """A contact foot turning 60 deg about the vertical (a pivot turn) is real motion, not fit noise;
    a 50 deg heel-to-toe roll about a horizontal axis stays locked."""
    from video2mesh.models.fit.world import foot_lock

    n = 20
    rot = np.tile(np.eye(3), (n, 2, 1, 1))
    rot[:, 0] = Rotation.from_euler("y", np.radians(np.linspace(0.0, 60.0, n))[:, None]).as_matrix()
    rot[:, 1] = Rotation.from_euler("x", np.radians(np.linspace(-25.0, 25.0, n))[:, None]).as_matrix()   # a roll
    turn = foot_lock(rot, np.ones((n, 2), bool), 3, max_deg=20.0, up=np.array([0.0, 1.0, 0.0]))
    np.testing.assert_allclose(turn[:, 0], np.broadcast_to(np.eye(3), (n, 3, 3)), atol=1e-12)
    locked = np.einsum("tij,tjk->tik", turn[:, 1], rot[:, 1])
    np.testing.assert_allclose(locked, np.broadcast_to(locked[0], (n, 3, 3)), atol=1e-12)


def _floor_homographies(rcw: np.ndarray, eyes: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(T, 3, 3) exact floor (y = 0) homographies frame t-1 -> t of cameras rcw (T, 3, 3) world -> OpenCV
    at centres eyes (T, 3): K (R + t n^T / d) K^-1, n the world's down in camera t-1, d its height."""
    h = np.tile(np.eye(3), (len(rcw), 1, 1))
    for t in range(1, len(rcw)):
        r = rcw[t] @ rcw[t - 1].T
        tr = -rcw[t] @ (eyes[t] - eyes[t - 1])
        h[t] = k @ (r + np.outer(tr, rcw[t - 1] @ [0.0, -1.0, 0.0]) / eyes[t - 1][1]) @ np.linalg.inv(k)
    return h


@pytest.mark.parametrize("kind", ["travel", "pan"])
def test_camera_travel_of_exact_floor_homographies(kind):
    """A travelling camera's centres come back from its floor homographies at its true height (weight 1,
    parallax); a tripod pan shows no parallax (weight 0, no travel)."""
    from video2mesh.models.fit.world import camera_travel
    from video2mesh.models.maths.camera_motion import intrinsics

    root, pts, _ = walk(120, FPS)
    rcw, eyes = camera(kind, root)
    k = intrinsics(554.0, 640, 360)
    h = _floor_homographies(rcw, eyes, k)
    c = rcw @ rcw[0].T
    up_ref = rcw[0] @ [0.0, 1.0, 0.0]
    centre, weight = camera_travel(h, np.arange(120) > 0, k, c, up_ref, eyes[:, 1], FPS)
    truth = np.einsum("ij,tj->ti", rcw[0], eyes - eyes[0])
    if kind == "travel":
        assert weight[1:].min() == 1.0
        np.testing.assert_allclose(centre, truth, atol=1e-6)
    else:
        assert weight.max() == 0.0 and np.abs(centre).max() == 0.0


def test_camera_travel_corrects_short_odometry():
    """Feet observed 0.8 x too close to the root (short strides: odometry 0.8 x the path): the solve
    alone walks 0.8 x the distance; with the travelling camera's true centres as evidence, the true one.
    path_scale reads the ratio between the two paths back."""
    from video2mesh.models.fit.world import path_scale

    n = 150
    root, pts, _ = walk(n, FPS)
    rcw, eyes = camera("travel", root)
    rc, orient, feet_c, c = observe(root, pts, rcw, eyes)
    feet_c = rc[:, None] + 0.8 * (feet_c - rc[:, None])
    still = np.zeros(n)
    true = np.linalg.norm(root[-1] - root[0])
    w0 = solve_world(rc, orient, feet_c, c, still, FPS)
    centre = np.einsum("ij,tj->ti", rcw[0], eyes - eyes[0])
    w1 = solve_world(rc, orient, feet_c, c, still, FPS, cam_centre=centre, centre_weight=np.ones(n))
    dist = lambda w: np.linalg.norm((w.root_ref[-1] - w.root_ref[0]))  # noqa: E731
    assert dist(w0) == pytest.approx(0.8 * true, rel=0.05)
    assert dist(w1) == pytest.approx(true, rel=0.03)      # the odometry still pulls a little
    up = rcw[0] @ [0.0, 1.0, 0.0]
    ev = np.einsum("tji,tj->ti", c, rc) + centre
    assert path_scale(ev, w0.root_ref, np.ones(n, bool), up, 15) == pytest.approx(0.8, rel=0.05)


@pytest.mark.parametrize("noise", [0.005, 0.01])
def test_contacts_at_60_fps_are_found_as_well_as_at_30(noise):
    """The same walk (still camera, the same per-frame noise on every point) at 30 and 60 fps: per-frame foot
    speeds are twice as noisy at 60 fps (the same noise over half the time), and a per-frame contact test
    (reference_fps=0, world v2) missed many contacts there; measured over 1/30 s and median-filtered over
    0.1 s (rate_frames) it finds them as at 30 fps (measured: 0.93 / 0.77 at 30 fps; per frame at 60: 0.82 / 0.45)."""
    from video2mesh.models.fit.world import WorldConfig

    def agreement(fps: float, reference_fps: float) -> float:
        n = int(5 * fps)
        root, pts, contact = walk(n, fps)
        rcw, eyes = camera("still", root)
        rc, orient, feet_c, c = observe(root, pts, rcw, eyes)
        rng = np.random.default_rng(0)
        feet_c = feet_c + rng.normal(0, noise, feet_c.shape)
        rc = rc + rng.normal(0, noise, rc.shape)
        w = solve_world(rc, orient, feet_c, c, np.ones(n), fps, WorldConfig(reference_fps=reference_fps))
        return float((w.contact == contact).mean())

    at30 = agreement(30.0, 30.0)
    assert at30 == agreement(30.0, 0.0)                        # nothing changes at the reference rate
    assert agreement(60.0, 30.0) > at30 - 0.03
    assert agreement(60.0, 0.0) < at30 - 0.1


def test_rate_frames_lengthen_durations_for_faster_videos_only():
    from video2mesh.models.fit.world import rate_frames

    assert [rate_frames(3, fps, 30.0) for fps in (12.0, 25.0, 30.0, 50.0, 60.0, 120.0)] == [3, 3, 3, 5, 6, 12]
    assert [rate_frames(1, fps, 30.0) for fps in (30.0, 44.0, 46.0, 60.0, 100.0)] == [1, 1, 2, 2, 3]
    assert rate_frames(3, 60.0, 0.0) == 3


def test_a_standing_person_swaying_keeps_both_feet_planted():
    """Both feet down for 4 s while the hips sway 10 cm back and forth along the facing direction (peak
    0.38 m/s), filmed by a panning camera (world speeds untrusted: the backward-foot rule decides). Both
    feet move alike relative to the root there: that is the root moving, not two swinging feet (world v4;
    before it, every frame where the hips went back by more than 0.2 m/s lost both contacts)."""
    fps, n = 30.0, 120
    t = np.arange(n) / fps
    root = np.stack([0.10 * np.sin(2 * np.pi * 0.6 * t), np.full(n, 0.92), np.zeros(n)], 1)
    feet = np.zeros((n, 2, 3))
    feet[:, 0, 2], feet[:, 1, 2] = 0.1, -0.1
    pts = (feet[:, :, None, :] + FOOT_SHAPE[None, None] * np.array([1.0, 1.0, 1.0])).reshape(n, 6, 3)
    rcw, eyes = camera("pan", root)
    rc, orient, feet_c, c = observe(root, pts, rcw, eyes)
    w = solve_world(rc, orient, feet_c, c, np.zeros(n), fps)
    assert w.contact.all(1).mean() > 0.95


def test_level_drift_takes_out_a_chained_tilt_drift_and_nothing_else():
    """A still camera whose chained rotations drift 2 deg a minute in pitch and 1 in roll (as a chain of
    homographies does) and turn slowly in yaw (true: a pan of 20 deg over the clip), a person upright with
    +-3 deg of noise in lean, 4 minutes at 30 fps: level_drift brings the tilt error under 0.3 deg everywhere
    and keeps the yaw (the true pan) to 0.3 deg; a drift-free chain is left within 0.3 deg; a clip shorter
    than 2 sigma is returned as it is; frames of a person lying down do not pull the camera."""
    from video2mesh.models.fit.world import level_drift

    n, fps = 7200, 30.0
    rng = np.random.default_rng(4)
    t = np.arange(n) / fps
    model_to_world = Rotation.from_euler("x", 90, degrees=True)            # rest model z-up -> up = -y (OpenCV axes)
    pan = Rotation.from_euler("y", np.linspace(0, 20, n)[:, None], degrees=True)   # true camera: reference -> camera t
    lean = Rotation.from_rotvec(rng.normal(0, np.radians(3) / np.sqrt(2), (n, 3)) * [1, 0, 1])
    orient = (pan * lean * model_to_world).as_matrix()                     # rest model -> camera t
    drift = Rotation.from_euler("xz", np.stack([2.0 * t / 60, 1.0 * t / 60], 1), degrees=True)
    chained = (pan * drift).as_matrix()                                    # the chain's reference -> camera t

    def tilt_and_yaw_err(c):
        err = Rotation.from_matrix(c) * pan.inv()                          # (estimated vs true), camera axes
        up = err.apply([0.0, -1.0, 0.0])                                   # where the true up went
        tilt = np.degrees(np.arccos(np.clip(up @ [0.0, -1.0, 0.0], -1, 1)))
        yaw = np.degrees(np.abs(err.as_euler("yxz")[:, 0]))
        return tilt, yaw

    tilt, _ = tilt_and_yaw_err(chained)
    assert tilt[-1] > 8.0                                                  # what it starts from: ~8.9 deg at 4 min
    fixed = level_drift(chained, orient, fps, 15.0)
    tilt, yaw = tilt_and_yaw_err(fixed)
    tilt -= np.median(tilt)                                                # the track-mean tilt is the solve's floor's
    assert np.abs(tilt).max() < 0.3 and yaw.max() < 0.3
    tilt0, yaw0 = tilt_and_yaw_err(level_drift(pan.as_matrix(), orient, fps, 15.0))
    assert tilt0.max() < 0.3 and yaw0.max() < 0.3                       # the lean noise, averaged over sigma
    short = chained[:800]
    assert level_drift(short, orient[:800], fps, 15.0) is short            # 27 s < 2 sigma
    lying = orient.copy()
    lying[3000:4000] = (pan[3000:4000] * Rotation.from_euler("x", 90, degrees=True) * model_to_world).as_matrix()
    tilt, _ = tilt_and_yaw_err(level_drift(chained, lying, fps, 15.0))
    assert np.abs(tilt - np.median(tilt)).max() < 0.5
