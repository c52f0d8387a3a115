"""Accuracy scorer: npz reading (camera/world frames, GL -> OpenCV), track matching, a perfect prediction
scores 0, the fast mode's noise has the measured statistics; slow: a fast-mode run through the real fit."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from video2mesh.benchmarks.accuracy import fast
from video2mesh.benchmarks.accuracy.score import GL_TO_CV, match_tracks, read_prediction, score_clip

T = 120


def write_npz(path: Path, **arrays) -> Path:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    return path


def synthetic_gt(t: int = T) -> dict:
    """One person walking along +Z in front of a static, tilted camera; every GT_FORMAT field the scorer reads."""
    rng = np.random.default_rng(0)
    body = rng.normal(size=(23, 3)) * [0.25, 0.45, 0.15] + [0, 0.95, 0]
    body[17:23, 1] = 0.015                                          # feet on the floor
    world = body[None] + np.arange(t)[:, None, None] * [0, 0, 0.03]
    world[:, :17] += 0.02 * np.sin(np.arange(t)[:, None, None] * 0.2)
    world[:, 17:] = body[17:]                                       # planted feet (in contact throughout)
    r = Rotation.from_euler("xyz", [170, 20, 0], degrees=True).as_matrix()
    r_wc, t_wc = np.repeat(r[None], t, 0), np.repeat(np.array([[0.2, 1.0, 6.0]]), t, 0)
    cam = np.einsum("tij,tkj->tki", r_wc, world) + t_wc[:, None]
    contact = np.ones((1, t, 2), bool)
    return {"joints_world": world[None], "joints_cam": cam[None], "R_wc": r_wc, "t_wc": t_wc,
            "present": np.ones((1, t), bool), "bbox": np.repeat(np.array([[[100.0, 50, 200, 300]]]), t, 1),
            "contact": contact}


def test_reader_turns_gl_camera_axes_into_opencv(tmp_path):
    kp = np.random.default_rng(1).normal(size=(5, 17, 3))
    p = read_prediction(write_npz(tmp_path / "track_004_anny.npz", keypoints3d=kp, frame=np.arange(5)))
    assert p.track_id == 4 and p.frame_space == "camera" and p.world is None
    assert np.allclose(p.cam, kp * [1, -1, -1])


def test_reader_world_output_uses_cam_r_and_cam_t(tmp_path):
    rng = np.random.default_rng(2)
    kp, feet = rng.normal(size=(5, 17, 3)), rng.normal(size=(5, 6, 3))
    r = Rotation.random(5, random_state=3).as_matrix()
    t = rng.normal(size=(5, 3))
    p = read_prediction(write_npz(tmp_path / "track_000_anny.npz", keypoints3d=kp, feet3d=feet, frame=np.arange(5),
                                  frame_space=np.array("world"), cam_R=r, cam_t=t))
    both = np.concatenate([kp, feet], 1)
    assert p.cam.shape == (5, 23, 3) and np.allclose(p.world, both)
    want = np.stack([(both[i] @ r[i].T + t[i]) @ GL_TO_CV.T for i in range(5)])
    assert np.allclose(p.cam, want)


def test_tracks_match_by_majority_and_unmatched_frames_cost_recall():
    boxes = np.array([[[0.0, 0, 10, 10]] * 6, [[50.0, 0, 60, 10]] * 6])          # (2, 6, 4)
    present = np.ones((2, 6), bool)
    near1 = np.array([[1.0, 0, 11, 10]] * 6)
    tracks = {7: (np.arange(6), near1), 3: (np.arange(4), boxes[0, :4] + [50, 0, 50, 0])}
    tracks[7][1][2] = [300, 300, 310, 310]                         # one frame of track 7 is elsewhere
    owner, hits = match_tracks(boxes, present, tracks)
    assert owner == {7: 0, 3: 1}
    assert hits[7].tolist() == [True, True, False, True, True, True]
    assert hits[3].tolist() == [True] * 4 + [False] * 2
    loose = {1: (np.arange(6), np.array([[-8.0, -8, 18, 18]] * 6))}   # a tracker box 2.6x the tight GT box: IoU 0.15
    assert match_tracks(boxes[:1], present[:1], loose)[1][1].all()


def test_perfect_prediction_scores_zero(tmp_path):
    gt = synthetic_gt()
    gl = gt["joints_cam"][0] @ GL_TO_CV.T
    p = read_prediction(write_npz(tmp_path / "track_000_anny.npz", keypoints3d=gl[:, :17], feet3d=gl[:, 17:],
                                  frame=np.arange(T)))
    s = score_clip(gt, [p], {0: (np.arange(T), gt["bbox"][0])})
    assert s["recall"] == 1.0 and s["frames_scored"] == T
    for k in ("mpjpe_mm", "pa_mpjpe_mm", "accel_err_mm", "w_mpjpe_mm", "wa_mpjpe_mm", "drift_m_per_10m",
              "foot_skate_mm", "penetration_cm", "float_cm", "flip_rate"):
        assert s[k] == pytest.approx(0.0, abs=1e-6), k


def test_constant_offset_and_missing_frames(tmp_path):
    gt = synthetic_gt()
    gl = gt["joints_cam"][0] @ GL_TO_CV.T
    kp = gl[:, :17].copy()
    kp[:, 3:7] += [0.0, 0.05, 0.0]                                 # 4 of 17 joints 5 cm off (root untouched)
    keep = np.arange(T) != 50                                      # one frame missing from the output
    p = read_prediction(write_npz(tmp_path / "track_000_anny.npz", keypoints3d=kp[keep], frame=np.arange(T)[keep]))
    s = score_clip(gt, [p], {0: (np.arange(T)[keep], gt["bbox"][0][keep])})
    assert s["mpjpe_mm"] == pytest.approx(50 * 4 / 17)
    assert s["recall"] == pytest.approx((T - 1) / T)
    assert s["foot_skate_mm"] is None                              # no feet3d in this output


def test_noise_model_has_the_measured_median_and_acceleration():
    t, size = 4000, 400.0
    uv = np.zeros((t, 17, 2))
    uv[:, 0] = [0, 0]
    uv[:, 16] = [0, size]                                          # person size = 400 px
    noise = fast.NoiseModel(dropout=0.0, swap=0.0)
    kp, _ = fast.noisy_keypoints(uv, np.zeros((t, 17, 3)), np.ones((t, 17), bool), noise, np.random.default_rng(0))
    err = np.linalg.norm(kp[..., :2] - uv, axis=-1)
    assert np.median(err) == pytest.approx(fast.MEDIAN_ERR_FRAC * size, rel=0.05)
    acc2d = np.linalg.norm(kp[2:, :, :2] - 2 * kp[1:-1, :, :2] + kp[:-2, :, :2], axis=-1)
    assert acc2d.mean() == pytest.approx(fast.ACCEL_FRAC * size, rel=0.05)


@pytest.mark.slow
def test_fast_mode_end_to_end_perfect_beats_noisy(tmp_path):
    """40 synthetic frames through the real pipeline (tracks, tracklets, fit, fit_export) and the scorer."""
    from video2mesh.benchmarks.accuracy.bench import run_clip
    from video2mesh.benchmarks.accuracy.fastgt import procedural_gt
    from video2mesh.flows.spec import RunSpec

    clip = tmp_path / "clip"
    gt_path = procedural_gt(clip, frames=40)
    spec = RunSpec(out=str(tmp_path / "out"), cache=str(tmp_path / "cache"), method="licence-free", device="cpu",
                   settings={"fit_export": {"formats": ["npz"]}})
    perfect = run_clip(clip, gt_path, spec, fast=True, noise=fast.NoiseModel.perfect())
    noisy = run_clip(clip, gt_path, spec, fast=True, noise=fast.NoiseModel(median_frac=0.04, seed=1))
    assert perfect["recall"] == 1.0 and perfect["frames_scored"] == 40
    assert perfect["stages"]["fit"]["status"] == "computed" and perfect["stages"]["blazepose"]["status"] == "cached"
    assert perfect["mpjpe_mm"] < 25 and perfect["mpjpe_mm"] < 0.6 * noisy["mpjpe_mm"]


@pytest.mark.slow
def test_a_clip_of_the_same_name_in_another_set_is_scored_on_its_own_outputs(tmp_path):
    """Two sets (another frame rate and length) both hold a clip named `clip`: each is scored against its own
    run. Before, the second run published into `<runs>/clip/<video>-<digest>` and the scorer read the first's
    `<runs>/clip/<video>`: a 60 fps set was scored on the 30 fps set's motion (half its frames)."""
    from video2mesh.benchmarks.accuracy.bench import run_clip
    from video2mesh.benchmarks.accuracy.fastgt import procedural_gt
    from video2mesh.flows.spec import RunSpec

    spec = RunSpec(out=str(tmp_path / "runs"), cache=str(tmp_path / "cache"), method="licence-free", device="cpu",
                   settings={"fit_export": {"formats": ["npz"]}})
    rows = []
    for set_name, frames, fps in (("set30", 30, 30.0), ("set15", 16, 15.0)):
        gt_path = procedural_gt(tmp_path / set_name / "clip", frames=frames, fps=fps)
        rows.append(run_clip(gt_path.parent, gt_path, spec, fast=True, noise=fast.NoiseModel.perfect()))
    assert [r["frames_scored"] for r in rows] == [30, 16]
    assert rows[0]["outputs"] != rows[1]["outputs"]
    assert all(r["mpjpe_mm"] < 25 for r in rows)


