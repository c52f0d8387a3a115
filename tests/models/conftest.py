"""Fixtures for tests/models: the SMPL wrapper on the synthetic body, with a synthetic H36M regressor."""
from __future__ import annotations

import numpy as np
import pytest

from video2mesh.models.training import synthetic_data as S
from video2mesh.models.body import synthetic_smpl


@pytest.fixture(scope="session")
def synthetic_h36m_regressor(tmp_path_factory) -> str:
    """J_regressor_h36m.npy (17, 6890) for the synthetic body (rows = its SMPL joints, see synthetic_data)."""
    path = tmp_path_factory.mktemp("h36m") / "J_regressor_h36m.npy"
    np.save(path, S.synthetic_h36m_regressor(synthetic_smpl.build(0)["J_regressor"]))
    return str(path)


@pytest.fixture(scope="session")
def synthetic_body(synthetic_smpl_dir, synthetic_h36m_regressor):
    """video2mesh.models.body.smpl.SMPL: body(betas (B, 10), pose (B, 72)) -> vertices, joints24, coco17, h36m14."""
    from video2mesh.models.body.smpl import SMPL

    return SMPL(synthetic_smpl_dir, "neutral", j_regressor_h36m=synthetic_h36m_regressor)
