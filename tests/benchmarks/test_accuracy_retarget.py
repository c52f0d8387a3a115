"""Retargeting mocap onto Anny: closed loop on Anny's own joints, residual on real mocap, feet on the floor."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.stages.licence_free_helpers import anny_body
from video2mesh.benchmarks.accuracy import retarget as R
from video2mesh.benchmarks.accuracy.mocap import CANONICAL, Mocap, load_mocap

FAST = R.RetargetConfig(chunk=24, iters_first=200, iters=80)


@pytest.fixture(scope="module")
def body():
    return anny_body()


def _anny_mocap(body, phen, t=24, seed=0) -> tuple[Mocap, np.ndarray]:
    """Anny's own canonical joint centres for a smooth random motion, turned into world Y-up facing +Z."""
    from video2mesh.models.body.anny_body import FIT_BONES

    bones = body.bone_index(FIT_BONES)
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(2, 1, len(bones), 3, generator=g, dtype=body.dtype) * 0.25
    s = torch.linspace(0, 1, t, dtype=body.dtype)[:, None, None]
    theta = (1 - s) * a + s * b
    with torch.no_grad():
        sk = body.skeleton(torch.as_tensor(phen[None], dtype=body.dtype))
        heads = body.fk(theta, sk, bones)[1]
    ids = body.bone_index([R.ANNY_JOINTS[c] for c in CANONICAL])
    model_to_world = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])       # z up, facing -y -> y up, facing +z
    j = heads[:, ids].numpy() @ model_to_world.T + [0.0, 1.0, 0.0]
    j[..., 2] += np.linspace(0, 0.6, t)[:, None]                           # walks forward 0.6 m
    return Mocap("anny", "0" * 64, j, 30.0, 30.0, "m", "+Y", 0.8), j


def test_closed_loop_recovers_annys_own_joints(body):
    """Mocap made of Anny's joints (same shape): IK finds them back to a few millimetres, scale 1."""
    phen = np.full(6, 0.5)
    mocap, j = _anny_mocap(body, phen)
    out = R.retarget(body, mocap, phen, FAST)
    assert abs(out.scale - 1) < 2e-3          # Anny's thigh is two bones: its hip-knee length bends a little
    assert out.residual_mm.mean() < 6.0, out.residual_mm.mean()
    # world positions too: joints shifted by the floor offset only (the mocap's feet were not on y = 0)
    shift = out.joint_centres - j
    assert np.abs(shift - shift.reshape(-1, 3).mean(0)).max() < 0.02
    assert np.abs(shift[..., [0, 2]]).max() < 0.02


def test_real_mocap_residual_and_feet_on_the_floor(body, shared_data):
    """CMU walk onto two body shapes: residual (proportions differ) under 35 mm, printed for the record;
    lowest vertex on the floor; joints23 from the vertices agree with Anny's COCO regressor."""
    mocap = load_mocap(shared_data / "mocap" / "scaled_131_01.bvh", frames=48)
    for phen in (np.full(6, 0.5), np.array([1.0, 0.5, 0.4, 0.85, 0.25, 0.5])):
        out = R.retarget(body, mocap, phen, FAST)
        print(f"retarget residual {out.residual_mm.mean():.1f} mm, scale {out.scale:.3f}, {out.seconds:.1f} s")
        assert out.residual_mm.mean() < 35.0
        low = out.vertices[..., 1].min(1)                                  # (T,) lowest vertex per frame
        assert np.percentile(low, 10) == pytest.approx(0.0, abs=1e-5) and low.min() > -0.03
        assert out.vertices.shape == (48, 13718, 3) and out.joints23.shape == (48, 23, 3)
    # the whole body faces +Z at frame 0 (left hip on +x)
    c = {n: i for i, n in enumerate(CANONICAL)}
    assert out.joint_centres[0, c["left_hip"], 0] > out.joint_centres[0, c["right_hip"], 0]


def test_joints23_match_the_fits_keypoints_after_retarget(body):
    """The COCO part of joints23 (Anny's regressor on the skinned vertices) equals Anny's closed-form
    keypoints (AnnyBody.keypoints_fk, what the fit uses) of the same pose under the same rigid transform,
    and the feet are the chosen vertices."""
    from video2mesh.models.body.anny_body import FIT_BONES
    from video2mesh.models.body.anny_keypoints import FOOT_VERTICES

    phen = np.full(6, 0.5)
    mocap, _ = _anny_mocap(body, phen, t=4, seed=2)
    out = R.retarget(body, mocap, phen, R.RetargetConfig(chunk=4, iters_first=40, iters=10))
    with torch.no_grad():
        sk = body.skeleton(torch.as_tensor(phen[None], dtype=body.dtype))
        kp = body.keypoints_fk(*body.fk(torch.as_tensor(out.theta), sk, body.bone_index(FIT_BONES)), sk).numpy()
    kp = np.einsum("tij,tkj->tki", out.rotation, kp) + out.transl[:, None]
    np.testing.assert_allclose(out.joints23[:, :17], kp, atol=2e-4)
    np.testing.assert_array_equal(out.joints23[:, 17:], out.vertices[:, FOOT_VERTICES])
