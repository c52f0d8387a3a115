"""Flow helpers: working size rules, bilinear flow sampling, estimator shapes and input checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from video2mesh.models.nets import flow as flowlib


def test_work_size_rules():
    assert flowlib.work_size(1920, 1080, 512) == (512, 288)
    assert flowlib.work_size(1080, 1920, 512) == (288, 512)
    assert flowlib.work_size(320, 240, 512) == (320, 240)                    # never upscaled
    assert flowlib.work_size(320, 240, 160, min_side=128) == (160, 128)      # RAFT's minimum side
    assert flowlib.work_size(333, 211, 1000, multiple=1) == (333, 211)


def test_sample_flow_is_bilinear_and_nan_outside():
    h, w = 20, 30
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    flow = np.stack([0.5 * xx - 0.25 * yy + 3, 0.1 * xx + 0.2 * yy - 1], -1)  # linear: bilinear is exact
    rng = np.random.default_rng(0)
    pts = np.stack([rng.uniform(0, w - 1, 50), rng.uniform(0, h - 1, 50)], -1)
    got = flowlib.sample_flow(flow, pts)
    want = np.stack([0.5 * pts[:, 0] - 0.25 * pts[:, 1] + 3, 0.1 * pts[:, 0] + 0.2 * pts[:, 1] - 1], -1)
    assert np.allclose(got, want, atol=1e-4)
    out = flowlib.sample_flow(flow, np.array([[-1.0, 5.0], [5.0, h - 0.5], [w - 1.0, h - 1.0]]))
    assert np.isnan(out[:2]).all() and np.isfinite(out[2]).all()


def test_dis_shapes_and_zero_flow_on_identical_frames():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (2, 48, 64, 3), dtype=np.uint8)
    f = flowlib.DISFlow("fast")(img, img)
    assert f.shape == (2, 48, 64, 2) and f.dtype == np.float32
    assert np.abs(f).max() < 1e-3
    with pytest.raises(ValueError, match="preset"):
        flowlib.DISFlow("slowest")


def test_raft_checks_sizes():
    est = flowlib.RaftFlow(torch.nn.Identity(), iterations=1)                # sizes are checked before the net runs
    img = np.zeros((1, 120, 128, 3), np.uint8)
    with pytest.raises(ValueError, match="multiples of 8"):
        est(img, img)
    # a forward pass at the smallest legal size runs in the stage's RAFT smoke test
    with pytest.raises(ValueError, match="raft_large' or 'raft_small"):
        flowlib.build_raft("raft_huge")


def test_ptlflow_import_error_names_the_extra():
    try:
        import ptlflow  # noqa: F401
        pytest.skip("ptlflow is installed here")
    except ImportError:
        pass
    with pytest.raises(ImportError, match=r"pip install video2mesh\[ptlflow\]"):
        flowlib.PtlflowFlow("raft", "things")
