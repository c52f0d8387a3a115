"""The baseline config is VIBE: its released key layout loads exactly, and its forward pass equals an
independent re-computation written here with plain tensor ops (GRU cell, IEF loop, 6D Gram-Schmidt,
axis-angle by scipy). The full model initialised from VIBE starts out equal to it."""
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from video2mesh.models.nets.model import PRESETS, ModelConfig, V2MModel, from_vibe, random_vibe_gen_state_dict

H, F_IN = 1024, 2048


# The builder lives beside the loader (tests, benchmarks and the full-path test share it); the old
# name stays importable from here.
vibe_gen_state_dict = random_vibe_gen_state_dict


def _gru_layer(x, w_ih, w_hh, b_ih, b_hh, h):
    """Plain GRU recurrence (PyTorch gate order r, z, n) over x (B, T, C) -> (B, T, H)."""
    ys = []
    for t in range(x.shape[1]):
        gi, gh = x[:, t] @ w_ih.T + b_ih, h @ w_hh.T + b_hh
        ir, iz, inn = gi.chunk(3, -1)
        hr, hz, hn = gh.chunk(3, -1)
        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
        n = torch.tanh(inn + r * hn)
        h = (1 - z) * n + z * h
        ys.append(h)
    return torch.stack(ys, 1)


def _gram_schmidt(x6):
    m = x6.reshape(-1, 3, 2).numpy().astype(np.float64)
    a1, a2 = m[:, :, 0], m[:, :, 1]
    b1 = a1 / np.linalg.norm(a1, axis=1, keepdims=True)
    b2 = a2 - (b1 * a2).sum(1, keepdims=True) * b1
    b2 /= np.linalg.norm(b2, axis=1, keepdims=True)
    return np.stack([b1, b2, np.cross(b1, b2)], -1)


def vibe_reference(sd, f):
    """VIBE's generator forward on f (B, T, 2048) -> theta (B, T, 85) = [cam 3, pose 72, shape 10]."""
    b, t, _ = f.shape
    y = f
    for layer in range(2):
        y = _gru_layer(y, *(sd[f"encoder.gru.{n}_l{layer}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")),
                       torch.zeros(b, H))
    g = torch.relu(y) @ sd["encoder.linear.weight"].T + sd["encoder.linear.bias"] + f
    x = g.reshape(b * t, -1)
    pose, shape, cam = (sd[f"regressor.init_{k}"].expand(b * t, -1) for k in ("pose", "shape", "cam"))
    lin = lambda name, v: v @ sd[f"regressor.{name}.weight"].T + sd[f"regressor.{name}.bias"]  # noqa: E731
    for _ in range(3):
        xc = lin("fc2", lin("fc1", torch.cat([x, pose, shape, cam], 1)))  # dropout is identity at eval
        pose, shape, cam = pose + lin("decpose", xc), shape + lin("decshape", xc), cam + lin("deccam", xc)
    rot = _gram_schmidt(pose)
    aa = Rotation.from_matrix(rot).as_rotvec().reshape(b * t, 72)
    theta = np.concatenate([cam.numpy(), aa, shape.numpy()], 1)
    return theta.reshape(b, t, 85), rot.reshape(b, t, 24, 3, 3)


@pytest.fixture(scope="module")
def vibe_sd():
    return vibe_gen_state_dict()


def _theta(out):
    from video2mesh.models.maths.rotations import rotmat_to_axis_angle
    aa = rotmat_to_axis_angle(out.rotmat.double()).reshape(*out.rotmat.shape[:2], 72)
    return torch.cat([out.cam.double(), aa, out.betas.double()], -1).numpy()


def test_vibe_layout_loads_into_baseline_and_matches_reference(vibe_sd):
    base = V2MModel(PRESETS["baseline"])
    net_keys = {k for k in vibe_sd if not k.startswith("regressor.smpl.")}
    assert set(base.state_dict()) == net_keys           # no missing, no unexpected keys
    model = from_vibe({"gen_state_dict": vibe_sd, "epoch": 3}).eval()
    f = torch.randn(2, 4, F_IN, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(f)
        theta_ref, rot_ref = vibe_reference(vibe_sd, f)
    assert out.rotmat_prev is None
    assert np.allclose(out.rotmat.numpy(), rot_ref, atol=1e-5)
    assert np.allclose(_theta(out), theta_ref, atol=1e-4)
    # The weights did change the output: the reference is not trivially the initial mean.
    assert not np.allclose(theta_ref[..., :3], vibe_sd["regressor.init_cam"].numpy(), atol=1e-3)


def test_from_vibe_rejects_other_layouts(vibe_sd):
    bad = dict(vibe_sd)
    bad["encoder.extra.weight"] = torch.zeros(1)
    del bad["regressor.deccam.bias"]
    with pytest.raises(ValueError, match="missing.*deccam.bias.*unexpected.*encoder.extra"):
        from_vibe(bad)


@pytest.mark.parametrize("preset", ["full", "no_static"])
def test_zero_init_full_model_equals_baseline(vibe_sd, preset):
    # float64: the two are the same function; in float32 they differ only by the summation order of
    # fc1's longer dot product (relative 1e-7, amplified where Gram-Schmidt divides by a short column).
    base = from_vibe(vibe_sd).eval().double()
    full = from_vibe(vibe_sd, PRESETS[preset]).eval().double()
    g = torch.Generator().manual_seed(2)
    f, u, d = (torch.randn(2, 6, n, generator=g, dtype=torch.float64) for n in (F_IN, 64, 135))
    with torch.no_grad():
        a, b = base(f), full(f, u, d)
    for x, y in ((a.pose6d, b.pose6d), (a.betas, b.betas), (a.cam, b.cam), (a.rotmat, b.rotmat)):
        assert torch.allclose(x, y, atol=1e-5, rtol=0)
    assert b.rotmat_prev.shape == (2, 6, 24, 3, 3)
    # ...and the new columns are live: training them changes the output.
    with torch.no_grad():
        full.regressor.fc1.weight[:, 2048:2048 + full.cfg.extra_dim].normal_(0, 0.05)
        assert not torch.allclose(full(f, u, d).cam, a.cam, atol=1e-4)


def test_checkpoint_roundtrip(tmp_path):
    cfg = ModelConfig(feature_dim=32, gru_hidden=16, regressor_hidden=32, dyn_hidden_per_group=8)
    m = V2MModel(cfg).eval()
    p = m.save(tmp_path / "m.pt", meta={"trained_on": "nothing"})
    m2 = V2MModel.from_checkpoint(p)
    assert m2.cfg == cfg
    g = torch.Generator().manual_seed(0)
    f, u, d = torch.randn(1, 3, 32, generator=g), torch.randn(1, 3, 64, generator=g), torch.randn(1, 3, 135, generator=g)
    with torch.no_grad():
        assert torch.equal(m(f, u, d).rotmat_next, m2(f, u, d).rotmat_next)
    ckpt = torch.load(p, weights_only=True)
    assert ckpt["kind"] == "v2m_model" and "torch" in ckpt["versions"] and ckpt["config"]["gru_hidden"] == 16


def test_missing_feature_is_an_error():
    m = V2MModel(ModelConfig(feature_dim=8, gru_hidden=4, regressor_hidden=8, use_dynamics_head=False))
    with pytest.raises(ValueError, match="static feature"):
        m(torch.zeros(1, 2, 8), None, torch.zeros(1, 2, 135))
