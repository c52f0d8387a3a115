"""export stage: files checked by independent readers (bvhio, trimesh, pygltflib) against smplx."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from video2mesh.pipeline.errors import InputError
import torch

from video2mesh.models.writers.animation import CAMERA_TO_YUP
from video2mesh.pipeline.errors import ConfigError
from video2mesh.pipeline.hashing import sha256_file
from video2mesh.stages import _smpl, export, fit_export

from ._glb import load_valid_glb
from .fakes import TRACKS, make_runner, synthetic_motion, write_video


@pytest.fixture(scope="module")
def published(tmp_path_factory, synthetic_smpl_dir):
    tmp = tmp_path_factory.mktemp("export")
    video = write_video(tmp / "clip.mp4")
    runner = make_runner(tmp, synthetic_smpl_dir, {"export": export.STAGE},
                         configs={"export": export.ExportConfig(obj_stride=2)})
    paths = export.export_outputs(runner, video, tmp / "out")
    return tmp / "out" / "clip", paths, runner, video


def smplx_joints(smpl_dir, tid):
    """SMPL joints (T, 24, 3) in the export frame (Y up, metres) straight from smplx."""
    a, b = TRACKS[tid]
    pose, trans, betas = synthetic_motion(tid, np.arange(a, b))
    layer = _smpl.smpl_layer(_smpl.load_smpl_arrays(smpl_dir / "SMPL_NEUTRAL.pkl"))
    with torch.no_grad():
        out = layer(global_orient=torch.tensor(pose[:, :3], dtype=torch.float32),
                    body_pose=torch.tensor(pose[:, 3:], dtype=torch.float32),
                    betas=torch.tensor(betas, dtype=torch.float32).expand(b - a, -1),
                    transl=torch.tensor(trans, dtype=torch.float32))
    return out.joints[:, :24].numpy().astype(np.float64) @ CAMERA_TO_YUP.T, out, layer


@pytest.mark.parametrize("tid", sorted(TRACKS))
def test_bvh_forward_kinematics_matches_smpl_joints(published, synthetic_smpl_dir, tid):
    bvhio = pytest.importorskip("bvhio")
    folder, *_ = published
    root = bvhio.readAsHierarchy(str(folder / f"track_{tid:03d}.bvh"))
    joints = {j.Name: j for j, _, _ in root.layout()}
    ref, *_ = smplx_joints(synthetic_smpl_dir, tid)
    n = TRACKS[tid][1] - TRACKS[tid][0]
    assert len(root.Keyframes) == n
    from video2mesh.models.writers.animation import SMPL_JOINT_NAMES
    got = np.zeros((n, 24, 3))
    for f in range(n):
        root.loadPose(f)
        for k, name in enumerate(SMPL_JOINT_NAMES):
            got[f, k] = tuple(joints[name].PositionWorld)
    err_mm = np.abs(got - ref).max() * 1000
    assert err_mm < 1.0, f"BVH FK differs from smplx joints by {err_mm:.3f} mm"


def test_npz_keys_and_shapes_drive_smpl_in_the_stated_frame(published, synthetic_smpl_dir):
    folder, *_ = published
    tid = 1
    n = TRACKS[tid][1] - TRACKS[tid][0]
    z = np.load(folder / "track_001.npz")
    shapes = {k: z[k].shape for k in z.files}
    assert shapes["poses"] == (n, 72) and shapes["trans"] == (n, 3) and shapes["betas"] == (10,)
    assert shapes["joints"] == (n, 24, 3) and shapes["frame"] == (n,) and shapes["uncertainty"] == (n,)
    assert shapes["cam_crop"] == (n, 3) and shapes["cam_orig"] == (n, 4)
    assert str(z["gender"]) == "neutral" and float(z["mocap_framerate"]) == pytest.approx(25.0)
    assert list(z["frame"]) == list(range(*TRACKS[tid]))
    # poses/trans are documented to drive SMPL directly in the Y-up frame: smplx on them = reference.
    ref, cam_out, layer = smplx_joints(synthetic_smpl_dir, tid)
    with torch.no_grad():
        out = layer(global_orient=torch.tensor(z["poses"][:, :3]), body_pose=torch.tensor(z["poses"][:, 3:]),
                    betas=torch.tensor(z["betas"]).expand(n, -1), transl=torch.tensor(z["trans"]))
    np.testing.assert_allclose(out.joints[:, :24].numpy(), ref, atol=1e-4)
    np.testing.assert_allclose(out.vertices.numpy(), cam_out.vertices.numpy() @ CAMERA_TO_YUP.T, atol=1e-4)
    np.testing.assert_allclose(z["joints"], ref, atol=1e-4)


def test_obj_sequence_loads_in_trimesh_with_model_faces(published, synthetic_smpl_dir):
    trimesh = pytest.importorskip("trimesh")
    folder, *_ = published
    objs = sorted((folder / "track_000_obj").glob("*.obj"))
    # stride 2 over video frames 0..11 -> frames 0, 2, ..., 10 named 1-based
    assert [p.name for p in objs] == [f"frame_{f + 1:06d}.obj" for f in range(0, 12, 2)]
    arrays = _smpl.load_smpl_arrays(synthetic_smpl_dir / "SMPL_NEUTRAL.pkl")
    m = trimesh.load(objs[1], process=False, maintain_order=True, force="mesh")  # keep unreferenced verts
    assert m.vertices.shape == (6890, 3)
    np.testing.assert_array_equal(m.faces, arrays["f"])
    _, cam_out, _ = smplx_joints(synthetic_smpl_dir, 0)
    np.testing.assert_allclose(m.vertices, cam_out.vertices[2].numpy() @ CAMERA_TO_YUP.T, atol=2e-5)


def test_glb_loads_validates_and_animates_like_smpl(published, synthetic_smpl_dir):
    folder, *_ = published
    geoms, g = load_valid_glb(folder / "track_000.glb")
    assert geoms[0].vertices.shape == (6890, 3)
    n = TRACKS[0][1] - TRACKS[0][0]
    anim = g.animations[0]
    assert len(anim.channels) == 25
    assert {g.accessors[s.input].count for s in anim.samplers} == {n}
    assert g.accessors[anim.samplers[0].input].max[0] == pytest.approx((n - 1) / 25.0)
    # Independent FK over the glTF node tree at every frame equals smplx's joints.
    blob = g.binary_blob()

    def read(acc_id, width):
        acc = g.accessors[acc_id]
        view = g.bufferViews[acc.bufferView]
        return np.frombuffer(blob, np.float32, acc.count * width, view.byteOffset).reshape(acc.count, width)

    from scipy.spatial.transform import Rotation
    rot = {ch.target.node: read(anim.samplers[ch.sampler].output, 4) for ch in anim.channels if ch.target.path == "rotation"}
    tr = {ch.target.node: read(anim.samplers[ch.sampler].output, 3) for ch in anim.channels if ch.target.path == "translation"}
    ref, *_ = smplx_joints(synthetic_smpl_dir, 0)
    skin_joints = g.skins[0].joints
    got = np.zeros((n, len(skin_joints), 3))

    def walk(node_id, m_parent, f):
        node = g.nodes[node_id]
        m = np.eye(4)
        m[:3, :3] = Rotation.from_quat(rot[node_id][f]).as_matrix()
        m[:3, 3] = tr[node_id][f] if node_id in tr else node.translation
        world = m_parent @ m
        got[f, skin_joints.index(node_id)] = world[:3, 3]
        mats[skin_joints.index(node_id)] = world
        for c in node.children or []:
            walk(c, world, f)

    mats = np.zeros((len(skin_joints), 4, 4))
    for f in range(n):
        walk(g.skins[0].skeleton, np.eye(4), f)
    assert np.abs(got - ref).max() < 1e-3
    # glTF skinning of the last frame (IBMs, top-4 weights) = smplx's LBS without pose blend shapes.
    prim = g.meshes[0].primitives[0]
    bind = read(prim.attributes.POSITION, 3)
    ibm = read(g.skins[0].inverseBindMatrices, 16).reshape(-1, 4, 4).transpose(0, 2, 1)   # column-major
    acc = g.accessors[prim.attributes.JOINTS_0]
    jid = np.frombuffer(blob, np.uint8, acc.count * 4, g.bufferViews[acc.bufferView].byteOffset).reshape(-1, 4)
    w = read(prim.attributes.WEIGHTS_0, 4)
    skin = np.einsum("vk,vkij->vij", w, (mats @ ibm)[jid])                # (V, 4, 4)
    skinned = np.einsum("vij,vj->vi", skin[:, :3, :3], bind) + skin[:, :3, 3]
    _, _, layer = smplx_joints(synthetic_smpl_dir, 0)
    layer.posedirs.zero_()
    pose, trans, betas = synthetic_motion(0, np.arange(*TRACKS[0]))
    with torch.no_grad():
        lbs = layer(global_orient=torch.tensor(pose[-1:, :3], dtype=torch.float32),
                    body_pose=torch.tensor(pose[-1:, 3:], dtype=torch.float32),
                    betas=torch.tensor(betas[None], dtype=torch.float32),
                    transl=torch.tensor(trans[-1:], dtype=torch.float32)).vertices[0].numpy() @ CAMERA_TO_YUP.T
    # the synthetic body has at most 2 influences per vertex, so top-4 loses nothing here
    assert np.abs(skinned - lbs).max() < 1e-4


def test_manifest_lists_every_file_with_its_digest(published):
    folder, paths, *_ = published
    m = json.loads((folder / "manifest.json").read_text())
    assert "SMPL Model License" in m["licence"] and m["fps"] == pytest.approx(25.0)
    listed = {e["path"]: e for e in m["files"]}
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(listed) == on_disk
    for rel, e in listed.items():
        assert sha256_file(folder / rel) == e["sha256"]
        assert e["axes"].startswith("Y up") and e["track_id"] in TRACKS
    assert listed["track_001.bvh"]["frame_first"] == 3 and listed["track_001.bvh"]["frame_last"] == 9


def test_rerun_is_a_cache_hit(published):
    folder, paths, runner, video = published
    again = runner.run(video, until="export")
    assert again["export"].status == "cached"


def test_bad_config_names_the_valid_choices():
    with pytest.raises(ConfigError, match="bvh_units"):
        export.ExportConfig(bvh_units="inch")
    with pytest.raises(ConfigError, match="fbx"):
        export.ExportConfig(formats=("fbx",))


@pytest.mark.parametrize("make, stage", [(lambda **k: export.ExportConfig(**k), "export"),
                                         (lambda **k: fit_export.FitExportConfig(**k), "fit_export")])
def test_both_export_stages_check_their_options_alike_and_name_themselves(make, stage):
    """One set of options (stages/_export_core.py) for both body models; the error names the stage."""
    for bad, word in (({"bvh_rotation_order": "XXZ"}, "permutation"), ({"obj_stride": 0}, "obj_stride"),
                      ({"bvh_units": "ft"}, "bvh_units"), ({"formats": ("fbx",)}, "fbx")):
        with pytest.raises(ConfigError, match=rf"^{stage}\..*{word}"):
            make(**bad)
    assert make().obj_max_frames == {"export": 900, "fit_export": 450}[stage]   # ~400 MB of OBJ either way


def test_load_smpl_arrays_names_what_is_missing(tmp_path, synthetic_smpl_dir):
    """(Reading chumpy pickles is video2mesh.models.body.smpl's job, tested in tests/models/body/test_smpl.py.)"""
    import pickle

    arrays = _smpl.load_smpl_arrays(synthetic_smpl_dir / "SMPL_NEUTRAL.pkl")
    assert arrays["J_regressor"].shape == (24, 6890) and arrays["f"].dtype == np.int64
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({"v_template": np.zeros(3)}))
    with pytest.raises(InputError, match="lacks"):
        _smpl.load_smpl_arrays(bad)
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="not a readable SMPL model file"):
        _smpl.load_smpl_arrays(tmp_path / "junk.pkl")


