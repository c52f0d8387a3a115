"""Issue 19: our Pr-VIPE losses and L_dt camera against second implementations written from the
references' published definitions (google-research poem, HMMR). Each of these fails on the
behaviour before the fix (numbers in the comments)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from video2mesh.models.training import losses as L

# ----------------------------------------------------------------------------- poem's triplet loss


def _poem_kernel(x, y, a, b):
    """-log p(m | x, y) with poem's sigmoid matching probability (s = 0.1), one sample per side."""
    p = 0.9 / (1 + np.exp(a * np.linalg.norm(x - y) - b)) + 0.05
    return -np.log(p)


def _poem_triplet(mu_a, mu_p, negative, a, b, margin):
    """poem loss_utils.compute_keypoint_triplet_losses(use_semi_hard=True, exclude_inactive=True) with
    samples = means: semi-hard = negatives whose mining distance (kernel on means) is strictly above the
    anchor's positive one, the smallest of them; none -> distance max -> zero loss; mean over non-zero."""
    n = len(mu_a)
    d = np.array([[_poem_kernel(mu_a[i], mu_p[j], a, b) for j in range(n)] for i in range(n)])
    out = []
    for i in range(n):
        cand = [j for j in range(n) if negative[i, j] and d[i, j] > d[i, i]]
        d_neg = min(d[i, j] for j in cand) if cand else np.finfo(np.float64).max
        out.append(max(0.0, d[i, i] + margin - d_neg))
    out = np.array(out)
    active = np.count_nonzero(out)
    return out.mean() / max(1e-12, active / n)


def test_triplet_ratio_loss_averages_over_active_triplets():
    # The mixed case: one triplet at ln 2, one inactive. poem: 0.693; the old mean over anchors: 0.347.
    d_pos = torch.tensor([1.0, 1.0])
    d_neg = torch.tensor([1.0, 5.0])
    assert L.triplet_ratio_loss(d_pos, d_neg, math.log(2)).item() == pytest.approx(math.log(2))
    assert L.triplet_ratio_loss(d_pos, torch.tensor([9.0, 9.0]), math.log(2)).item() == 0.0


def test_embedder_triplet_term_equals_poem_on_a_mixed_batch():
    rng = np.random.default_rng(0)
    n, dim = 8, 3
    mu_a = rng.normal(0, 1, (n, dim))
    mu_p = mu_a + rng.normal(0, 0.3, (n, dim))
    mu_p[1] = mu_a[1] + 6.0            # positive far away: no semi-hard negative (old code took the hardest)
    mu_p[2] = mu_a[2]                  # its semi-hard negatives may lie beyond the margin: inactive
    pose = torch.as_tensor(rng.normal(0, 0.3, (n, 13, 3)))
    negative = (L.pose3d_distance(pose, pose) >= 0.1).numpy() & ~np.eye(n, dtype=bool)
    assert negative.sum() == n * (n - 1)                             # random poses: every other pose is a negative
    raw_a, b = torch.tensor(-0.65, dtype=torch.float64), torch.tensor(-0.5, dtype=torch.float64)
    a = math.exp(-0.65)                                              # ELU(x) + 1 = e^x for x < 0
    sig = torch.full((n, dim), 1e-12, dtype=torch.float64)          # samples = means
    out = L.embedder_loss(torch.as_tensor(mu_a), sig, torch.as_tensor(mu_p), sig, pose, raw_a, b,
                          generator=torch.Generator().manual_seed(0))
    ref = _poem_triplet(mu_a, mu_p, negative, a, -0.5, math.log(2))
    # Measured on this batch: poem (and ours now) 0.4441; before the fix (mean over anchors, hard fallback) 0.6086.
    assert out["ratio"].item() == pytest.approx(ref, rel=1e-9)


# ----------------------------------------------------------------------------- poem's 3D normalisation


def _poem_normalise(p, offset, pairs):
    centre = p[list(offset)].mean(0)
    scale = sum(np.linalg.norm(p[list(s)].mean(0) - p[list(e)].mean(0)) for s, e in pairs)
    return (p - centre) / scale


def _poem_pa_mpjpe(target, source):
    """poem keypoint_utils.compute_procrustes_aligned_mpjpes: source aligned onto target (both
    standardised; R from the SVD of T^T S with the last sign fixed to a proper rotation)."""
    t0, s0 = target - target.mean(0), source - source.mean(0)
    ts, ss = np.sqrt((t0 ** 2).sum()), np.sqrt((s0 ** 2).sum())
    u, sv, vt = np.linalg.svd((t0 / ts).T @ (s0 / ss))
    v = vt.T
    sign = np.sign(np.linalg.det(v @ u.T))
    sv, v = sv * np.r_[1, 1, sign], v * np.r_[1, 1, sign]
    r = v @ u.T
    scale = sv.sum() * ts / ss
    aligned = target.mean(0) - scale * source.mean(0) @ r + scale * source @ r
    return np.linalg.norm(aligned - target, axis=1).mean()


