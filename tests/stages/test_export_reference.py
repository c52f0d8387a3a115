"""A reference pose at file frame 0 (`reference_pose=t|a|rest`) and standard rig names on the SMPL path
(`export.rig=mixamo|game_engine`), read back by an independent BVH reader (bvhio) and checked against smplx."""
from __future__ import annotations

import json

import numpy as np
import pytest

from video2mesh.models.body.reference import A_POSE_DEG, SMPL_RIG_NAMES
from video2mesh.stages import export

from ._glb import load_valid_glb
from .fakes import FPS, TRACKS, make_runner, write_video
from .test_export import smplx_joints


@pytest.fixture(scope="module")
def mixamo_t(tmp_path_factory, synthetic_smpl_dir):
    tmp = tmp_path_factory.mktemp("export_ref")
    video = write_video(tmp / "clip.mp4")
    cfg = export.ExportConfig(formats=("npz", "bvh", "glb"), rig="mixamo", reference_pose="t")
    runner = make_runner(tmp, synthetic_smpl_dir, {"export": export.STAGE}, configs={"export": cfg})
    export.export_outputs(runner, video, tmp / "out")
    return tmp / "out" / "clip"


def bvh_world(path):
    """(joint names, world positions (F, J, 3)) of a BVH by bvhio's own forward kinematics."""
    bvhio = pytest.importorskip("bvhio")
    root = bvhio.readAsHierarchy(str(path))
    layout = [j for j, _, _ in root.layout()]
    out = np.zeros((len(root.Keyframes), len(layout), 3))
    for f in range(len(root.Keyframes)):
        root.loadPose(f)
        out[f] = [tuple(j.PositionWorld) for j in layout]
    return [j.Name for j in layout], out


@pytest.mark.parametrize("tid", sorted(TRACKS))
def test_mixamo_named_smpl_bvh_has_a_t_pose_frame_then_the_smpl_motion(mixamo_t, synthetic_smpl_dir, tid):
    names, pos = bvh_world(mixamo_t / f"track_{tid:03d}.bvh")
    assert set(names) == set(SMPL_RIG_NAMES["mixamo"]) and names[0] == "mixamorig:Hips"
    ref, *_ = smplx_joints(synthetic_smpl_dir, tid)
    n = TRACKS[tid][1] - TRACKS[tid][0]
    assert len(pos) == n + 1
    # frames 1.. are the motion: the same joints smplx gives, under the Mixamo names
    order = [names.index(SMPL_RIG_NAMES["mixamo"][k]) for k in range(24)]
    assert np.abs(pos[1:, order] - ref).max() * 1000 < 0.05
    # frame 0: arms level along +X (left) / -X (right), shoulder -> elbow -> wrist straight; stands where frame 1 stands
    j = {nm: pos[0, i] for i, nm in enumerate(names)}
    for side, sign in (("Left", 1.0), ("Right", -1.0)):
        upper, fore = j[f"mixamorig:{side}ForeArm"] - j[f"mixamorig:{side}Arm"], j[f"mixamorig:{side}Hand"] - j[f"mixamorig:{side}ForeArm"]
        for seg in (upper, fore):
            np.testing.assert_allclose(seg / np.linalg.norm(seg), [sign, 0.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(j["mixamorig:Hips"], pos[1, names.index("mixamorig:Hips")], atol=1e-6)
    # an upright body facing +Z: head above hips, the left hip on +X (the person's left when facing +Z)
    assert j["mixamorig:Head"][1] > j["mixamorig:Hips"][1] + 0.3
    assert j["mixamorig:LeftUpLeg"][0] > j["mixamorig:RightUpLeg"][0]


def test_glb_keys_the_reference_at_time_zero_and_says_so(mixamo_t):
    _, g = load_valid_glb(mixamo_t / "track_000.glb")
    n = TRACKS[0][1] - TRACKS[0][0]
    times = g.accessors[g.animations[0].samplers[0].input]
    assert times.count == n + 1 and times.min == [0.0]
    assert times.max[0] == pytest.approx(n / FPS, abs=1e-5)      # the last video frame one frame later than without
    names = {nd.name for nd in g.nodes}
    assert "mixamorig:LeftForeArm" in names
    assert "file frame 0 is a T-pose" in g.asset.extras["reference_pose"]
    manifest = json.loads((mixamo_t / "manifest.json").read_text())
    entry = next(e for e in manifest["files"] if e["path"].endswith("track_000.bvh"))
    assert entry["rig"] == "mixamo" and "motion starts at file frame 1" in entry["reference_pose"]


def test_npz_keeps_the_smpl_layout_without_a_reference_frame(mixamo_t):
    z = np.load(mixamo_t / "track_000.npz")
    assert z["poses"].shape == (TRACKS[0][1] - TRACKS[0][0], 72)


def test_a_pose_and_rest_on_a_synthetic_skeleton():
    from video2mesh.models.body.reference import reference_local, rest_heads
    from video2mesh.models.writers.animation import SMPL_JOINT_NAMES, SMPL_PARENTS, forward_kinematics

    rng = np.random.default_rng(3)
    offsets = rng.normal(0, 0.1, (24, 3))          # any rest skeleton, bent arms included
    heads = rest_heads(offsets, SMPL_PARENTS)
    assert np.allclose(reference_local("smpl", SMPL_JOINT_NAMES, SMPL_PARENTS, offsets, "rest"), np.eye(3))
    local = reference_local("smpl", SMPL_JOINT_NAMES, SMPL_PARENTS, offsets, "a")
    pos, _ = forward_kinematics(local[None], offsets, heads[:1], SMPL_PARENTS)
    k = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}
    drop = np.deg2rad(A_POSE_DEG)
    for side, sign in (("L", 1.0), ("R", -1.0)):
        want = np.array([sign * np.cos(drop), -np.sin(drop), 0.0])
        for a, b in ((f"{side}_Shoulder", f"{side}_Elbow"), (f"{side}_Elbow", f"{side}_Wrist")):
            seg = pos[0, k[b]] - pos[0, k[a]]
            np.testing.assert_allclose(seg / np.linalg.norm(seg), want, atol=1e-9)
            # bone lengths are the rest skeleton's
            assert np.linalg.norm(seg) == pytest.approx(np.linalg.norm(heads[k[b]] - heads[k[a]]), rel=1e-9)
    # everything off the arms stays where the rest skeleton has it
    for name in ("L_Knee", "R_Foot", "Head", "L_Collar"):
        np.testing.assert_allclose(pos[0, k[name]], heads[k[name]], atol=1e-12)


def test_rotation_between_is_the_smallest_turn():
    from scipy.spatial.transform import Rotation

    from video2mesh.models.body.reference import rotation_between

    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.normal(size=3), rng.normal(size=3)
        r = rotation_between(a, b)
        np.testing.assert_allclose(r @ (a / np.linalg.norm(a)), b / np.linalg.norm(b), atol=1e-12)
        angle = np.linalg.norm(Rotation.from_matrix(r).as_rotvec())
        assert angle == pytest.approx(np.arccos(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)), abs=1e-9)
    flip = rotation_between(np.array([0.0, 1, 0]), np.array([0.0, -1, 0]))
    np.testing.assert_allclose(flip @ [0, 1, 0], [0, -1, 0], atol=1e-12)
    assert np.linalg.det(flip) == pytest.approx(1.0)


def test_bad_reference_pose_and_rig_are_settings_errors():
    from video2mesh.pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="reference_pose must be one of"):
        export.ExportConfig(reference_pose="x")
    with pytest.raises(ConfigError, match="export.rig must be one of"):
        export.ExportConfig(rig="metahuman")
