"""Camera rotation from background homographies: H = K R K^-1 for a camera that only turns.

For a pinhole camera with intrinsics K that rotates by R between two frames (or sees a scene far
enough away that its translation does not show), image points move by the homography
H ~ K R K^-1, so K^-1 H K is R up to scale. `rotation_from_homography` takes the nearest rotation
(SVD, determinant forced to +1) after dividing by the cube root of the determinant, and reports how
far from a rotation the scaled matrix was (zoom, parallax or a bad fit show up there).

Conventions: camera axes x right, y down, z forward (OpenCV); R maps a direction seen from camera
t-1 to the same direction seen from camera t (d_t = R d_{t-1}); chained, C_t = R_t C_{t-1} maps the
first frame's camera axes to camera t's. Points of the background (people masked out) are found by
`background_grid`, followed between frames by `track_points_lk` (OpenCV's pyramidal Lucas-Kanade),
and the homography by `robust_homography` (DLT of models.maths.geometry with
iterative trimming of the points it does not explain, e.g. other moving things).
`focal_from_rotation` turns the same relation around: a camera that turns without travelling
determines K, since only the true focal length makes its homographies rotations.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from .geometry import apply_homography_np, box_grid, dlt_homography_np


def intrinsics(focal_px: float, width: int, height: int) -> np.ndarray:
    """(3, 3) K of the fit's pinhole: focal `focal_px`, principal point at the image centre."""
    return np.array([[focal_px, 0.0, width / 2.0], [0.0, focal_px, height / 2.0], [0.0, 0.0, 1.0]])


