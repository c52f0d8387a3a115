"""fit_export stage: the licence-free path's files, published from the cache, checked by independent
readers (bvhio, trimesh, pygltflib) against the rig's forward kinematics (video2mesh.models.body.anny_body.pose_rig)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from video2mesh.pipeline.artifacts import stack
from video2mesh.pipeline.assets import AssetRegistry, default_models_dir
from video2mesh.pipeline.hashing import sha256_file
from video2mesh.pipeline.runner import Runner
from video2mesh.pipeline.store import ArtifactStore
from video2mesh.stages import fit_export, probe
from video2mesh.models.body.anny_body import N_BONES
from video2mesh.models.writers.animation import CAMERA_TO_YUP

from ._glb import load_valid_glb
from .fakes import FPS, write_video
from .fit_fakes import fake_fit_stage, fit_frame, rig_params, world_stages
from .licence_free_helpers import anny_body

TRACKS = {0: np.arange(2, 7), 1: np.arange(0, 4)}   # track 0 starts at video frame 2 -> frame_000003.obj


@pytest.fixture(scope="module")
def body():
    return anny_body()


@pytest.fixture(scope="module")
def published(tmp_path_factory, body):
    tmp = tmp_path_factory.mktemp("fit_export")
    video = write_video(tmp / "clip.mp4")
    fit = fit_frame(TRACKS, rig=lambda tid, fr: rig_params(body, tid, fr))
    extra, configs = world_stages("camera")
    runner = Runner(stages={"probe": probe.STAGE, "fit": fake_fit_stage(fit), "fit_export": fit_export.STAGE, **extra},
                    store=ArtifactStore(tmp / "cache"), registry=AssetRegistry([], models_dir=default_models_dir()),
                    configs=configs)
    paths = fit_export.fit_export_outputs(runner, video, tmp / "out")
    return tmp / "out" / "clip", paths, fit, runner, video


def rig_heads_yup(body, fit, tid):
    """The rig's joints (T, 104, 3), Y-up metres, by pose_rig's FK of the stored parameters."""
    import torch

    from video2mesh.models.body.anny_body import pose_rig

    g = fit[fit.track_id == tid].sort_values("frame")
    n = len(g)
    with torch.no_grad():
        sk = body.skeleton(torch.as_tensor(stack(g.phenotype, 6)[:1]))
    rig = pose_rig(body, sk, stack(g.bone_rotations, N_BONES * 3, np.float64).reshape(n, N_BONES, 3),
                   stack(g.global_orient, 3, np.float64), stack(g.transl, 3, np.float64), vertices=True)
    return rig["heads"] @ CAMERA_TO_YUP.T, rig["vertices"] @ CAMERA_TO_YUP.T


@pytest.mark.parametrize("tid", sorted(TRACKS))
def test_bvh_forward_kinematics_matches_the_rig(published, body, tid):
    bvhio = pytest.importorskip("bvhio")
    folder, _, fit, *_ = published
    root = bvhio.readAsHierarchy(str(folder / f"track_{tid:03d}_anny.bvh"))
    joints = {j.Name: j for j, _, _ in root.layout()}
    ref, _ = rig_heads_yup(body, fit, tid)
    n = len(TRACKS[tid])
    assert len(root.Keyframes) == n and len(joints) == N_BONES
    got = np.zeros((n, N_BONES, 3))
    for f in range(n):
        root.loadPose(f)
        for k, name in enumerate(body.bone_names):
            got[f, k] = tuple(joints[name].PositionWorld)
    err_mm = np.abs(got[:, 1:] - ref[:, 1:]).max() * 1000
    assert err_mm < 1.0, f"BVH FK differs from the rig's joints by {err_mm:.3f} mm"
    # Anny's root bone has all its children on it; the BVH moves its pivot END_SITE_M below them so
    # that no importer meets a zero-length bone (the children above are unaffected).
    from video2mesh.models.writers.animation import END_SITE_M

    assert np.allclose(np.linalg.norm(got[:, 0] - ref[:, 0], axis=1), END_SITE_M, atol=1e-6)


def test_glb_loads_validates_and_has_every_frame(published, body):
    folder, _, fit, *_ = published
    geoms, g = load_valid_glb(folder / "track_000_anny.glb")
    assert geoms[0].vertices.shape == rig_heads_yup(body, fit, 0)[1].shape[1:]      # (13718, 3)
    assert len(geoms[0].faces) == len(body.faces)
    n = len(TRACKS[0])
    anim = g.animations[0]
    assert len(anim.channels) == N_BONES + 1 + 2                  # + the video camera's translation and rotation
    assert [c.type for c in g.cameras] == ["perspective"]
    assert {g.accessors[s.input].count for s in anim.samplers} == {n}
    assert g.accessors[anim.samplers[0].input].max[0] == pytest.approx((n - 1) / FPS)
    assert g.asset.extras["body_model"] == "anny"


def test_obj_sequence_uses_1_based_frames_and_the_posed_mesh(published, body):
    trimesh = pytest.importorskip("trimesh")
    folder, _, fit, *_ = published
    objs = sorted((folder / "track_000_anny_obj").iterdir())
    assert [p.name for p in objs] == [f"frame_{f + 1:06d}.obj" for f in TRACKS[0]]
    _, verts = rig_heads_yup(body, fit, 0)
    m = trimesh.load(objs[-1], process=False)
    # trimesh splits vertices on Anny's UV seams, so compare every triangle's corners
    assert len(m.faces) == len(body.faces)
    assert np.abs(m.vertices[m.faces] - verts[-1][body.faces]).max() < 1e-5 + 5e-6     # written with 5 decimals


def test_npz_holds_the_rig_parameters(published, body):
    folder, _, fit, *_ = published
    z = np.load(folder / "track_001_anny.npz")
    n = len(TRACKS[1])
    assert str(z["body_model"]) == "anny"
    assert z["bone_rotations"].shape == (n, N_BONES, 3) and z["global_orient"].shape == (n, 3)
    assert z["transl"].shape == (n, 3) and z["phenotype"].shape == (6,) and list(z["bone_names"]) == body.bone_names
    assert np.array_equal(z["frame"], TRACKS[1]) and float(z["fps"]) == pytest.approx(FPS)
    g = fit[fit.track_id == 1].sort_values("frame")
    np.testing.assert_allclose(z["bone_rotations"].reshape(n, -1), stack(g.bone_rotations, N_BONES * 3), atol=1e-7)
    ref, verts = rig_heads_yup(body, fit, 1)
    np.testing.assert_allclose(z["joints"], ref, atol=1e-5)
    from video2mesh.models.body.anny_keypoints import FOOT_NAMES, keypoints23

    assert list(z["feet_names"]) == FOOT_NAMES             # the scorer's foot points, from the posed mesh
    np.testing.assert_allclose(z["feet3d"], keypoints23(body, verts)[:, 17:], atol=1e-5)


def test_manifest_names_anny_and_its_licence_not_smpls(published):
    folder, paths, *_ = published
    man = json.loads((folder / "manifest.json").read_text())
    assert man["body_model"] == "anny" and man["method"] == "licence-free"
    assert "Apache-2.0" in man["licence"] and "CC0" in man["licence"] and "SMPL Model License" not in man["licence"]
    n_obj = sum(len(f) for f in TRACKS.values())
    assert len(man["files"]) == 3 * len(TRACKS) + n_obj == len(paths) - 1
    for e in man["files"]:
        assert e["body_model"] == "anny" and e["axes"].startswith("Y up")
        assert sha256_file(folder / e["path"]) == e["sha256"]
    assert {e["track_id"] for e in man["files"]} == set(TRACKS)


def test_rerun_is_a_cache_hit(published):
    _, _, _, runner, video = published
    assert runner.run(video, until="fit_export")["fit_export"].status == "cached"


def test_obj_limit_skips_obj_and_says_so_in_the_meta(published, body):
    _, _, fit, *_ = published
    g = fit[fit.track_id == 0].sort_values("frame").reset_index(drop=True)
    files = fit_export.track_files(g, body, FPS, fit_export.FitExportConfig(formats=("npz", "obj"), obj_max_frames=2))
    assert [f[1] for f in files] == ["npz"] and "obj_max_frames=2" in files[0][4]["obj_skipped"]
    strided = fit_export.track_files(g, body, FPS, fit_export.FitExportConfig(formats=("obj",), obj_stride=2))
    assert [f[2].split("/")[-1] for f in strided] == ["frame_000003.obj", "frame_000005.obj", "frame_000007.obj"]


def test_obj_chunks_give_the_same_files_and_resume_per_chunk(published, body, tmp_path):
    """OBJ sequences in chunks of 2 frames (track 0: 5 frames -> 3 OBJ chunks, track 1: 4 -> 2, plus one
    chunk per track for npz/bvh/glb): every published file equals the one-chunk run's, and a run that lost
    one OBJ chunk recomputes that chunk alone."""
    from pathlib import Path

    out, paths, fit, _, video = published
    extra, configs = world_stages("camera")
    make = lambda: Runner(  # noqa: E731
        stages={"probe": probe.STAGE, "fit": fake_fit_stage(fit), "fit_export": fit_export.STAGE, **extra},
        store=ArtifactStore(tmp_path / "cache"), registry=AssetRegistry([], models_dir=default_models_dir()),
        configs={**configs, "fit_export": fit_export.FitExportConfig(obj_chunk_frames=2)})
    runner = make()
    res = runner.run(video, until="fit_export")
    assert res["fit_export"].parts_total == 7
    chunked = fit_export.publish_fit_export(runner, res, video, tmp_path / "out")
    one = {p.relative_to(out): sha256_file(p) for p in paths if p.name != "manifest.json"}
    assert {p.relative_to(tmp_path / "out" / "clip"): sha256_file(p) for p in chunked if p.name != "manifest.json"} == one
    assert sum(1 for k in one if k.suffix == ".obj") == 9
    d = Path(res["fit_export"].ref.path)
    (d / "manifest.json").unlink()
    (d / "part-00002.parquet").unlink()                       # track 0's second OBJ chunk
    res2 = make().run(video, until="fit_export")
    assert res2["fit_export"].status == "resumed" and res2["fit_export"].parts_computed == 1
    again = fit_export.publish_fit_export(runner, res2, video, tmp_path / "again")
    assert {p.relative_to(tmp_path / "again" / "clip"): sha256_file(p) for p in again if p.name != "manifest.json"} == one


def test_no_tracks_gives_empty_outputs(tmp_path):
    from video2mesh.stages import fit_report
    from video2mesh.stages.fit_anny import FIT

    from .fakes import FAKE_TRACKLETS

    video = write_video(tmp_path / "clip.mp4")
    runner = Runner(stages={"probe": probe.STAGE, "tracklets": FAKE_TRACKLETS, "fit": fake_fit_stage(FIT.empty()),
                            "fit_export": fit_export.STAGE, "fit_report": fit_report.STAGE, **world_stages()[0]},
                    store=ArtifactStore(tmp_path / "cache"), registry=AssetRegistry([], models_dir=default_models_dir()))
    paths = fit_export.fit_export_outputs(runner, video, tmp_path / "out")
    assert [p.name for p in paths] == ["manifest.json"]
    assert json.loads(paths[0].read_text())["files"] == []
    fit_report.fit_report_outputs(runner, video, tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "clip" / "report.json").read_text())
    assert doc["tracks"] == [] and doc["body_model"] == "anny"
