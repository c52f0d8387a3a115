"""USD writer: USD's own UsdSkel evaluation (joints and skinned points) against our forward kinematics."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

pxr = pytest.importorskip("pxr", reason="usd-core is not installed (pip install usd-core)")


def _animation():
    from video2mesh.models.writers.gltf import SkinnedAnimation

    rng = np.random.default_rng(0)
    v = np.c_[rng.uniform(-0.05, 0.05, 60), rng.uniform(0, 1, 60), rng.uniform(-0.05, 0.05, 60)]
    rest = np.array([[0, 0, 0], [0, 0.5, 0], [0.1, 0.75, 0]], float)
    w = np.stack([v[:, 1] < 0.5, (v[:, 1] >= 0.5) & (v[:, 1] < 0.75), v[:, 1] >= 0.75], 1).astype(float)
    faces = np.array([[i, i + 1, i + 2] for i in range(0, 57, 3)])
    t = 5
    local = Rotation.random(t * 3, random_state=1).as_matrix().reshape(t, 3, 3, 3)
    root = rng.normal(size=(t, 3))
    a = SkinnedAnimation(vertices=v, faces=faces, weights=w, rest_joints=rest, times_s=np.arange(t) / 30.0,
                         local_quat=Rotation.from_matrix(local.reshape(-1, 3, 3)).as_quat().reshape(t, 3, 4),
                         root_pos=root, joint_names=("mixamorig:Hips", "spine 1", "mixamorig:Hips"), parents=(-1, 0, 1),
                         extras={"rig": "test"})
    return a, local


def test_usd_joints_and_skinned_points_match_our_kinematics(tmp_path):
    from pxr import Usd, UsdGeom, UsdSkel

    from video2mesh.models.writers.animation import forward_kinematics, rest_offsets
    from video2mesh.models.writers.usd import skinned_usd, validate

    a, local = _animation()
    path = tmp_path / "body.usdc"
    path.write_bytes(skinned_usd(a, fps=30.0))
    assert validate(path) == []
    stage = Usd.Stage.Open(str(path))
    assert UsdGeom.GetStageUpAxis(stage) == "Y" and UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert stage.GetTimeCodesPerSecond() == 30.0 and (stage.GetStartTimeCode(), stage.GetEndTimeCode()) == (0.0, 4.0)
    skel = UsdSkel.Skeleton(stage.GetPrimAtPath("/Body/Skeleton"))
    assert list(skel.GetJointNamesAttr().Get()) == list(a.joint_names)      # names kept, paths sanitised and unique
    cache = UsdSkel.Cache()
    root = UsdSkel.Root(stage.GetPrimAtPath("/Body"))
    cache.Populate(root, Usd.TraverseInstanceProxies())
    query = cache.GetSkelQuery(skel)
    mesh = stage.GetPrimAtPath("/Body/Mesh")
    skinning = cache.GetSkinningQuery(mesh)
    offsets = rest_offsets(a.rest_joints, np.asarray(a.parents))
    offsets[0] = 0.0
    pos, glob = forward_kinematics(local, offsets, a.root_pos, np.asarray(a.parents))
    for i in range(5):
        tc = Usd.TimeCode(float(i))
        xf = query.ComputeJointSkelTransforms(tc)
        got = np.array([np.array(m.ExtractTranslation()) for m in xf])
        np.testing.assert_allclose(got, pos[i], atol=1e-5)
        points = np.array(UsdGeom.Mesh(mesh).GetPointsAttr().Get(tc), np.float64)
        from pxr import Vt
        pts = Vt.Vec3fArray.FromNumpy(points.astype(np.float32))
        assert skinning.ComputeSkinnedPoints(query.ComputeSkinningTransforms(tc), pts, tc)
        skinned = np.array(pts, np.float64)
        # our LBS: v -> sum_k w_k (G_k (v - rest_k) + p_k)
        ours = sum(a.weights[:, k, None] * (np.einsum("ij,vj->vi", glob[i, k], a.vertices - a.rest_joints[k]) + pos[i, k])
                   for k in range(3))
        np.testing.assert_allclose(skinned, ours, atol=1e-5)
