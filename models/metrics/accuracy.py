"""Evaluation metrics for 3D human pose and mesh sequences, in torch and numpy.

Every function takes either torch tensors or numpy arrays (the same code path is not shared: the
numpy and torch versions are written separately so that tests can check one against the other).
Inputs are batched `(..., T, J, 3)` in metres; errors come back in the input unit (multiply by 1000
for millimetres; `summarise` does it and says so in its field names).

Conventions follow the public evaluation code of VIBE / TCMR (METHOD.md section 7):
- MPJPE: mean per-joint L2 after both sides are root-aligned (root = mid-hip of the H36M-14 set).
- PA-MPJPE: MPJPE after a similarity Procrustes alignment of each frame's prediction onto the
  ground truth (rotation with det fix, s = tr(RK) / ||X1||^2, t = mu2 - s R mu1).
- Acceleration: the second difference x_{t-1} - 2 x_t + x_{t+1}, per joint norm, mean over joints:
  a per-frame quantity in metres / frame^2 (public code calls x1000 of it "mm/s^2"; it is mm/frame^2).
  `per_s2` converts with the frame rate: a / frame^2 = a * fps^2 / s^2.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

Array = np.ndarray | torch.Tensor
# Root of the 14 common (H36M-regressor) joints: mid-point of right hip (2) and left hip (3).
H36M14_ROOT = (2, 3)


def _check_pair(pred: Array, gt: Array) -> None:
    if pred.shape != gt.shape or pred.shape[-1] != 3:
        raise ValueError(f"expected pred and gt of equal shape (..., J, 3), got {tuple(pred.shape)} and {tuple(gt.shape)}")


def align_root(joints: Array, root: tuple[int, ...] = H36M14_ROOT) -> Array:
    """Subtract the mean of the `root` joints: (..., J, 3) -> (..., J, 3)."""
    r = joints[..., list(root), :].mean(-2, keepdims=True) if isinstance(joints, np.ndarray) \
        else joints[..., list(root), :].mean(-2, keepdim=True)
    return joints - r


def mpjpe(pred: Array, gt: Array) -> Array:
    """Mean per-joint position error (no alignment here): (..., J, 3) x2 -> (...)."""
    _check_pair(pred, gt)
    if isinstance(pred, torch.Tensor):
        return torch.linalg.vector_norm(pred - gt, dim=-1).mean(-1)
    return np.linalg.norm(pred - gt, axis=-1).mean(-1)


def mpvpe(pred_v: Array, gt_v: Array) -> Array:
    """Mean per-vertex L2 error, no alignment: (..., V, 3) x2 -> (...).

    As VIBE / TCMR / MEVA (`compute_error_verts`): both meshes come from SMPL with zero translation
    (pose and shape only), so no root is subtracted from either side. Subtracting each side's own
    mid-hip, as this module did before, changes the number (+2% on the synthetic body).
    """
    return mpjpe(pred_v, gt_v)


def procrustes_align(x1: Array, x2: Array) -> Array:
    """Similarity-align `x1` onto `x2` per frame: (..., N, 3) x2 -> aligned x1 (..., N, 3).

    Solves min_{s,R,t} ||s R x1 + t - x2||^2 with R a proper rotation (Umeyama / HMR convention).
    """
    _check_pair(x1, x2)
    if isinstance(x1, torch.Tensor):
        return _procrustes_torch(x1, x2)
    return _procrustes_numpy(np.asarray(x1, np.float64), np.asarray(x2, np.float64)).astype(x1.dtype)


def _procrustes_numpy(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    mu1, mu2 = x1.mean(-2, keepdims=True), x2.mean(-2, keepdims=True)
    a, b = x1 - mu1, x2 - mu2
    var1 = (a ** 2).sum((-2, -1))                                   # (...)
    k = np.swapaxes(a, -1, -2) @ b                                  # (..., 3, 3) = X1 X2^T in column form
    u, _, vh = np.linalg.svd(k)
    v = np.swapaxes(vh, -1, -2)
    z = np.broadcast_to(np.eye(3), k.shape).copy()
    z[..., 2, 2] = np.sign(np.linalg.det(u @ vh))                   # det fix: no reflections
    r = v @ z @ np.swapaxes(u, -1, -2)                              # (..., 3, 3)
    s = np.trace(r @ k, axis1=-2, axis2=-1) / var1                  # (...)
    return s[..., None, None] * a @ np.swapaxes(r, -1, -2) + mu2


def _procrustes_torch(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    mu1, mu2 = x1.mean(-2, keepdim=True), x2.mean(-2, keepdim=True)
    a, b = x1 - mu1, x2 - mu2
    var1 = a.pow(2).sum((-2, -1))
    k = a.transpose(-1, -2) @ b
    u, _, vh = torch.linalg.svd(k)
    v = vh.transpose(-1, -2)
    d = torch.sign(torch.linalg.det(u @ vh))
    z = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    r = v @ z @ u.transpose(-1, -2)
    s = torch.diagonal(r @ k, dim1=-2, dim2=-1).sum(-1) / var1
    return s[..., None, None] * a @ r.transpose(-1, -2) + mu2


def pa_mpjpe(pred: Array, gt: Array) -> Array:
    """MPJPE after per-frame similarity Procrustes: (..., J, 3) x2 -> (...)."""
    return mpjpe(procrustes_align(pred, gt), gt)


def _second_diff(x: Array) -> Array:
    # time is axis -3 of (..., T, J, 3)
    return x[..., :-2, :, :] - 2 * x[..., 1:-1, :, :] + x[..., 2:, :, :]


def accel(joints: Array) -> Array:
    """Acceleration magnitude, mean over joints: (..., T, J, 3) -> (..., T-2), unit / frame^2."""
    if joints.shape[-3] < 3:
        raise ValueError(f"acceleration needs at least 3 frames on axis -3, got shape {tuple(joints.shape)}")
    a = _second_diff(joints)
    if isinstance(a, torch.Tensor):
        return torch.linalg.vector_norm(a, dim=-1).mean(-1)
    return np.linalg.norm(a, axis=-1).mean(-1)


def accel_error(pred: Array, gt: Array) -> Array:
    """Acceleration error ||a_pred - a_gt|| mean over joints: (..., T, J, 3) x2 -> (..., T-2), unit / frame^2."""
    _check_pair(pred, gt)
    return accel(pred - gt)  # the second difference is linear, so a(pred) - a(gt) = a(pred - gt)


def accel_valid(valid: Array) -> Array:
    """Which acceleration frames to keep: (..., T) bool -> (..., T-2); all three frames must be valid.

    VIBE's compute_error_accel drops a centre frame t if any of t-1, t, t+1 is invisible.
    """
    if isinstance(valid, torch.Tensor):
        valid = valid.bool()
    else:
        valid = np.asarray(valid, bool)
    return valid[..., :-2] & valid[..., 1:-1] & valid[..., 2:]


def per_s2(per_frame2: Array, fps: float) -> Array:
    """Convert an acceleration in unit/frame^2 to unit/s^2 at `fps` frames per second."""
    return per_frame2 * float(fps) ** 2


@dataclass(frozen=True)
class Metrics:
    """Mean errors over every evaluated frame, millimetres. `protocol` names how frames were chosen."""

    protocol: str
    n_frames: int
    mpjpe_mm: float
    pa_mpjpe_mm: float
    mpvpe_mm: float | None
    accel_err_mm_per_frame2: float | None
    accel_err_mm_per_s2: float | None
    fps: float | None


def summarise(pred_j: np.ndarray, gt_j: np.ndarray, *, protocol: str, pred_v: np.ndarray | None = None,
              gt_v: np.ndarray | None = None, fps: float | None = None, sequential: bool = True,
              root: tuple[int, ...] = H36M14_ROOT) -> Metrics:
    """Mean metrics in mm over frames (T, J, 3) of one stream (or (N, T, J, 3) of several).

    `sequential=False` means the frames are not consecutive (TCMR middle frames of many windows are,
    VIBE stacked windows are only within a window): acceleration is then left out (None).
    Vertices (zero-translation SMPL meshes) are compared as they are, without alignment (`mpvpe`).
    """
    p, g = align_root(pred_j, root), align_root(gt_j, root)
    mpvpe_mm = None
    if pred_v is not None and gt_v is not None:
        mpvpe_mm = float(mpvpe(pred_v, gt_v).mean() * 1000)
    acc = acc_s2 = None
    if sequential and pred_j.shape[-3] >= 3:
        acc = float(accel_error(p, g).mean() * 1000)  # on root-aligned joints, as VIBE/TCMR
        acc_s2 = float(per_s2(acc, fps)) if fps else None
    return Metrics(protocol=protocol, n_frames=int(np.prod(pred_j.shape[:-2])),
                   mpjpe_mm=float(mpjpe(p, g).mean() * 1000), pa_mpjpe_mm=float(pa_mpjpe(pred_j, gt_j).mean() * 1000),
                   mpvpe_mm=mpvpe_mm, accel_err_mm_per_frame2=acc, accel_err_mm_per_s2=acc_s2, fps=fps)