@pytest.mark.parametrize("joints", [13, 17])
def test_pose3d_distance_is_poems_keypoint_distance(joints):
    rng = np.random.default_rng(joints)
    p = rng.normal(0, 0.3, (3, joints, 3))
    q = p + rng.normal(0, 0.05, p.shape)
    if joints == 17:   # LEGACY_3DH36M17: offset Hip (0), scale |Hip - Spine (10)| + |Spine - Thorax (3)|
        prof = ((0,), (((0,), (10,)), ((10,), (3,))))
    else:              # 3DSTD13: offset hip midpoint, scale |shoulder midpoint - hip midpoint|
        prof = ((7, 8), (((1, 2), (7, 8)),))
    # poem's negative indicator: distance(anchor i, match j) aligns the match onto the anchor.
    ref = np.array([[_poem_pa_mpjpe(_poem_normalise(x, *prof), _poem_normalise(y, *prof)) for y in q] for x in p])
    ours = L.pose3d_distance(torch.as_tensor(p), torch.as_tensor(q)).numpy()
    # Before the fix, pair (0, 1): 13 joints 0.9491 vs poem's 1.0411 (the anchor was aligned onto the match,
    # poem aligns the match onto the anchor); 17 joints 0.6748 vs poem's 0.2456 (read as COCO-13 indices).
    assert np.allclose(ours, ref, rtol=1e-8)
    with pytest.raises(ValueError, match="13, 3"):
        L.normalise_pose3d(torch.zeros(2, 14, 3))


# ----------------------------------------------------------------------------- HMMR's L_dt camera


def _hmmr_reference(x, y, vis):
    """procrustes2d_vis as published: binary vis, A = Xc^T Xc + 1e-6 I, B = Xc^T Yc, s = tr(A^-1 B) / 2
    clipped to [0.7, 10], t = mu_y / s - mu_x."""
    v = (vis > 0).astype(float)[:, None]
    n = v.sum()
    mx, my = (v * x).sum(0) / n, (v * y).sum(0) / n
    xc, yc = v * (x - mx), v * (y - my)
    s = np.clip(np.trace(np.linalg.inv(xc.T @ xc + 1e-6 * np.eye(2)) @ (xc.T @ yc)) / 2, 0.7, 10)
    return np.r_[s, my / s - mx]


def test_hmmr_camera_matches_reference_and_lstsq_fits_better():
    rng = np.random.default_rng(3)
    worse = []
    for _ in range(20):
        x = rng.normal(0, 0.3, (17, 2)) * np.array([1.0, 0.3])           # anisotropic: a side-on pose
        vis = rng.random(17) * (rng.random(17) > 0.2)
        vis[:3] = 0.9
        y = 2.0 * x @ np.array([[1.0, 0.2], [-0.2, 1.0]]) + 0.1 + rng.normal(0, 0.02, x.shape)
        ref = _hmmr_reference(x, y, vis)
        cam_h = L.hmmr_procrustes2d_vis(torch.tensor(x), torch.tensor(y), torch.tensor(vis)).numpy()
        assert np.allclose(cam_h, ref, rtol=1e-5, atol=1e-7)
        cam_l = L.optimal_weak_perspective(torch.tensor(x), torch.tensor(y), torch.tensor((vis > 0) * 1.0)).numpy()
        err = lambda c: (((c[0] * (x + c[1:]) - y) ** 2).sum(1) * (vis > 0)).sum()  # noqa: E731
        worse.append(err(ref) - err(cam_l))
    # The least-squares camera minimises the 2D error it is used for; HMMR's is never better here.
    assert min(worse) >= -1e-9 and max(worse) > 0


def test_dynamics_loss_camera_option():
    g = torch.Generator().manual_seed(0)
    pred = {"rotmat": torch.eye(3).repeat(2, 24, 1, 1), "betas": torch.zeros(2, 10),
            "kp3d": torch.randn(2, 17, 3, generator=g), "j14": torch.zeros(2, 14, 3)}
    kp = torch.cat([torch.randn(2, 17, 2, generator=g), torch.ones(2, 17, 1)], -1)
    tgt = {"kp2d": kp, "j14": torch.zeros(2, 14, 3), "pose": torch.zeros(2, 72), "betas": torch.zeros(2, 10),
           "has_3d": torch.zeros(2), "has_smpl": torch.zeros(2)}
    w = L.LossWeights()
    a, b = (L.dynamics_loss(pred, tgt, w, c)["kp_2d"] for c in ("lstsq", "hmmr"))
    assert a.item() <= b.item() + 1e-9
    with pytest.raises(ValueError, match="camera"):
        L.dynamics_loss(pred, tgt, w, "weak")
