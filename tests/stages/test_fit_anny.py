"""Anny fitting: fast kinematics vs Anny's own skinning, synthetic recovery, real videos, no network."""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from video2mesh.pipeline.artifacts import stack

from .licence_free_helpers import anny_body, blazepose_registry, run_path


@pytest.fixture(scope="module")
def body():
    return anny_body()


def test_fast_keypoints_equal_annys_skinned_and_regressed_keypoints(body):
    """Our closed-form FK + folded regression against anny's own forward (LBS of all vertices, then
    its COCO regressor), for random poses and a random shape."""
    import anny

    from video2mesh.models.body.anny_body import COCO_NAMES, FIT_BONES

    g = torch.Generator().manual_seed(0)
    bones = body.bone_index(FIT_BONES)
    theta = torch.randn(3, len(bones), 3, generator=g, dtype=body.dtype) * 0.4
    phen = torch.rand(1, 6, generator=g, dtype=body.dtype)
    with torch.no_grad():
        sk = body.skeleton(phen)
        ours = body.keypoints_fk(*body.fk(theta, sk, bones), sk)
        out = body.model(pose_parameters=body._deltas(body.deltas_from_theta(theta, sk, bones)), phenotype_kwargs=phen)
        reg = anny.KeypointsRegressor.coco(body.model, labels=COCO_NAMES)
        ref = reg(out)
    assert torch.allclose(ours, ref, atol=1e-4)  # 0.1 mm (float32)


def _project(cam: np.ndarray, f: float, c: np.ndarray) -> np.ndarray:
    return f * cam[..., :2] / cam[..., 2:] + c


def test_fit_recovers_a_synthetic_anny_motion(body):
    """Keypoints made by Anny itself (known pose, shape, camera) -> the fit reprojects them within
    5 px median (1.2% of the ~400 px tall person: the pose prior and smoothness hold it back a
    little) and its hip-aligned 3D keypoints match within 5 cm median, 25 cm worst (depth of a foot)."""
    import roma

    from video2mesh.models.body.anny_body import FIT_BONES
    from video2mesh.models.fit.anny_fit import MODEL_TO_CAMERA, FitConfig, fit_track

    t_frames, w, h, f = 4, 640, 720, 720.0
    bones = body.bone_index(FIT_BONES)
    g = torch.Generator().manual_seed(1)
    phase = torch.linspace(0, 1, t_frames, dtype=body.dtype)[:, None, None]
    theta = (torch.randn(1, len(bones), 3, generator=g, dtype=body.dtype) * 0.25) * (0.8 + 0.2 * phase)  # a slow motion
    phen = torch.tensor([[0.3, 0.5, 0.6, 0.4, 0.7, 0.5]], dtype=body.dtype)
    with torch.no_grad():
        sk = body.skeleton(phen)
        kp = body.keypoints_fk(*body.fk(theta, sk, bones), sk).numpy()
    rot = MODEL_TO_CAMERA @ roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, 0.4])).numpy()
    cam = kp @ rot.T + np.array([0.1, 0.0, 3.0])
    uv = _project(cam, f, np.array([w / 2, h / 2]))
    kp2d = np.concatenate([uv, np.ones_like(uv[..., :1])], -1)
    world = cam - cam[:, 11:13].mean(1, keepdims=True)
    r = fit_track(body, kp2d, world, (w, h), f, FitConfig())
    assert np.median(r.residual_px) < 5.0
    fit_rel = r.keypoints3d - r.keypoints3d[:, 11:13].mean(1, keepdims=True)
    err3d = np.linalg.norm(fit_rel - world, axis=-1)
    assert np.median(err3d) < 0.05 and err3d.max() < 0.25
    assert not r.swapped.any()