def test_pve_of_the_posed_rig_itself_is_zero(tmp_path):
    """A prediction whose rig poses exactly the GT mesh scores PVE 0, with the rig stored in another frame."""
    from video2mesh.benchmarks.accuracy.score import pve_mm
    from video2mesh.models.body.anny_body import pose_rig
    from video2mesh.models.body.anny_keypoints import keypoints23
    from video2mesh.stages.licence_free import load_body
    import torch

    body = load_body(None)
    rng = np.random.default_rng(4)
    n_bones = len(body.bone_names)
    rig = {"bone_rotations": rng.normal(scale=0.15, size=(3, n_bones, 3)), "global_orient": rng.normal(scale=0.3, size=(3, 3)),
           "transl": np.array([[0.1, 0.2, 4.0]] * 3), "phenotype": np.full(6, 0.5)}
    with torch.no_grad():
        sk = body.skeleton(torch.as_tensor(rig["phenotype"][None], dtype=body.dtype))
    v = pose_rig(body, sk, rig["bone_rotations"], rig["global_orient"], rig["transl"])["vertices"]
    kp = keypoints23(body, v)
    gt = {"verts_world": v[None], "verts_stride": 1, "R_wc": np.repeat(np.eye(3)[None], 3, 0), "t_wc": np.zeros((3, 3)),
          "joints_cam": kp[None]}
    moved = dict(rig, transl=rig["transl"] + [5.0, 0.0, 0.0])   # rig stored 5 m off: the keypoint fit brings it back
    p = read_prediction(write_npz(tmp_path / "track_000_anny.npz", keypoints3d=kp[:, :17] @ GL_TO_CV.T, frame=np.arange(3),
                                  body_model=np.array("anny"), **moved))
    assert pve_mm(gt, [p], {0: 0}, {0: np.ones(3, bool)}, body) == pytest.approx(0.0, abs=1e-3)
    off = read_prediction(write_npz(tmp_path / "track_001_anny.npz", keypoints3d=kp[:, :17] @ GL_TO_CV.T, frame=np.arange(3),
                                    body_model=np.array("anny"), **dict(rig, phenotype=np.full(6, 0.9))))
    assert pve_mm(gt, [off], {1: 0}, {1: np.ones(3, bool)}, body) > 5.0


