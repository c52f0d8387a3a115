"""Losses against independent references (numpy lstsq, closed forms, hand-built cases)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from video2mesh.models.training import losses as L


def _lstsq_camera(x, y, vis):
    """Independent reference: solve [s, t'] from the visible rows by numpy least squares."""
    rows, rhs = [], []
    for j in np.flatnonzero(vis):
        rows += [[x[j, 0], 1, 0], [x[j, 1], 0, 1]]
        rhs += [y[j, 0], y[j, 1]]
    s, tx, ty = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
    return s, np.array([tx, ty])


def test_optimal_camera_equals_lstsq_and_ignores_invisible_joints():
    rng = np.random.default_rng(0)
    for trial in range(20):
        x = rng.normal(0, 0.3, (17, 2))
        vis = rng.random(17) > 0.3
        vis[:3] = True
        s_true = rng.uniform(1.0, 5.0)
        y = s_true * x + rng.normal(0, 0.2, 2) + rng.normal(0, 0.05, (17, 2))
        y[~vis] = rng.normal(0, 100, (int((~vis).sum()), 2))                # garbage where invisible
        s_ref, t_ref = _lstsq_camera(x, y, vis)
        cam = L.optimal_weak_perspective(torch.tensor(x), torch.tensor(y), torch.tensor(vis, dtype=torch.float64))
        assert cam.dtype == torch.float64
        assert np.isclose(cam[0].item(), s_ref, rtol=1e-5), trial
        proj = L.project_weak_perspective(torch.tensor(np.c_[x, np.zeros(17)]), cam).numpy()
        assert np.allclose(proj, s_ref * x + t_ref, atol=1e-5)


def test_optimal_camera_clips_scale_batched_and_has_no_gradient():
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.normal(0, 0.3, (2, 3, 13, 2)), requires_grad=True)
    y = torch.cat([0.1 * x[:1].detach(), 50 * x[1:].detach()])               # true scales 0.1 and 50
    cam = L.optimal_weak_perspective(x, y, torch.ones(2, 3, 13))
    assert cam.shape == (2, 3, 3) and not cam.requires_grad
    assert torch.allclose(cam[0, :, 0], torch.tensor(0.7, dtype=cam.dtype))
    assert torch.allclose(cam[1, :, 0], torch.tensor(10.0, dtype=cam.dtype))


def test_keypoint_2d_loss_weights_by_confidence():
    pred = torch.zeros(4, 2)
    tgt = torch.tensor([[1.0, 0, 1], [0, 2, 0.5], [3, 3, 0], [0, 0, 1]])
    assert L.keypoint_2d_loss(pred, tgt).item() == pytest.approx((1 + 0.5 * 4) / 8)


def test_keypoint_3d_loss_is_translation_invariant_and_masked():
    rng = np.random.default_rng(2)
    g = torch.tensor(rng.normal(0, 0.3, (5, 14, 3)))
    p = g + torch.tensor([1.0, 2, 3])
    assert L.keypoint_3d_loss(p, g, torch.ones(5)).item() == pytest.approx(0, abs=1e-12)
    q = g.clone()
    q[0, 5, 0] += 0.3                                                        # not the pelvis joints 2, 3
    assert L.keypoint_3d_loss(q, g, torch.ones(5)).item() == pytest.approx(0.09 / (5 * 14 * 3))
    assert L.keypoint_3d_loss(q, g, torch.tensor([0, 1, 1, 1, 1])).item() == 0


def test_pose_loss_zero_for_matching_rotations():
    aa = np.random.default_rng(3).normal(0, 0.5, (6, 24, 3))
    rot = torch.tensor(Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(6, 24, 3, 3))
    assert L.pose_loss(rot, torch.tensor(aa.reshape(6, 72)), torch.ones(6)).item() == pytest.approx(0, abs=1e-12)


def test_uncertainty_loss_closed_form():
    mu = torch.tensor([[[1.0, 2.0]]])
    sig = torch.tensor([[[1.0, 1.0]]])                                      # weights 0.5, 0.5
    mu_h = torch.tensor([[[0.0, 0.0]]])
    assert L.uncertainty_loss(mu, sig, mu_h, sig).item() == pytest.approx(math.hypot(0.5, 1.0))
    assert L.uncertainty_loss(mu, sig, mu, 3 * sig).item() == pytest.approx(0)   # only relative sigma matters


def test_matching_prob_bounds_and_init_value():
    raw_a, b = torch.tensor(-0.65), torch.tensor(-0.5)
    z = torch.zeros(3, 32)
    p0 = L.matching_prob(z, z, raw_a, b)
    assert torch.allclose(p0, torch.tensor(0.9 / (1 + math.exp(0.5)) + 0.05))
    far = L.matching_prob(z, z + 100, raw_a, b)
    assert torch.allclose(far, torch.tensor(0.05), atol=1e-6)


def test_distance_kernel_with_one_sample_is_minus_log_p():
    rng = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(4, 1, 8, generator=rng), torch.randn(4, 1, 8, generator=rng)
    raw_a, b = torch.tensor(0.2), torch.tensor(0.1)
    d = L.distance_kernel(z1, z2, raw_a, b)
    assert torch.allclose(d, -torch.log(L.matching_prob(z1[:, 0], z2[:, 0], raw_a, b)))


def test_semi_hard_negatives_picks_closest_farther_than_positive():
    d_ap = torch.tensor([1.0, 1.0, 1.0])
    d_an = torch.tensor([[0.5, 1.5, 3.0], [0.2, 0.4, 0.9], [9.0, 9.0, 9.0]])
    allowed = torch.tensor([[True, True, True], [True, True, True], [False, False, False]])
    assert L.semi_hard_negatives(d_ap, d_an, allowed).tolist() == [1, -1, -1]   # poem: no hard fallback


def test_pose3d_distance_invariant_to_similarity():
    rng = np.random.default_rng(4)
    p = torch.tensor(rng.normal(0, 0.3, (3, 13, 3)))
    r = torch.tensor(Rotation.random(random_state=5).as_matrix())
    q = 2.5 * p @ r.T + torch.tensor([0.1, 0.2, 0.3])
    d = L.pose3d_distance(p, q)
    assert torch.allclose(torch.diagonal(d), torch.zeros(3, dtype=d.dtype), atol=1e-9)
    assert (d[~torch.eye(3, dtype=torch.bool)] > 0.1).all()


def test_embedder_loss_terms_and_gradients():
    g = torch.Generator().manual_seed(0)
    n, d = 8, 4
    mu_a = torch.randn(n, d, generator=g, requires_grad=True)
    sig = torch.full((n, d), 0.5, requires_grad=True)
    raw_a, b = torch.tensor(-0.65, requires_grad=True), torch.tensor(-0.5, requires_grad=True)
    pose = torch.randn(n, 13, 3, generator=g)
    out = L.embedder_loss(mu_a, sig, mu_a + 0.01, sig, pose, raw_a, b, generator=g)
    assert set(out) == {"ratio", "positive", "kl", "total"}
    out["total"].backward()
    for t in (mu_a, sig, raw_a, b):
        assert t.grad is not None and torch.isfinite(t.grad).all()
