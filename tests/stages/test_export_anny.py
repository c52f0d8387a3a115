"""Export of fitted Anny motion: BVH (independent `bvh` parser), GLB / OBJ (trimesh), NPZ."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from .licence_free_helpers import anny_body


@pytest.fixture(scope="module")
def body():
    return anny_body()


@pytest.fixture(scope="module")
def synthetic_fit(body):
    """A `fit` artifact for one 3-frame track made from a known Anny pose (no fitting involved)."""
    import roma

    from video2mesh.models.body.anny_body import FIT_BONES
    from video2mesh.models.fit.anny_fit import MODEL_TO_CAMERA
    from video2mesh.models.body.anny_body import N_BONES
    from video2mesh.stages.fit_anny import bone_rotations

    bones = body.bone_index(FIT_BONES)
    g = torch.Generator().manual_seed(3)
    theta = torch.randn(3, len(bones), 3, generator=g, dtype=body.dtype) * 0.3
    phen = np.array([0.4, 0.5, 0.5, 0.6, 0.5, 0.5], np.float32)
    with torch.no_grad():
        sk = body.skeleton(torch.as_tensor(phen[None]))
        kp_model = body.keypoints_fk(*body.fk(theta, sk, bones), sk).numpy()
    rg = MODEL_TO_CAMERA @ roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, 0.5])).numpy()
    transl = np.array([[0.1, 0.2, 3.0], [0.15, 0.2, 3.1], [0.2, 0.25, 3.2]])
    root = rg @ sk.rest_rotations[0].T.numpy()
    from scipy.spatial.transform import Rotation

    orient = Rotation.from_matrix(root).as_rotvec()
    rots = bone_rotations(body, theta.numpy(), sk, bones)
    kp_cam = kp_model @ rg.T + transl[:, None]
    df = pd.DataFrame({
        "frame": np.arange(3, dtype=np.int64), "track_id": np.zeros(3, np.int32),
        "bone_rotations": list(rots.reshape(3, N_BONES * 3)), "global_orient": [orient] * 3,
        "transl": list(transl), "phenotype": [phen] * 3,
    })
    return df, kp_cam, sk


def test_rig_parameters_reproduce_the_fitted_keypoints(body, synthetic_fit):
    """pose_rig (LBS of the stored parameters) -> anny's own COCO regressor on the vertices ==
    the keypoints the fit saw (closed-form FK + camera)."""
    import anny

    from video2mesh.models.body.anny_body import COCO_NAMES, pose_rig
    from video2mesh.pipeline.artifacts import stack
    from video2mesh.models.body.anny_body import N_BONES

    df, kp_cam, sk = synthetic_fit
    rig = pose_rig(body, sk, stack(df["bone_rotations"], N_BONES * 3).reshape(3, N_BONES, 3).astype(np.float64),
                   stack(df["global_orient"], 3).astype(np.float64), stack(df["transl"], 3).astype(np.float64))
    reg = anny.KeypointsRegressor.coco(body.model, labels=COCO_NAMES)
    kp = torch.einsum("kv,bvd->bkd", reg.regression_weights.double(), torch.as_tensor(rig["vertices"])).numpy()
    assert np.abs(kp - kp_cam).max() < 1e-4


def test_files_load_in_independent_readers(body, synthetic_fit, tmp_path):
    import trimesh
    from bvh import Bvh
    from scipy.spatial.transform import Rotation

    from video2mesh.models.body.anny_body import pose_rig
    from video2mesh.pipeline.artifacts import stack
    from video2mesh.models.body.anny_body import N_BONES
    from video2mesh.models.writers.animation import CAMERA_TO_YUP, END_SITE_M
    from video2mesh.stages.fit_export import export_fit

    df, kp_cam, sk = synthetic_fit
    paths = export_fit(df, tmp_path, fps=12.0, stem="clip", body=body)[0]
    rig = pose_rig(body, sk, stack(df["bone_rotations"], N_BONES * 3).reshape(3, N_BONES, 3).astype(np.float64),
                   stack(df["global_orient"], 3).astype(np.float64), stack(df["transl"], 3).astype(np.float64))
    heads_yup = rig["heads"] @ CAMERA_TO_YUP.T
    assert paths["bvh"].name == "clip_track000_anny.bvh"

    # BVH: the `bvh` package parses it; our own FK of its offsets + Euler channels gives the rig's joints.
    mocap = Bvh(paths["bvh"].read_text())
    names = mocap.get_joints_names()
    assert names == body.bone_names and mocap.nframes == 3
    assert mocap.frame_time == pytest.approx(1 / 12, abs=1e-6)
    pos = {}
    rot = {}
    for i, name in enumerate(names):
        off = np.array(mocap.joint_offset(name))
        ch = mocap.joint_channels(name)
        vals = np.array(mocap.frames_joint_channels(name, ch), float)
        order = "".join(c[0] for c in ch if c.endswith("rotation"))
        r = Rotation.from_euler(order, vals[:, -3:], degrees=True).as_matrix()
        parent = mocap.joint_parent(name)
        if parent is None:
            rot[name], pos[name] = r, vals[:, :3] + off
        else:
            pn = parent.name
            rot[name] = rot[pn] @ r
            pos[name] = pos[pn] + rot[pn] @ off
        if parent is None:   # the root's pivot sits END_SITE_M below its children (no zero-length bone)
            pivot_to_head = np.einsum("tij,j->ti", rot[name], [0.0, END_SITE_M, 0.0])
            assert np.allclose(pos[name] + pivot_to_head, heads_yup[:, i], atol=1e-4), name
        else:
            assert np.allclose(pos[name], heads_yup[:, i], atol=1e-4), name

    # OBJ sequence: trimesh reads the posed meshes back exactly.
    objs = sorted(paths["obj"].glob("*.obj"))
    assert len(objs) == 3
    expected = rig["vertices"][1] @ CAMERA_TO_YUP.T
    assert np.allclose(obj_vertices(objs[1]), expected, atol=1e-5)
    # trimesh splits vertices on UV seams, so compare the corners of every triangle.
    m = trimesh.load(objs[1], process=False)
    assert len(m.faces) == len(body.faces)
    assert np.allclose(m.vertices[m.faces], expected[body.faces], atol=1e-5)
    assert m.visual.uv is not None and len(m.visual.uv) == len(m.vertices)   # Anny's UV map came along

    # GLB: trimesh loads the skinned mesh; the asset says which body model it is.
    scene = trimesh.load(paths["glb"], process=False)
    geom = list(scene.geometry.values()) if hasattr(scene, "geometry") else [scene]
    assert sum(len(g.vertices) for g in geom) == len(sk.rest_vertices)
    raw = paths["glb"].read_bytes()
    n = struct.unpack("<I", raw[12:16])[0]
    gl = json.loads(raw[20:20 + n])
    assert gl["asset"]["extras"]["body_model"] == "anny"
    assert len(gl["skins"][0]["joints"]) == N_BONES and len(gl["animations"][0]["channels"]) == N_BONES + 1

    z = np.load(paths["npz"])
    assert str(z["body_model"]) == "anny" and z["bone_rotations"].shape == (3, N_BONES, 3)


def _accessor(gl: dict, blob: bytes, i: int) -> np.ndarray:
    a = gl["accessors"][i]
    v = gl["bufferViews"][a["bufferView"]]
    dt = {5126: np.float32, 5121: np.uint8, 5123: np.uint16, 5125: np.uint32}[a["componentType"]]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[a["type"]]
    arr = np.frombuffer(blob, dt, count=a["count"] * width, offset=v["byteOffset"])
    return arr.reshape(a["count"], width) if width > 1 else arr


def test_glb_skinning_reproduces_the_posed_mesh(body, synthetic_fit, tmp_path):
    """Skinning the GLB's bind mesh with its own nodes, animation, inverse bind matrices and (top-4)
    weights, as a glTF viewer does, gives the exported OBJ mesh of that frame: mean error < 1 mm, max < 3 cm
    (Anny uses up to 9 weights per vertex, glTF's first set 4; the rest of the error is that cut)."""
    from scipy.spatial.transform import Rotation

    from video2mesh.stages.fit_export import export_fit

    df, _, _ = synthetic_fit
    paths = export_fit(df, tmp_path, fps=12.0, body=body, formats=("glb", "obj"))[0]
    raw = paths["glb"].read_bytes()
    n = struct.unpack("<I", raw[12:16])[0]
    gl = json.loads(raw[20:20 + n])
    blob = raw[20 + n + 8:]
    prim = gl["meshes"][0]["primitives"][0]
    verts = _accessor(gl, blob, prim["attributes"]["POSITION"]).astype(np.float64)
    joints = _accessor(gl, blob, prim["attributes"]["JOINTS_0"]).astype(np.int64)
    weights = _accessor(gl, blob, prim["attributes"]["WEIGHTS_0"]).astype(np.float64)
    ibm = _accessor(gl, blob, gl["skins"][0]["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
    frame = 2
    skin_nodes = gl["skins"][0]["joints"]                      # node id of joint c
    local = [np.eye(4) for _ in skin_nodes]
    for c, node_id in enumerate(skin_nodes):
        local[c][:3, 3] = gl["nodes"][node_id]["translation"]
    for ch in gl["animations"][0]["channels"]:
        out = _accessor(gl, blob, gl["animations"][0]["samplers"][ch["sampler"]]["output"])[frame]
        c = skin_nodes.index(ch["target"]["node"])
        if ch["target"]["path"] == "rotation":
            local[c][:3, :3] = Rotation.from_quat(out).as_matrix()
        else:
            local[c][:3, 3] = out
    world = [None] * len(local)
    for c in range(len(local)):
        p = int(body.parents[c])
        world[c] = local[c] if p < 0 else world[p] @ local[c]
    mats = np.stack(world) @ ibm
    vh = np.concatenate([verts, np.ones((len(verts), 1))], 1)
    skinned = np.einsum("vk,vkrc,vc->vr", weights, mats[joints][..., :3, :], vh)
    ref = obj_vertices(sorted(paths["obj"].glob("*.obj"))[frame])
    err = np.linalg.norm(skinned - ref, axis=1)
    assert err.mean() < 0.001 and err.max() < 0.03, (err.mean(), err.max())  # measured: 0.16 mm, 1.4 cm


def obj_vertices(path) -> np.ndarray:
    """(V, 3) `v` lines of an OBJ file in file order (trimesh renumbers vertices that carry UVs)."""
    return np.array([[float(x) for x in ln.split()[1:4]] for ln in Path(path).read_text().splitlines()
                     if ln.startswith("v ")])


@pytest.mark.parametrize("pose", ["t", "a"])
def test_reference_pose_frame_stands_on_the_floor_with_level_or_dropped_arms(body, synthetic_fit, pose):
    """Frame 0 of the BVH (read by the independent `bvh` parser) is the reference pose on the anny rig: arm
    chains along the pose's direction, the lowest rest-mesh point on the floor when the floor is known."""
    import dataclasses

    from bvh import Bvh
    from scipy.spatial.transform import Rotation

    from video2mesh.models.body.reference import arm_direction
    from video2mesh.stages import _export_core as core
    from video2mesh.stages.fit_export import FitExportConfig, anny_track

    df, _, _ = synthetic_fit
    track = dataclasses.replace(anny_track(df, body), floor_y=0.0)   # as the world frame has it: floor y = 0
    files = core.track_files(track, 30.0, FitExportConfig(formats=("bvh",), reference_pose=pose), "t")
    mocap = Bvh(files[0][3].decode())
    assert mocap.nframes == len(df) + 1
    pos, rot = {}, {}
    for name in mocap.get_joints_names():
        off, ch = np.array(mocap.joint_offset(name)), mocap.joint_channels(name)
        vals = np.array(mocap.frame_joint_channels(0, name, ch), float)
        r = Rotation.from_euler("".join(c[0] for c in ch if c.endswith("rotation")), vals[-3:], degrees=True).as_matrix()
        parent = mocap.joint_parent(name)
        if parent is None:
            rot[name], pos[name] = r, vals[:3] + off
        else:
            rot[name], pos[name] = rot[parent.name] @ r, pos[parent.name] + rot[parent.name] @ off
    for side, s in ((0, "L"), (1, "R")):
        for a, b in ((f"upperarm01.{s}", f"lowerarm01.{s}"), (f"lowerarm01.{s}", f"wrist.{s}")):
            seg = pos[b] - pos[a]
            np.testing.assert_allclose(seg / np.linalg.norm(seg), arm_direction(pose, side), atol=1e-5)
    np.testing.assert_allclose(rot["root"], np.eye(3), atol=1e-6)   # upright, facing +Z
    bind = track.bind_pose()    # the rest mesh in the bind frame; legs stay at rest in the reference pose
    k = body.bone_names.index("pelvis.L")      # (the BVH root's pivot sits below Anny's root head: compare a child)
    assert pos["pelvis.L"][1] + (bind.vertices[:, 1] - bind.rest_joints[k, 1]).min() == pytest.approx(0.0, abs=1e-5)
    assert 0.0 < pos["foot.L"][1] < 0.15 and 0.0 < pos["foot.R"][1] < 0.15
    np.testing.assert_allclose(pos["root"][[0, 2]], track.root_pos[0, [0, 2]], atol=1e-5)
