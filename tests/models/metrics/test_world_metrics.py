"""World / foot / identity metrics against closed forms (models/metrics/world.py)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from video2mesh.models.body.anny_keypoints import FLIP_23
from video2mesh.models.metrics import accuracy as acc
from video2mesh.models.metrics import world as wm

HIPS = (11, 12)


def walk(t: int = 250, j: int = 23, seed: int = 0) -> np.ndarray:
    """(T, J, 3) a random body translating along +Z at 4 cm/frame with a wobble (floor y ~ 0)."""
    rng = np.random.default_rng(seed)
    body = rng.normal(size=(j, 3)) * [0.3, 0.5, 0.2] + [0, 0.9, 0]
    frames = np.arange(t)[:, None, None]
    return body[None] + frames * [0, 0, 0.04] + 0.02 * np.sin(frames * 0.3 + np.arange(j)[None, :, None])


def test_similarity_transform_recovers_a_known_one():
    x = np.random.default_rng(1).normal(size=(30, 3))
    r = Rotation.from_rotvec([0.3, -1.1, 0.4]).as_matrix()
    s, r2, t = wm.similarity_transform(x, 1.7 * x @ r.T + [1, 2, 3])
    assert s == pytest.approx(1.7) and np.allclose(r2, r) and np.allclose(t, [1, 2, 3])
    assert wm.similarity_transform(x, 1.7 * x @ r.T, scale=False)[0] == 1.0


def test_w_and_wa_are_zero_under_their_transforms():
    gt = walk()
    r = Rotation.from_rotvec([0.1, 2.0, -0.2]).as_matrix()
    rigid = gt @ r.T + [5.0, -1.0, 3.0]
    assert wm.w_mpjpe(rigid, gt).max() < 1e-9               # any rigid transform: W gives 0
    assert wm.wa_mpjpe(1.3 * rigid, gt).max() < 1e-9        # any similarity: WA gives 0
    assert wm.w_mpjpe(1.3 * rigid, gt).mean() > 0.01        # W does not undo a scale
    assert len(wm.w_mpjpe(gt, gt)) == len(gt) and len(wm.segments(250)) == 3


def test_w_mpjpe_segments_are_aligned_on_their_own_first_frames():
    """A prediction that jumps 1 m at frame 100 (a segment border) is perfect in each segment."""
    gt = walk()
    pred = gt.copy()
    pred[100:] += [1.0, 0.0, 0.0]
    assert wm.w_mpjpe(pred, gt).max() < 1e-9
    pred[50:100] += [0.0, 0.0, 0.2]                          # mid-segment jump: 0.2 m on those frames
    assert wm.w_mpjpe(pred, gt)[50:100] == pytest.approx(np.full(50, 0.2))


def test_constant_offset_mpjpe_and_drift():
    gt = walk()
    off = np.array([0.03, -0.04, 0.0])                       # 5 cm
    assert acc.mpjpe(gt + off, gt) == pytest.approx(np.full(len(gt), 0.05))
    assert wm.root_drift_per_10m(gt + off, gt, HIPS) == pytest.approx(0.0, abs=1e-9)   # W alignment removes it
    straight = walk()[:1] + np.arange(250)[:, None, None] * [0, 0, 0.04]   # no wobble: root path 9.96 m
    late = straight.copy()
    late[2:] += [0.0, 0.0, -0.5]                             # after the two aligned frames, 0.5 m behind
    assert wm.root_drift_per_10m(late, straight, HIPS) == pytest.approx(0.5 * 10 / 9.96)
    assert wm.root_drift_per_10m(gt[:10], gt[:10], HIPS) is None    # 0.36 m < MIN_PATH_M


def test_foot_skate_is_the_slide_speed():
    t = 60
    feet = np.zeros((t, 2, 3, 3))
    feet[..., 0] = 0.004 * np.arange(t)[:, None, None]      # 4 mm/frame along x
    feet[..., 1] = 0.01 * np.arange(t)[:, None, None]       # vertical motion does not count
    contact = np.zeros((t, 2), bool)
    contact[10:30, 0] = True
    assert wm.foot_skate(feet, contact) == pytest.approx(0.004)
    assert wm.foot_skate(feet, np.zeros((t, 2), bool)) is None
    assert wm.foot_skate(np.zeros_like(feet), contact) == 0.0


def test_floor_penetration_and_float():
    gt = np.zeros((20, 2, 3, 3))
    contact = np.ones((20, 2), bool)
    up = gt.copy()
    up[..., 1] += 0.02
    assert wm.floor_contact_error(up, gt, contact) == pytest.approx((0.0, 0.02))
    assert wm.floor_contact_error(gt - [0, 0.03, 0], gt, contact) == pytest.approx((0.03, 0.0))
    half = gt.copy()
    half[:10, 0, :, 1] = -0.04                               # left foot sinks 4 cm on 10 of 40 foot-frames
    assert wm.floor_contact_error(half, gt, contact) == pytest.approx((0.01, 0.0))


def test_a_flipped_frame_counts():
    gt = walk(20)
    pred = gt.copy()
    pred[[3, 7]] = pred[[3, 7]][:, FLIP_23]
    f = wm.flipped(pred, gt, FLIP_23, HIPS)
    assert f.tolist() == [i in (3, 7) for i in range(20)]


def test_recall():
    present = np.array([[True, True, True, False], [False, True, True, True]])
    matched = np.array([[True, False, True, True], [False, True, False, False]])
    assert wm.recall(present, matched) == pytest.approx(3 / 6)
    assert wm.recall(np.zeros((1, 3), bool), matched[:1, :3]) is None


def test_perfect_prediction_scores_zero_everywhere():
    gt = walk()
    feet = gt[:, 17:23].reshape(-1, 2, 3, 3)
    contact = np.ones((len(gt), 2), bool)
    assert wm.w_mpjpe(gt, gt).max() < 1e-12 and wm.wa_mpjpe(gt, gt).max() < 1e-9
    assert wm.root_drift_per_10m(gt, gt, HIPS) == pytest.approx(0.0, abs=1e-12)
    assert wm.floor_contact_error(feet, feet, contact) == (0.0, 0.0)
    assert not wm.flipped(gt, gt, FLIP_23, HIPS).any()


def test_whole_segment_similarity_equals_vibe_procrustes_on_one_frame():
    rng = np.random.default_rng(3)
    gt = walk(5)
    pred = gt + rng.normal(scale=0.03, size=gt.shape)
    for i in range(5):
        assert np.allclose(wm.whole_align(pred[i:i + 1], gt[i:i + 1])[0], acc.procrustes_align(pred[i], gt[i]))


def test_camera_rotation_error_ignores_the_world_frame_and_reads_an_extra_turn():
    """A panning camera (yaw 0.5 deg/frame) read in another world (any fixed rotation W): 0 deg; the same
    with 3 deg more yaw from frame 40 on: 3 deg there (closed form), 0 before."""
    n = 80
    r_gt = Rotation.from_euler("y", 0.5 * np.arange(n)[:, None], degrees=True).as_matrix() @ \
        Rotation.from_euler("x", 10, degrees=True).as_matrix()
    w = Rotation.from_rotvec([0.4, -0.9, 0.2]).as_matrix()        # our world vs the GT's: any fixed rotation
    pred = r_gt @ w.T
    assert np.allclose(wm.camera_rotation_error_deg(pred, r_gt), 0.0, atol=1e-5)
    extra = np.where(np.arange(n)[:, None, None] >= 40, Rotation.from_euler("y", 3, degrees=True).as_matrix(), np.eye(3))
    err = wm.camera_rotation_error_deg(extra @ pred, r_gt)
    assert np.allclose(err[:40], 0.0, atol=1e-5) and np.allclose(err[40:], 3.0, atol=1e-6)


def test_travel_ratio_is_the_scale_of_the_path_and_ignores_jitter():
    gt = walk(200)
    assert wm.travel_ratio(0.8 * gt + [1, 0, 2], gt, HIPS) == pytest.approx(0.8)
    jitter = np.random.default_rng(4).normal(scale=0.003, size=gt.shape)     # 3 mm per frame
    assert wm.travel_ratio(gt + jitter, gt, HIPS) == pytest.approx(1.0, abs=0.02)
    assert wm.travel_ratio(gt[:20], gt[:20], HIPS) is None          # 0.8 m walked: too short to say
