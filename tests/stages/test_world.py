"""world + camera_motion stages: the licence-free exports in the world frame, checked against the fit.

- camera_motion on a video panned by known rotations (a texture warped by K R K^-1 per frame);
- world on a fake fit (known Anny rig) with a still camera: the npz's camera reprojects the world-frame
  joints onto the fit's camera-space joints, the conventions hold (start at the origin facing +Z,
  floor y = 0), contacts and floor are exported; `world.frame=camera` is covered by test_fit_export.
"""
from __future__ import annotations

import io
import zipfile

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from video2mesh.models.fit.world import WorldConfig, camera_rotations
from video2mesh.models.maths.camera_motion import intrinsics
from video2mesh.pipeline.artifacts import stack
from video2mesh.pipeline.assets import AssetRegistry, default_models_dir
from video2mesh.pipeline.runner import Runner
from video2mesh.pipeline.store import ArtifactStore
from video2mesh.stages import camera_motion, fit_export, probe
from video2mesh.models.body.anny_body import N_BONES
from video2mesh.models.writers.animation import CAMERA_TO_YUP

from .fakes import FAKE_TRACKLETS, write_video
from .fit_fakes import fake_fit_stage, fit_frame, rig_params, world_stages
from .licence_free_helpers import anny_body

W, H, FPS, STEP_DEG = 320, 240, 25.0, 0.4


