"""Input preparation (flip fix, smoothing presets), windows of long tracks, windowed == single fit."""
from __future__ import annotations

import numpy as np
import pytest

from video2mesh.models.fit.temporal import SMOOTHING, fit_windowed, prepare_track, windows
from video2mesh.models.runners.blazepose import BLAZEPOSE_FLIP, COCO_FROM_BLAZEPOSE


def test_windows_keep_every_frame_once():
    for n, win, ov in [(1, 16, 4), (300, 256, 32), (512, 256, 32), (1000, 64, 8)]:
        w = windows(n, win, ov)
        kept = np.concatenate([np.arange(s, e) for s, e, _, _ in w])
        assert np.array_equal(kept, np.arange(n))
        for s, e, lo, hi in w:
            assert lo == max(s - ov, 0) and hi == min(e + ov, n) and e - s <= win


def _landmarks(t_n=90, noise=0.0, seed=0):
    """(T, 33, 5) landmarks of a smooth two-sided motion (+ noise px), (T, 33, 3) world, frames."""
    rng = np.random.default_rng(seed)
    t = np.arange(t_n)
    side = np.array([0, 1, 1, 1, -1, -1, -1, 1, -1, 1, -1] + [1 if k % 2 else -1 for k in range(11, 33)])
    lm = np.zeros((t_n, 33, 5))
    lm[..., 0] = 500 + side[None] * 60 + 2 * t[:, None] + 10 * np.sin(t[:, None] / 9 + np.arange(33)[None])
    lm[..., 1] = 200 + 15 * np.arange(33)[None] + 5 * np.cos(t[:, None] / 11)
    lm[..., 3:] = 0.95
    clean = lm.copy()
    lm[..., :2] += rng.normal(0, noise, lm[..., :2].shape)
    world = np.zeros((t_n, 33, 3))
    world[..., 0] = side[None] * 0.15 + 0.01 * np.sin(t[:, None] / 9)
    world[..., 1] = 0.05 * np.arange(33)[None] - 0.8
    return lm, clean, world, t


def test_off_preset_is_the_raw_input():
    lm, _, world, t = _landmarks(noise=2.0)
    ti = prepare_track(t, lm, world, 30.0, SMOOTHING["off"], flip_fix=False)
    assert np.array_equal(ti.keypoints[..., :2], lm[:, COCO_FROM_BLAZEPOSE, :2])
    assert np.allclose(ti.keypoints[..., 2], 0.95 * 0.95)                  # visibility x presence
    assert np.array_equal(ti.world, world[:, COCO_FROM_BLAZEPOSE])


def _accel_px(x):
    return np.median(np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1))


def test_standard_preset_calms_2d_noise_and_keeps_the_motion():
    lm, clean, world, t = _landmarks(noise=2.0)
    ti = prepare_track(t, lm, world, 30.0, SMOOTHING["standard"], flip_fix=False)
    raw, truth = lm[:, COCO_FROM_BLAZEPOSE, :2], clean[:, COCO_FROM_BLAZEPOSE, :2]
    assert _accel_px(ti.keypoints[..., :2]) < 0.35 * _accel_px(raw)
    err_in = np.linalg.norm(raw - truth, axis=-1).mean()
    err_out = np.linalg.norm(ti.keypoints[..., :2] - truth, axis=-1).mean()
    assert err_out < 0.75 * err_in                                           # closer to the truth, not just flatter
    strong = prepare_track(t, lm, world, 30.0, SMOOTHING["strong"], flip_fix=False)
    assert _accel_px(strong.keypoints[..., :2]) < _accel_px(ti.keypoints[..., :2])


def test_world_landmarks_get_their_own_window():
    """`standard` smooths the world landmarks over +-0.2 s and the 2D keypoints over +-0.1 s: with the same
    white noise on both, the world landmarks come out calmer than with the 2D window, and the 2D keypoints
    exactly as before; both stay near the (slow) truth."""
    import dataclasses

    lm, clean, world, t = _landmarks(noise=2.0)
    noisy = world + np.random.default_rng(1).normal(0, 0.02, world.shape)
    std = SMOOTHING["standard"]
    assert std.world_half_window_s == 0.2
    own = prepare_track(t, lm, noisy, 30.0, std, flip_fix=False)
    same = prepare_track(t, lm, noisy, 30.0, dataclasses.replace(std, world_half_window_s=None), flip_fix=False)
    assert np.array_equal(own.keypoints, same.keypoints)
    truth = world[:, COCO_FROM_BLAZEPOSE]
    assert _accel_px(own.world) < 0.5 * _accel_px(same.world)
    assert np.linalg.norm(own.world - truth, axis=-1).mean() < np.linalg.norm(same.world - truth, axis=-1).mean()