def nearest_rotation(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation closest in Frobenius norm to each (..., 3, 3) matrix (SVD, det +1)."""
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    u = u.copy()
    u[..., :, 2] *= d[..., None]
    return u @ vt


def rotation_from_homography(h: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera rotation of homographies H ~ K R K^-1.

    Args:
        h: (..., 3, 3) homographies in pixels, frame t-1 -> t (any scale).
        k: (3, 3) intrinsics.

    Returns:
        R (..., 3, 3) rotations and err (...,): Frobenius distance of the determinant-normalised
        K^-1 H K to R (0 for a pure rotation; a 2% zoom gives 0.016).
    """
    m = np.linalg.inv(k) @ np.asarray(h, np.float64) @ k
    det = np.linalg.det(m)
    scale = np.cbrt(np.where(np.abs(det) > 1e-12, det, 1.0))
    m = m / scale[..., None, None]
    r = nearest_rotation(m)
    return r, np.linalg.norm(m - r, axis=(-2, -1))


def background_grid(width: int, height: int, boxes: np.ndarray, grid: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """A grid x grid lattice over the frame and which of its points lie outside every person box.

    boxes (K, 4) x1 y1 x2 y2 pixels, each grown by `margin` of its size on every side (limbs stick
    out of detector boxes). Returns points (G, 2) pixels and keep (G,) bool.
    """
    pts = box_grid(np.array([[0.0, 0.0, width - 1.0, height - 1.0]]), grid)[0]
    keep = np.ones(len(pts), bool)
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
        mx, my = margin * (x2 - x1), margin * (y2 - y1)
        inside = (pts[:, 0] >= x1 - mx) & (pts[:, 0] <= x2 + mx) & (pts[:, 1] >= y1 - my) & (pts[:, 1] <= y2 + my)
        keep &= ~inside
    return pts, keep


def track_points_lk(prev_grey: np.ndarray, next_grey: np.ndarray, pts: np.ndarray, window: int = 21,
                    levels: int = 3, fb_px: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Pyramidal Lucas-Kanade tracks of `pts` (N, 2) pixels from `prev_grey` to `next_grey` (h, w)
    uint8, kept where the track found it and tracking back lands within `fb_px` of the start
    (forward-backward check: drops untextured and occluded points). Returns dst (N, 2) float64 and ok (N,)."""
    if len(pts) == 0:
        return np.zeros((0, 2)), np.zeros(0, bool)
    p0 = np.asarray(pts, np.float32).reshape(-1, 1, 2)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)
    args = dict(winSize=(window, window), maxLevel=levels, criteria=crit)
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev_grey, next_grey, p0, None, **args)
    pb, st2, _ = cv2.calcOpticalFlowPyrLK(next_grey, prev_grey, p1, None, **args)
    back = np.linalg.norm((pb - p0)[:, 0].astype(np.float64), axis=-1)
    ok = (st1[:, 0] == 1) & (st2[:, 0] == 1) & (back < fb_px)
    return p1[:, 0].astype(np.float64), ok


def robust_homography(src: np.ndarray, dst: np.ndarray, mask: np.ndarray, min_points: int = 16,
                      iterations: int = 3, floor_px: float = 0.5, k_median: float = 3.0) -> tuple[np.ndarray, bool, int, float]:
    """DLT homography src -> dst refitted on the points it explains.

    Each round keeps the points whose transfer error is below max(floor_px, k_median x the median
    error of the kept points) and refits. Returns H (3, 3), valid, inlier count, median transfer
    error (px) of the inliers.
    """
    m = np.asarray(mask, bool) & np.isfinite(src).all(-1) & np.isfinite(dst).all(-1)
    h, ok = dlt_homography_np(src, dst, m, min_points=min_points)
    err = np.full(len(src), np.inf)
    for _ in range(iterations):
        if not ok:
            break
        with np.errstate(all="ignore"):
            err = np.linalg.norm(apply_homography_np(h, np.where(m[:, None], src, 0.0)) - dst, axis=-1)
        err = np.where(m, err, np.inf)
        keep = m & (err <= max(floor_px, k_median * float(np.median(err[m]))))
        if keep.sum() < min_points:
            break
        h, ok = dlt_homography_np(src, dst, keep, min_points=min_points)
        m = keep
    n = int(m.sum())
    med = float(np.median(err[m])) if ok and n and np.isfinite(err[m]).all() else float("nan")
    return h, bool(ok), n, med


def fill_rotations(r_rel: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(T, 3, 3) relative rotations with invalid frames replaced by their nearest valid neighbours'
    mean rotation vector (a camera keeps turning through a dropout); identity when none is valid."""
    r_rel = np.asarray(r_rel, np.float64).copy()
    valid = np.asarray(valid, bool)
    if not valid.any():
        return np.tile(np.eye(3), (len(r_rel), 1, 1))
    idx = np.flatnonzero(valid)
    vec = Rotation.from_matrix(r_rel[idx]).as_rotvec()
    for t in np.flatnonzero(~valid):
        j = np.searchsorted(idx, t)
        near = [vec[i] for i in (j - 1, j) if 0 <= i < len(idx)]
        r_rel[t] = Rotation.from_rotvec(np.mean(near, 0)).as_matrix()
    return r_rel


def chain_rotations(r_rel: np.ndarray) -> np.ndarray:
    """(T, 3, 3) C_t = R_t C_{t-1}, C_0 = I (r_rel[0] is ignored): first camera's axes -> camera t's."""
    c = np.zeros_like(np.asarray(r_rel, np.float64))
    c[0] = np.eye(3)
    for t in range(1, len(c)):
        c[t] = r_rel[t] @ c[t - 1]
    return nearest_rotation(c)


def _plane_basis(h: np.ndarray, k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(K^-1 H K with positive determinant, the unit normal n, two unit directions v1, v2 spanning the plane)."""
    m = np.linalg.inv(k) @ np.asarray(h, np.float64) @ k
    if np.linalg.det(m) < 0:
        m = -m
    n = np.asarray(n, np.float64) / np.linalg.norm(n)
    v1 = np.cross(n, [1.0, 0.0, 0.0] if abs(n[0]) < 0.9 else [0.0, 1.0, 0.0])
    v1 /= np.linalg.norm(v1)
    return m, n, v1, np.cross(n, v1)


def rotation_from_plane_homography(h: np.ndarray, k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Camera rotation R (3, 3) of the homography h (3, 3) (frame t-1 -> t, pixels, any scale) induced by
    a plane of normal n (3,) in camera t-1's axes: K^-1 H K ~ R + t n^T / d, so directions v in the
    plane (v . n = 0) map as R v up to one scale, whatever the camera's translation t. Exact for a
    travelling camera seeing the floor, and for a pure rotation (t = 0) whatever the plane."""
    m, n, v1, v2 = _plane_basis(h, k, n)
    u1, u2 = m @ v1, m @ v2
    lam = np.sqrt((u1 @ u1 + u2 @ u2) / 2.0)
    u1, u2 = u1 / lam, u2 / lam
    # Kabsch on the in-plane pair and their normal: R [v1 v2 n] ~ [u1 u2 u1 x u2]
    return nearest_rotation(np.outer(u1, v1) + np.outer(u2, v2) + np.outer(np.cross(u1, u2), n))


def chain_plane_rotations(h: np.ndarray, valid: np.ndarray, k: np.ndarray, n_ref: np.ndarray,
                          r_fill: np.ndarray) -> np.ndarray:
    """(T, 3, 3) C_t = R_t C_{t-1}, C_0 = I, with R_t from h[t] (T, 3, 3) by rotation_from_plane_homography
    for the plane of normal n_ref (3,) in the first camera's axes (carried into camera t-1 by C_{t-1});
    r_fill (T, 3, 3) stands in where valid (T,) is false."""
    c = np.tile(np.eye(3), (len(h), 1, 1))
    for t in range(1, len(c)):
        r = rotation_from_plane_homography(h[t], k, c[t - 1] @ n_ref) if valid[t] else r_fill[t]
        c[t] = nearest_rotation(r @ c[t - 1])
    return c


def chained_homographies(h: np.ndarray, valid: np.ndarray, span: int, step: int) -> np.ndarray:
    """(N, 3, 3) homographies from frame a to frame a + span (unit determinant), a = 0, step, ...,
    chained from the frame-to-frame h (T, 3, 3) (h[t]: t-1 -> t) over windows whose steps are all valid."""
    out = []
    for a in range(0, len(h) - span, max(step, 1)):
        if not np.all(valid[a + 1:a + span + 1]):
            continue
        m = np.eye(3)
        for t in range(a + 1, a + span + 1):
            m = h[t] @ m
        det = np.linalg.det(m)
        if det > 1e-12:
            out.append(m / np.cbrt(det))
    return np.array(out).reshape(-1, 3, 3)


def focal_from_rotation(h: np.ndarray, valid: np.ndarray, width: int, height: int, span: int = 30, step: int = 5,
                        max_err: float = 0.02, min_rise: float = 0.25) -> tuple[float | None, np.ndarray]:
    """Focal length (px) of a camera that turns without travelling, from its background homographies
    (self-calibration of a rotating camera: H ~ K R K^-1 holds only at the true K), or None.

    h (T, 3, 3) frame-to-frame homographies (h[t]: t-1 -> t), valid (T,). Homographies chained over
    `span` frames (larger angles than one step, so a wrong focal length shows) are read as rotations
    with K(f) (principal point at the image centre, square pixels) for f on a log grid of 0.3-3 x
    max(W, H); the estimate is the f of least median distance to a rotation (rotation_from_homography).
    None where the video does not pin f down: that distance at its minimum above `max_err` (a travelling
    camera: parallax, not a rotation), the minimum at the grid's end, or the distance rising by less
    than `min_rise` (relative) within +-20 % of the estimate (a still camera, or too little turning).
    Returns (f or None, (G, 2) the grid's f and median distances, for reports)."""
    pairs = chained_homographies(np.asarray(h, np.float64), np.asarray(valid, bool), span, step)
    grid = max(width, height) * np.geomspace(0.3, 3.0, 121)
    if len(pairs) == 0:
        return None, np.empty((0, 2))
    score = np.array([np.median(rotation_from_homography(pairs, intrinsics(f, width, height))[1]) for f in grid])
    table = np.stack([grid, score], 1)
    i = int(np.argmin(score))
    if i == 0 or i == len(grid) - 1 or score[i] > max_err:
        return None, table
    near = np.interp(np.log([grid[i] / 1.2, grid[i] * 1.2]), np.log(grid), score)
    if near.min() < (1.0 + min_rise) * max(score[i], 1e-4):
        return None, table
    return float(grid[i]), table


def translation_from_plane_homography(h: np.ndarray, k: np.ndarray, r: np.ndarray, n: np.ndarray, d: float) -> np.ndarray:
    """Metric camera translation t (3,) of the homography h (3, 3) (frame t-1 -> t, pixels, any scale)
    induced by the plane n . X = d (n (3,) unit-normalised here, camera t-1's axes, d > 0 metres: the
    camera's distance to the plane), given the camera's rotation r (3, 3): X_t = r X_{t-1} + t.

    K^-1 H K = lam (r + t n^T / d); the in-plane directions v (v . n = 0) map by lam r v alone, which
    fixes lam, and then (K^-1 H K / lam - r) n = t / d. A floor at a known height therefore gives a
    travelling camera's metric translation (a pure rotation gives t = 0)."""
    m, n, v1, v2 = _plane_basis(h, k, n)
    lam = np.sqrt((np.sum((m @ v1) ** 2) + np.sum((m @ v2) ** 2)) / 2.0)
    return d * ((m / lam - r) @ n)


def chain_plane_centres(h: np.ndarray, valid: np.ndarray, k: np.ndarray, c: np.ndarray, n_ref: np.ndarray,
                        height: np.ndarray) -> np.ndarray:
    """(T, 3) camera centres in the first camera's axes (centre 0 at frame 0), chained from the plane
    homographies h (T, 3, 3) (h[t]: t-1 -> t) of a camera with chained rotations c (T, 3, 3) (first
    camera's axes -> camera t's), over a plane of unit normal n_ref (3,) in the first camera's axes
    pointing from the camera to the plane, at distances height (T,) metres (frame t-1's is used).
    A step that is not valid (T,) is taken as no travel. X_t = R_t X_{t-1} + t_t puts camera t's centre
    at -R_t^T t_t in camera t-1's axes, i.e. centre_t = centre_{t-1} - c_t^T t_t."""
    out = np.zeros((len(h), 3))
    for t in range(1, len(h)):
        step = np.zeros(3)
        if valid[t]:
            r = c[t] @ c[t - 1].T
            step = translation_from_plane_homography(h[t], k, r, c[t - 1] @ n_ref, float(height[t - 1]))
        out[t] = out[t - 1] - c[t].T @ step
    return out