def test_reader_maps_the_smpl_paths_joints(tmp_path):
    from video2mesh.benchmarks.accuracy.score import COCO_FROM_SMPL24

    j = np.random.default_rng(5).normal(size=(4, 24, 3))
    p = read_prediction(write_npz(tmp_path / "track_002.npz", joints=j, frame=np.arange(4)))
    assert p.track_id == 2 and np.allclose(p.cam[:, 11], j[:, 1] * [1, -1, -1])     # COCO left hip <- SMPL left hip
    assert COCO_FROM_SMPL24.shape == (17,)


def test_bench_accuracy_bad_mocap_is_one_line_and_exit_2(tmp_path, capsys):
    from tests.benchmarks.bvh_helpers import HUMANOID, write_bvh
    from video2mesh.flows.cli import main

    names = {n: f"bone{i}" for i, (n, _, _) in enumerate(HUMANOID)}
    odd = write_bvh(tmp_path / "odd.bvh", np.zeros((3, 3)), names=names)
    for arg in (str(odd), str(tmp_path / "missing"), str(tmp_path)):
        if arg == str(tmp_path):
            odd.unlink()                                           # a folder without any .bvh
        assert main(["bench", "accuracy", "--mocap", arg, "--root", str(tmp_path / "root")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("v2m: error:") and "\n" not in err, err
    write_bvh(tmp_path / "ok.bvh", np.zeros((3, 3)))
    for fps in ("0", "500"):                                       # a frame rate no clip is rendered at
        assert main(["bench", "accuracy", "--mocap", str(tmp_path / "ok.bvh"), "--fps", fps, "--root", str(tmp_path / "root")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("v2m: error: --fps") and "\n" not in err, err


def test_known_stature_is_the_gt_bodys_and_single_person_only():
    """`--known-stature` passes the GT body's stature: the benchmark's bodies measure 1.63 / 1.99 / 1.31 m
    (docs/accuracy.md, "Body size", measured on the rest meshes before this option existed)."""
    pytest.importorskip("anny", reason="the anny package is not installed")
    from dataclasses import asdict

    from video2mesh.benchmarks.accuracy.bench import gt_stature
    from video2mesh.benchmarks.accuracy.render import DEFAULT_PHENOTYPES
    from video2mesh.pipeline.errors import ConfigError

    people = [{"phenotype": asdict(p)} for p in DEFAULT_PHENOTYPES]
    got = [gt_stature({"meta": {"people": [p]}}) for p in people]
    assert got == pytest.approx([1.63, 1.99, 1.31], abs=0.006)
    assert gt_stature({"meta": {"phenotype": people[1]["phenotype"]}}) == got[1]      # fast mode's gt.npz
    with pytest.raises(ConfigError, match="2 people"):
        gt_stature({"meta": {"people": people[:2]}})


def test_camera_rotation_and_travel_in_the_score(tmp_path):
    """A world-frame output of the synthetic clip whose camera turns 2 deg more than the truth's (from
    frame 60) and whose body travels at 0.9 x: cam_rot_err_deg is the median of 0 and 2 deg frames, travel 0.9."""
    gt = synthetic_gt()
    yaw = Rotation.from_euler("y", 0.3 * np.arange(T)[:, None], degrees=True).as_matrix()
    gt["R_wc"] = np.einsum("ij,tjk->tik", gt["R_wc"][0], yaw)            # a panning camera
    gt["joints_cam"] = np.einsum("tij,ptkj->ptki", gt["R_wc"], gt["joints_world"]) + gt["t_wc"][None, :, None]
    extra = np.where(np.arange(T)[:, None, None] >= 60, Rotation.from_euler("y", 2, degrees=True).as_matrix(), np.eye(3))
    w = Rotation.from_rotvec([0.0, 0.7, 0.0]).as_matrix()              # our world turned against the GT's
    cam_r_cv = extra @ gt["R_wc"] @ w.T
    world = 0.9 * gt["joints_world"][0] @ w.T
    cam_t = np.zeros((T, 3))
    p = read_prediction(write_npz(tmp_path / "track_000_anny.npz", keypoints3d=world[:, :17], feet3d=world[:, 17:],
                                  frame=np.arange(T), frame_space=np.array("world"), cam_R=GL_TO_CV @ cam_r_cv,
                                  cam_t=cam_t))
    s = score_clip(gt, [p], {0: (np.arange(T), gt["bbox"][0])})
    assert s["cam_rot_err_deg"] == pytest.approx(1.0, abs=1e-6)      # median of 60 frames at 0 and 60 at 2
    assert s["travel_ratio"] == pytest.approx(0.9, abs=1e-6)
    cam_only = read_prediction(write_npz(tmp_path / "track_001_anny.npz", keypoints3d=world[:, :17], frame=np.arange(T)))
    assert score_clip(gt, [cam_only], {1: (np.arange(T), gt["bbox"][0])})["cam_rot_err_deg"] is None
