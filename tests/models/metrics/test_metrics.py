"""Metrics against hand-computed values, and torch against numpy."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from video2mesh.models.metrics import accuracy as M


def _rand_joints(rng, shape=(2, 5, 14)):
    return rng.normal(0, 0.3, shape + (3,))


def test_similarity_transform_gives_zero_pa_mpjpe_and_known_mpjpe():
    rng = np.random.default_rng(0)
    gt = _rand_joints(rng)                                           # (2, 5, 14, 3)
    r = Rotation.random(random_state=1).as_matrix()
    s, t = 1.7, np.array([0.3, -0.2, 1.0])
    pred = s * gt @ r.T + t
    assert np.allclose(M.pa_mpjpe(pred, gt), 0, atol=1e-9)
    # MPJPE without alignment equals the mean distance computed point by point.
    expect = np.mean([[np.mean([np.sqrt(((pred[b, f, j] - gt[b, f, j]) ** 2).sum()) for j in range(14)])
                       for f in range(5)] for b in range(2)], axis=1)
    assert np.allclose(M.mpjpe(pred, gt).mean(-1), expect)
    # A pure translation: MPJPE is |t| before root alignment and 0 after.
    shifted = gt + t
    assert np.allclose(M.mpjpe(shifted, gt), np.linalg.norm(t))
    assert np.allclose(M.mpjpe(M.align_root(shifted), M.align_root(gt)), 0, atol=1e-12)


def test_pa_mpjpe_rejects_reflection():
    rng = np.random.default_rng(2)
    gt = _rand_joints(rng, (14,))
    mirrored = gt * np.array([-1.0, 1, 1])                           # a reflection is not a rotation
    assert M.pa_mpjpe(mirrored, gt) > 1e-2
    # Reference: best proper rotation through scipy (which solves the same Kabsch problem) + scale.
    a, b = mirrored - mirrored.mean(0), gt - gt.mean(0)
    rot, _ = Rotation.align_vectors(b, a)
    ra = rot.apply(a)
    s = (ra * b).sum() / (a ** 2).sum()
    ref = np.linalg.norm(s * ra + gt.mean(0) - gt, axis=-1).mean()
    assert np.isclose(M.pa_mpjpe(mirrored, gt), ref, rtol=1e-6)


def test_constant_velocity_has_zero_acceleration():
    rng = np.random.default_rng(3)
    x0, v = _rand_joints(rng, (1, 14)), rng.normal(0, 0.05, (1, 14, 3))
    seq = x0 + np.arange(10)[:, None, None] * v                      # (10, 14, 3)
    assert np.allclose(M.accel(seq), 0, atol=1e-12)
    assert np.allclose(M.accel_error(seq, seq + 0.1), 0, atol=1e-12)


def test_single_displaced_frame_closed_form_accel_error():
    rng = np.random.default_rng(4)
    gt = _rand_joints(rng, (9, 14))
    pred, d = gt.copy(), np.array([0.01, 0.02, -0.02])              # |d| = 0.03 m
    pred[4] += d
    err = M.accel_error(pred, gt)                                    # centre frames 1..7
    # Second difference of a delta at t=4: +d at centres 3 and 5, -2d at centre 4.
    expect = np.zeros(7)
    expect[[2, 4]] = 0.03
    expect[3] = 0.06
    assert np.allclose(err, expect)
    assert np.isclose(err.mean() * 1000, 120 / 7)                    # mm/frame^2
    assert np.isclose(M.per_s2(err.mean() * 1000, 30), 120 / 7 * 900)


def test_accel_valid_drops_windows_touching_invalid_frames():
    v = np.array([1, 1, 1, 0, 1, 1, 1, 1], bool)
    assert M.accel_valid(v).tolist() == [True, False, False, False, True, True]


@pytest.mark.parametrize("fn", [M.mpjpe, M.pa_mpjpe, M.accel_error])
def test_torch_equals_numpy(fn):
    rng = np.random.default_rng(5)
    a, b = _rand_joints(rng, (3, 7, 14)), _rand_joints(rng, (3, 7, 14))
    out_np = fn(a, b)
    out_t = fn(torch.from_numpy(a), torch.from_numpy(b))
    assert isinstance(out_t, torch.Tensor) and out_t.shape == out_np.shape
    assert np.allclose(out_t.numpy(), out_np, atol=1e-10)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="equal shape"):
        M.mpjpe(np.zeros((5, 14, 3)), np.zeros((5, 13, 3)))
    with pytest.raises(ValueError, match="at least 3 frames"):
        M.accel(np.zeros((2, 14, 3)))


def test_summarise_in_mm():
    rng = np.random.default_rng(6)
    gt = _rand_joints(rng, (12, 14))
    pred = gt + np.array([0.0, 0.0, 0.05])                           # translation only
    m = M.summarise(pred, gt, protocol="unit-test", fps=25, pred_v=pred, gt_v=gt)
    assert m.mpjpe_mm == pytest.approx(0, abs=1e-9) and m.pa_mpjpe_mm == pytest.approx(0, abs=1e-6)
    assert m.accel_err_mm_per_frame2 == pytest.approx(0, abs=1e-9) and m.n_frames == 12
    assert m.mpvpe_mm == pytest.approx(50, abs=1e-6)                  # vertices are not aligned (VIBE compute_error_verts)