def test_no_tracks_gives_empty_outputs(tmp_path, synthetic_smpl_dir):
    from video2mesh.stages import report

    from .fakes import FAKE_MESH, MESH

    empty = dataclasses.replace(FAKE_MESH, version=99, compute=lambda ctx, cfg, chunk: MESH.empty())
    video = write_video(tmp_path / "empty.mp4", n=4)
    runner = make_runner(tmp_path, synthetic_smpl_dir, {"mesh": empty, "export": export.STAGE, "report": report.STAGE})
    paths = export.export_outputs(runner, video, tmp_path / "out")
    assert [p.name for p in paths] == ["manifest.json"]
    assert json.loads(paths[0].read_text())["files"] == []
    report.report_outputs(runner, video, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "empty" / "report.json").read_text())["tracks"] == []


def test_obj_limit_skips_obj_and_says_so_in_the_meta(published, synthetic_smpl_dir):
    folder, paths, runner, video = published
    mesh = runner.store.read_df(runner.run(video, until="mesh")["mesh"].ref.path)
    rows = mesh[mesh.track_id == 1].sort_values("frame")
    arrays = _smpl.load_smpl_arrays(synthetic_smpl_dir / "SMPL_NEUTRAL.pkl")
    files = export.export_track(rows, arrays, 25.0, export.ExportConfig(formats=("bvh", "obj"), obj_max_frames=3))
    assert [f[1] for f in files] == ["bvh"]
    assert "obj_max_frames=3" in files[0][4]["obj_skipped"]