def test_fit_undoes_left_right_swaps(body):
    """Frames whose left/right labels were exchanged are detected and fitted with the labels fixed."""
    from video2mesh.models.body.anny_body import COCO_FLIP, FIT_BONES
    from video2mesh.models.fit.anny_fit import MODEL_TO_CAMERA, FitConfig, fit_track

    t_frames, w, h, f = 6, 640, 720, 720.0
    bones = body.bone_index(FIT_BONES)
    with torch.no_grad():
        sk = body.skeleton(torch.full((1, 6), 0.5, dtype=body.dtype))
        kp = body.keypoints_fk(*body.fk(torch.zeros(t_frames, len(bones), 3, dtype=body.dtype), sk, bones), sk).numpy()
    # a quarter turn: the side view makes a swap visible in 2D as well as in depth
    from scipy.spatial.transform import Rotation

    rot = MODEL_TO_CAMERA @ Rotation.from_rotvec([0, 0, 0.6]).as_matrix()
    cam = kp @ rot.T + np.array([0.0, 0.0, 3.0])
    uv = _project(cam, f, np.array([w / 2, h / 2]))
    kp2d = np.concatenate([uv, np.ones_like(uv[..., :1])], -1)
    world = cam - cam[:, 11:13].mean(1, keepdims=True)
    bad = np.zeros(t_frames, bool)
    bad[[1, 4]] = True
    kp2d[bad] = kp2d[bad][:, COCO_FLIP]
    world[bad] = world[bad][:, COCO_FLIP]
    r = fit_track(body, kp2d, world, (w, h), f, FitConfig())
    assert (r.swapped == bad).all()
    assert np.median(r.residual_px) < 5.0


def _fit_on(shared_data, tmp_path, video, frames, people):
    reg = blazepose_registry()
    runner, res = run_path(shared_data / "videos" / video, tmp_path, reg, until="fit", max_frames=frames, max_people=people)
    fit = runner.store.read_df(res["fit"].ref.path)
    bp = runner.store.read_df(res["blazepose"].ref.path)
    return fit, bp


# Stated accuracy on real video: the fitted body's COCO keypoints reproject, on average over the
# confident keypoints (BlazePose score >= 0.5), within 3% of the person's size of BlazePose's own
# keypoints in every frame (~30 px for the ~1000 px tall person of the demo videos; the median is
# ~1%): the body cannot follow BlazePose exactly (its joints sit elsewhere than BlazePose's, and
# the temporal smoothness holds back 12 fps motion).
MAX_REL_ERROR = 0.03


@pytest.mark.parametrize("video,people,frames", [
    ("mmhuman3d_single_person_demo.mp4", 1, 8),
    pytest.param("mmhuman3d_multi_person_demo.mp4", 2, 6, marks=pytest.mark.slow),
])
def test_fitted_keypoints_reproject_onto_blazepose(shared_data, tmp_path, body, video, people, frames):
    fit, bp = _fit_on(shared_data, tmp_path, video, frames, people)
    m = bp.merge(fit, on=["frame", "track_id"], suffixes=("_bp", "_fit"), validate="one_to_one")
    assert len(m) == len(bp) == frames * people
    a = stack(m["keypoints_bp"], 51).reshape(-1, 17, 3)
    b = stack(m["keypoints_fit"], 51).reshape(-1, 17, 3)
    ok = a[..., 2] >= 0.5
    err = np.linalg.norm(a[..., :2] - b[..., :2], axis=-1)
    size = np.array([np.linalg.norm(np.ptp(k[:, :2], axis=0)) for k in a])
    per_frame = (err * ok).sum(1) / ok.sum(1)
    assert (per_frame / size < MAX_REL_ERROR).all(), per_frame / size
    # residual_px: against what the fit saw (the relabelled, smoothed keypoints and their weights)
    inp = stack(m["keypoints_input"], 51).reshape(-1, 17, 3)
    w_in = inp[..., 2] * (inp[..., 2] >= 0.3)
    err_in = np.linalg.norm(inp[..., :2] - b[..., :2], axis=-1)
    assert np.allclose(m.residual_px, (err_in * w_in).sum(1) / w_in.sum(1), rtol=1e-3, atol=0.05)
    assert (fit.body_model == "anny").all()
    # one shape per person
    for _, g in fit.groupby("track_id"):
        ph = stack(g["phenotype"], 6)
        assert np.allclose(ph, ph[0])
    assert ((fit.confidence > 0) & (fit.confidence <= 1)).all()


