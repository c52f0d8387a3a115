"""SMPL skeleton maths and text writers for animation files (BVH, OBJ); the writers take any skeleton
(names, parents), so the licence-free path writes Anny's rig with them too.

Conventions of every exported file (the manifest repeats them):
- Axes: Y up, right-handed, metres; the video camera sits at the origin looking along -Z (the
  glTF/OpenGL camera convention). The mesh stage's camera axes (x right, y down, z forward) map to
  this frame by `CAMERA_TO_YUP` = diag(1, -1, -1), a 180 degree turn about X.
- Rest pose: SMPL's T-pose of the person's own shape, facing +Z, every joint frame aligned with the
  world axes, so a joint's rest offset is its shaped rest position minus its parent's.
- Root motion: the pelvis's world position per frame; no ground plane is estimated.
"""
from __future__ import annotations

import io

import numpy as np
from scipy.spatial.transform import Rotation

from video2mesh.models.maths.mesh import vertex_normals   # the GLB's normals too, so both formats shade alike

SMPL_JOINT_NAMES = (
    "Pelvis", "L_Hip", "R_Hip", "Spine1", "L_Knee", "R_Knee", "Spine2", "L_Ankle", "R_Ankle",
    "Spine3", "L_Foot", "R_Foot", "Neck", "L_Collar", "R_Collar", "Head", "L_Shoulder", "R_Shoulder",
    "L_Elbow", "R_Elbow", "L_Wrist", "R_Wrist", "L_Hand", "R_Hand",
)
SMPL_PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21])
CAMERA_TO_YUP = np.diag([1.0, -1.0, -1.0])
END_SITE_M = 0.08  # length of the leaf bones' end sites (head top, toes, finger tips); BVH needs one


