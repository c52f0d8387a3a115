"""Robust local-polynomial smoother and left/right continuity, against closed forms and scipy."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import savgol_coeffs, savgol_filter

from video2mesh.models.body.anny_body import COCO_FLIP
from video2mesh.models.fit.smoothing import consistent_labels, local_polynomial, robust_smooth


@pytest.mark.parametrize("kernel", ["tricube", "uniform"])
def test_quadratic_passes_unchanged_with_any_weights(kernel):
    t = np.arange(120.0)
    y = np.stack([0.3 + 0.2 * t - 0.01 * t ** 2, 50.0 - 3.0 * t + 0.002 * t ** 2], 1)
    c = np.random.default_rng(0).uniform(0.05, 1.0, y.shape)
    out, rob = robust_smooth(y, c, half_window=5, degree=2, min_scale=1e-6, kernel=kernel)
    assert np.abs(out - y)[5:-5].max() < 1e-6
    assert np.abs(out - y).max() < 1e-5          # a quadratic is exact at the ends too (one-sided fits)


def test_uniform_kernel_is_savitzky_golay():
    y = np.random.default_rng(1).normal(size=(200, 3))
    ours = local_polynomial(y, np.ones_like(y), 4, 2, kernel="uniform")
    ref = savgol_filter(y, 9, 2, axis=0, mode="interp")
    assert np.allclose(ours[4:-4], ref[4:-4], atol=1e-9)


def test_white_noise_variance_drops_by_the_filters_factor():
    n = np.random.default_rng(2).normal(size=(200_000, 1))
    out, _ = robust_smooth(n, None, half_window=4, degree=2, iters=0, kernel="uniform")
    expected = (savgol_coeffs(9, 2) ** 2).sum()            # 0.2554 for 9 points, quadratic
    assert out[10:-10].var() == pytest.approx(expected, rel=0.02)
    robust, rob = robust_smooth(n, None, half_window=4, degree=2, iters=2, kernel="uniform")
    assert robust[10:-10].var() == pytest.approx(expected, rel=0.05)   # Gaussian noise is not "outliers"
    assert (rob == 0).mean() < 0.002


def test_outlier_frame_is_rejected():
    t = np.arange(100.0)
    rng = np.random.default_rng(3)
    clean = 100 * np.sin(t / 10) + rng.normal(0, 1.0, t.shape)
    spiked = clean.copy()
    spiked[50] += 60.0                                      # a 60 px jump for one frame
    s_clean, _ = robust_smooth(clean, None, half_window=4, min_scale=0.5)
    s_spiked, rob = robust_smooth(spiked, None, half_window=4, min_scale=0.5)
    assert rob[50] == 0.0
    assert np.abs(s_spiked - s_clean).max() < 1.0           # the neighbours do not move either
    plain = local_polynomial(spiked[:, None], np.ones((100, 1)), 4)[:, 0]
    assert np.abs(plain - s_clean)[46:55].max() > 5.0      # (a non-robust fit would have smeared it)


def test_missing_samples_are_interpolated():
    t = np.arange(60.0)
    y = 2.0 + 0.5 * t
    c = np.ones_like(y)
    c[20:23] = 0.0
    y_bad = y.copy()
    y_bad[20:23] = 999.0                                   # values of weight 0 are never read
    out, _ = robust_smooth(y_bad, c, half_window=4, min_scale=1e-6)
    assert np.abs(out - y).max() < 1e-6


def _two_sided_track(t_n=60):
    t = np.arange(t_n)
    pts = np.zeros((t_n, 17, 2))
    side = np.array([0] + [1 if k % 2 == 0 else -1 for k in range(1, 17)])   # COCO: odd = left
    for k in range(17):
        pts[:, k, 0] = 300 + side[k] * 40 + 3 * t + 4 * np.sin(t / 6 + k)
        pts[:, k, 1] = 100 + 20 * k + 2 * np.cos(t / 8)
    return pts, side


def test_flip_segments_are_undone():
    pts, _ = _two_sided_track()
    truth = np.zeros(len(pts), bool)
    truth[20:35] = True
    truth[50] = True
    raw = pts.copy()
    raw[truth] = raw[truth][:, COCO_FLIP]
    found = consistent_labels(raw, COCO_FLIP, np.full(len(pts), 250.0))
    assert np.array_equal(found, truth)
    fixed = raw.copy()
    fixed[found] = fixed[found][:, COCO_FLIP]
    assert np.allclose(fixed, pts)


def test_turning_round_is_not_a_flip():
    pts, side = _two_sided_track()
    t = np.arange(len(pts))
    pts[:, :, 0] = 300 + side[None] * 40 * np.cos(np.pi * t / len(t))[:, None]   # sides cross smoothly
    assert not consistent_labels(pts, COCO_FLIP, np.full(len(pts), 250.0)).any()
