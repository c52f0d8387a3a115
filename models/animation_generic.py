"""Animator formats for any skeleton: BVH text, skinned + animated GLB bytes, OBJ text.

Generic in the skeleton (joint names, parents, rest offsets): the licence-free path writes Anny's
104-bone rig with it. The signatures follow issue 7's SMPL writers (models/animation.py `bvh_text`,
models/gltf.py `SkinnedAnimation` / `skinned_glb`) so that the two can be merged.

Conventions: y up, metres, rest orientation of every joint = identity (the rest pose is given by
the offsets alone), local rotations relative to the parent joint. Parents precede children.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation


def _children(parents) -> list[list[int]]:
    kids: list[list[int]] = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            kids[p].append(j)
    return kids


def forward_kinematics(local_rot: np.ndarray, offsets: np.ndarray, root_pos: np.ndarray, parents) -> tuple[np.ndarray, np.ndarray]:
    """World rotations (T, J, 3, 3) and joint positions (T, J, 3) of a BVH-style skeleton."""
    t, j = local_rot.shape[:2]
    rot = np.zeros((t, j, 3, 3))
    pos = np.zeros((t, j, 3))
    for c in range(j):
        p = parents[c]
        if p < 0:
            rot[:, c], pos[:, c] = local_rot[:, c], root_pos + offsets[c]
        else:
            rot[:, c] = rot[:, p] @ local_rot[:, c]
            pos[:, c] = pos[:, p] + rot[:, p] @ offsets[c]
    return rot, pos


def bvh_text(local_rot: np.ndarray, root_pos: np.ndarray, offsets: np.ndarray, frame_time_s: float,
             names, parents, order: str = "ZXY", units_per_m: float = 1.0, decimals: int = 6,
             end_offsets: np.ndarray | None = None) -> str:
    """BVH of a skeleton. local_rot (T, J, 3, 3), root_pos (T, 3) m, offsets (J, 3) m (root: 0).

    Rotation channels are intrinsic Euler angles in degrees in `order` ("ZXY" -> channels Zrotation
    Xrotation Yrotation, R = Rz Rx Ry), unwrapped over time. Leaf joints get an End Site (their
    `end_offsets` row, or a 5 cm stub continuing the incoming bone).
    """
    local_rot = np.asarray(local_rot, np.float64)
    t, j = local_rot.shape[:2]
    kids = _children(parents)
    ax = [c.upper() for c in order]
    fmt = f"{{:.{decimals}f}}"
    lines = ["HIERARCHY"]

    def emit(c: int, depth: int) -> None:
        ind = "  " * depth
        head = "ROOT" if parents[c] < 0 else "JOINT"
        lines.append(f"{ind}{head} {names[c]}")
        lines.append(f"{ind}{{")
        off = offsets[c] * units_per_m
        lines.append(f"{ind}  OFFSET " + " ".join(fmt.format(v) for v in off))
        rot_ch = " ".join(f"{a}rotation" for a in ax)
        if parents[c] < 0:
            lines.append(f"{ind}  CHANNELS 6 Xposition Yposition Zposition {rot_ch}")
        else:
            lines.append(f"{ind}  CHANNELS 3 {rot_ch}")
        for k in kids[c]:
            emit(k, depth + 1)
        if not kids[c]:
            if end_offsets is not None:
                e = end_offsets[c]
            else:
                n = np.linalg.norm(offsets[c])
                e = offsets[c] / n * 0.05 if n > 1e-9 else np.array([0.0, 0.05, 0.0])
            lines.append(f"{ind}  End Site")
            lines.append(f"{ind}  {{")
            lines.append(f"{ind}    OFFSET " + " ".join(fmt.format(v) for v in e * units_per_m))
            lines.append(f"{ind}  }}")
        lines.append(f"{ind}}}")

    for r in [c for c in range(j) if parents[c] < 0]:
        emit(r, 0)
    eul = Rotation.from_matrix(local_rot.reshape(-1, 3, 3)).as_euler(order.upper(), degrees=True).reshape(t, j, 3)
    eul = np.degrees(np.unwrap(np.radians(eul), axis=0))
    lines += ["MOTION", f"Frames: {t}", f"Frame Time: {frame_time_s:.8f}"]
    order_dfs = []

    def dfs(c):
        order_dfs.append(c)
        for k in kids[c]:
            dfs(k)

    for r in [c for c in range(j) if parents[c] < 0]:
        dfs(r)
    for i in range(t):
        vals = []
        for c in order_dfs:
            if parents[c] < 0:
                vals += list(root_pos[i] * units_per_m)
            vals += list(eul[i, c])
        lines.append(" ".join(fmt.format(v) for v in vals))
    return "\n".join(lines) + "\n"


def obj_text(vertices: np.ndarray, faces: np.ndarray, comment: str = "") -> str:
    """Wavefront OBJ of one mesh (faces zero-based in, one-based out)."""
    head = "".join(f"# {c}\n" for c in comment.splitlines()) if comment else ""
    v = "\n".join(f"v {a:.6f} {b:.6f} {c:.6f}" for a, b, c in vertices)
    f = "\n".join(f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces)
    return f"{head}{v}\n{f}\n"


@dataclass(frozen=True)
class SkinnedAnimation:
    """Inputs of `skinned_glb`. vertices (V, 3) bind pose m; faces (F, 3); weights (V, J) LBS weights;
    rest_joints (J, 3) bind-pose joint positions; times_s (T,); local_quat (T, J, 4) rotations relative
    to the parent, (x, y, z, w); root_pos (T, 3) m (world position of the root joint)."""

    vertices: np.ndarray
    faces: np.ndarray
    weights: np.ndarray
    rest_joints: np.ndarray
    times_s: np.ndarray
    local_quat: np.ndarray
    root_pos: np.ndarray
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    name: str = "body"
    extras: dict | None = None     # written into the glTF asset's extras (e.g. the body model's name)


def top_k_weights(weights: np.ndarray, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(V, k) joint indices and renormalised weights of the k largest weights per vertex."""
    idx = np.argsort(-weights, axis=1)[:, :k]
    w = np.take_along_axis(weights, idx, 1)
    w = w / np.maximum(w.sum(1, keepdims=True), 1e-12)
    return idx.astype(np.uint16), w.astype(np.float32)


