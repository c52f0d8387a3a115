"""A binary glTF 2.0 (.glb) writer for one skinned, animated body, with numpy and struct only.

Generic in the skeleton (joint names, parents; SMPL's 24 joints by default, Anny's 104 bones on the
licence-free path). What the file holds: one mesh in its bind pose (the person's shaped T-pose), a skin
over the joint hierarchy with inverse bind matrices, top-4 skinning weights from the body's LBS weights,
and one animation with a rotation channel per joint and a translation channel on the root (LINEAR samplers,
times in seconds). Optionally the video's camera: a perspective camera node animated on the same times
(`CameraTrack`), so a viewer looking through it sees the body where the video shows the person. SMPL's pose-dependent corrective blend shapes are not representable by skinning
and are left out (differences of a few millimetres at bent joints).
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np

from video2mesh.models.maths.mesh import vertex_normals

from .animation import SMPL_JOINT_NAMES, SMPL_PARENTS, rest_offsets

_FLOAT, _UBYTE, _USHORT, _UINT = 5126, 5121, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_TYPES = {1: "SCALAR", 3: "VEC3", 4: "VEC4", 16: "MAT4"}


@dataclass(frozen=True)
class CameraTrack:
    """A pinhole video camera per key: yfov radians (vertical field of view), aspect = width / height,
    position (T, 3) metres and rotation (T, 4) glTF (x, y, z, w), both camera -> scene; glTF's camera
    convention (looking along its local -Z, +Y up) is the GL camera axes of the world stage."""

    yfov: float
    aspect: float
    position: np.ndarray
    rotation: np.ndarray
    name: str = "video_camera"


def camera_track(cam_r: np.ndarray, cam_t: np.ndarray, focal_px: float, width: int, height: int) -> CameraTrack:
    """The CameraTrack of a scene -> GL camera transform per frame (x_cam = cam_r x + cam_t; cam_r (T, 3, 3),
    cam_t (T, 3)) and a pinhole of focal `focal_px` with its principal point at the centre of a width x height
    image (the fit's camera): position -R^T t, rotation R^T, yfov = 2 atan(height / 2 f)."""
    from scipy.spatial.transform import Rotation

    r_inv = np.swapaxes(np.asarray(cam_r, np.float64), -1, -2)
    pos = -np.einsum("tij,tj->ti", r_inv, np.asarray(cam_t, np.float64))
    return CameraTrack(yfov=float(2.0 * np.arctan(height / (2.0 * focal_px))), aspect=float(width) / float(height),
                       position=pos, rotation=Rotation.from_matrix(r_inv).as_quat())


@dataclass(frozen=True)
class SkinnedAnimation:
    """Inputs of `skinned_glb`. V vertices, F faces, J joints, T frames.

    vertices (V, 3) bind pose metres; faces (F, 3) zero-based; weights (V, J) LBS weights;
    rest_joints (J, 3) bind-pose joint positions; times_s (T,) increasing; local_quat (T, J, 4)
    joint rotations relative to the parent, glTF order (x, y, z, w); root_pos (T, 3) metres.
    """

    vertices: np.ndarray
    faces: np.ndarray
    weights: np.ndarray
    rest_joints: np.ndarray
    times_s: np.ndarray
    local_quat: np.ndarray
    root_pos: np.ndarray
    name: str = "body"
    joint_names: tuple[str, ...] = SMPL_JOINT_NAMES
    parents: tuple[int, ...] = tuple(int(p) for p in SMPL_PARENTS)
    extras: dict | None = None     # written into the glTF asset's extras (e.g. the body model's name)
    camera: CameraTrack | None = None   # the video's camera, one key per time (T keys)


def top_k_weights(weights: np.ndarray, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(V, J) weights -> joint ids (V, k) (uint8 for J <= 256, else uint16) and weights (V, k) float32
    renormalised to sum 1."""
    ids = np.argsort(-weights, axis=1, kind="stable")[:, :k]
    w = np.take_along_axis(weights, ids, axis=1).clip(min=0)
    w = w / np.maximum(w.sum(1, keepdims=True), 1e-12)
    w[w.sum(1) == 0, 0] = 1.0
    return ids.astype(np.uint8 if weights.shape[1] <= 256 else np.uint16), w.astype(np.float32)


def continuous_quats(q: np.ndarray) -> np.ndarray:
    """(T, ..., 4) quaternions with signs flipped so consecutive ones lie in one hemisphere."""
    q = q.copy()
    for t in range(1, len(q)):
        flip = (q[t] * q[t - 1]).sum(-1) < 0
        q[t][flip] *= -1
    return q


class _Buffer:
    """Accumulates aligned binary blocks, their bufferViews and accessors."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def add(self, arr: np.ndarray, component: int, target: int | None = None, minmax: bool = False) -> int:
        arr = np.ascontiguousarray(arr)
        width = 1 if arr.ndim == 1 else int(np.prod(arr.shape[1:]))
        self.data += b"\0" * (-len(self.data) % 4)
        view = {"buffer": 0, "byteOffset": len(self.data), "byteLength": arr.nbytes}
        if target is not None:
            view["target"] = target
        self.data += arr.tobytes()
        self.views.append(view)
        acc = {"bufferView": len(self.views) - 1, "componentType": component, "count": int(arr.shape[0]),
               "type": _TYPES[width]}
        if minmax:
            flat = arr.reshape(arr.shape[0], width)
            acc["min"] = [float(x) for x in flat.min(0)]
            acc["max"] = [float(x) for x in flat.max(0)]
        self.accessors.append(acc)
        return len(self.accessors) - 1


def skinned_glb(a: SkinnedAnimation) -> bytes:
    """The .glb bytes of one skinned mesh with its animation (see the module docstring)."""
    n_j = len(a.joint_names)
    t = len(a.times_s)
    parents = np.asarray(a.parents)
    if a.local_quat.shape != (t, n_j, 4) or a.root_pos.shape != (t, 3):
        raise ValueError(f"local_quat must be (T={t}, {n_j}, 4) and root_pos (T, 3); got "
                         f"{a.local_quat.shape} and {a.root_pos.shape}")
    buf = _Buffer()
    verts = a.vertices.astype(np.float32)
    joint_ids, joint_w = top_k_weights(a.weights)
    prim = {
        "attributes": {
            "POSITION": buf.add(verts, _FLOAT, _ARRAY_BUFFER, minmax=True),
            "NORMAL": buf.add(vertex_normals(verts, a.faces), _FLOAT, _ARRAY_BUFFER),
            "JOINTS_0": buf.add(joint_ids, _UBYTE if joint_ids.dtype == np.uint8 else _USHORT, _ARRAY_BUFFER),
            "WEIGHTS_0": buf.add(joint_w, _FLOAT, _ARRAY_BUFFER),
        },
        "indices": buf.add(a.faces.astype(np.uint32).reshape(-1), _UINT, _ELEMENT_ARRAY_BUFFER),
        "mode": 4,
    }
    # Rest frames are axis-aligned, so a joint's global bind transform is a pure translation.
    ibm = np.tile(np.eye(4, dtype=np.float32), (n_j, 1, 1))
    ibm[:, :3, 3] = -a.rest_joints
    ibm_acc = buf.add(ibm.transpose(0, 2, 1).reshape(n_j, 16), _FLOAT)   # glTF matrices are column-major

    offsets = rest_offsets(a.rest_joints, parents)
    kids: list[list[int]] = [[] for _ in range(n_j)]
    for k, p in enumerate(parents):
        if p >= 0:
            kids[p].append(k)
    # Node 0 holds the skinned mesh, nodes 1..J the joints (node = joint + 1).
    nodes = [{"name": a.name, "mesh": 0, "skin": 0}]
    for k in range(n_j):
        node = {"name": a.joint_names[k], "translation": [float(x) for x in offsets[k]]}
        if kids[k]:
            node["children"] = [c + 1 for c in kids[k]]
        nodes.append(node)
    root = int(np.flatnonzero(parents < 0)[0])

    time_acc = buf.add(np.asarray(a.times_s, np.float32), _FLOAT, minmax=True)
    quats = continuous_quats(a.local_quat.astype(np.float32))
    samplers, channels = [], []
    for k in range(n_j):
        samplers.append({"input": time_acc, "output": buf.add(quats[:, k], _FLOAT), "interpolation": "LINEAR"})
        channels.append({"sampler": k, "target": {"node": k + 1, "path": "rotation"}})
    samplers.append({"input": time_acc, "output": buf.add(a.root_pos.astype(np.float32), _FLOAT),
                     "interpolation": "LINEAR"})
    channels.append({"sampler": n_j, "target": {"node": root + 1, "path": "translation"}})

    scene_nodes = [0, root + 1]
    cameras: list[dict] = []
    if a.camera is not None:
        scene_nodes.append(_add_camera(a.camera, nodes, cameras, buf, time_acc, samplers, channels, t))

    doc = {
        "asset": {"version": "2.0", "generator": "video2mesh", **({"extras": a.extras} if a.extras else {})},
        "scene": 0,
        "scenes": [{"nodes": scene_nodes}],
        "nodes": nodes,
        "meshes": [{"name": a.name, "primitives": [prim]}],
        "skins": [{"joints": list(range(1, n_j + 1)), "inverseBindMatrices": ibm_acc, "skeleton": root + 1}],
        "animations": [{"name": f"{a.name}_motion", "samplers": samplers, "channels": channels}],
        **({"cameras": cameras} if cameras else {}),
        "accessors": buf.accessors,
        "bufferViews": buf.views,
        "buffers": [{"byteLength": len(buf.data)}],
    }
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    binary = bytes(buf.data) + b"\0" * (-len(buf.data) % 4)
    total = 12 + 8 + len(js) + 8 + len(binary)
    return (struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<I4s", len(js), b"JSON") + js
            + struct.pack("<I4s", len(binary), b"BIN\0") + binary)


def _add_camera(cam: CameraTrack, nodes: list, cameras: list, buf: _Buffer, time_acc: int, samplers: list,
                channels: list, t: int) -> int:
    """Append the camera, its node (first key as its rest transform) and its two animation channels; the node id."""
    if cam.position.shape != (t, 3) or cam.rotation.shape != (t, 4):
        raise ValueError(f"camera position must be (T={t}, 3) and rotation (T, 4); got {cam.position.shape} and {cam.rotation.shape}")
    cameras.append({"name": cam.name, "type": "perspective",
                    "perspective": {"yfov": cam.yfov, "aspectRatio": cam.aspect, "znear": 0.01}})
    rot = continuous_quats(cam.rotation.astype(np.float32))
    node = len(nodes)
    nodes.append({"name": cam.name, "camera": len(cameras) - 1, "translation": [float(x) for x in cam.position[0]],
                  "rotation": [float(x) for x in rot[0]]})
    for path, values in (("translation", cam.position.astype(np.float32)), ("rotation", rot)):
        samplers.append({"input": time_acc, "output": buf.add(values, _FLOAT), "interpolation": "LINEAR"})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": node, "path": path}})
    return node
