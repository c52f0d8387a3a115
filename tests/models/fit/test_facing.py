"""Front and back made continuous (models/fit/facing.py) against synthetic torsos of known yaw.

References: the yaw each frame was built with (closed form), scipy's rotations for the mirror reading, and the
mirror frames that were injected."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from video2mesh.models.fit.facing import consistent_facing, mirror_reading, mirrored_yaw, torso_yaw
from video2mesh.models.fit.temporal import SMOOTHING, prepare_track
from video2mesh.models.runners.blazepose import BLAZEPOSE_FLIP

# a left/right symmetric standing body in camera axes (x right, y down, z away from the camera), hip-centred,
# facing the camera: BlazePose-33 landmarks, the body's right side (even indices from 12) at -x, the face in front
_SIDE = np.array([0, -1, -1, -1, 1, 1, 1, -1, 1, -1, 1] + [-1 if k % 2 else 1 for k in range(11, 33)], float)


def _rest() -> np.ndarray:
    """(33, 3) landmarks of the body above."""
    p = np.zeros((33, 3))
    p[:, 0] = -0.15 * _SIDE
    p[:, 1] = np.linspace(-0.7, 0.9, 33)[np.minimum(np.arange(33), BLAZEPOSE_FLIP)]   # pairs at one height
    p[:11, 1] = -0.35                                    # the face 0.2 m above the shoulders (y -0.15) ...
    p[:11, 2] = -0.12                                    # ... and in front of them
    return p


def _body(yaw_deg: np.ndarray, seed: int = 0, noise_m: float = 0.01) -> np.ndarray:
    """(T, 33, 3) world landmarks of the rest body turned by yaw_deg (T,) about the camera's vertical."""
    rng = np.random.default_rng(seed)
    rot = Rotation.from_euler("y", -np.radians(yaw_deg)[:, None]).as_matrix()
    return np.einsum("tij,kj->tki", rot, _rest()) + rng.normal(0, noise_m, (len(yaw_deg), 33, 3))


def _conf(t_n: int) -> np.ndarray:
    return np.full((t_n, 33), 0.95)


def _wrap(a):
    return (np.asarray(a) + 180.0) % 360.0 - 180.0


def test_torso_yaw_and_its_mirror_are_the_built_angles():
    yaw = np.arange(-170.0, 180.0, 10.0)
    theta, extent = torso_yaw(_body(yaw, noise_m=0.0))
    front = theta[np.argmin(np.abs(yaw))]                           # the body facing the camera
    assert np.allclose(_wrap(theta - front), _wrap(yaw), atol=1e-9)
    assert np.allclose(extent, 0.6, atol=1e-9)                       # hips + shoulders, 0.3 m each
    _, mirrored = mirror_reading(np.zeros((len(yaw), 33, 5)), _body(yaw, noise_m=0.0), np.ones(len(yaw), bool))
    assert np.allclose(torso_yaw(mirrored)[0], mirrored_yaw(theta), atol=1e-9)


def test_the_mirror_reading_is_the_body_turned_to_the_other_side_with_the_same_image():
    """For a left/right symmetric body the mirror of a yaw-phi reading (labels exchanged, depth negated) is the
    same body at the yaw 180 - phi (scipy), and every image position (x, y) is still occupied by the same point."""
    yaw = np.array([10.0, 35.0, 150.0, -120.0])
    world = _body(yaw, noise_m=0.0)
    lm = np.concatenate([world * 500 + 300, np.ones((len(yaw), 33, 2))], -1)
    lm_m, world_m = mirror_reading(lm, world, np.ones(len(yaw), bool))
    assert np.allclose(world_m, _body(180.0 - yaw, noise_m=0.0), atol=1e-9)
    assert np.allclose(lm_m[..., :2], lm[:, BLAZEPOSE_FLIP, :2])
    assert np.allclose(lm_m[..., 2], -lm[:, BLAZEPOSE_FLIP, 2])
    for t in range(len(yaw)):                                          # the same image points, other labels
        a, b = np.sort(world[t, :, 0]), np.sort(world_m[t, :, 0])
        assert np.allclose(a, b)
    back_lm, back_w = mirror_reading(lm_m, world_m, np.ones(len(yaw), bool))
    assert np.allclose(back_lm, lm) and np.allclose(back_w, world)


