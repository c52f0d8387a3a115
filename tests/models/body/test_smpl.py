"""SMPL wrapper: equals smplx called directly; reads chumpy-style pickles without chumpy; .npz."""
import pickle
import sys
import types

import numpy as np
import pytest
import smplx
import torch

from video2mesh.models.body import smpl as S
from video2mesh.models.maths.rotations import axis_angle_to_rotmat
from video2mesh.models.body.synthetic_smpl import build


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(0)
    betas = torch.randn(3, 10, generator=g)
    aa = 0.4 * torch.randn(3, 72, generator=g)
    return betas, aa


def _smplx_direct(path, betas, aa):
    body = smplx.SMPL(str(path), num_betas=10)  # smplx's own pickle loading
    return body(betas=betas, global_orient=aa[:, :3], body_pose=aa[:, 3:])


@pytest.mark.parametrize("gender", ["neutral", "male", "female"])
def test_wrapper_equals_smplx(synthetic_smpl_dir, inputs, gender):
    betas, aa = inputs
    model = S.SMPL(synthetic_smpl_dir, gender=gender)
    out = model(betas, aa)
    ref = _smplx_direct(synthetic_smpl_dir / f"SMPL_{gender.upper()}.pkl", betas, aa)
    assert out.vertices.shape == (3, 6890, 3)
    assert torch.allclose(out.vertices, ref.vertices, atol=1e-5)
    assert torch.allclose(out.joints24, ref.joints[:, :24], atol=1e-5)
    # Rotation matrices give the same as axis-angle.
    out_r = model(betas, axis_angle_to_rotmat(aa.reshape(3, 24, 3)))
    assert torch.allclose(out_r.vertices, out.vertices, atol=1e-5)


def test_coco17_layout(synthetic_smpl_dir, inputs):
    betas, aa = inputs
    out = S.SMPL(synthetic_smpl_dir)(betas, aa)
    v, j = out.vertices, out.joints24
    assert torch.equal(out.coco17[:, 0], v[:, 332])       # nose vertex (smplx smplh ids)
    assert torch.equal(out.coco17[:, 5], j[:, 16])        # left shoulder
    assert torch.equal(out.coco17[:, 16], j[:, 8])        # right ankle
    # smplx's own extra joints (24: nose, 25: reye, 26: leye, 27: rear, 28: lear) agree.
    ref = _smplx_direct(synthetic_smpl_dir / "SMPL_NEUTRAL.pkl", betas, aa).joints
    assert torch.allclose(out.coco17[:, [0, 2, 1, 4, 3]], ref[:, 24:29], atol=1e-5)


def test_h36m_regressor(synthetic_smpl_dir, tmp_path, inputs):
    betas, aa = inputs
    jr = np.random.default_rng(0).random((17, 6890)).astype(np.float32)
    jr /= jr.sum(1, keepdims=True)
    np.save(tmp_path / "J_regressor_h36m.npy", jr)
    out = S.SMPL(synthetic_smpl_dir, j_regressor_h36m=tmp_path / "J_regressor_h36m.npy")(betas, aa)
    ref = np.einsum("jv,bvc->bjc", jr[list(S.H36M_TO_J14)], out.vertices.numpy())
    assert np.allclose(out.h36m14.numpy(), ref, atol=1e-5)


def test_chumpy_style_pickle_loads_without_chumpy(synthetic_smpl_dir, tmp_path, inputs):
    """Arrays wrapped in fake chumpy.ch.Ch objects (state {'x': array, ...}) read back as arrays."""
    data = build(seed=0)
    mod_pkg, mod_ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:  # mimics chumpy: __getstate__ is the __dict__ minus caches; the value under 'x'
        def __init__(self, x):
            self.x = x
            self._dirty_vars = set()

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    mod_ch.Ch = Ch
    mod_pkg.ch = mod_ch
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = mod_pkg, mod_ch
    try:
        wrapped = dict(data, shapedirs=Ch(data["shapedirs"]), v_template=Ch(data["v_template"]), J=Ch(data["J"]))
        path = tmp_path / "SMPL_NEUTRAL.pkl"
        with open(path, "wb") as f:
            pickle.dump(wrapped, f, protocol=2)
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]
    assert b"chumpy.ch" in path.read_bytes()
    with pytest.raises(ModuleNotFoundError):
        pickle.load(open(path, "rb"))  # the plain loader needs chumpy
    loaded = S.load_model_data(path)
    assert isinstance(loaded["shapedirs"], np.ndarray)
    assert np.array_equal(loaded["shapedirs"], data["shapedirs"])
    betas, aa = inputs
    out = S.SMPL(path)(betas, aa)
    ref = S.SMPL(synthetic_smpl_dir)(betas, aa)
    assert torch.allclose(out.vertices, ref.vertices, atol=1e-6)


def test_npz_model(synthetic_smpl_dir, tmp_path, inputs):
    data = build(seed=0)
    np.savez(tmp_path / "SMPL_NEUTRAL.npz", **{k: (v.toarray() if hasattr(v, "toarray") else v) for k, v in data.items()})
    betas, aa = inputs
    out = S.SMPL(tmp_path, gender="neutral")(betas, aa)
    ref = S.SMPL(synthetic_smpl_dir)(betas, aa)
    assert torch.allclose(out.vertices, ref.vertices, atol=1e-6)


def test_bad_inputs(synthetic_smpl_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="SMPL_FEMALE"):
        S.SMPL(tmp_path, gender="female")
    model = S.SMPL(synthetic_smpl_dir)
    with pytest.raises(ValueError, match="betas"):
        model(torch.zeros(2, 11), torch.zeros(2, 72))
