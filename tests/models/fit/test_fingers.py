"""Finger solve (models/fit/fingers.py) against poses made by its own forward kinematics and by hand."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from video2mesh.models.fit import fingers as F
from tests.stages.licence_free_helpers import anny_body


@pytest.fixture(scope="module")
def rest():
    body = anny_body()
    sk = body.skeleton(torch.full((1, 6), 0.5, dtype=body.dtype))
    h, r = sk.heads.double().numpy(), sk.rest_rotations.double().numpy()
    return {s: F.rest_hand(body.bone_names, h, r, s) for s in F.SIDES}


def _landmarks(rot: np.ndarray, rest: F.RestHand, seg_len: float = 0.03) -> np.ndarray:
    """(21, 3) landmarks of a hand posed by `rot` (15, 3), in an arbitrary rotated frame."""
    dirs = F.posed_directions(rot, rest)
    x = np.zeros((21, 3))
    x[list(F.PALM_LANDMARKS)] = rest.palm
    x[1] = rest.palm[0] + 0.3 * (rest.palm[1] - rest.palm[0])        # thumb base between wrist and index
    for c, (_, lm) in enumerate(F.CHAINS):
        for j in range(3):
            x[lm[j + 1]] = x[lm[j]] + seg_len * dirs[3 * c + j]
    return x @ Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix().T


def test_palm_faces_the_thigh_at_rest(rest):
    """Anny's rest pose is an A-pose with the palms towards the body: the left palm faces -x, the right +x."""
    assert rest["left"].palm_side[0] < -0.5 and rest["right"].palm_side[0] > 0.5


@pytest.mark.parametrize("side", F.SIDES)
def test_solve_recovers_a_pose_within_the_limits(rest, side):
    """Curl and spread inside the limits come back exactly (up to the unobservable twist, zero here)."""
    rh = rest[side]
    rng = np.random.default_rng(0)
    rot = np.zeros((15, 3))
    for c in range(5):
        lim = F.THUMB_LIMITS_DEG if c == 0 else F.FINGER_LIMITS_DEG
        parent = np.eye(3)
        for j in range(3):
            k = 3 * c + j
            d, p = rh.dirs[k], rh.palm_side - (rh.palm_side @ rh.dirs[k]) * rh.dirs[k]
            p /= np.linalg.norm(p)
            lo, hi, sp = np.radians(lim[j])
            rot[k] = rng.uniform(lo, hi) * 0.9 * np.cross(d, p) + rng.uniform(-sp, sp) * 0.9 * p
    x = _landmarks(rot, rh)
    dirs, resid = F.segment_directions(x, rh)
    assert resid < 1e-6
    got = F.solve_hand(dirs, rh)
    err = np.degrees(np.linalg.norm((Rotation.from_rotvec(got).inv() * Rotation.from_rotvec(rot)).as_rotvec(), axis=1))
    assert err.max() < 0.5, err


def test_a_fist_curls_towards_the_palm_and_is_clamped(rest):
    """Fingertips bent 150 degrees towards the palm at the middle joint: the joint gives its 110 degree
    limit, with a positive curl (towards the palm), and the fingertip ends nearer the palm's side."""
    rh = rest["right"]
    rot = np.zeros((15, 3))
    k = 3 * 1 + 1                                     # index PIP
    d, p = rh.dirs[k], rh.palm_side - (rh.palm_side @ rh.dirs[k]) * rh.dirs[k]
    p /= np.linalg.norm(p)
    rot[k] = np.radians(150) * np.cross(d, p)
    got = F.solve_hand(F.segment_directions(_landmarks(rot, rh), rh)[0], rh)
    assert np.degrees(np.linalg.norm(got[k])) == pytest.approx(110.0, abs=0.1)
    assert F.posed_directions(got, rh)[k] @ rh.palm_side > 0.5


def test_track_eases_to_rest_where_unseen(rest):
    """A hand seen in frames 0-29 only: full pose there (away from the edge), zero from ~4 sigma after."""
    rh = rest["left"]
    rot = np.zeros((15, 3))
    rot[4] = [0.5, 0.0, 0.0]
    dirs = F.segment_directions(_landmarks(rot, rh), rh)[0]
    frames = np.arange(60)
    obs = np.arange(30)
    r, blend = F.track_fingers(frames, obs, np.repeat(dirs[None], 30, 0), np.full(30, 0.9), rh, sigma_frames=3.0)
    want = F.solve_hand(dirs, rh)
    assert np.allclose(r[:20], want, atol=1e-6) and np.all(blend[:20] == 1.0)
    assert np.all(r[45:] == 0) and np.all(blend[45:] == 0)
    assert np.all(np.diff(blend[25:45]) <= 1e-12)     # monotone ease-out, no jump
    assert np.abs(np.diff(np.linalg.norm(r[:, 4], axis=1))).max() < 0.1


@pytest.mark.parametrize("side", F.SIDES)
def test_wrist_turns_the_forearm_onto_the_palm(rest, side):
    """A palm rotated by R: palm_rotation finds R; with the forearm at G, the wrist's local rotation is
    G^T R when inside the limits (flexion 40, deviation -15, twist 20 degrees), and clamped outside."""
    rh = rest[side]
    d = rh.wrist_dir
    p = rh.palm_side - (rh.palm_side @ d) * d
    p /= np.linalg.norm(p)
    want = Rotation.from_rotvec(np.radians(40) * np.cross(d, p) + np.radians(-15) * p) * Rotation.from_rotvec(np.radians(20) * d)
    g = Rotation.from_euler("xyz", [0.4, -0.2, 1.3]).as_matrix()
    r = g @ want.as_matrix()
    x = np.zeros((21, 3))
    x[list(F.PALM_LANDMARKS)] = (rh.palm - rh.palm.mean(0)) @ r.T * 0.9 + 0.3   # scale and offset do not matter
    assert np.allclose(F.palm_rotation(x, rh), r, atol=1e-9)
    got = F.wrist_local(g, r, rh)
    assert np.allclose(got, want.as_rotvec(), atol=1e-9)
    bent = F.wrist_local(g, g @ Rotation.from_rotvec(np.radians(120) * np.cross(d, p)).as_matrix(), rh)
    assert np.degrees(np.linalg.norm(bent)) == pytest.approx(80.0, abs=1e-6)


def test_track_wrist_keeps_the_fit_where_unseen():
    base = np.tile([0.1, 0.0, 0.0], (40, 1))
    seen = np.tile([0.0, 0.5, 0.0], (20, 1))
    out = F.track_wrist(np.arange(40), np.arange(20), seen, np.full(20, 1.0), base, sigma_frames=2.0)
    assert np.allclose(out[:14], seen[0], atol=1e-9) and np.allclose(out[30:], base[0])
    # the ease: blend = 2 x a cumulative Gaussian, capped: steepest step 2 / (sigma sqrt(2 pi)) = 0.4 of the 0.51 rad gap
    assert np.all(np.linalg.norm(np.diff(out, axis=0), axis=1) < 0.21)
