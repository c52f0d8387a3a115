"""The shared animation writers' options used by the licence-free (Anny) export: BVH End Sites and
glTF asset extras. Their SMPL use is covered end to end by tests/stages/test_export.py."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from video2mesh.models.writers.animation import END_SITE_M, bvh_text
from video2mesh.models.writers.gltf import SkinnedAnimation, skinned_glb

# A 4-joint chain with a branch: 0 -> 1 -> 2 and 0 -> 3; joint 3 has a zero-length bone.
PARENTS = np.array([-1, 0, 1, 0])
NAMES = ("root", "a", "b", "c")
OFFSETS = np.array([[0.0, 0.0, 0.0], [0.0, 0.3, 0.0], [0.4, 0.0, 0.0], [0.0, 0.0, 0.0]])


def _end_sites(text: str) -> np.ndarray:
    lines = text.splitlines()
    return np.array([[float(x) for x in lines[i + 2].split()[1:]] for i, s in enumerate(lines) if s.strip() == "End Site"])


def test_bvh_end_sites_default_and_given():
    rot = np.tile(np.eye(3), (2, 4, 1, 1))
    root = np.zeros((2, 3))
    # default: END_SITE_M along the incoming bone; a zero-length bone points up instead of collapsing
    got = _end_sites(bvh_text(rot, root, OFFSETS, 0.04, NAMES, PARENTS))
    assert np.allclose(got, [[END_SITE_M, 0, 0], [0, END_SITE_M, 0]])
    ends = np.arange(12, dtype=float).reshape(4, 3) / 100
    got = _end_sites(bvh_text(rot, root, OFFSETS, 0.04, NAMES, PARENTS, units_per_m=100.0, end_offsets=ends))
    assert np.allclose(got, ends[[2, 3]] * 100)                        # leaves 2 and 3, in file units


def test_bvh_motion_in_slices_is_unwrapped_across_them(monkeypatch):
    """bvh_text converts and formats MOTION_SLICE frames at a time (memory on long tracks): a joint
    spinning 25 deg a frame about its axis (angles wrap every ~14 frames) written in slices of 5 frames
    gives the one-slice file byte for byte, and its angles are continuous: the spin, read back."""
    from scipy.spatial.transform import Rotation

    from video2mesh.models.writers import animation

    t = 40
    rot = np.tile(np.eye(3), (t, 4, 1, 1))
    rot[:, 1] = Rotation.from_rotvec(np.radians(25.0 * np.arange(t))[:, None] * [0.0, 1.0, 0.0]).as_matrix()
    root = np.stack([np.arange(t) * 0.01, np.zeros(t), np.zeros(t)], 1)
    whole = bvh_text(rot, root, OFFSETS, 0.04, NAMES, PARENTS)
    monkeypatch.setattr(animation, "MOTION_SLICE", 5)
    sliced = bvh_text(rot, root, OFFSETS, 0.04, NAMES, PARENTS)
    assert sliced == whole
    motion = np.array([[float(x) for x in line.split()] for line in sliced.split("Frame Time:")[1].splitlines()[1:]])
    assert motion.shape == (t, 3 + 3 * 4)
    y = motion[:, 3 + 3 * 1 + 2]                                       # joint a, ZXY order: its Y channel
    np.testing.assert_allclose(np.diff(y), 25.0, atol=1e-4)           # no 360-degree jumps at slice seams


def test_glb_asset_extras_and_joint_index_width():
    j = 300                                                            # > 256 joints: JOINTS_0 must be uint16
    parents = tuple([-1] + list(range(j - 1)))
    rest = np.stack([np.zeros(j), np.arange(j) * 0.01, np.zeros(j)], 1)
    verts = rest[:3] + [0.01, 0, 0]
    weights = np.zeros((3, j))
    weights[[0, 1, 2], [0, 150, 299]] = 1.0
    quat = np.tile([0.0, 0.0, 0.0, 1.0], (2, j, 1))
    raw = skinned_glb(SkinnedAnimation(
        vertices=verts, faces=np.array([[0, 1, 2]]), weights=weights, rest_joints=rest, times_s=np.array([0.0, 0.1]),
        local_quat=quat, root_pos=np.zeros((2, 3)), joint_names=tuple(f"j{i}" for i in range(j)), parents=parents,
        extras={"body_model": "test"}))
    n = struct.unpack("<I", raw[12:16])[0]
    gl = json.loads(raw[20:20 + n])
    assert gl["asset"]["extras"] == {"body_model": "test"}
    acc = gl["accessors"][gl["meshes"][0]["primitives"][0]["attributes"]["JOINTS_0"]]
    view = gl["bufferViews"][acc["bufferView"]]
    assert acc["componentType"] == 5123
    ids = np.frombuffer(raw[20 + n + 8:], np.uint16, acc["count"] * 4, view["byteOffset"]).reshape(-1, 4)
    assert ids[:, 0].tolist() == [0, 150, 299]


def test_obj_normals_are_smooth_and_match_a_sphere():
    """On an icosphere the smooth normal of a vertex is its direction from the centre (closed form)."""
    import io

    import trimesh

    from video2mesh.models.writers.animation import obj_text

    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    text = obj_text(np.asarray(sphere.vertices), np.asarray(sphere.faces))
    assert "\ns 1\n" in text and text.count("\nvn ") == len(sphere.vertices)
    m = trimesh.load(io.BytesIO(text.encode()), file_type="obj", process=False)
    assert m.vertices.shape == sphere.vertices.shape
    vn = np.array([[float(x) for x in line.split()[1:]] for line in text.splitlines() if line.startswith("vn ")])
    expected = sphere.vertices / np.linalg.norm(sphere.vertices, axis=1, keepdims=True)
    assert np.abs(vn - expected).max() < 2e-2    # discretisation of a 642-vertex sphere; a face normal is ~0.1 off


def test_obj_uvs_round_trip_through_trimesh():
    import io

    import trimesh

    from video2mesh.models.writers.animation import obj_text

    rng = np.random.default_rng(0)
    v = rng.normal(size=(5, 3))
    f = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4]])
    uv = rng.uniform(size=(5, 2))
    m = trimesh.load(io.BytesIO(obj_text(v, f, uvs=uv, uv_faces=f).encode()), file_type="obj", process=False)
    order = np.argsort(m.vertices[:, 0])
    assert np.allclose(m.vertices[order], v[np.argsort(v[:, 0])], atol=1e-5)
    assert np.allclose(m.visual.uv[order], uv[np.argsort(v[:, 0])], atol=1e-5)
    with pytest.raises(ValueError, match="uv_faces"):
        obj_text(v, f, uvs=uv)