def _check(name: str, a: np.ndarray, shape: tuple) -> None:
    """Raise ValueError naming `name`, the expected and the actual shape (-1 = any size)."""
    ok = a.ndim == len(shape) and all(s == -1 or s == d for s, d in zip(shape, a.shape))
    if not ok:
        raise ValueError(f"{name}: expected shape {tuple('*' if s == -1 else s for s in shape)}, got {a.shape}")


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle vectors (radians) -> (..., 3, 3) rotation matrices."""
    aa = np.asarray(aa, dtype=np.float64)
    return Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(*aa.shape[:-1], 3, 3)


def rest_offsets(rest_joints: np.ndarray, parents: np.ndarray = SMPL_PARENTS) -> np.ndarray:
    """(J, 3) shaped rest joints -> (J, 3) offsets to the parent (the root's offset is its position)."""
    off = rest_joints.astype(np.float64).copy()
    off[1:] -= rest_joints[parents[1:]]
    return off


def camera_to_yup(pose: np.ndarray, trans: np.ndarray, rest_joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Re-express camera-frame SMPL parameters in the Y-up export frame.

    pose (T, 72) axis-angle, trans (T, 3) metres (SMPL's `transl`), rest_joints (24, 3) of the shape.
    Returns local rotations (T, 24, 3, 3) with the root turned by CAMERA_TO_YUP, the pelvis's world
    position (T, 3), and the `transl` (T, 3) that drives SMPL in the Y-up frame with the same shape:
    SMPL rotates about the rest pelvis J0, so C (R (v - J0) + J0 + t) = C R (v - J0) + J0 + (C (J0 + t) - J0).
    """
    _check("pose", pose, (-1, 72))
    _check("trans", trans, (pose.shape[0], 3))
    rot = axis_angle_to_matrix(pose.reshape(-1, 24, 3))               # (T, 24, 3, 3)
    rot[:, 0] = CAMERA_TO_YUP @ rot[:, 0]
    j0 = rest_joints[0].astype(np.float64)
    root_pos = (j0 + trans) @ CAMERA_TO_YUP.T                          # (T, 3)
    return rot, root_pos, root_pos - j0


def forward_kinematics(local_rot: np.ndarray, offsets: np.ndarray, root_pos: np.ndarray,
                       parents: np.ndarray = SMPL_PARENTS) -> tuple[np.ndarray, np.ndarray]:
    """Joint world positions (T, J, 3) and rotations (T, J, 3, 3) of a rest-aligned skeleton.

    local_rot (T, J, 3, 3) relative to the parent, offsets (J, 3), root_pos (T, 3).
    """
    t, j = local_rot.shape[:2]
    pos = np.zeros((t, j, 3))
    glob = np.zeros((t, j, 3, 3))
    pos[:, 0], glob[:, 0] = root_pos, local_rot[:, 0]
    for k in range(1, j):
        p = parents[k]
        glob[:, k] = glob[:, p] @ local_rot[:, k]
        pos[:, k] = pos[:, p] + np.einsum("tij,j->ti", glob[:, p], offsets[k])
    return pos, glob


def _children(parents: np.ndarray) -> list[list[int]]:
    kids: list[list[int]] = [[] for _ in parents]
    for k, p in enumerate(parents):
        if p >= 0:
            kids[p].append(k)
    return kids


MOTION_SLICE = 1024   # frames of BVH motion converted and formatted at once


def bvh_text(local_rot: np.ndarray, root_pos: np.ndarray, offsets: np.ndarray, frame_time_s: float,
             names: tuple[str, ...] = SMPL_JOINT_NAMES, parents: np.ndarray = SMPL_PARENTS,
             order: str = "ZXY", units_per_m: float = 1.0, decimals: int = 6,
             end_offsets: np.ndarray | None = None) -> str:
    """A BVH file of the skeleton: hierarchy from `offsets`, one motion line per frame.

    local_rot (T, J, 3, 3), root_pos (T, 3) metres, offsets (J, 3) metres. Rotation channels are
    intrinsic Euler angles in degrees in `order` (channels "Zrotation Xrotation Yrotation" for "ZXY"
    mean R = Rz @ Rx @ Ry, the usual BVH reading). The root has OFFSET 0 and position channels equal
    to its world position, so parsers that add or ignore the root offset agree (when every child of the
    root sits on it, the root's pivot moves END_SITE_M below them: see the comment in the code). Angles are unwrapped
    over time (each angle +-360 degrees leaves the rotation unchanged) to keep curves continuous.
    Every leaf joint gets an End Site: its `end_offsets` (J, 3) row in metres when given, else a
    END_SITE_M stub continuing the incoming bone (straight up for a root leaf or a zero-length bone).
    """
    t, j = local_rot.shape[:2]
    _check("local_rot", local_rot, (t, len(names), 3, 3))
    _check("root_pos", root_pos, (t, 3))
    if end_offsets is not None:
        _check("end_offsets", np.asarray(end_offsets), (j, 3))
    if sorted(order) != ["X", "Y", "Z"]:
        raise ValueError(f"order must be a permutation of XYZ, got {order!r}")
    offsets = np.asarray(offsets, np.float64).copy()
    root_pos = np.asarray(root_pos, np.float64)
    root = int(np.flatnonzero(parents < 0)[0])
    kids_of_root = np.flatnonzero(parents == root)
    if len(kids_of_root) and np.abs(offsets[kids_of_root]).max() < 1e-9:
        # Every child sits on the root (Anny's `root` bone): importers make that a zero-length bone
        # (Blender: "zero length node found: root"). Move the root's pivot END_SITE_M down its own
        # rest up axis and its position channel with it: a child's world position q + R o equals the
        # old p + R 0 for q = p - R o, so every joint, and every rotation, is unchanged.
        o = np.array([0.0, END_SITE_M, 0.0])
        offsets[kids_of_root] = o
        root_pos = root_pos - np.einsum("tij,j->ti", local_rot[:, root], o)
    kids = _children(parents)
    rot_channels = " ".join(f"{a}rotation" for a in order)
    out = io.StringIO()
    out.write("HIERARCHY\n")
    dfs: list[int] = []
    fmt = f"{{:.{decimals}f}}"

    def vec(v: np.ndarray) -> str:
        return " ".join(fmt.format(x * units_per_m) for x in v)

    def write(k: int, depth: int) -> None:
        pad = "  " * depth
        dfs.append(k)
        if parents[k] < 0:
            out.write(f"ROOT {names[k]}\n{pad}{{\n{pad}  OFFSET {vec(np.zeros(3))}\n")
            out.write(f"{pad}  CHANNELS 6 Xposition Yposition Zposition {rot_channels}\n")
        else:
            out.write(f"{pad}JOINT {names[k]}\n{pad}{{\n{pad}  OFFSET {vec(offsets[k])}\n")
            out.write(f"{pad}  CHANNELS 3 {rot_channels}\n")
        for c in kids[k]:
            write(c, depth + 1)
        if not kids[k]:
            if end_offsets is not None:
                tip = np.asarray(end_offsets[k], np.float64)
            else:
                bone = offsets[k] if parents[k] >= 0 else np.zeros(3)
                n = np.linalg.norm(bone)
                tip = (bone / n if n > 1e-9 else np.array([0.0, 1.0, 0.0])) * END_SITE_M
            out.write(f"{pad}  End Site\n{pad}  {{\n{pad}    OFFSET {vec(tip)}\n{pad}  }}\n")
        out.write(f"{pad}}}\n")

    write(root, 0)
    out.write(f"MOTION\nFrames: {t}\nFrame Time: {frame_time_s:.8f}\n")
    parts, last = [out.getvalue()], None
    for s in range(0, t, MOTION_SLICE):     # a slice of frames at a time: a long track's angles and text stay small
        sl = slice(s, min(s + MOTION_SLICE, t))
        euler = Rotation.from_matrix(local_rot[sl][:, dfs].reshape(-1, 3, 3)).as_euler(order, degrees=True)
        euler = euler.reshape(sl.stop - sl.start, -1)
        if last is not None:                # unwrapped from the previous slice's last (unwrapped) frame
            euler = np.unwrap(np.concatenate([last[None], euler]), period=360.0, axis=0)[1:]
        else:
            euler = np.unwrap(euler, period=360.0, axis=0)
        last = euler[-1]
        chunk = io.StringIO()
        np.savetxt(chunk, np.concatenate([root_pos[sl] * units_per_m, euler], axis=1), fmt=f"%.{decimals}f", delimiter=" ")
        parts.append(chunk.getvalue())
    return "".join(parts)


def obj_text(vertices: np.ndarray, faces: np.ndarray, comment: str = "", normals: bool = True,
             uvs: np.ndarray | None = None, uv_faces: np.ndarray | None = None) -> str:
    """Wavefront OBJ of one mesh: vertices (V, 3) metres, faces (F, 3) zero-based (written 1-based).

    `normals`: per-vertex smooth normals (`vn`, area-weighted, the same as the GLB's) so importers
    shade the body smoothly instead of faceted. `uvs` (U, 2) with `uv_faces` (F, 3) indices into them:
    texture coordinates (`vt`) where the body model has a UV map (Anny does; SMPL's files do not).
    """
    _check("vertices", vertices, (-1, 3))
    _check("faces", faces, (-1, 3))
    if (uvs is None) != (uv_faces is None):
        raise ValueError("uvs and uv_faces go together")
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64) + 1
    out = io.StringIO()
    for line in comment.splitlines():
        out.write(f"# {line}\n")
    # One %-format over a flat array: ~20x faster than np.savetxt's per-line formatting.
    out.write(("v %.5f %.5f %.5f\n" * len(v)) % tuple(v.ravel().tolist()))
    cols = [f]
    if uvs is not None:
        _check("uvs", np.asarray(uvs), (-1, 2))
        _check("uv_faces", np.asarray(uv_faces), (len(f), 3))
        out.write(("vt %.6f %.6f\n" * len(uvs)) % tuple(np.asarray(uvs, np.float64).ravel().tolist()))
        cols.append(np.asarray(uv_faces, np.int64) + 1)
    if normals:
        n = vertex_normals(v, f - 1).astype(np.float64)
        out.write(("vn %.4f %.4f %.4f\n" * len(n)) % tuple(n.ravel().tolist()))
        cols.append(f)    # normal k belongs to vertex k
    out.write("s 1\n")
    if len(cols) == 1:
        out.write(("f %d %d %d\n" * len(f)) % tuple(f.ravel().tolist()))
    else:
        corner = "/".join(["%d"] * len(cols)) if uvs is not None else "%d//%d"
        idx = np.stack(cols, axis=-1)                       # (F, 3, len(cols))
        out.write((f"f {corner} {corner} {corner}\n" * len(f)) % tuple(idx.ravel().tolist()))
    return out.getvalue()