def test_back_view_readings_of_a_turning_walker_are_mirrored_back():
    """The walker of the rendered walk-turn-left: a turn from facing the camera's left (yaw 40) to facing away (180)
    over 70 frames, then 40 frames walking away. BlazePose reads 20 of the back-view frames as front views
    (mirror readings), with three frames of a collapsed torso between: exactly those 20 come back."""
    yaw = np.concatenate([np.linspace(40.0, 175.0, 70), 180.0 + 5 * np.sin(np.arange(40) / 3.0)])
    world = _body(yaw, seed=1)
    lm = np.zeros((len(yaw), 33, 5))
    bad = np.zeros(len(yaw), bool)
    bad[[72, 73, 74, 78, 79, 80, 81, 82, 83, 84, 92, 103, 104, 105, 106, 107, 108, 109]] = True
    bad[[75, 76]] = True
    collapsed = np.array([71, 77, 102])
    _, world = mirror_reading(lm, world, bad)
    world[collapsed, :, 2] *= 0.1                                        # torso squashed in depth: hesitating
    world[collapsed, :, 0] *= 0.2
    got = consistent_facing(np.arange(len(yaw)), world, _conf(len(yaw)), 30.0)
    assert np.array_equal(got[~np.isin(np.arange(len(yaw)), collapsed)], bad[~np.isin(np.arange(len(yaw)), collapsed)])


def test_real_turns_are_left_alone():
    """A person turning round slowly, a dancer spinning at 720 deg/s (24 deg a frame at 30 fps), a walker seen from
    the side and one seen from behind the whole time, both with 8 deg of independent yaw noise a frame (BlazePose's
    torso yaw on the rendered static walk varies by ~3 deg from frame to frame): nothing is mirrored."""
    t = np.arange(120)
    rng = np.random.default_rng(3)
    cases = {"slow turn": 2.0 * t, "spin": 24.0 * t, "side": 90.0 + rng.normal(0, 8, len(t)),
             "away": 180.0 + rng.normal(0, 8, len(t))}
    for name, yaw in cases.items():
        got = consistent_facing(t, _body(yaw, seed=4), _conf(len(t)), 30.0)
        assert not got.any(), name


def test_a_track_gap_allows_a_turn_in_proportion():
    """Between two frames 10 frames apart (the person hidden) a half turn is possible and is kept; the same half turn
    between neighbouring frames is not."""
    yaw = np.concatenate([np.full(30, 0.0), np.full(30, 180.0)])
    gap = np.concatenate([np.arange(30), 40 + np.arange(30)])
    assert not consistent_facing(gap, _body(yaw, seed=5), _conf(60), 30.0).any()
    got = consistent_facing(np.arange(60), _body(yaw, seed=5), _conf(60), 30.0)
    assert got[:30].all() != got[30:].all() and (got[:30].all() or got[30:].all())     # one half mirrored, whole


def test_prepare_track_gives_the_fit_the_true_side():
    """Through prepare_track: the mirrored frames' targets are the true body (2D labels and world landmarks), and
    they count as flipped; facing_fix=False gives BlazePose's readings back."""
    yaw = np.concatenate([np.linspace(60.0, 180.0, 40), np.full(40, 180.0)])
    truth = _body(yaw, seed=6, noise_m=0.0)
    lm = np.concatenate([truth[..., :2] * 400 + 320, truth[..., 2:] , np.full((80, 33, 2), 0.95)], -1)
    bad = np.zeros(80, bool)
    bad[50:62] = True
    lm_bad, world_bad = mirror_reading(lm, truth, bad)
    preset = SMOOTHING["off"]
    ti = prepare_track(np.arange(80), lm_bad, world_bad, 30.0, preset)
    assert np.array_equal(ti.flipped, bad)
    ref = prepare_track(np.arange(80), lm, truth, 30.0, preset)
    assert np.allclose(ti.keypoints, ref.keypoints) and np.allclose(ti.world, ref.world)
    off = prepare_track(np.arange(80), lm_bad, world_bad, 30.0, preset, facing_fix=False)
    assert not np.allclose(off.world, ref.world)