def test_flipped_frames_are_relabelled_before_smoothing():
    lm, clean, world, t = _landmarks(noise=0.5)
    bad = np.zeros(len(t), bool)
    bad[30:41] = True
    lm[bad] = lm[bad][:, BLAZEPOSE_FLIP]
    world_bad = world.copy()
    world_bad[bad] = world_bad[bad][:, BLAZEPOSE_FLIP]
    ti = prepare_track(t, lm, world_bad, 30.0, SMOOTHING["standard"])
    assert np.array_equal(ti.flipped, bad)
    truth = clean[:, COCO_FROM_BLAZEPOSE, :2]
    assert np.abs(ti.keypoints[..., :2] - truth).max() < 5.0
    assert np.allclose(ti.world, world[:, COCO_FROM_BLAZEPOSE], atol=0.01)


def test_crossed_legs_alone_are_relabelled_alone():
    """BlazePose gives one leg's knee, ankle and foot points to the other for 11 frames while arms and hips are
    right (seen on the rendered pan at 60 fps): the legs' labels are exchanged there, the rest stays as it is."""
    lm, clean, world, t = _landmarks(noise=0.5)
    legs = np.arange(25, 33)
    bad = np.zeros(len(t), bool)
    bad[30:41] = True
    sel = np.ix_(bad, legs)
    lm[sel] = lm[bad][:, BLAZEPOSE_FLIP[legs]]
    world_bad = world.copy()
    world_bad[sel] = world_bad[bad][:, BLAZEPOSE_FLIP[legs]]
    ti = prepare_track(t, lm, world_bad, 30.0, SMOOTHING["standard"])
    assert np.array_equal(ti.flipped, bad)
    truth = clean[:, COCO_FROM_BLAZEPOSE, :2]
    assert np.abs(ti.keypoints[..., :2] - truth).max() < 5.0               # arms as they were, legs put back
    assert np.allclose(ti.world, world[:, COCO_FROM_BLAZEPOSE], atol=0.01)


def test_gaps_are_bridged_on_the_frame_grid():
    lm, clean, world, t = _landmarks(noise=0.0)
    keep = np.ones(len(t), bool)
    keep[40:44] = False                                                     # 4 frames without a detection
    ti = prepare_track(t[keep], lm[keep], world[keep], 30.0, SMOOTHING["standard"], flip_fix=False)
    truth = clean[keep][:, COCO_FROM_BLAZEPOSE, :2]
    assert np.abs(ti.keypoints[..., :2] - truth).max() < 0.5


@pytest.fixture(scope="module")
def body():
    from tests.stages.licence_free_helpers import anny_body

    return anny_body()


def test_windowed_fit_equals_single_fit(body):
    """A 40-frame track fitted in 16-frame windows with 16 frames of context each side, against one fit.
    (With the converged dynamics prior of fit v3 a window's ends bend its motion up to ~10 frames in: 8
    frames of context left 3 cm steps at the seams; the stage's default is 32 frames.)"""
    import torch

    from video2mesh.models.body.anny_body import FIT_BONES
    from video2mesh.models.fit.anny_fit import MODEL_TO_CAMERA, FitConfig, fit_track, linear_skeleton

    t_n, w, h, f = 40, 640, 720, 720.0
    bones = body.bone_index(FIT_BONES)
    phen = np.array([0.5, 0.5, 0.5, 0.5, 0.6, 0.5])
    g = torch.Generator().manual_seed(0)
    phase = torch.sin(torch.linspace(0, 3, t_n, dtype=body.dtype))[:, None, None]
    theta = torch.randn(1, len(bones), 3, generator=g, dtype=body.dtype) * 0.25 * phase
    with torch.no_grad():
        sk = body.skeleton(torch.as_tensor(phen[None], dtype=body.dtype))
        kp = body.keypoints_fk(*body.fk(theta, sk, bones), sk).numpy()
    cam = kp @ MODEL_TO_CAMERA.T + np.array([0.1, 0.0, 3.0]) + np.linspace(0, 0.3, t_n)[:, None, None] * [1, 0, 0]
    uv = f * cam[..., :2] / cam[..., 2:] + np.array([w / 2, h / 2])
    kp2d = np.concatenate([uv, np.ones_like(uv[..., :1])], -1)
    world = cam - cam[:, 11:13].mean(1, keepdims=True)
    cfg = FitConfig(iters_global=20, iters_pose=80, iters_refine=10, w_accel=SMOOTHING["standard"].w_accel, lr_end=0.02,
                    polish_iters=60,
                    sigma_3d=0.1)
    lin = linear_skeleton(body)
    one = lambda k, wl: fit_track(body, k, wl, (w, h), f, cfg, linear=lin, phenotype=phen)  # noqa: E731
    single = one(kp2d, world)
    win = fit_windowed(one, kp2d, world, window=16, overlap=16)
    assert win["keypoints3d"].shape == single.keypoints3d.shape
    gap = np.linalg.norm(win["keypoints3d"] - single.keypoints3d, axis=-1)
    assert np.median(gap) < 0.02 and gap.max() < 0.1                      # metres (both stop after 110 steps)
    # both recover the motion itself
    assert np.median(np.linalg.norm(win["keypoints3d"] - cam, axis=-1)) < 0.05
    # no step at the window seams beyond the motion's own frame-to-frame change
    step = np.linalg.norm(np.diff(win["keypoints3d"], axis=0), axis=-1).max(-1)
    true_step = np.linalg.norm(np.diff(cam, axis=0), axis=-1).max(-1)
    assert (step[[15, 31]] < true_step[[15, 31]] + 0.02).all()


