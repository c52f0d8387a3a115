"""The paper's training losses (METHOD.md sections 3 and 6) as free functions on tensors.

- Generator loss L_G (VIBE weights: 300 L_2D, 300 L_3D, 60 L_pose, 0.06 L_shape).
- Dynamics loss L_dt: L_G at t +- dt of the poses predicted at t; its 2D term uses a closed-form
  weak-perspective camera: the exact weighted least squares by default, HMMR's procrustes2d_vis on request.
- Uncertainty loss L_unc (paper eq. 11) between embeddings of the input 2D pose and of the projected
  reconstruction.
- Pr-VIPE embedder losses: triplet ratio loss with semi-hard negatives, positive pairwise loss, KL.

Nothing here owns parameters: the embedder's `raw_a`, `b` come in as tensors, so these functions
serve the embedder's own training and the frozen use inside L_unc alike.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from smplx.lbs import batch_rodrigues

from video2mesh.models.nets.embedder import matching_prob, sample  # the embedder's own definitions (eq. 1's p and z)
from video2mesh.models.metrics.accuracy import procrustes_align

# ----------------------------------------------------------------------------- cameras


def optimal_weak_perspective(joints_xy: torch.Tensor, target_xy: torch.Tensor, visible: torch.Tensor,
                             scale_min: float = 0.7, scale_max: float = 10.0) -> torch.Tensor:
    """Closed-form camera aligning orthographic joints to 2D targets: the exact weighted least squares.

    Minimises sum_j w_j ||s x_j + t' - y_j||^2 over one scale s and a 2D offset t' (w = the targets'
    confidences), i.e. s = sum w <x - mx, y - my> / sum w ||x - mx||^2, then clips s to
    [scale_min, scale_max] (HMMR's range) and refits t' for the clipped s. This is not HMMR's
    procrustes2d_vis (`hmmr_procrustes2d_vis`: binary visibility, s = tr(A^-1 B) / 2 from a 2x2
    per-axis fit), which does not minimise that objective when the pose is anisotropic; the measured
    difference is in tests/models/training/test_losses.py. Returned in VIBE's convention
    proj = s * (x + t), t = t' / s. No gradient flows through the camera (a target, as in HMMR).

    joints_xy: (..., J, 2), target_xy: (..., J, 2), visible: (..., J) weights in [0, 1].
    Returns (..., 3) = [s, tx, ty]. Frames with fewer than 2 visible joints get s = scale_min, t = 0.
    """
    x, y, w = joints_xy.detach().float(), target_xy.detach().float(), visible.detach().float()
    wsum = w.sum(-1, keepdim=True).clamp_min(1e-8)                          # (..., 1)
    mx = (w[..., None] * x).sum(-2) / wsum                                  # (..., 2)
    my = (w[..., None] * y).sum(-2) / wsum
    xc, yc = x - mx[..., None, :], y - my[..., None, :]
    num = (w[..., None] * xc * yc).sum((-2, -1))
    den = (w[..., None] * xc * xc).sum((-2, -1)).clamp_min(1e-8)
    s = (num / den).clamp(scale_min, scale_max)
    return _camera_from(s, mx, my, (visible > 0).sum(-1) >= 2, scale_min).to(joints_xy.dtype)


def hmmr_procrustes2d_vis(joints_xy: torch.Tensor, target_xy: torch.Tensor, visible: torch.Tensor,
                          scale_min: float = 0.7, scale_max: float = 10.0) -> torch.Tensor:
    """HMMR's procrustes2d_vis (akanazawa/human_dynamics), as published:
    visibility binarised (> 0), means over visible joints, A = Xc^T Xc + 1e-6 I, B = Xc^T Yc (2x2),
    s = tr(A^-1 B) / 2 clipped to [scale_min, scale_max], t = my / s - mx. Same shapes and
    convention as `optimal_weak_perspective`; frames with < 2 visible joints get s = scale_min, t = 0."""
    v = (visible.detach() > 0).float()
    x, y = joints_xy.detach().float(), target_xy.detach().float()
    n = v.sum(-1, keepdim=True).clamp_min(1.0)
    mx, my = (v[..., None] * x).sum(-2) / n, (v[..., None] * y).sum(-2) / n
    xc, yc = v[..., None] * (x - mx[..., None, :]), v[..., None] * (y - my[..., None, :])
    a = xc.transpose(-1, -2) @ xc + 1e-6 * torch.eye(2, device=x.device)
    b = xc.transpose(-1, -2) @ yc
    s = (torch.linalg.solve(a, b).diagonal(dim1=-2, dim2=-1).sum(-1) / 2).clamp(scale_min, scale_max)
    return _camera_from(s, mx, my, (visible > 0).sum(-1) >= 2, scale_min).to(joints_xy.dtype)


def _camera_from(s: torch.Tensor, mx: torch.Tensor, my: torch.Tensor, enough: torch.Tensor, scale_min: float) -> torch.Tensor:
    """[s, t] with t = my / s - mx (VIBE's proj = s (x + t)); (s, t) = (scale_min, 0) where not enough joints."""
    s = torch.where(enough, s, torch.full_like(s, scale_min))
    t = torch.where(enough[..., None], my / s[..., None] - mx, torch.zeros_like(mx))
    return torch.cat([s[..., None], t], -1)


CAMERAS = {"lstsq": optimal_weak_perspective, "hmmr": hmmr_procrustes2d_vis}


def project_weak_perspective(joints: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """VIBE's weak perspective: (..., J, 3) joints, (..., 3) [s, tx, ty] -> (..., J, 2) = s (X_xy + t)."""
    return cam[..., None, :1] * (joints[..., :2] + cam[..., None, 1:])


# ----------------------------------------------------------------------------- generator loss


@dataclass(frozen=True)
class LossWeights:
    """Weights of every term. L_G's inner weights are VIBE's configs/config.yaml values; the paper
    gives no numbers for lambda_G, lambda_dt, lambda_unc, so they default to 1 (ablations set 0)."""

    kp_2d: float = 300.0
    kp_3d: float = 300.0
    pose: float = 60.0
    shape: float = 0.06
    lambda_g: float = 1.0
    lambda_dt: float = 1.0
    lambda_unc: float = 1.0


def keypoint_2d_loss(pred_xy: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Confidence-weighted MSE in [-1, 1] crop coordinates (VIBE): (..., J, 2) vs (..., J, 3) [x, y, conf]."""
    conf = target[..., 2:]
    return (conf * (pred_xy - target[..., :2]) ** 2).mean()


def _pelvis_centred(j14: torch.Tensor) -> torch.Tensor:
    return j14 - 0.5 * (j14[..., 2:3, :] + j14[..., 3:4, :])               # mid-hip of the H36M-14 set


def keypoint_3d_loss(pred_j14: torch.Tensor, target_j14: torch.Tensor, has_3d: torch.Tensor) -> torch.Tensor:
    """MSE on pelvis-centred 14 common joints over frames that have 3D: (N, 14, 3) x2, (N,) -> scalar."""
    m = has_3d.bool().reshape(-1)
    if not m.any():
        return pred_j14.sum() * 0
    p = _pelvis_centred(pred_j14.reshape(-1, 14, 3)[m])
    g = _pelvis_centred(target_j14.reshape(-1, 14, 3)[m])
    return F.mse_loss(p, g)


def pose_loss(pred_rotmat: torch.Tensor, target_pose_aa: torch.Tensor, has_smpl: torch.Tensor) -> torch.Tensor:
    """MSE between rotation matrices: (N, 24, 3, 3) vs axis-angle (N, 72), mask (N,) -> scalar."""
    m = has_smpl.bool().reshape(-1)
    if not m.any():
        return pred_rotmat.sum() * 0
    p = pred_rotmat.reshape(-1, 24, 3, 3)[m]
    g = batch_rodrigues(target_pose_aa.reshape(-1, 72)[m].reshape(-1, 3).to(p.dtype)).view(-1, 24, 3, 3)
    return F.mse_loss(p, g)


def shape_loss(pred_betas: torch.Tensor, target_betas: torch.Tensor, has_smpl: torch.Tensor) -> torch.Tensor:
    """MSE on SMPL shape: (N, 10) x2, mask (N,) -> scalar."""
    m = has_smpl.bool().reshape(-1)
    if not m.any():
        return pred_betas.sum() * 0
    return F.mse_loss(pred_betas.reshape(-1, 10)[m], target_betas.reshape(-1, 10)[m])


def generator_loss(pred: dict[str, torch.Tensor], target: dict[str, torch.Tensor], w: LossWeights,
                   cam: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """L_G and its weighted terms.

    pred: rotmat (..., 24, 3, 3), betas (..., 10), kp3d (..., J, 3) joints in the 2D keypoint layout,
          j14 (..., 14, 3), cam (..., 3) unless `cam` is given.
    target: kp2d (..., J, 3) [x, y, conf] in [-1, 1] crop coords, j14 (..., 14, 3), pose (..., 72),
            betas (..., 10), has_3d (...,), has_smpl (...,).
    `cam` overrides the predicted camera (the dynamics loss passes the optimal camera).
    """
    cam = pred["cam"] if cam is None else cam
    kp2d = project_weak_perspective(pred["kp3d"], cam)
    terms = {
        "kp_2d": w.kp_2d * keypoint_2d_loss(kp2d, target["kp2d"]),
        "kp_3d": w.kp_3d * keypoint_3d_loss(pred["j14"], target["j14"], target["has_3d"]),
        "pose": w.pose * pose_loss(pred["rotmat"], target["pose"], target["has_smpl"]),
        "shape": w.shape * shape_loss(pred["betas"], target["betas"], target["has_smpl"]),
    }
    terms["total"] = sum(terms.values())
    return terms


def dynamics_loss(pred_shifted: dict[str, torch.Tensor], target_shifted: dict[str, torch.Tensor],
                  w: LossWeights, camera: str = "lstsq") -> dict[str, torch.Tensor]:
    """L_dt: L_G of the poses predicted for t + dt (or t - dt) against the ground truth at that frame.

    The camera at the shifted frame is not predicted, so the 2D term uses a closed-form camera fitted
    to the target joints: `camera` = "lstsq" (`optimal_weak_perspective`, the default: it minimises the
    2D error it is used for) or "hmmr" (`hmmr_procrustes2d_vis`, HMMR's formula). Same dict layout as
    `generator_loss` (no 'cam').
    """
    if camera not in CAMERAS:
        raise ValueError(f"unknown L_dt camera {camera!r}; choose one of {sorted(CAMERAS)}")
    kp = target_shifted["kp2d"]
    cam = CAMERAS[camera](pred_shifted["kp3d"][..., :2], kp[..., :2], kp[..., 2])
    return generator_loss(pred_shifted, target_shifted, w, cam=cam)


def uncertainty_loss(mu: torch.Tensor, sigma: torch.Tensor, mu_hat: torch.Tensor, sigma_hat: torch.Tensor) -> torch.Tensor:
    """Paper eq. 11: sum_t || w_t mu_t - w^_t mu^_t ||_2 with w = sigma^2 / sum_d sigma^2.

    mu, sigma, mu_hat, sigma_hat: (B, T, D). Summed over T as in the paper, averaged over B.
    """
    v = sigma ** 2 / (sigma ** 2).sum(-1, keepdim=True) * mu
    v_hat = sigma_hat ** 2 / (sigma_hat ** 2).sum(-1, keepdim=True) * mu_hat
    return torch.linalg.vector_norm(v - v_hat, dim=-1).sum(-1).mean()


# ----------------------------------------------------------------------------- embedder (Pr-VIPE)


def distance_kernel(z1: torch.Tensor, z2: torch.Tensor, raw_a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Paper eq. 1: D_m = -log mean_{k,k'} p(m | z1^k, z2^k'): samples (N, K, D) x2 -> (N,)."""
    p = matching_prob(z1[:, :, None], z2[:, None, :], raw_a, b)            # (N, K, K)
    return -torch.log(p.mean((1, 2)))


# Pr-VIPE's 3D normalisation, per keypoint layout (google-research poem/core/keypoint_profiles.py):
# offset = mean of the offset joints; scale = sum over pairs of |mean(start) - mean(end)| (unit 1).
#   COCO-13 (our pools: BVH and SMPL COCO-13) = poem's "3DSTD13": offset mid-hip, one pair
#     (shoulder midpoint, hip midpoint);
#   H36M-17 in poem's order (Hip, Head, Neck/Nose, Thorax, LSho, RSho, LElb, RElb, LWri, RWri,
#     Spine, LHip, RHip, LKnee, RKnee, LFoot, RFoot) = poem's "LEGACY_3DH36M17", the profile its
#     released Pr-VIPE trained with: offset Hip, pairs (Hip, Spine) and (Spine, Thorax).
POSE3D_PROFILES = {
    13: ((7, 8), (((1, 2), (7, 8)),)),
    17: ((0,), (((0,), (10,)), ((10,), (3,)))),
}


def normalise_pose3d(pose: torch.Tensor) -> torch.Tensor:
    """Poem's 3D normalisation for (..., 13, 3) COCO-13 or (..., 17, 3) poem-order H36M-17 -> same shape.

    The 0.1 negative threshold is poem's on H36M-17. COCO-13 has no spine or thorax joint, so our
    pools use poem's own 13-joint profile (3DSTD13); how the two distances relate on the same poses
    is measured in docs/training.md ("Negative pairs")."""
    if pose.shape[-2] not in POSE3D_PROFILES:
        raise ValueError(f"normalise_pose3d: expected (..., 13, 3) COCO-13 or (..., 17, 3) H36M-17, got {tuple(pose.shape)}")
    offset, pairs = POSE3D_PROFILES[pose.shape[-2]]
    mean = lambda idx: pose[..., list(idx), :].mean(-2, keepdim=True)  # noqa: E731
    scale = sum(torch.linalg.vector_norm(mean(a) - mean(b), dim=-1, keepdim=True) for a, b in pairs)
    return (pose - mean(offset)) / scale.clamp_min(1e-6)


def pose3d_distance(p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
    """Pairwise Procrustes-aligned MPJPE on normalised 3D poses (poem's keypoint distance: entry (i, j)
    aligns p2[j] onto p1[i], as poem aligns each match onto its anchor):
    (N, J, 3), (M, J, 3) -> (N, M), J = 13 (COCO-13) or 17 (H36M-17, poem order)."""
    a, b = normalise_pose3d(p1), normalise_pose3d(p2)
    a, b = torch.broadcast_tensors(a[:, None].double(), b[None].double())
    return torch.linalg.vector_norm(procrustes_align(b, a) - a, dim=-1).mean(-1).to(p1.dtype)


def semi_hard_negatives(d_ap: torch.Tensor, d_an: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Poem's semi-hard mining: for each anchor, the allowed negative with the smallest mining distance
    among those strictly farther than its positive. d_ap (N,), d_an (N, M), allowed (N, M) -> (N,) index;
    -1 where no allowed negative is farther than the positive (poem then gives the anchor zero loss)."""
    big = torch.finfo(d_an.dtype).max
    outside = allowed & (d_an > d_ap[:, None])
    idx = torch.where(outside, d_an, torch.full_like(d_an, big)).argmin(1)
    return torch.where(outside.any(1), idx, torch.full_like(idx, -1))


def triplet_ratio_loss(d_pos: torch.Tensor, d_neg: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean of max(0, d_pos - d_neg + margin) over the active (non-zero) triplets, as poem
    (exclude_inactive_triplet_loss=True). d_pos (N,), d_neg (N,) with +inf where an anchor has no
    negative; 0 when no triplet is active."""
    losses = F.relu(d_pos - d_neg + margin)
    losses = torch.where(torch.isfinite(d_neg), losses, torch.zeros_like(losses))
    active = (losses > 0).sum().detach()
    return losses.sum() / active.clamp_min(1)


@dataclass(frozen=True)
class EmbedderLossWeights:
    """Pr-VIPE defaults (METHOD.md section 3)."""

    margin: float = math.log(2.0)      # alpha = ln 2: the positive must be twice as likely to match
    positive: float = 0.005
    kl: float = 0.001
    negative_min_dist: float = 0.1     # normalised-3D PA-MPJPE below this is "the same pose"
    samples: int = 20


def kl_to_standard_normal(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(N(mu, sigma^2) || N(0, I)): (N, D) x2 -> scalar."""
    # sigma = ELU + 1 underflows to 0 for very negative logits; clamp so log stays finite.
    return (0.5 * (sigma ** 2 + mu ** 2 - 1 - 2 * torch.log(sigma.clamp_min(1e-12)))).sum(-1).mean()


def embedder_loss(mu_a: torch.Tensor, sig_a: torch.Tensor, mu_p: torch.Tensor, sig_p: torch.Tensor,
                  pose3d: torch.Tensor, raw_a: torch.Tensor, b: torch.Tensor, w: EmbedderLossWeights = EmbedderLossWeights(),
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Pr-VIPE loss on a batch of N 3D poses seen from two random cameras.

    mu_a, sig_a: (N, D) embeddings of view 1 (anchors); mu_p, sig_p: (N, D) of view 2 (positives);
    pose3d: (N, 13 or 17, 3) the poses, which decide which pairs may be negatives. Negatives for anchor
    i are view-2 embeddings of poses j whose normalised PA-MPJPE to i is >= w.negative_min_dist, mined
    semi-hard on the distance between means (poem mines on -log p(mean, mean), a decreasing function
    of that distance: the same order). The ratio loss averages over active triplets (poem).
    """
    n = mu_a.shape[0]
    za, zp = sample(mu_a, sig_a, w.samples, generator), sample(mu_p, sig_p, w.samples, generator)
    d_pos = distance_kernel(za, zp, raw_a, b)                                # (N,)
    with torch.no_grad():
        allowed = pose3d_distance(pose3d, pose3d) >= w.negative_min_dist
        allowed &= ~torch.eye(n, dtype=torch.bool, device=mu_a.device)
        dm_ap = torch.linalg.vector_norm(mu_a - mu_p, dim=-1)
        dm_an = torch.cdist(mu_a, mu_p)
        neg = semi_hard_negatives(dm_ap, dm_an, allowed)
    has = neg >= 0
    d_neg = torch.full_like(d_pos, float("inf"))
    d_neg[has] = distance_kernel(za[has], zp[neg[has]], raw_a, b)
    ratio = triplet_ratio_loss(d_pos, d_neg, w.margin)
    terms = {"ratio": ratio, "positive": w.positive * d_pos.mean(),
             "kl": w.kl * 0.5 * (kl_to_standard_normal(mu_a, sig_a) + kl_to_standard_normal(mu_p, sig_p))}
    terms["total"] = sum(terms.values())
    return terms
