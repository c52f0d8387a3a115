"""Fixtures for tests/models: a synthetic body callable (coco17, h36m14) on the synthetic SMPL file."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from models import synthetic_data as S
from models import synthetic_smpl

# COCO-17 stand-ins from SMPL joints (face points -> head) for this fixture only.
_C17 = [15, 15, 15, 15, 15, 16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8]
_J14 = [6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10]


@pytest.fixture(scope="session")
def synthetic_body(synthetic_smpl_dir):
    """body(betas (B, 10), pose (B, 72)) -> coco17 (B, 17, 3), h36m14 (B, 14, 3), vertices, joints24."""
    import smplx

    m = smplx.SMPL(str(synthetic_smpl_dir / "SMPL_NEUTRAL.pkl"))
    reg = torch.tensor(S.synthetic_h36m_regressor(synthetic_smpl.build(0)["J_regressor"]), dtype=torch.float32)

    def body(betas, pose):
        o = m(betas=betas, global_orient=pose[:, :3], body_pose=pose[:, 3:])
        j = o.joints[:, :24]
        h = torch.einsum("jv,bvc->bjc", reg, o.vertices)[:, _J14]
        return SimpleNamespace(coco17=j[:, _C17], h36m14=h, vertices=o.vertices, joints24=j)

    return body
