"""Rotation representations: 6D (Zhou et al. 2019), rotation matrices and axis-angle.

The 6D layout is the one of HMR/SPIN/VIBE regressors: a 6-vector read as `x.view(-1, 3, 2)` holds
the first two columns of the rotation matrix, so `rotmat_to_rot6d(R)` is `R[..., :, :2]` flattened
row-major and `rot6d_to_rotmat(rotmat_to_rot6d(R)) == R` for any rotation R.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Below this angle (radians) the Rodrigues series replaces sin(t)/t and (1 - cos t)/t^2.
_SMALL_ANGLE = 1e-4


def _check_last(x: torch.Tensor, shape: tuple[int, ...], name: str) -> None:
    if tuple(x.shape[-len(shape):]) != shape:
        raise ValueError(f"{name}: expected shape (..., {', '.join(map(str, shape))}), got {tuple(x.shape)}")


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) or (..., 6k) 6D rotations -> (..., 3, 3) rotation matrices (Gram-Schmidt on columns).

    The trailing dimension is split into 6-vectors, so a (B, 144) SMPL pose gives (B, 24, 3, 3).
    """
    if x.shape[-1] % 6 != 0:
        raise ValueError(f"rot6d_to_rotmat: last dimension must be a multiple of 6, got {tuple(x.shape)}")
    lead = x.shape[:-1] + ((x.shape[-1] // 6,) if x.shape[-1] != 6 else ())
    m = x.reshape(-1, 3, 2)
    a1, a2 = m[:, :, 0], m[:, :, 1]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1).reshape(*lead, 3, 3)


def rotmat_to_rot6d(r: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 6): the first two columns, row-major (VIBE's layout)."""
    _check_last(r, (3, 3), "rotmat_to_rot6d")
    return r[..., :, :2].reshape(*r.shape[:-2], 6)


def _skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrix [v]_x."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], -1).reshape(*v.shape[:-1], 3, 3)


def axis_angle_to_rotmat(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle (axis * angle, radians) -> (..., 3, 3) by Rodrigues' formula.

    R = I + sin(t)/t K + (1 - cos t)/t^2 K^2 with K = [aa]_x; the two coefficients switch to their
    Taylor series below a small angle so that the value and the gradient are finite at 0.
    """
    _check_last(aa, (3,), "axis_angle_to_rotmat")
    t2 = (aa * aa).sum(-1)
    t = torch.sqrt(t2.clamp_min(_SMALL_ANGLE ** 2))
    small = t2 < _SMALL_ANGLE ** 2
    a = torch.where(small, 1 - t2 / 6, torch.sin(t) / t)
    b = torch.where(small, 0.5 - t2 / 24, (1 - torch.cos(t)) / (t * t))
    k = _skew(aa)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(k)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def rotmat_to_axis_angle(r: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle with angle in [0, pi].

    Away from pi the axis comes from the skew part (R - R^T)/2 = sin(t) [a]_x; near pi, where
    sin(t) vanishes, from the symmetric part (R + R^T)/2 - cos(t) I = (1 - cos t) a a^T (its
    largest column), with the sign taken from the skew part.
    """
    _check_last(r, (3, 3), "rotmat_to_axis_angle")
    v = 0.5 * torch.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], -1)
    s = v.norm(dim=-1)
    c = ((r.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    angle = torch.atan2(s, c)
    factor = torch.where(s < _SMALL_ANGLE, 1 + angle * angle / 6, angle / s.clamp_min(_SMALL_ANGLE))
    generic = v * factor[..., None]
    # Near pi: axis from the symmetric part.
    eye = torch.eye(3, dtype=r.dtype, device=r.device)
    sym = 0.5 * (r + r.transpose(-1, -2)) - c[..., None, None] * eye
    k = sym.diagonal(dim1=-2, dim2=-1).argmax(-1)
    col = torch.gather(sym, -1, k[..., None, None].expand(*k.shape, 3, 1)).squeeze(-1)
    axis = F.normalize(col, dim=-1)
    sign = torch.where((axis * v).sum(-1) < 0, -1.0, 1.0).to(r.dtype)
    near_pi = axis * (sign * angle)[..., None]
    return torch.where((c < -0.5)[..., None], near_pi, generic)


def rot6d_to_axis_angle(x: torch.Tensor) -> torch.Tensor:
    """(..., 6k) 6D rotations -> (..., 3k) axis-angle (a (B, 144) pose gives (B, 72))."""
    r = rot6d_to_rotmat(x)
    return rotmat_to_axis_angle(r).reshape(*x.shape[:-1], x.shape[-1] // 2)


def identity_rot6d(n: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """(6n,) identity rotations in the 6D layout."""
    one = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0], dtype=dtype, device=device)
    return one.repeat(n)
