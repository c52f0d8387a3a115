"""Plane-to-plane geometry: DLT homographies from point correspondences, and the 135-d stacks.

The homography H maps a point of frame t-1 to frame t: [x', y', 1]^T ~ H [x, y, 1]^T. It is
estimated by the direct linear transform (METHOD.md section 4): each correspondence gives the rows
[-x, -y, -1, 0, 0, 0, x'x, x'y, x'] and [0, 0, 0, -x, -y, -1, y'x, y'y, y'], H is the right singular
vector of the stacked matrix with the smallest singular value, reshaped 3x3 and divided by H[0,0]
(the paper: "normalised by the top-left corner element"). Coordinates are Hartley-normalised first
(centroid at 0, mean distance sqrt(2)) and the normalisation is undone after: same H, better
conditioned. Failures (too few points, collinear points, |H[0,0]| ~ 0, non-finite) give the
identity and valid=False, never NaN.

Two implementations with the same contract: `dlt_homography` (torch, batched, any device) and
`dlt_homography_np` (numpy). Both work in float64 internally.
"""
from __future__ import annotations

import numpy as np
import torch

MIN_POINTS = 4            # a homography has 8 degrees of freedom, two equations per point
RANK_TOL = 1e-6           # second-smallest / largest singular value below this: no unique solution
MIN_ABS_H00 = 1e-6        # |H[0,0]| of the unit-norm H below this: the paper's normalisation fails


def _check_pairs(src_shape: tuple[int, ...], dst_shape: tuple[int, ...]) -> None:
    if len(src_shape) != 3 or src_shape[-1] != 2 or tuple(src_shape) != tuple(dst_shape):
        raise ValueError(f"expected src and dst of shape (B, N, 2), got {tuple(src_shape)} and {tuple(dst_shape)}")