def test_nothing_touches_the_network(shared_data, tmp_path, body, monkeypatch):
    """The whole path (probe, tracker stand-in, BlazePose, Anny fit) with sockets blocked."""
    reg = blazepose_registry()  # (may run the set-up first; the run below must not need the network)

    def refuse(*a, **k):
        raise OSError("network access blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    from video2mesh.stages.fit_anny import FitAnnyConfig

    runner, res = run_path(shared_data / "videos" / "mmpose_street_demo.mp4", tmp_path, reg, until="fit", max_frames=3,
                           max_people=1, fit_cfg=FitAnnyConfig(iters_pose=20, iters_refine=5))
    fit = runner.store.read_df(res["fit"].ref.path)
    assert len(fit) == 3
    from video2mesh.stages.licence_free import licence_free_available

    ok, why = licence_free_available(reg)
    assert ok, why


def test_smoothing_presets_change_the_stage_key_and_bad_values_are_one_line_errors():
    from video2mesh.pipeline.errors import ConfigError
    from video2mesh.pipeline.stage import Chunk
    from video2mesh.stages import fit_anny

    from video2mesh.models.fit.temporal import SMOOTHING

    keys = set()
    for name in SMOOTHING:
        runner = _key_runner(fit_anny.FitAnnyConfig(smoothing=name))
        keys.add(runner.stage_key("fit", {"probe": "p", "tracklets": "t", "blazepose": "b"}))
    assert len(keys) == 3
    assert fit_anny._fit_config(fit_anny.FitAnnyConfig(smoothing="off"), 30.0).w_accel == 0.0
    assert fit_anny._fit_config(fit_anny.FitAnnyConfig(smoothing="strong"), 30.0).w_accel > \
        fit_anny._fit_config(fit_anny.FitAnnyConfig(), 30.0).w_accel > 0
    # the video's frame rate reaches the energy: a 12 fps video's temporal terms are weaker, a 60 fps one's as at 30
    default = fit_anny.FitAnnyConfig()
    at = {fps: fit_anny._fit_config(default, fps) for fps in (12.0, 30.0, 60.0)}
    assert (at[60.0].w_accel, at[60.0].w_smooth) == (at[30.0].w_accel, at[30.0].w_smooth) == (SMOOTHING["standard"].w_accel, default.w_smooth)
    # ... plus, from 45 fps up, the rest of the physical prior over round(fps / 30) frames (v7), none at 30
    assert (at[30.0].accel_stride, at[30.0].w_accel_stride) == (1, 0.0)
    assert (at[60.0].accel_stride, at[60.0].w_accel_stride) == (2, pytest.approx(at[30.0].w_accel * 7 / 16))
    assert fit_anny._fit_config(fit_anny.FitAnnyConfig(stride_prior=False), 60.0) == at[30.0]
    assert at[12.0].w_accel == pytest.approx(at[30.0].w_accel * 0.4 ** 3) and at[12.0].w_smooth == pytest.approx(0.4 * default.w_smooth)
    # the world landmarks' own window (v10): standard's 0.2 s from 30 fps up, the input window below
    assert fit_anny._preset(default, 30.0).world_half_window_s == 0.2 == fit_anny._preset(default, 60.0).world_half_window_s
    assert fit_anny._preset(default, 12.0).world_half_window_s is None
    assert fit_anny._preset(fit_anny.FitAnnyConfig(world_window_s=0.3), 12.0).world_half_window_s == 0.3
    per_frame = fit_anny.FitAnnyConfig(reference_fps=0)
    assert fit_anny._fit_config(per_frame, 12.0) == at[30.0]
    with pytest.raises(ConfigError, match="off, standard, strong"):
        fit_anny.compute(None, fit_anny.FitAnnyConfig(smoothing="silky"), Chunk(0, 0, 1))


def _key_runner(cfg):
    from video2mesh.pipeline.assets import AssetRegistry
    from video2mesh.pipeline.runner import Runner
    from video2mesh.pipeline.store import ArtifactStore
    from video2mesh.stages import camera_motion, fit_anny, probe

    from .licence_free_helpers import FAKE_TRACKLETS
    import tempfile

    stages = {"probe": probe.STAGE, "tracklets": FAKE_TRACKLETS, "blazepose": _bp_stage(), "fit": fit_anny.STAGE,
              "camera_motion": camera_motion.STAGE}
    return Runner(stages=stages, store=ArtifactStore(tempfile.mkdtemp()), registry=AssetRegistry([]),
                  configs={"fit": cfg})


def _bp_stage():
    from video2mesh.stages import blazepose

    return blazepose.STAGE


def test_windows_resume_to_the_same_rows(shared_data, tmp_path, body):
    """A 30-frame track fitted in 16-frame windows (the shape from its first window): a run
    that lost its first window's part recomputes it alone and ends with the same rows."""
    from video2mesh.stages.fit_anny import FitAnnyConfig

    reg = blazepose_registry()
    cfg = FitAnnyConfig(iters_global=10, iters_pose=30, iters_refine=5, window=16, overlap=4)
    video = shared_data / "videos" / "mmhuman3d_single_person_demo.mp4"
    runner, res = run_path(video, tmp_path, reg, until="fit", max_frames=30, max_people=1, fit_cfg=cfg)
    d = res["fit"].ref.path
    full = runner.store.read_df(d).sort_values("frame").reset_index(drop=True)
    assert res["fit"].parts_total == 3 and len(full) == 30      # 40-frame video: windows 0-16, 16-32, 32-40
    ph = stack(full["phenotype"], 6)
    assert np.allclose(ph, ph[0])                               # one shape across the windows
    (Path(d) / "manifest.json").unlink()
    (Path(d) / "part-00000.parquet").unlink()
    runner2, res2 = run_path(video, tmp_path, reg, until="fit", max_frames=30, max_people=1, fit_cfg=cfg)
    assert res2["fit"].status == "resumed" and res2["fit"].parts_computed == 1
    again = runner2.store.read_df(res2["fit"].ref.path).sort_values("frame").reset_index(drop=True)
    for col in ("bone_rotations", "transl", "keypoints3d", "keypoints_input"):
        assert np.array_equal(stack(again[col], len(again[col].iloc[0])), stack(full[col], len(full[col].iloc[0]))), col


def test_focal_from_video_reads_camera_motion_and_falls_back_to_the_guess():
    """fit's pinhole: the focal length a turning camera's homographies give (made with f = 554 px)
    when `focal_from_video`, the guess focal_scale x max(W, H) when off or when the camera is still."""
    from types import SimpleNamespace

    import pandas as pd

    from scipy.spatial.transform import Rotation

    from video2mesh.models.maths.camera_motion import intrinsics
    from video2mesh.stages.fit_anny import FitAnnyConfig, _focal

    k = intrinsics(554.0, 640, 360)
    turn = [k @ Rotation.from_euler("yx", [0.5, 0.1 * (-1) ** t], degrees=True).as_matrix() @ np.linalg.inv(k)
            for t in range(90)]

    def ctx(hs):
        cam = pd.DataFrame({"frame": np.arange(90), "h": [h.reshape(9) for h in hs], "valid": [t > 0 for t in range(90)]})
        return SimpleNamespace(video=SimpleNamespace(width=640, height=360), memo=lambda key, make: make(),
                               input=lambda name, columns=None: cam[columns])

    assert abs(_focal(ctx(turn), FitAnnyConfig(focal_from_video=True)) / 554.0 - 1) < 0.011
    assert _focal(ctx(turn), FitAnnyConfig(focal_scale=0.9)) == pytest.approx(576.0)          # off: the guess
    assert _focal(ctx([np.eye(3)] * 90), FitAnnyConfig(focal_from_video=True)) == pytest.approx(640.0)


def test_the_fit_marks_frames_whose_blazepose_body_is_another_tracks():
    """fit's `_with_borrowed`: tracklets' boxes and detected flags decide who keeps a body two tracks share."""
    from types import SimpleNamespace

    import pandas as pd

    from video2mesh.stages.fit_anny import FitAnnyConfig, _with_borrowed

    body = np.c_[np.linspace(100, 140, 17), np.linspace(100, 260, 17), np.full(17, 0.9)]
    other = body + [200.0, 0, 0]
    bp = pd.DataFrame({"frame": [0, 0, 1, 1], "track_id": [3, 5, 3, 5],
                       "keypoints": [body.ravel(), body.ravel(), body.ravel(), other.ravel()]})
    box = [100.0, 100, 140, 260]
    far = [400.0, 100, 440, 260]
    tl = pd.DataFrame([(0, 3, *box, False), (0, 5, *far, True), (1, 3, *box, False), (1, 5, *far, False)],
                      columns=["frame", "track_id", "x1", "y1", "x2", "y2", "interpolated"])
    ctx = SimpleNamespace(input_frames=lambda name, lo, hi, columns: tl[(tl.frame >= lo) & (tl.frame < hi)][columns])
    # frame 0: track 5, filled in 300 px away, carries track 3's body; frame 1: two bodies
    assert _with_borrowed(ctx, FitAnnyConfig(), bp)["borrowed"].tolist() == [False, True, False, False]
    assert not _with_borrowed(ctx, FitAnnyConfig(same_body=0), bp)["borrowed"].any()


def test_a_track_with_borrowed_frames_takes_its_shape_from_the_frames_it_sees(monkeypatch):
    """The body's shape comes from a fit of the track's own frames, then the whole track is fitted at that shape
    (a guess-carrying stretch let the shape run away on a crowd clip: docs/crowd.md)."""
    from types import SimpleNamespace

    import pandas as pd

    from video2mesh.pipeline.stage import Chunk
    from video2mesh.stages import fit_anny

    calls = []

    class Stop(Exception):
        pass

    def fake_fit(body, kp, world, size, focal, cfg, linear=None, phenotype=None):
        calls.append((len(kp), None if phenotype is None else np.asarray(phenotype).tolist()))
        if phenotype is not None:                          # the whole track's fit: the test ends here
            raise Stop
        return SimpleNamespace(phenotype=np.full(6, 0.25))

    monkeypatch.setattr(fit_anny, "fit_track", fake_fit)
    monkeypatch.setattr(fit_anny, "load_body", lambda ctx, rig: None)
    monkeypatch.setattr(fit_anny, "linear_skeleton", lambda body: None)
    lm = np.ones((10, 33, 5))
    g = pd.DataFrame({"frame": np.arange(10), "landmarks": list(lm.reshape(10, -1)),
                      "world": list(np.zeros((10, 99))), "borrowed": [False] * 3 + [True] * 3 + [False] * 4})
    ctx = SimpleNamespace(video=SimpleNamespace(width=640, height=360, fps=30.0), memo=lambda key, make: make())
    cfg = fit_anny.FitAnnyConfig(same_body=0.05)
    with pytest.raises(Stop):
        fit_anny._fit_rows(ctx, cfg, fit_anny._fit_config(cfg, 30.0), 0, g, Chunk(0, 0, 10), None)
    assert calls == [(7, None), (10, [0.25] * 6)]        # own frames first, free shape; then all at that shape
    calls.clear()
    with pytest.raises(Stop):                             # nothing borrowed (a long track's window): one fit
        fit_anny._fit_rows(ctx, cfg, fit_anny._fit_config(cfg, 30.0), 0, g.assign(borrowed=False), Chunk(0, 0, 10),
                           np.full(6, 0.5))
    assert calls == [(10, [0.5] * 6)]