def test_a_label_swap_is_undone_with_the_depth_kept():
    """A reading with only its labels exchanged (depth kept) is a mirror-image body, its face behind the torso
    (`improper`): such frames get their labels back and keep their depth, in a side view too (where the mirror
    reading would not differ), and through prepare_track the fit's targets are the truth."""
    from video2mesh.models.fit.facing import improper

    for base in (90.0, 160.0):
        yaw = base + 10 * np.sin(np.arange(60) / 8.0)
        truth = _body(yaw, seed=7, noise_m=0.0)
        assert not improper(truth).any()
        lm = np.concatenate([truth[..., :2] * 400 + 320, truth[..., 2:], np.full((60, 33, 2), 0.95)], -1)
        bad = np.zeros(60, bool)
        bad[[20, 21, 22, 40]] = True
        lm_bad, world_bad = lm.copy(), truth.copy()
        lm_bad[bad], world_bad[bad] = lm[bad][:, BLAZEPOSE_FLIP], truth[bad][:, BLAZEPOSE_FLIP]
        assert np.array_equal(improper(world_bad), bad)
        assert np.array_equal(consistent_facing(np.arange(60), world_bad, _conf(60), 30.0), bad)
        ti = prepare_track(np.arange(60), lm_bad, world_bad, 30.0, SMOOTHING["off"])
        ref = prepare_track(np.arange(60), lm, truth, 30.0, SMOOTHING["off"])
        assert np.array_equal(ti.flipped, bad)
        assert np.allclose(ti.keypoints, ref.keypoints) and np.allclose(ti.world, ref.world)


def test_a_long_track_is_decided_once_for_every_window_and_travel_tells_front_from_back(monkeypatch):
    """The fit stage decides a long track's facing on all of it (read in pieces), so windows agree. A walker turns
    away (frames 0-79) and walks off, 4 m to 12 m from the camera; BlazePose reads the last 110 of 200 frames as
    front views. Without the travel evidence the track's most economical story is the wrong one (the turn undone,
    the walker facing the camera while moving away: the 45 turning frames that can be told apart mirrored instead
    of the 110); with it (the person shrinks in the image: travel away, facing.receding) the 110 are put right.
    Decided per 64-frame window with 16 frames of context, as the stage's windows would, windows disagree and the
    body would spin round between them."""
    import pandas as pd

    from video2mesh.stages import fit_anny

    yaw = np.concatenate([np.linspace(40.0, 175.0, 80), np.full(120, 180.0)])
    world = _body(yaw, seed=8)
    depth = np.concatenate([np.full(80, 4.0), 4.0 + 8.0 * np.arange(120) / 120])              # 2 m/s away at 30 fps
    lm = np.concatenate([world[..., :2] * (640.0 / depth[:, None, None]) + 320, world[..., 2:],
                         np.full((200, 33, 2), 0.95)], -1)
    bad = np.arange(200) >= 90
    lm, world = mirror_reading(lm, world, bad)
    frames = np.arange(200) + 10
    conf = lm[..., 3] * lm[..., 4]
    assert np.array_equal(np.flatnonzero(consistent_facing(frames, world, conf, 30.0)), np.arange(45, 90))
    whole = consistent_facing(frames, world, conf, 30.0, landmarks=lm, focal_px=640.0)
    assert np.array_equal(whole, bad)
    bp = pd.DataFrame({"frame": frames, "track_id": 4, "keypoints": list(np.zeros((200, 51))),
                       "landmarks": list(lm.reshape(200, -1)), "world": list(world.reshape(200, -1))})

    class Ctx:
        video = type("V", (), {"fps": 30.0, "width": 640, "height": 360})()
        memo = staticmethod(lambda key, make: make())

        @staticmethod
        def input_frames(name, lo, hi, columns):
            return bp[(bp.frame >= lo) & (bp.frame < hi)][columns]

    monkeypatch.setattr(fit_anny, "FACING_CHUNK", 7)
    got = fit_anny._track_facing(Ctx, fit_anny.FitAnnyConfig(same_body=0), 4, 10, 209)      # focal: 640 px guess
    assert np.array_equal(got, frames[whole])
    per_window = [consistent_facing(frames[lo:hi], world[lo:hi], conf[lo:hi], 30.0)[start - lo:stop - lo]
                  for start, stop, lo, hi in [(s, min(s + 64, 200), max(s - 16, 0), min(s + 80, 200))
                                              for s in range(0, 200, 64)]]
    assert not np.array_equal(np.concatenate(per_window), consistent_facing(frames, world, conf, 30.0))
