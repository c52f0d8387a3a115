"""USD (UsdSkel) writer for one skinned, animated body: Omniverse, Houdini, Unreal and Maya read it.

The same inputs as the GLB (`gltf.SkinnedAnimation`): a skeleton whose rest frames are world-aligned,
the bind-pose mesh with top-4 skinning weights, per-frame local joint rotations and the root's position.
Layout: `/Body` (SkelRoot) holding `Skeleton` (joints, bind and rest transforms, the original joint names
in `jointNames`), `Skeleton/Motion` (SkelAnimation: translations, rotations, scales per time code) and
`Mesh` (points, normals, the skinning primvars). Stage metadata: upAxis Y, metersPerUnit 1, time codes
are video-frame offsets from the track's first frame with timeCodesPerSecond = framesPerSecond = fps.
With a `CameraTrack`, `/Camera` (UsdGeom.Camera) is the video's camera, its transform keyed per time code
(focal length and apertures in the same unit, chosen so that focalLength / verticalAperture = f_px / height).
Needs `usd-core` (PyPI, Apache-2.0 with the TOST modification).
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np

from video2mesh.models.maths.mesh import vertex_normals

from .animation import rest_offsets
from .gltf import SkinnedAnimation, top_k_weights


def _token(name: str, used: set[str]) -> str:
    """A valid, unique USD prim-path element for a joint name (`mixamorig:Hips` -> `mixamorig_Hips`)."""
    t = re.sub(r"[^A-Za-z0-9_]", "_", name)
    t = t if t and not t[0].isdigit() else f"_{t}"
    base, i = t, 1
    while t in used:
        t, i = f"{base}_{i}", i + 1
    used.add(t)
    return t


def joint_paths(names: tuple[str, ...], parents: tuple[int, ...]) -> list[str]:
    """UsdSkel joint paths ('root/pelvis_L/...'), each joint's path below its parent's."""
    used: set[str] = set()
    tokens = [_token(n, used) for n in names]
    paths: list[str] = []
    for k, p in enumerate(parents):
        paths.append(tokens[k] if p < 0 else f"{paths[p]}/{tokens[k]}")
    return paths


def skinned_usd(a: SkinnedAnimation, fps: float, binary: bool = True) -> bytes:
    """The .usd (crate when `binary`, else .usda text) bytes of one animated body."""
    from pxr import Gf, Sdf, Usd, UsdGeom, UsdSkel, Vt

    parents = np.asarray(a.parents)
    n_t, n_j = a.local_quat.shape[:2]
    rest = np.asarray(a.rest_joints, np.float64)
    offsets = rest_offsets(rest, parents)                      # root row = its rest position
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / ("body.usdc" if binary else "body.usda"))
        stage = Usd.Stage.CreateNew(path)
        UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
        UsdGeom.SetStageMetersPerUnit(stage, 1.0)
        stage.SetTimeCodesPerSecond(float(fps))
        stage.SetFramesPerSecond(float(fps))
        times = np.rint(np.asarray(a.times_s, np.float64) * fps)  # frame offsets (exact for whole frames)
        stage.SetStartTimeCode(float(times[0]))
        stage.SetEndTimeCode(float(times[-1]))
        root = UsdSkel.Root.Define(stage, "/Body")
        stage.SetDefaultPrim(root.GetPrim())
        skel = UsdSkel.Skeleton.Define(stage, "/Body/Skeleton")
        joints = Vt.TokenArray(joint_paths(tuple(a.joint_names), tuple(int(p) for p in parents)))
        skel.CreateJointsAttr(joints)
        skel.CreateJointNamesAttr(Vt.TokenArray(list(a.joint_names)))
        skel.CreateBindTransformsAttr(Vt.Matrix4dArray([Gf.Matrix4d(1.0).SetTranslate(Gf.Vec3d(*r)) for r in rest]))
        skel.CreateRestTransformsAttr(Vt.Matrix4dArray([Gf.Matrix4d(1.0).SetTranslate(Gf.Vec3d(*o)) for o in offsets]))

        anim = UsdSkel.Animation.Define(stage, "/Body/Skeleton/Motion")
        anim.CreateJointsAttr(joints)
        tr_attr, rot_attr = anim.CreateTranslationsAttr(), anim.CreateRotationsAttr()
        anim.CreateScalesAttr(Vt.Vec3hArray([Gf.Vec3h(1, 1, 1)] * n_j))
        q = np.asarray(a.local_quat, np.float64)               # (T, J, 4) x, y, z, w
        for i, tc in enumerate(times):
            tr = offsets.copy()
            tr[0] = a.root_pos[i]
            tr_attr.Set(Vt.Vec3fArray.FromNumpy(tr.astype(np.float32)), Usd.TimeCode(float(tc)))
            rot_attr.Set(Vt.QuatfArray([Gf.Quatf(float(w), float(x), float(y), float(z)) for x, y, z, w in q[i]]),
                         Usd.TimeCode(float(tc)))
        UsdSkel.BindingAPI.Apply(skel.GetPrim()).CreateAnimationSourceRel().SetTargets([anim.GetPath()])

        mesh = UsdGeom.Mesh.Define(stage, "/Body/Mesh")
        verts = np.asarray(a.vertices, np.float64)
        faces = np.asarray(a.faces, np.int64)
        mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(verts.astype(np.float32)))
        mesh.CreateFaceVertexCountsAttr(Vt.IntArray([3] * len(faces)))
        mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(faces.reshape(-1).astype(np.int32)))
        mesh.CreateNormalsAttr(Vt.Vec3fArray.FromNumpy(vertex_normals(verts, faces)))
        mesh.SetNormalsInterpolation(UsdGeom.Tokens.vertex)
        mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
        k = min(4, n_j)
        ids, w = top_k_weights(np.asarray(a.weights), k)
        binding = UsdSkel.BindingAPI.Apply(mesh.GetPrim())
        binding.CreateJointIndicesPrimvar(False, k).Set(Vt.IntArray.FromNumpy(ids.astype(np.int32).reshape(-1)))
        binding.CreateJointWeightsPrimvar(False, k).Set(Vt.FloatArray.FromNumpy(w.reshape(-1)))
        binding.CreateGeomBindTransformAttr(Gf.Matrix4d(1.0))
        binding.CreateSkeletonRel().SetTargets([skel.GetPath()])
        if a.camera is not None:
            _camera(stage, a.camera, times)
        if a.extras:
            root.GetPrim().SetCustomData({str(k): str(v) for k, v in a.extras.items()})
        stage.GetRootLayer().Save()
        return Path(path).read_bytes()


def _camera(stage, cam, times: np.ndarray) -> None:
    """`/Camera`: the CameraTrack's pinhole (a 24-unit vertical aperture) with its camera -> scene transform per time code."""
    from pxr import Gf, Usd, UsdGeom
    from scipy.spatial.transform import Rotation

    c = UsdGeom.Camera.Define(stage, "/Camera")
    c.CreateProjectionAttr(UsdGeom.Tokens.perspective)
    c.CreateVerticalApertureAttr(24.0)
    c.CreateHorizontalApertureAttr(24.0 * cam.aspect)
    c.CreateFocalLengthAttr(12.0 / np.tan(cam.yfov / 2.0))
    c.CreateClippingRangeAttr(Gf.Vec2f(0.01, 1000.0))
    op = c.AddTransformOp()
    rot = Rotation.from_quat(np.asarray(cam.rotation, np.float64)).as_matrix()     # camera -> scene
    for i, tc in enumerate(times):
        m = np.eye(4)
        m[:3, :3] = rot[i].T                  # Gf multiplies row vectors: p_scene = p_cam M
        m[3, :3] = cam.position[i]
        op.Set(Gf.Matrix4d(m.tolist()), Usd.TimeCode(float(tc)))


def validate(path: str | Path) -> list[str]:
    """Errors of USD's own validators (UsdValidation: stage metadata, skel binding, composition, ...) as
    lines; empty when the file is valid. What `usdchecker` runs, without needing its script on PATH."""
    from pxr import Usd, UsdValidation

    validators = UsdValidation.ValidationRegistry().GetOrLoadAllValidators()
    context = UsdValidation.ValidationContext(validators)
    errors = context.Validate(Usd.Stage.Open(str(path)))
    return [f"{e.GetName()}: {e.GetMessage()}" for e in errors
            if e.GetType() in (UsdValidation.ValidationErrorType.Error, UsdValidation.ValidationErrorType.Warn)]