def panned_video(path, n=8, fps=FPS, step_deg=STEP_DEG):
    """Frames of one texture seen by a camera turning step_deg per frame about its vertical axis."""
    rng = np.random.default_rng(0)
    big = np.zeros((H, W), np.float32)
    for s in (2, 6, 18):
        big += cv2.GaussianBlur(rng.random((H, W)).astype(np.float32), (0, 0), s) * s
    tex = cv2.cvtColor(cv2.normalize(big, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    k = intrinsics(float(max(W, H)), W, H)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (W, H))
    for t in range(n):
        r = Rotation.from_euler("y", step_deg * t, degrees=True).as_matrix()
        vw.write(cv2.warpPerspective(tex, k @ r @ np.linalg.inv(k), (W, H), flags=cv2.INTER_CUBIC,
                                     borderMode=cv2.BORDER_REFLECT))
    vw.release()
    return path


@pytest.mark.parametrize("symmetric", [False, True])
def test_camera_motion_recovers_a_pan(tmp_path, symmetric):
    """The chain of a pan of 0.4 deg a frame, one-way and with each pair also tracked backwards (symmetric)."""
    video = panned_video(tmp_path / "pan.mp4")
    runner = Runner(stages={"probe": probe.STAGE, "tracklets": FAKE_TRACKLETS, "camera_motion": camera_motion.STAGE},
                    store=ArtifactStore(tmp_path / "cache"), registry=AssetRegistry([], models_dir=default_models_dir()),
                    configs={"camera_motion": camera_motion.CameraMotionConfig(grid=24, symmetric=symmetric)})
    res = runner.run(video, until="camera_motion")
    df = runner.store.read_df(res["camera_motion"].ref.path).sort_values("frame")
    assert df.frame.tolist() == list(range(8)) and not df.valid.iloc[0] and df.valid.iloc[1:].all()
    c, still = camera_rotations(stack(df.h, 9, np.float64).reshape(-1, 3, 3), df.valid.to_numpy(),
                                intrinsics(float(max(W, H)), W, H), FPS, WorldConfig())
    turn = np.degrees(Rotation.from_matrix(c[-1]).as_rotvec())
    assert turn[1] == pytest.approx(STEP_DEG * 7, abs=0.1)      # frame t = frame 0 warped by K R_t K^-1: C_t = R_t
    assert abs(turn[0]) < 0.1 and abs(turn[2]) < 0.1
    assert still.max() < 0.01                                   # 10 deg/s: not a still camera


def test_camera_motion_tracks_both_ways_by_itself_on_long_videos_only():
    """symmetric=None (the default) is on from AUTO_SYMMETRIC_S of video; true / false override it; the --set values
    parse to those three."""
    from video2mesh.pipeline.config import from_mapping, parse_sets

    auto = camera_motion.CameraMotionConfig()
    assert auto.symmetric is None
    limit = camera_motion.AUTO_SYMMETRIC_S
    assert not camera_motion.is_symmetric(auto, int(limit * 30) - 1, 30.0)
    assert camera_motion.is_symmetric(auto, int(limit * 30), 30.0)
    assert camera_motion.is_symmetric(auto, int(limit * 12), 12.0)          # seconds, whatever the frame rate
    assert camera_motion.is_symmetric(camera_motion.CameraMotionConfig(symmetric=True), 10, 30.0)
    assert not camera_motion.is_symmetric(camera_motion.CameraMotionConfig(symmetric=False), 100_000, 30.0)
    for text, want in (("true", True), ("false", False), ("null", None)):
        sets = parse_sets([f"camera_motion.symmetric={text}"])["camera_motion"]
        assert from_mapping(camera_motion.CameraMotionConfig, sets).symmetric is want


def test_camera_motion_from_keyframes_chains_to_the_pan_and_resumes_per_chunk(tmp_path):
    """60 fps, 0.15 deg per frame: pairs come from keyframes 4 frames apart (key_fps 15); their chain is the pan,
    and chunks that start between keyframes (6 frames each) give the rows of one whole-clip chunk."""
    video = panned_video(tmp_path / "pan60.mp4", n=22, fps=60.0, step_deg=0.15)
    assert camera_motion.key_stride(60.0, 15.0) == 4 and camera_motion.key_stride(12.0, 15.0) == 1
    rows = {}
    for chunk in (256, 6):
        runner = Runner(stages={"probe": probe.STAGE, "tracklets": FAKE_TRACKLETS, "camera_motion": camera_motion.STAGE},
                        store=ArtifactStore(tmp_path / f"cache{chunk}"), registry=AssetRegistry([], models_dir=default_models_dir()),
                        configs={"camera_motion": camera_motion.CameraMotionConfig(grid=24, chunk_frames=chunk)})
        res = runner.run(video, until="camera_motion")
        rows[chunk] = runner.store.read_df(res["camera_motion"].ref.path).sort_values("frame")
    whole, chunked = rows[256], rows[6]
    assert whole.frame.tolist() == chunked.frame.tolist() == list(range(22)) and whole.valid.iloc[1:].all()
    np.testing.assert_allclose(stack(chunked.h, 9, np.float64), stack(whole.h, 9, np.float64), atol=1e-6)
    c, _ = camera_rotations(stack(whole.h, 9, np.float64).reshape(-1, 3, 3), whole.valid.to_numpy(),
                            intrinsics(float(max(W, H)), W, H), 60.0, WorldConfig())
    turns = np.degrees(Rotation.from_matrix(c).as_rotvec())[:, 1]
    np.testing.assert_allclose(turns, 0.15 * np.arange(22), atol=0.05)     # every frame, not only the keyframes
    assert turns[-1] == pytest.approx(0.15 * 21, abs=0.03)


@pytest.fixture(scope="module")
def world_npz(tmp_path_factory):
    body = anny_body()
    tmp = tmp_path_factory.mktemp("world")
    video = write_video(tmp / "clip.mp4")
    fit = fit_frame({0: np.arange(0, 12)}, rig=lambda tid, fr: rig_params(body, tid, fr))
    extra, configs = world_stages("world")
    runner = Runner(stages={"probe": probe.STAGE, "fit": fake_fit_stage(fit), "fit_export": fit_export.STAGE, **extra},
                    store=ArtifactStore(tmp / "cache"), registry=AssetRegistry([], models_dir=default_models_dir()),
                    configs={**configs, "fit_export": fit_export.FitExportConfig(formats=("npz", "glb"))})
    paths = fit_export.fit_export_outputs(runner, video, tmp / "out")
    npz = next(p for p in paths if p.suffix == ".npz")
    with zipfile.ZipFile(npz) as z:
        d = {n[:-4]: np.load(io.BytesIO(z.read(n)), allow_pickle=False) for n in z.namelist()}
    return d, fit, body


def test_world_npz_reprojects_onto_the_fit_exactly(world_npz):
    import torch

    from video2mesh.models.body.anny_body import pose_bones, pose_rig

    d, fit, body = world_npz
    n = len(fit)
    assert str(d["frame_space"]) == "world"
    assert d["cam_R"].shape == (n, 3, 3) and d["cam_t"].shape == (n, 3) and d["contact"].shape == (n, 2)
    assert d["contact"].dtype == bool and d["feet3d"].shape == (n, 6, 3) and d["keypoints3d"].shape == (n, 17, 3)
    with torch.no_grad():
        sk = body.skeleton(torch.as_tensor(stack(fit.phenotype, 6)[:1]))
    heads = pose_rig(body, sk, stack(fit.bone_rotations, N_BONES * 3, np.float64).reshape(n, N_BONES, 3),
                     stack(fit.global_orient, 3, np.float64), stack(fit.transl, 3, np.float64), vertices=False)["heads"]
    gl = np.einsum("tij,tkj->tki", d["cam_R"], d["joints"].astype(np.float64)) + d["cam_t"][:, None]
    np.testing.assert_allclose(gl, heads @ CAMERA_TO_YUP.T, atol=2e-5)   # float32 files: ~1e-6 relative


def test_world_npz_camera_puts_the_joints_where_the_fit_sees_them(world_npz):
    """cam_K / image_size with cam_R / cam_t (camera_note's recipe) project the world-frame joints to the pixels
    of the fit's camera-space joints under the fit's pinhole (u = f x / z + W / 2, v = f y / z + H / 2)."""
    import torch

    from video2mesh.models.body.anny_body import pose_bones, pose_rig

    from .fakes import H as VH, W as VW

    d, fit, body = world_npz
    n = len(fit)
    assert d["image_size"].tolist() == [VW, VH] and "cam_K" in str(d["camera_note"])
    with torch.no_grad():
        sk = body.skeleton(torch.as_tensor(stack(fit.phenotype, 6)[:1]))
    heads = pose_rig(body, sk, stack(fit.bone_rotations, N_BONES * 3, np.float64).reshape(n, N_BONES, 3),
                     stack(fit.global_orient, 3, np.float64), stack(fit.transl, 3, np.float64), vertices=False)["heads"]
    f = float(fit.focal_px.iloc[0])
    want = np.stack([f * heads[..., 0] / heads[..., 2] + VW / 2, f * heads[..., 1] / heads[..., 2] + VH / 2], -1)
    gl = np.einsum("tij,tkj->tki", d["cam_R"], d["joints"].astype(np.float64)) + d["cam_t"][:, None]
    uvw = np.einsum("ij,tkj->tki", d["cam_K"], gl * [1.0, -1.0, -1.0])
    np.testing.assert_allclose(uvw[..., :2] / uvw[..., 2:], want, atol=1e-3)


def test_world_npz_conventions(world_npz):
    d, _, _ = world_npz
    np.testing.assert_allclose(d["floor"], [0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(d["joints"][0, 0, [0, 2]], 0.0, atol=1e-5)    # root above the origin
    assert d["feet3d"][..., 1].min() > -1e-4                                 # nothing under the floor
    low = d["feet3d"].reshape(-1, 2, 3, 3)[..., 1].min(2)
    if d["contact"].any():
        assert np.abs(low[d["contact"]]).max() < 0.01
    r = d["cam_R"]
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.tile(np.eye(3), (len(r), 1, 1)), atol=1e-5)


def test_world_artifact_extends_the_fit_schema():
    """stages/world.py lists the fit columns it carries itself (no stage imports another): each must be
    a column of `fit` with the same type (fit may have more, e.g. its inputs, that the world drops)."""
    from video2mesh.stages.fit_anny import FIT
    from video2mesh.stages.world import FIT_COLUMNS, WORLD

    assert len(FIT_COLUMNS) >= 14
    for name in FIT_COLUMNS:
        assert WORLD.schema.field(name) == FIT.schema.field(name), name


def test_world_rig_posed_in_slices_equals_the_whole_track_and_the_mesh():
    """rig_points / planted_legs / pose_bones pose a long track a slice at a time (memory): slices of 5
    frames give the posed mesh's foot vertices and Anny's COCO regressor on that mesh (an independent
    reference: LBS of every vertex), pose_rig's bones exactly, and the same leg IK as one call on the
    whole track."""
    import torch

    from video2mesh.models.body.anny_body import pose_bones, pose_rig
    from video2mesh.models.body.anny_keypoints import FOOT_VERTICES
    from video2mesh.models.fit.leg_ik import leg_ik
    from video2mesh.stages.world import planted_legs, rig_points

    body = anny_body()
    frames = np.arange(23)
    p = rig_params(body, 0, frames)
    with torch.no_grad():
        sk = body.skeleton(torch.as_tensor(p["phenotype"][None], dtype=body.dtype))
    rots, orient, transl = (np.asarray(p[k], np.float64) for k in ("bone_rotations", "global_orient", "transl"))
    ref = pose_rig(body, sk, rots, orient, transl)
    bones = [list(body.bone_names).index(b) for b in ("foot.L", "foot.R", "spine01")]
    got = rig_points(body, sk, rots, orient, transl, bones, slice_frames=5)
    np.testing.assert_allclose(got["rotations"], ref["rotations"][:, bones], atol=1e-12)
    np.testing.assert_allclose(got["heads"], ref["heads"][:, bones], atol=1e-12)
    np.testing.assert_allclose(got["feet"], ref["vertices"][:, FOOT_VERTICES], atol=1e-9)
    coco = np.einsum("kv,tvc->tkc", body.kp_weights.double().numpy(), ref["vertices"][:, body.kp_vertices.numpy()])
    np.testing.assert_allclose(got["coco"], coco, atol=1e-5)   # kp_a is float32: ~2 um
    sliced = pose_bones(body, sk, rots, orient, transl, slice_frames=5)
    np.testing.assert_array_equal(sliced["rotations"], ref["rotations"])
    np.testing.assert_array_equal(sliced["heads"], ref["heads"])
    assert set(pose_bones(body, sk, rots, orient, transl, bones[:1], rotations=False, slice_frames=4)) == {"heads"}

    rng = np.random.default_rng(3)
    shift = rng.normal(0, 0.03, (len(frames), 2, 3)) * (rng.random((len(frames), 2, 1)) < 0.6)
    turn = Rotation.from_rotvec(rng.normal(0, 0.1, (len(frames) * 2, 3))).as_matrix().reshape(-1, 2, 3, 3)
    whole = leg_ik(list(body.bone_names), rots, ref["rotations"], ref["heads"], shift, turn)
    assert np.abs(whole - rots).max() > 0.01                          # the IK did move the legs
    np.testing.assert_allclose(planted_legs(body, sk, rots, orient, transl, shift, turn, slice_frames=5), whole, atol=1e-12)
    np.testing.assert_allclose(planted_legs(body, sk, rots, orient, transl, shift, None, slice_frames=5),
                               leg_ik(list(body.bone_names), rots, ref["rotations"], ref["heads"], shift), atol=1e-12)
