"""DLT homographies against OpenCV, the numpy twin against the torch one, and the 135-d stacks."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from video2mesh.models.maths.geometry import apply_homography_np, box_grid, dlt_homography, dlt_homography_np, homography_stacks


def random_h(rng: np.random.Generator) -> np.ndarray:
    """A well-conditioned homography of a 640x480 image: mild affine part, small perspective."""
    H = np.eye(3) + rng.normal(0, 1, (3, 3)) * np.array([[0.1, 0.1, 20], [0.1, 0.1, 20], [1e-4, 1e-4, 0]])
    return H / H[0, 0]


def exact_pairs(rng, H, n=64):
    # float32-representable points: cv2.findHomography converts its input to float32, so the
    # comparison is only exact at float32 precision when both sides see the same numbers.
    src = rng.uniform(0, 640, (n, 2)).astype(np.float32).astype(np.float64)
    dst = apply_homography_np(H, src).astype(np.float32).astype(np.float64)
    return src, dst


def rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def test_dlt_equals_opencv_on_exact_correspondences():
    rng = np.random.default_rng(0)
    srcs, dsts, refs = [], [], []
    for _ in range(20):
        src, dst = exact_pairs(rng, random_h(rng))
        Hc, _ = cv2.findHomography(src, dst, method=0)
        srcs.append(src), dsts.append(dst), refs.append(Hc / Hc[0, 0])
    src, dst, refs = np.stack(srcs), np.stack(dsts), np.stack(refs)
    Hn, vn = dlt_homography_np(src, dst)
    Ht, vt = dlt_homography(torch.from_numpy(src), torch.from_numpy(dst))
    assert vn.all() and vt.all()
    for b in range(len(refs)):
        assert rel_err(Hn[b], refs[b]) < 1e-6
        assert rel_err(Ht[b].numpy(), refs[b]) < 1e-6
    assert np.allclose(Hn[:, 0, 0], 1.0) and torch.allclose(Ht[:, 0, 0], torch.ones(len(refs), dtype=torch.float64))


def test_dlt_exact_four_points_recovers_h():
    rng = np.random.default_rng(1)
    H = random_h(rng)
    src = np.array([[10.0, 20.0], [600.0, 30.0], [620.0, 450.0], [15.0, 470.0]])
    dst = apply_homography_np(H, src)
    Hn, vn = dlt_homography_np(src, dst)
    Ht, vt = dlt_homography(torch.from_numpy(src[None]), torch.from_numpy(dst[None]))
    assert vn and vt.item()
    assert rel_err(Hn, H) < 1e-9 and rel_err(Ht[0].numpy(), H) < 1e-9


def test_dlt_recovers_h_under_small_noise():
    rng = np.random.default_rng(2)
    H = random_h(rng)
    src = rng.uniform(0, 640, (289, 2))
    dst = apply_homography_np(H, src) + rng.normal(0, 0.3, (289, 2))      # 0.3 px noise
    Ht, valid = dlt_homography(torch.from_numpy(src[None]), torch.from_numpy(dst[None]))
    corners = np.array([[0, 0], [639, 0], [639, 479], [0, 479]], float)
    err = np.linalg.norm(apply_homography_np(Ht[0].numpy(), corners) - apply_homography_np(H, corners), axis=1)
    assert valid.item() and err.max() < 0.5


def test_mask_and_weights_ignore_outliers_and_nan():
    rng = np.random.default_rng(3)
    H = random_h(rng)
    src = rng.uniform(0, 640, (1, 40, 2))
    dst = apply_homography_np(H, src)
    dst[0, :5] += 200.0                                                      # gross outliers, masked out
    dst[0, 5] = np.nan                                                       # non-finite: dropped anyway
    mask = np.ones((1, 40), bool)
    mask[0, :5] = False
    Hn, vn = dlt_homography_np(src, dst, mask)
    Ht, vt = dlt_homography(torch.from_numpy(src), torch.from_numpy(dst), torch.from_numpy(mask))
    assert vn.all() and vt.all()
    assert rel_err(Hn[0], H) < 1e-8 and rel_err(Ht[0].numpy(), H) < 1e-8


@pytest.mark.parametrize("impl", ["numpy", "torch"])
def test_degenerate_inputs_give_identity_and_flag(impl):
    rng = np.random.default_rng(4)
    good_src = rng.uniform(0, 100, (12, 2))
    rot90 = np.array([[0.0, -1.0, 100.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # H[0,0] = 0: cannot be normalised
    xs = rng.uniform(0, 100, 12)
    line = np.stack([np.linspace(0, 100, 12), np.linspace(0, 50, 12)], 1)    # collinear: no unique H
    cases = {
        "too_few": (good_src[:3], good_src[:3] + 1.0, np.ones(12, bool)),
        "collinear": (line, line + 2.0, np.ones(12, bool)),
        "collinear_inexact": (np.stack([xs, 0.37 * xs + 3.1], 1), np.stack([xs, 0.37 * xs + 3.1], 1) * 1.01, np.ones(12, bool)),
        "h00_zero": (good_src, apply_homography_np(rot90, good_src), np.ones(12, bool)),
        "all_nan": (np.full((12, 2), np.nan), np.full((12, 2), np.nan), np.ones(12, bool)),
        "all_masked": (good_src, good_src + 1.0, np.zeros(12, bool)),
        "inf": (good_src, np.full((12, 2), np.inf), np.ones(12, bool)),
    }
    n = 12
    src = np.stack([np.pad(c[0], ((0, n - len(c[0])), (0, 0))) for c in cases.values()])
    dst = np.stack([np.pad(c[1], ((0, n - len(c[1])), (0, 0))) for c in cases.values()])
    mask = np.stack([c[2] for c in cases.values()])
    mask[0, 3:] = False                                                      # "too_few" keeps only 3 points
    if impl == "numpy":
        H, valid = dlt_homography_np(src, dst, mask)
    else:
        H, valid = dlt_homography(torch.from_numpy(src), torch.from_numpy(dst), torch.from_numpy(mask))
        H, valid = H.numpy(), valid.numpy()
    assert not valid.any(), dict(zip(cases, valid))
    assert np.isfinite(H).all()
    assert np.array_equal(H, np.tile(np.eye(3), (len(cases), 1, 1)))


def test_numpy_and_torch_agree_in_float32_and_on_device():
    rng = np.random.default_rng(5)
    H = np.stack([random_h(rng) for _ in range(8)])
    src = rng.uniform(0, 640, (8, 50, 2))
    dst = apply_homography_np(H, src)
    Hn, _ = dlt_homography_np(src, dst)
    Ht, _ = dlt_homography(torch.from_numpy(src).float(), torch.from_numpy(dst).float())
    assert Ht.dtype == torch.float32
    assert np.abs(Ht.numpy() - Hn).max() / np.abs(Hn).max() < 1e-3      # float32 input, float64 inside


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(B, N, 2\)"):
        dlt_homography(torch.zeros(2, 5, 3), torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match=r"\(T, 9\)"):
        homography_stacks(np.zeros((4, 8)))


def test_homography_stacks_layout_by_hand():
    T = 4
    h = np.arange(T * 9, dtype=np.float32).reshape(T, 9) + 100              # distinct, not identity
    eye = np.eye(3, dtype=np.float32).reshape(9)
    d = homography_stacks(h, window=3)
    assert d.shape == (T, 27) and d.dtype == np.float32
    assert np.array_equal(d[0], np.concatenate([eye, eye, h[0]]))
    assert np.array_equal(d[1], np.concatenate([eye, h[0], h[1]]))
    assert np.array_equal(d[2], np.concatenate([h[0], h[1], h[2]]))
    assert np.array_equal(d[3], np.concatenate([h[1], h[2], h[3]]))
    d15 = homography_stacks(h)                                               # the paper's 15 x 9 = 135
    assert d15.shape == (T, 135)
    assert np.array_equal(d15[3, -9:], h[3]) and np.array_equal(d15[3, -36:-27], h[0])
    assert np.array_equal(d15[3, :9], eye) and np.array_equal(d15[0, :126], np.tile(eye, 14))


def test_box_grid_cell_centres():
    g = box_grid(np.array([[0, 0, 10, 20]]), 2)
    assert np.allclose(g[0], [[2.5, 5], [7.5, 5], [2.5, 15], [7.5, 15]])