def _continuous(q: np.ndarray) -> np.ndarray:
    q = q.copy()
    for i in range(1, len(q)):
        flip = (q[i] * q[i - 1]).sum(-1) < 0
        q[i][flip] *= -1
    return q


def skinned_glb(a: SkinnedAnimation) -> bytes:
    """A binary glTF 2.0: one skinned mesh, one joint node per joint (rest translation = offset to
    the parent, rest rotation identity), one animation (rotations of every joint, root translation)."""
    parents = list(a.parents)
    j = len(parents)
    blob = bytearray()
    views, accessors = [], []

    def add(arr: np.ndarray, ctype: int, typ: str, target: int | None = None, minmax: bool = False) -> int:
        data = np.ascontiguousarray(arr).tobytes()
        while len(blob) % 4:
            blob.append(0)
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(data), **({"target": target} if target else {})})
        blob.extend(data)
        acc = {"bufferView": len(views) - 1, "componentType": ctype, "count": int(arr.shape[0]), "type": typ}
        if minmax:
            acc["min"] = [float(v) for v in np.atleast_1d(arr.min(0))]
            acc["max"] = [float(v) for v in np.atleast_1d(arr.max(0))]
        accessors.append(acc)
        return len(accessors) - 1

    f32, u16, u32 = 5126, 5123, 5125
    pos = add(a.vertices.astype(np.float32), f32, "VEC3", 34962, minmax=True)
    idx = add(a.faces.astype(np.uint32).reshape(-1), u32, "SCALAR", 34963)
    jidx, jw = top_k_weights(np.asarray(a.weights, np.float64), 4)
    joints = add(jidx, u16, "VEC4", 34962)
    weights = add(jw, f32, "VEC4", 34962)
    ibm = np.tile(np.eye(4, dtype=np.float32), (j, 1, 1))
    ibm[:, :3, 3] = -a.rest_joints
    ibm_acc = add(ibm.transpose(0, 2, 1).reshape(j, 16), f32, "MAT4")   # glTF matrices are column-major
    times = add(np.asarray(a.times_s, np.float32), f32, "SCALAR", minmax=True)
    quat = _continuous(np.asarray(a.local_quat, np.float32))
    samplers, channels = [], []
    for c in range(j):
        samplers.append({"input": times, "output": add(quat[:, c].astype(np.float32), f32, "VEC4"), "interpolation": "LINEAR"})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": c, "path": "rotation"}})
    roots = [c for c in range(j) if parents[c] < 0]
    for r in roots:
        samplers.append({"input": times, "output": add(np.asarray(a.root_pos, np.float32), f32, "VEC3"), "interpolation": "LINEAR"})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": r, "path": "translation"}})
    kids = _children(parents)
    nodes = []
    for c in range(j):
        t = a.rest_joints[c] - (a.rest_joints[parents[c]] if parents[c] >= 0 else 0)
        node = {"name": a.joint_names[c], "translation": [float(v) for v in t]}
        if kids[c]:
            node["children"] = kids[c]
        nodes.append(node)
    nodes.append({"name": a.name, "mesh": 0, "skin": 0})
    gltf = {
        "asset": {"version": "2.0", "generator": "video2mesh", **({"extras": a.extras} if a.extras else {})},
        "scene": 0,
        "scenes": [{"nodes": roots + [j]}],
        "nodes": nodes,
        "meshes": [{"name": a.name, "primitives": [{"attributes": {"POSITION": pos, "JOINTS_0": joints, "WEIGHTS_0": weights},
                                                    "indices": idx, "mode": 4}]}],
        "skins": [{"joints": list(range(j)), "inverseBindMatrices": ibm_acc, "skeleton": roots[0]}],
        "animations": [{"name": "motion", "samplers": samplers, "channels": channels}],
        "buffers": [{"byteLength": len(blob)}],
        "bufferViews": views,
        "accessors": accessors,
    }
    js = json.dumps(gltf, separators=(",", ":")).encode()
    js += b" " * ((4 - len(js) % 4) % 4)
    while len(blob) % 4:
        blob.append(0)
    total = 12 + 8 + len(js) + 8 + len(blob)
    return (struct.pack("<III", 0x46546C67, 2, total) + struct.pack("<II", len(js), 0x4E4F534A) + js
            + struct.pack("<II", len(blob), 0x004E4942) + bytes(blob))
