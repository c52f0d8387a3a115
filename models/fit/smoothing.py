"""Offline (non-causal) temporal filtering of keypoint tracks: robust local polynomials and left/right labels.

- `robust_smooth`: a confidence-weighted, outlier-robust Savitzky-Golay filter. Each sample t is replaced
  by the value at t of the degree-`degree` polynomial fitted by weighted least squares to the samples
  t-h..t+h, weights = kernel(j) x confidence_{t+j} x robustness_{t+j}. Robustness weights are Tukey's
  bisquare of the residual over `tukey_c` x the series' robust scale (1.4826 x median |residual|, at least
  `min_scale`), re-estimated `iters` times (Cleveland's LOWESS scheme). Properties the tests check:
  a polynomial of degree <= `degree` passes unchanged in the interior (any weights); with a uniform
  kernel and unit weights the filter is scipy's savgol_coeffs, so white noise keeps a variance share of
  sum(coeffs^2); an isolated outlier gets weight 0 and no longer moves its neighbours.
  The filter is local (support 2h+1), so a chunk smoothed with h frames of context on both sides equals
  the same frames smoothed in one piece (up to the robust scale, which is per series).
- `consistent_labels`: the left/right labelling of a keypoint track that is most continuous in time:
  a two-state Viterbi (keep / swap BlazePose's labels per frame) whose transition cost is the squared
  jump of the left/right keypoints between consecutive frames (in person sizes) and whose unary cost
  slightly prefers BlazePose's own labels. A flip (labels exchanged for some frames, the trajectory
  jumping in and out) is undone as a whole segment; a person turning round (sides crossing smoothly)
  is left alone because no labelling makes that trajectory jump less.
Shapes: T frames, M series (coordinates), K keypoints.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate1d, median_filter


def kernel_weights(half_window: int, kind: str = "tricube") -> np.ndarray:
    """(2h+1,) kernel over offsets -h..h: 'uniform' (Savitzky-Golay) or 'tricube' (LOWESS; less ringing)."""
    j = np.arange(-half_window, half_window + 1, dtype=np.float64)
    if kind == "uniform":
        return np.ones_like(j)
    if kind == "tricube":
        return (1.0 - np.abs(j / (half_window + 1.0)) ** 3) ** 3
    raise ValueError(f"unknown kernel {kind!r}: use 'uniform' or 'tricube'")


def local_polynomial(y: np.ndarray, w: np.ndarray, half_window: int, degree: int = 2,
                     kernel: str = "tricube") -> np.ndarray:
    """Weighted local polynomial fit evaluated at each sample. y, w: (T, M); returns (T, M).

    Moments S_k(t) = sum_j K_j w_{t+j} j^k and B_k(t) = sum_j K_j w_{t+j} y_{t+j} j^k come from
    correlations along time (zero outside the track), then one (d+1)x(d+1) solve per sample and series.
    Where a window holds no weight at all the input value is kept.
    """
    y = np.asarray(y, np.float64)
    w = np.asarray(w, np.float64)
    if y.ndim != 2 or y.shape != w.shape:
        raise ValueError(f"y and w must both be (T, M); got {y.shape} and {w.shape}")
    if half_window <= 0 or len(y) < 2:
        return y.copy()
    k = kernel_weights(half_window, kernel)
    j = np.arange(-half_window, half_window + 1, dtype=np.float64)
    yw = np.where(w > 0, y, 0.0) * w
    mom = np.stack([correlate1d(w, k * j ** p, axis=0, mode="constant") for p in range(2 * degree + 1)], -1)
    rhs = np.stack([correlate1d(yw, k * j ** p, axis=0, mode="constant") for p in range(degree + 1)], -1)
    a = np.stack([mom[..., r:r + degree + 1] for r in range(degree + 1)], -2)      # (T, M, d+1, d+1)
    # a tiny ridge on the non-constant terms: windows with fewer than d+1 weighted samples (track ends,
    # gaps) fall back towards a weighted mean instead of an unbounded polynomial
    # a tiny ridge relative to the window's weight: windows with fewer than d+1 weighted samples (track
    # ends, gaps) fall back towards a weighted mean instead of an unbounded polynomial
    has = mom[..., 0] > 0
    a = a + np.where(has, mom[..., 0], 1.0)[..., None, None] * np.diag(np.r_[1e-12, np.full(degree, 1e-9)])
    coef = np.linalg.solve(a, rhs[..., None])[..., 0, 0]
    return np.where(has, coef, y)


def robust_smooth(y: np.ndarray, confidence: np.ndarray | None = None, half_window: int = 4, degree: int = 2,
                  iters: int = 2, tukey_c: float = 4.685, min_scale: float = 0.0,
                  kernel: str = "tricube") -> tuple[np.ndarray, np.ndarray]:
    """Confidence-weighted robust local polynomial smoothing (module docstring).

    y: (T, M) or (T,); confidence: same shape, >= 0 (0 = missing), default ones; min_scale: floor of
    the robust residual scale, in y's units (keeps a clean track from calling its own noise outliers).
    Returns (smoothed like y, robustness weights like y in [0, 1]; 0 = rejected as an outlier).
    """
    y = np.asarray(y, np.float64)
    squeeze = y.ndim == 1
    y2 = y[:, None] if squeeze else y
    c = np.ones_like(y2) if confidence is None else np.broadcast_to(np.asarray(confidence, np.float64).reshape(
        (len(y2), -1)), y2.shape).copy()
    c = np.where(np.isfinite(y2), np.clip(c, 0.0, None), 0.0)
    if half_window <= 0 or len(y2) < 2:
        out = y2.copy()
        return (out[:, 0], np.ones(len(y2))) if squeeze else (out, np.ones_like(y2))
    # the first residuals come from a running median (a least-squares first pass would smear an outlier
    # over its neighbours and reject them instead); then LOWESS-style reweighted polynomial fits
    out = median_filter(np.where(c > 0, y2, np.nan_to_num(y2)), size=(2 * half_window + 1, 1), mode="nearest")
    # residual scale per sample: the series' MAD, but at least the local frame-to-frame motion (a median
    # filter lags a moving keypoint by about one step, which must not look like an outlier) and min_scale
    step = np.abs(np.diff(np.nan_to_num(y2), axis=0, prepend=np.nan_to_num(y2[:1])))
    local = np.maximum(median_filter(step, size=(2 * half_window + 1, 1), mode="nearest"), min_scale)
    rob = np.ones_like(y2)
    for _ in range(max(iters, 1)):
        rob = _bisquare(np.where(c > 0, y2 - out, 0.0), c, tukey_c, local)
        out = local_polynomial(y2, c * rob, half_window, degree, kernel)
    if iters <= 0:
        rob = np.ones_like(y2)
        out = local_polynomial(y2, c, half_window, degree, kernel)
    return (out[:, 0], rob[:, 0]) if squeeze else (out, rob)


def _bisquare(r: np.ndarray, c: np.ndarray, tukey_c: float, floor: np.ndarray) -> np.ndarray:
    """Tukey bisquare weights (T, M) of residuals r over tukey_c x max(each series' robust scale, floor)."""
    scale = np.array([np.median(np.abs(r[c[:, m] > 0, m])) if (c[:, m] > 0).any() else 0.0
                      for m in range(r.shape[1])]) * 1.4826
    u = r / (tukey_c * np.maximum(np.maximum(scale, floor), 1e-12))
    return np.where(np.abs(u) < 1.0, (1.0 - u ** 2) ** 2, 0.0)


def half_window_frames(seconds: float, fps: float) -> int:
    """Half-width h in frames of a window of `seconds` on each side (0 = no smoothing)."""
    return int(round(max(seconds, 0.0) * max(fps, 1e-6)))


def consistent_labels(points: np.ndarray, flip: np.ndarray, size: np.ndarray, keep_cost: float = 0.002,
                      confidence: np.ndarray | None = None) -> np.ndarray:
    """(T,) bool: frames whose left/right labels to exchange for the most continuous track.

    points: (T, K, D) keypoints (any units); flip: (K,) index of each keypoint's mirror; size: (T,)
    the unit of jumps (e.g. person size px); keep_cost: the price of exchanging one frame's labels, in
    squared sizes (a small preference for the detector's labels, so ambiguous frames stay as they are);
    confidence: (T, K) weights of the keypoints in the jump cost (default ones).
    """
    t_n, k_n = points.shape[:2]
    if t_n < 2:
        return np.zeros(t_n, bool)
    conf = np.ones((t_n, k_n)) if confidence is None else np.asarray(confidence, np.float64)
    sided = np.asarray(flip) != np.arange(k_n)
    states = np.stack([points, points[:, flip]], 1)[:, :, sided]                    # (T, 2, Ks, D)
    cstates = np.stack([conf, conf[:, flip]], 1)[:, :, sided]                       # (T, 2, Ks)
    unit = np.maximum(0.5 * (size[1:] + size[:-1]), 1e-9)
    cost = np.zeros((t_n, 2))
    back = np.zeros((t_n, 2), int)
    cost[0] = [0.0, keep_cost]
    for t in range(1, t_n):
        d = states[t][None] - states[t - 1][:, None]                                # (2 prev, 2 cur, Ks, D)
        wgt = np.sqrt(cstates[t][None] * cstates[t - 1][:, None])
        jump = (wgt * (d ** 2).sum(-1)).sum(-1) / np.maximum(wgt.sum(-1), 1e-9) / unit[t - 1] ** 2
        total = cost[t - 1][:, None] + jump                                        # (prev, cur)
        back[t] = total.argmin(0)
        cost[t] = total.min(0) + [0.0, keep_cost]
    path = np.zeros(t_n, int)
    path[-1] = int(cost[-1].argmin())
    for t in range(t_n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path.astype(bool)