def test_rate_scaled_weights_integrate_the_same_penalty_over_time_below_the_reference_rate():
    """Below the reference rate, w_accel(fps) * sum_t |x[t+1] - 2x[t] + x[t-1]|^2 over a clip is the same multiple
    of int |x''|^2 dt (and w_smooth(fps) * sum |x[t+1] - x[t]|^2 of int |x'|^2 dt) at every rate; at or above
    it the weights are as tuned. Closed form: x = sin(2 pi f t), int_0^T x''^2 = (2 pi f)^4 T / 2."""
    from video2mesh.models.fit.temporal import rate_scaled

    f, seconds = 0.8, 10.0
    acc_integral = (2 * np.pi * f) ** 4 * seconds / 2
    vel_integral = (2 * np.pi * f) ** 2 * seconds / 2
    ratios = []
    for fps in (10.0, 12.0, 15.0, 24.0, 30.0):
        x = np.sin(2 * np.pi * f * np.arange(int(seconds * fps) + 1) / fps)
        w_smooth, w_accel = rate_scaled(0.5, 5.0, fps, 30.0)
        ratios.append((w_accel * (np.diff(x, 2) ** 2).sum() / acc_integral,
                       w_smooth * (np.diff(x) ** 2).sum() / vel_integral))
    ratios = np.array(ratios)
    # both are the reference's per-frame weight over its rate's power: 5 / 30^3 and 0.5 / 30
    np.testing.assert_allclose(ratios[:, 0], 5.0 / 30 ** 3, rtol=0.08)
    np.testing.assert_allclose(ratios[:, 1], 0.5 / 30, rtol=0.03)
    assert rate_scaled(0.5, 5.0, 60.0, 30.0) == rate_scaled(0.5, 5.0, 30.0, 30.0) == (0.5, 5.0)
    assert rate_scaled(0.5, 5.0, 12.0, 0.0) == (0.5, 5.0)                      # 0 = per frame, as before
    assert rate_scaled(0.5, 5.0, 12.0, 30.0) == pytest.approx((0.2, 5.0 * 0.4 ** 3))


def test_stride_prior_makes_the_same_continuous_penalty_above_the_reference_rate():
    """From 1.5 x the reference rate up, the per-frame prior (w_accel, as tuned) plus the k-frame one
    (stride_prior) integrate to the reference rate's multiple of int |x''|^2 dt, as rate_scaled's do below it
    (closed form as above: x = sin(2 pi f t)); below 1.5 x there is no k-frame prior."""
    from video2mesh.models.fit.temporal import stride_prior

    f, seconds = 0.8, 10.0
    acc_integral = (2 * np.pi * f) ** 4 * seconds / 2
    for fps, k in ((45.0, 2), (50.0, 2), (60.0, 2), (100.0, 3), (120.0, 4), (240.0, 8)):
        x = np.sin(2 * np.pi * f * np.arange(int(seconds * fps) + 1) / fps)
        stride, w_stride = stride_prior(5.0, fps, 30.0)
        assert stride == k
        per_frame = 5.0 * (np.diff(x, 2) ** 2).sum()
        over_k = w_stride * ((x[2 * k:] - 2 * x[k:-k] + x[:-2 * k]) ** 2).sum()
        np.testing.assert_allclose((per_frame + over_k) / acc_integral, 5.0 / 30 ** 3, rtol=0.08)
    for fps in (12.0, 30.0, 40.0, 44.9):
        assert stride_prior(5.0, fps, 30.0) == (1, 0.0)
    assert stride_prior(5.0, 60.0, 0.0) == (1, 0.0) and stride_prior(0.0, 60.0, 30.0) == (1, 0.0)


def test_stride_prior_is_a_k_frame_second_difference():
    """anny_fit._accel_prior over k frames against a numpy second difference of every k-th neighbour, with
    the part weights; k = 1 is the per-frame prior."""
    import torch

    from video2mesh.models.fit.anny_fit import _accel_prior, part_accel_weights

    cam = np.random.default_rng(0).normal(size=(20, 17, 3))
    w = part_accel_weights()
    for k in (1, 2, 3):
        acc = cam[2 * k:] - 2 * cam[k:-k] + cam[:-2 * k]
        want = ((acc ** 2).sum(-1) * w).sum(-1).mean() / w.sum()
        assert float(_accel_prior(torch.as_tensor(cam), k)) == pytest.approx(want, rel=1e-12)
