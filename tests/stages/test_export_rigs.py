"""fit_export with a standard rig (`fit_export.rig=mixamo`): Mixamo's bone names, joints where the fitted mesh
puts them. Builds Anny's Mixamo rig once (minutes on a first run, cached beside the models)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from .licence_free_helpers import anny_body

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mild_fit():
    """A `fit` artifact of 4 frames from mild random poses (the pose prior's scale), a turned and moved root."""
    from scipy.spatial.transform import Rotation

    from video2mesh.models.body.anny_body import FIT_BONES
    from video2mesh.models.fit.anny_fit import MODEL_TO_CAMERA
    from video2mesh.models.body.anny_body import N_BONES
    from video2mesh.stages.fit_anny import bone_rotations

    body = anny_body()
    bones = body.bone_index(FIT_BONES)
    prior = torch.tensor(list(FIT_BONES.values()), dtype=body.dtype)
    theta = torch.randn(4, len(bones), 3, generator=torch.Generator().manual_seed(5), dtype=body.dtype) * 0.3 / prior[None, :, None]
    phen = np.array([0.4, 0.5, 0.5, 0.6, 0.5, 0.5], np.float32)
    with torch.no_grad():
        sk = body.skeleton(torch.as_tensor(phen[None]))
    orient = Rotation.from_matrix(MODEL_TO_CAMERA @ sk.rest_rotations[0].T.numpy()).as_rotvec()
    rots = bone_rotations(body, theta.numpy(), sk, bones)
    df = pd.DataFrame({
        "frame": np.arange(4, dtype=np.int64), "track_id": np.zeros(4, np.int32),
        "bone_rotations": list(rots.reshape(4, N_BONES * 3)), "global_orient": [orient] * 4,
        "transl": list(np.array([[0.0, 0.2, 3.0 + 0.1 * i] for i in range(4)])), "phenotype": [phen] * 4,
    })
    return body, df


def mesh_carried_heads(body, rig_body, df):
    """(T, K, 3) Y-up: where the fitted Anny rig's skinning carries each rest head of `rig_body` (same mesh)."""
    from video2mesh.models.body.anny_body import N_BONES, pose_rig
    from video2mesh.models.body.rigs import point_weights
    from video2mesh.models.writers.animation import CAMERA_TO_YUP
    from video2mesh.pipeline.artifacts import stack
    from video2mesh.stages.fit_export import dense_weights

    n = len(df)
    phen = stack(df.phenotype, 6, np.float64)[:1]
    with torch.no_grad():
        sk = body.skeleton(torch.as_tensor(phen, dtype=body.dtype))
        tsk = rig_body.skeleton(torch.as_tensor(phen, dtype=rig_body.dtype))
    src = pose_rig(body, sk, stack(df.bone_rotations, N_BONES * 3, np.float64).reshape(n, N_BONES, 3),
                   stack(df.global_orient, 3, np.float64), stack(df.transl, 3, np.float64))
    heads = tsk.heads.numpy().astype(np.float64)
    w = point_weights(tsk.rest_vertices.numpy().astype(np.float64), dense_weights(body), heads)   # (K, J)
    h_src = sk.heads.numpy().astype(np.float64)
    target = np.einsum("kj,tjkc->tkc", w, np.einsum("tjab,kb->tjka", src["rotations"], heads) - np.einsum(
        "tjab,jb->tja", src["rotations"], h_src)[:, :, None] + src["heads"][:, :, None])
    return target @ CAMERA_TO_YUP.T


def test_mixamo_rig_bvh_and_glb(mild_fit, tmp_path):
    from bvh import Bvh
    from scipy.spatial.transform import Rotation

    from video2mesh.stages.licence_free import load_body
    from video2mesh.stages.fit_export import FitExportConfig, track_files

    body, df = mild_fit
    mixamo = load_body(None, rig="mixamo")
    files = {f[1]: f for f in track_files(df, body, fps=30.0, cfg=FitExportConfig(formats=("bvh", "glb"), rig="mixamo"),
                                           rig_body=mixamo)}
    assert files["bvh"][4]["rig"] == "mixamo" and files["glb"][4]["rig"] == "mixamo"
    mocap = Bvh(files["bvh"][3].decode())
    names = mocap.get_joints_names()
    assert names[0] == "mixamorig:Hips" and set(names) == set(mixamo.bone_names)
    for required in ("LeftUpLeg", "LeftLeg", "LeftFoot", "LeftArm", "LeftForeArm", "LeftHand", "Spine", "Neck", "Head"):
        assert f"mixamorig:{required}" in names

    # FK of the BVH (an independent parser's offsets and channels) ...
    pos, rot = {}, {}
    for name in names:
        off = np.array(mocap.joint_offset(name))
        ch = mocap.joint_channels(name)
        vals = np.array(mocap.frames_joint_channels(name, ch), float)
        r = Rotation.from_euler("".join(c[0] for c in ch if c.endswith("rotation")), vals[:, -3:], degrees=True).as_matrix()
        parent = mocap.joint_parent(name)
        if parent is None:
            rot[name], pos[name] = r, vals[:, :3] + off
        else:
            rot[name], pos[name] = rot[parent.name] @ r, pos[parent.name] + rot[parent.name] @ off
    # ... against where the fitted Anny mesh carries each Mixamo joint (its rest head skinned by the fitted rig)
    target = mesh_carried_heads(body, mixamo, df)
    err = np.stack([np.linalg.norm(pos[nm] - target[:, mixamo.bone_names.index(nm)], axis=1) for nm in names], 1)
    ends = [names.index(f"mixamorig:{s}{p}") for s in ("Left", "Right") for p in ("Hand", "Foot")]
    assert np.median(err) < 0.005 and err[:, ends].max() < 0.012 and err.max() < 0.02, \
        (np.median(err), err[:, ends].max(), err.max())

    glb = files["glb"][3]
    import json
    import struct

    js = json.loads(glb[20:20 + struct.unpack("<I", glb[12:16])[0]])
    assert [nd["name"] for nd in js["nodes"][1:]] == list(mixamo.bone_names)
    assert js["asset"]["extras"]["rig"] == "mixamo"
