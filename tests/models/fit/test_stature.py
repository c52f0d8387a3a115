"""A known stature as a constraint on the Anny fit (models/fit/stature.py).

References: the Anny mesh itself (its posed vertices at the rest pose, measured independently of
rest_stature), and the truth of a synthetic track: an Anny body of non-average stature, posed by a
smooth known motion, filmed by a known pinhole camera; the fit sees its 2D keypoints and hip-centred
3D keypoints shrunk to an average adult's size, as BlazePose's world landmarks are
(docs/accuracy.md, "Body size"). Without the stature the fitted body follows the landmarks' size and sits
at the wrong depth; with it, the body has the given stature and the depth follows.
"""
from __future__ import annotations

import numpy as np
import pytest

from video2mesh.models.fit.temporal import SMOOTHING

T_N, W, H, F = 24, 640, 720, 720.0
TALL = np.array([0.0, 0.5, 0.65, 0.5, 0.85, 0.5])    # a tall man: ~2.04 m


@pytest.fixture(scope="module")
def body():
    from tests.stages.licence_free_helpers import anny_body

    return anny_body()


def test_rest_stature_is_the_rest_meshs_measured_height(body):
    import torch

    from video2mesh.models.fit.stature import rest_stature

    for phen in (np.full(6, 0.5), TALL, np.array([1.0, 0.5, 0.4, 0.85, 0.25, 0.5])):
        with torch.no_grad():
            posed = body.posed(torch.zeros(1, len(body.bone_names), 3, dtype=body.dtype),
                               torch.as_tensor(phen[None], dtype=body.dtype))
        v = posed["vertices"][0].numpy()                # skinned at zero rotations (another code path)
        r = posed["rest_vertices"][0].numpy()
        assert rest_stature(body, phen) == pytest.approx(float(np.ptp(r[:, 2])), abs=1e-5)
        # the fit's zero pose (Anny's reference pose) stands within ~1 cm of the rest mesh's height
        assert rest_stature(body, phen) == pytest.approx(float(np.ptp(v[:, 2])), abs=0.015)
    # Anny's height value spans short to tall adults, ~1 m per unit at the average of the others
    assert 1.55 < rest_stature(body, np.full(6, 0.5)) < 1.70
    assert rest_stature(body, TALL) > 1.95


def test_exact_height_meets_the_target_and_keeps_the_other_values(body):
    from video2mesh.models.fit.stature import HEIGHT, exact_height, rest_stature, stature_line

    line = stature_line(body)
    start = np.array([0.3, 0.5, 0.6, 0.4, 0.5, 0.55])
    for target in (1.31, 1.75, 1.99):
        p = exact_height(body, line.solve(start, target), target)
        assert rest_stature(body, p) == pytest.approx(target, abs=1e-3)
        assert np.allclose(np.delete(p, HEIGHT), np.delete(start, HEIGHT))
        assert abs(line.at(p) - target) < 0.03          # the shape phases' linearisation is close


def _track(body, phen):
    """make_track's synthetic track of the body at `phen`, its 3D landmarks at an average adult's size."""
    from video2mesh.models.fit.stature import rest_stature

    from .test_fit_dynamics import make_track

    return make_track(body, phen, T_N, world_scale=rest_stature(body, np.full(6, 0.5)) / rest_stature(body, phen))


def test_known_stature_fixes_the_size_and_the_depth(body):
    from video2mesh.models.fit.anny_fit import FitConfig, fit_track
    from video2mesh.models.fit.stature import rest_stature

    kp2d, world, cam = _track(body, TALL)
    truth = rest_stature(body, TALL)
    base = dict(w_accel=SMOOTHING["standard"].w_accel, lr_end=0.02, polish_iters=30, iters_pose=120)
    out = {}
    for name, kw in (("default", {}), ("known", {"stature_m": truth, "free_3d_scale": True})):
        r = fit_track(body, kp2d, world, (W, H), F, FitConfig(**base, **kw))
        kp = r.keypoints3d.astype(np.float64)
        out[name] = (rest_stature(body, r.phenotype), kp[:, 11:13, 2].mean() / cam[:, 11:13, 2].mean() - 1,
                     np.linalg.norm(kp - cam, axis=-1).mean())
    (s_def, dz_def, e_def), (s_known, dz_known, e_known) = out["default"], out["known"]
    assert abs(s_def - truth) > 0.25                   # the landmarks' average size wins without it
    assert dz_def < -0.15                              # ... and a small body sits too near
    assert s_known == pytest.approx(truth, abs=0.01)
    assert abs(dz_known) < 0.02
    assert e_known < 0.05 and e_known < e_def / 5      # camera-space joints (metres)


def test_windows_of_a_long_track_keep_the_stature(body):
    """A window fitted at its track's shape (`phenotype`, the pose-only path) is held at the stature too."""
    from video2mesh.models.fit.anny_fit import FitConfig, fit_track
    from video2mesh.models.fit.stature import HEIGHT, rest_stature

    kp2d, world, _ = _track(body, TALL)
    cfg = FitConfig(iters_global=5, iters_pose=10, iters_refine=5, stature_m=1.80, free_3d_scale=True)
    r = fit_track(body, kp2d[:8], world[:8], (W, H), F, cfg, phenotype=np.full(6, 0.5))
    assert rest_stature(body, r.phenotype) == pytest.approx(1.80, abs=1e-3)
    assert np.allclose(np.delete(r.phenotype, HEIGHT), 0.5)
