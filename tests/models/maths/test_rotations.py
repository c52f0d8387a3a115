"""6D, axis-angle and rotation-matrix maps against closed forms and scipy."""
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from video2mesh.models.maths import rotations as R


def test_rot6d_orthonormal_det1():
    x = torch.randn(500, 6, dtype=torch.float64)
    m = R.rot6d_to_rotmat(x)
    eye = torch.eye(3, dtype=torch.float64).expand(500, 3, 3)
    assert torch.allclose(m.transpose(1, 2) @ m, eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(m), torch.ones(500, dtype=torch.float64), atol=1e-12)


def test_rot6d_closed_form():
    # Columns a1 = (2, 0, 0), a2 = (1, 3, 0): Gram-Schmidt gives e_x, e_y, and e_z = e_x x e_y.
    x = torch.tensor([2.0, 1.0, 0.0, 3.0, 0.0, 0.0])
    assert torch.allclose(R.rot6d_to_rotmat(x), torch.eye(3))
    # A 90 degree turn about z: first two columns (0, 1, 0) and (-1, 0, 0), scaled.
    rz = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    x = torch.tensor([0.0, -5.0, 3.0, 0.0, 0.0, 0.0])
    assert torch.allclose(R.rot6d_to_rotmat(x), rz, atol=1e-7)


def test_rot6d_roundtrip_and_pose_shape():
    rot = torch.as_tensor(Rotation.random(48, random_state=0).as_matrix(), dtype=torch.float32).reshape(2, 24, 3, 3)
    six = R.rotmat_to_rot6d(rot).reshape(2, 144)
    back = R.rot6d_to_rotmat(six)
    assert back.shape == (2, 24, 3, 3)
    assert torch.allclose(back, rot, atol=1e-6)


def test_rot6d_bad_shape():
    with pytest.raises(ValueError, match="multiple of 6"):
        R.rot6d_to_rotmat(torch.zeros(4, 5))


@pytest.mark.parametrize("angle", [0.0, 1e-9, 1e-5, 0.3, 2.0, math.pi - 1e-3, math.pi - 1e-7, math.pi])
def test_axis_angle_matches_scipy(angle):
    rng = np.random.default_rng(1)
    axes = rng.normal(size=(64, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    aa = axes * angle
    ref = Rotation.from_rotvec(aa).as_matrix()
    m = R.axis_angle_to_rotmat(torch.as_tensor(aa))
    assert np.allclose(m.numpy(), ref, atol=1e-12)
    back = R.rotmat_to_axis_angle(torch.as_tensor(ref)).numpy()
    # Compare as rotations (at pi, aa and -aa are the same rotation).
    assert np.allclose(Rotation.from_rotvec(back).as_matrix(), ref, atol=1e-9)
    if angle < math.pi - 1e-3:
        assert np.allclose(back, aa, atol=1e-9)


def test_axis_angle_gradient_finite_at_zero():
    aa = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    R.axis_angle_to_rotmat(aa).sum().backward()
    assert torch.isfinite(aa.grad).all()


def test_random_rotations_roundtrip():
    ref = Rotation.random(1000, random_state=3)
    back = R.rotmat_to_axis_angle(torch.as_tensor(ref.as_matrix()))
    assert np.allclose(back.numpy(), ref.as_rotvec(), atol=1e-9)