# -- torch ---------------------------------------------------------------------------------------
def dlt_homography(
    src: torch.Tensor,
    dst: torch.Tensor,
    mask: torch.Tensor | None = None,
    min_points: int = MIN_POINTS,
    min_abs_h00: float = MIN_ABS_H00,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Homographies mapping src to dst by DLT, one per batch item.

    Args:
        src, dst: (B, N, 2) corresponding points (pixels).
        mask: (B, N) bool, which correspondences to use (default: all); non-finite points are
            dropped whatever the mask says.
        min_points: fewest usable correspondences for a valid estimate (>= 4).
        min_abs_h00: smallest |H[0,0]| of the unit-Frobenius-norm H accepted before dividing by it.

    Returns:
        H: (B, 3, 3) with H[:, 0, 0] == 1 (the identity where invalid), dtype of src.
        valid: (B,) bool.
    """
    _check_pairs(tuple(src.shape), tuple(dst.shape))
    B, N, _ = src.shape
    out_dtype = src.dtype if src.is_floating_point() else torch.float32
    s, d = src.to(torch.float64), dst.to(torch.float64)
    m = torch.ones(B, N, dtype=torch.bool, device=src.device) if mask is None else mask.to(torch.bool).clone()
    m &= torch.isfinite(s).all(-1) & torch.isfinite(d).all(-1)
    w = m.to(torch.float64)                                             # (B, N)
    s = torch.where(m[..., None], s, torch.zeros_like(s))               # NaNs must not reach the SVD
    d = torch.where(m[..., None], d, torch.zeros_like(d))
    Ts, sn = _hartley(s, w)
    Td, dn = _hartley(d, w)

    x, y = sn.unbind(-1)
    u, v = dn.unbind(-1)
    zero, one = torch.zeros_like(x), torch.ones_like(x)
    r1 = torch.stack([-x, -y, -one, zero, zero, zero, u * x, u * y, u], -1)   # (B, N, 9)
    r2 = torch.stack([zero, zero, zero, -x, -y, -one, v * x, v * y, v], -1)
    # The 9x9 normal matrix A^T A (A: the (B, 2N, 9) stacked rows, unused rows weighted 0) has
    # the same right singular vectors as A; its SVD is cheap for any N.
    wr1, wr2 = r1 * w[..., None], r2 * w[..., None]
    _, sv, vh = torch.linalg.svd(wr1.transpose(1, 2) @ wr1 + wr2.transpose(1, 2) @ wr2)
    Hn = vh[:, -1].reshape(B, 3, 3)
    H = torch.linalg.inv(Td) @ Hn @ Ts
    H = H / torch.linalg.matrix_norm(H).clamp_min(1e-300)[:, None, None]

    # sv are squared singular values of A: compare sqrt ratios
    unique = (sv[:, -2].clamp_min(0).sqrt() > RANK_TOL * sv[:, 0].clamp_min(0).sqrt()) if N else torch.zeros(B, dtype=torch.bool)
    h00 = H[:, 0, 0]
    valid = (m.sum(1) >= max(min_points, MIN_POINTS)) & unique & (h00.abs() > min_abs_h00)
    H = H / torch.where(valid, h00, torch.ones_like(h00))[:, None, None]
    valid &= torch.isfinite(H).all(-1).all(-1)
    eye = torch.eye(3, dtype=torch.float64, device=src.device).expand(B, 3, 3)
    H = torch.where(valid[:, None, None], H, eye)
    return H.to(out_dtype), valid


def _hartley(p: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted Hartley normalisation of (B, N, 2) points: returns T (B, 3, 3) and T-mapped points."""
    n = w.sum(1).clamp_min(1.0)                                               # (B,)
    c = (p * w[..., None]).sum(1) / n[:, None]                               # (B, 2)
    dist = ((p - c[:, None]).norm(dim=-1) * w).sum(1) / n                    # (B,)
    scale = np.sqrt(2.0) / torch.where(dist > 0, dist, torch.ones_like(dist))
    T = torch.zeros(p.shape[0], 3, 3, dtype=p.dtype, device=p.device)
    T[:, 0, 0] = T[:, 1, 1] = scale
    T[:, :2, 2] = -scale[:, None] * c
    T[:, 2, 2] = 1.0
    return T, (p - c[:, None]) * scale[:, None, None]


# -- numpy ---------------------------------------------------------------------------------------
def dlt_homography_np(
    src: np.ndarray,
    dst: np.ndarray,
    mask: np.ndarray | None = None,
    min_points: int = MIN_POINTS,
    min_abs_h00: float = MIN_ABS_H00,
) -> tuple[np.ndarray, np.ndarray]:
    """numpy twin of `dlt_homography`: (B, N, 2) points -> H (B, 3, 3) float64, valid (B,) bool.

    A (N, 2) pair is accepted too and gives H (3, 3), valid ().
    """
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    single = src.ndim == 2
    if single:
        src, dst = src[None], dst[None]
        mask = None if mask is None else np.asarray(mask)[None]
    _check_pairs(src.shape, dst.shape)
    B, N, _ = src.shape
    m = np.ones((B, N), bool) if mask is None else np.asarray(mask, bool).copy()
    m &= np.isfinite(src).all(-1) & np.isfinite(dst).all(-1)
    w = m.astype(np.float64)
    s = np.where(m[..., None], src, 0.0)
    d = np.where(m[..., None], dst, 0.0)
    Ts, sn = _hartley_np(s, w)
    Td, dn = _hartley_np(d, w)

    x, y, u, v = sn[..., 0], sn[..., 1], dn[..., 0], dn[..., 1]
    zero, one = np.zeros_like(x), np.ones_like(x)
    r1 = np.stack([-x, -y, -one, zero, zero, zero, u * x, u * y, u], -1)
    r2 = np.stack([zero, zero, zero, -x, -y, -one, v * x, v * y, v], -1)
    A = np.concatenate([r1, r2], 1) * np.concatenate([w, w], 1)[..., None]   # (B, 2N, 9)
    if N == 0:
        eye = np.tile(np.eye(3), (B, 1, 1))
        return (eye[0], np.bool_(False)) if single else (eye, np.zeros(B, bool))
    if A.shape[1] < 9:                                   # zero rows keep the null space, give vh 9 rows
        A = np.concatenate([A, np.zeros((B, 9 - A.shape[1], 9))], 1)
    _, sv, vh = np.linalg.svd(A, full_matrices=False)    # SVD of A itself (torch uses A^T A): a cross-check
    Hn = vh[:, -1].reshape(B, 3, 3)
    H = np.linalg.inv(Td) @ Hn @ Ts
    H = H / np.maximum(np.linalg.norm(H, axis=(1, 2)), 1e-300)[:, None, None]

    unique = sv[:, 7] > RANK_TOL * sv[:, 0]
    h00 = H[:, 0, 0]
    valid = (m.sum(1) >= max(min_points, MIN_POINTS)) & unique & (np.abs(h00) > min_abs_h00)
    with np.errstate(all="ignore"):
        H = H / np.where(valid, h00, 1.0)[:, None, None]
    valid &= np.isfinite(H).all((1, 2))
    H = np.where(valid[:, None, None], H, np.eye(3))
    return (H[0], valid[0]) if single else (H, valid)


def _hartley_np(p: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.maximum(w.sum(1), 1.0)
    c = (p * w[..., None]).sum(1) / n[:, None]
    dist = (np.linalg.norm(p - c[:, None], axis=-1) * w).sum(1) / n
    scale = np.sqrt(2.0) / np.where(dist > 0, dist, 1.0)
    T = np.zeros((p.shape[0], 3, 3))
    T[:, 0, 0] = T[:, 1, 1] = scale
    T[:, :2, 2] = -scale[:, None] * c
    T[:, 2, 2] = 1.0
    return T, (p - c[:, None]) * scale[:, None, None]


# -- applying and stacking -----------------------------------------------------------------------
def apply_homography_np(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Map (..., N, 2) points by (..., 3, 3) homographies; returns (..., N, 2)."""
    pts = np.asarray(pts, dtype=np.float64)
    ph = np.concatenate([pts, np.ones(pts.shape[:-1] + (1,))], -1) @ np.swapaxes(H, -1, -2)
    return ph[..., :2] / ph[..., 2:]


def box_grid(boxes: np.ndarray, n: int) -> np.ndarray:
    """A regular n x n grid of cell centres inside each box (You2Me uses 17 x 17).

    Args:
        boxes: (K, 4) x1, y1, x2, y2 in pixels.

    Returns:
        (K, n * n, 2) x, y, row-major (y outer).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    f = (np.arange(n) + 0.5) / n                                             # (n,) in (0, 1)
    xs = boxes[:, 0:1] + f[None] * (boxes[:, 2:3] - boxes[:, 0:1])           # (K, n)
    ys = boxes[:, 1:2] + f[None] * (boxes[:, 3:4] - boxes[:, 1:2])
    gx = np.broadcast_to(xs[:, None, :], (len(boxes), n, n))
    gy = np.broadcast_to(ys[:, :, None], (len(boxes), n, n))
    return np.stack([gx, gy], -1).reshape(len(boxes), n * n, 2)


IDENTITY9 = np.eye(3, dtype=np.float32).reshape(9)


def homography_stacks(h: np.ndarray, window: int = 15) -> np.ndarray:
    """The dynamic feature d_t of one track: row t = [H_{t-window+1}, ..., H_t] flattened.

    Args:
        h: (T, 9) row-major homographies of one track in frame order, h[k] mapping frame k-1 to k.
        window: homographies per stack (the paper: 15).

    Returns:
        (T, window * 9) float32; slots before the track's first frame hold the identity.
    """
    h = np.asarray(h, dtype=np.float32)
    if h.ndim != 2 or h.shape[1] != 9:
        raise ValueError(f"expected homographies of shape (T, 9), got {h.shape}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    T = h.shape[0]
    padded = np.concatenate([np.tile(IDENTITY9, (window - 1, 1)), h], 0)     # (window-1+T, 9)
    idx = np.arange(T)[:, None] + np.arange(window)[None, :]                 # (T, window): t .. t+window-1
    return padded[idx].reshape(T, window * 9)
