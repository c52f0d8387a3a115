"""Group-connected layers: independence between groups except through the global context, and the
documented parameter-count formula; the dynamics decoder's output layout and rotation composition."""
import pytest
import torch

from video2mesh.models.nets.dynamics import (SMPL_GROUPS, DynamicsConfig, DynamicsDecoder, GroupLinear, apply_delta,
                             group_linear_params)
from video2mesh.models.maths.rotations import axis_angle_to_rotmat, rotmat_to_rot6d, identity_rot6d

SIZES_IN, SIZES_OUT = [8, 4, 4, 6, 3], [5, 7, 2, 3, 4]


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(6, n, generator=g) for n in SIZES_IN]


def _randomise_context(layer: GroupLinear) -> None:
    with torch.no_grad():
        for c in layer.context:
            c.weight.normal_(0, 1.0)


@pytest.mark.parametrize("mode", ["none", "multiply", "concat"])
def test_groups_independent_without_context(mode):
    layer = GroupLinear(SIZES_IN, SIZES_OUT, mode).eval()   # w_g = 0 at init: no cross-group path
    xs = _inputs()
    ys = layer(xs)
    xs2 = list(xs)
    xs2[3] = xs[3] + 5.0                                       # change group 3's input only
    ys2 = layer(xs2)
    for g in range(5):
        same = torch.allclose(ys[g], ys2[g], atol=0)
        assert same == (g != 3), g


@pytest.mark.parametrize("mode", ["multiply", "concat"])
def test_other_groups_act_only_through_context(mode):
    layer = GroupLinear(SIZES_IN, SIZES_OUT, mode).eval()
    _randomise_context(layer)
    xs = _inputs()
    xs2 = list(xs)
    xs2[3] = xs[3] + 5.0
    ys, ys2 = layer(xs), layer(xs2)
    assert all(not torch.allclose(ys[g], ys2[g]) for g in range(5))   # now every group sees group 3...
    # ...and only through w_g: the own-group weights W_g never touch another group's input.
    g = 0
    ctx = layer.context[g](torch.cat(xs2[1:], -1))
    x = xs[0] * torch.sigmoid(layer.context_bn[g](ctx)) if mode == "multiply" else torch.cat([xs[0], torch.nn.functional.leaky_relu(ctx)], -1)
    assert torch.allclose(ys2[0], layer.lin[0](x))
    with torch.no_grad():
        layer.context[g].weight.zero_()
    assert torch.allclose(layer(xs)[g], layer(xs2)[g], atol=0)


@pytest.mark.parametrize("mode", ["none", "multiply", "concat"])
def test_parameter_count_formula(mode):
    layer = GroupLinear(SIZES_IN, SIZES_OUT, mode)
    n = sum(p.numel() for p in layer.parameters())
    assert n == group_linear_params(SIZES_IN, SIZES_OUT, mode)
    # Hand count: W_g with bias; "multiply": (I - i_g) context weights + 2 BN params per group;
    # "concat": (I - i_g) context weights + 1 context bias per group, and one more input column of W_g.
    total = sum(SIZES_IN)
    hand = sum(i * o + o for i, o in zip(SIZES_IN, SIZES_OUT))
    if mode != "none":
        hand += sum(total - i for i in SIZES_IN) + (2 * 5 if mode == "multiply" else 5)
    if mode == "concat":
        hand += sum(SIZES_OUT)
    assert n == hand


def test_decoder_parameter_count():
    cfg = DynamicsConfig(hidden_per_group=16, n_layers=3, context="multiply")
    dec = DynamicsDecoder(feat_dim=32, cfg=cfg)
    n = [len(g) for g in SMPL_GROUPS.values()]
    expect = group_linear_params([6 * k + 32 for k in n], [16] * 5, "none")
    expect += 2 * group_linear_params([16] * 5, [16] * 5, "multiply")
    expect += group_linear_params([16] * 5, [12 * k for k in n], "multiply")
    assert sum(p.numel() for p in dec.parameters()) == expect


def test_groups_cover_smpl_once():
    joints = sorted(j for g in SMPL_GROUPS.values() for j in g)
    assert joints == list(range(24))


@pytest.mark.parametrize("part_based", [True, False])
def test_decoder_outputs_in_joint_order(part_based):
    dec = DynamicsDecoder(feat_dim=10, cfg=DynamicsConfig(part_based=part_based, hidden_per_group=8)).eval()
    pose = identity_rot6d(24).expand(3, -1)
    feat = torch.randn(3, 10)
    with torch.no_grad():
        last = dec.layers[-1].lin[1] if part_based else dec.out
        last.bias.copy_(torch.arange(last.bias.numel(), dtype=torch.float32))
    prev, nxt = dec(pose, feat)
    assert prev.shape == nxt.shape == (3, 144)
    if part_based:  # left leg {1, 4, 7, 10}: its bias entries 0..23 are prev, 24..47 next, joint by joint
        assert torch.allclose(prev[0].reshape(24, 6)[[1, 4, 7, 10]].flatten(), torch.arange(24.0), atol=0.2)
        assert torch.allclose(nxt[0].reshape(24, 6)[[1, 4, 7, 10]].flatten(), torch.arange(24.0, 48.0), atol=0.2)


def test_apply_delta_composes_rotations():
    g = torch.Generator().manual_seed(0)
    r = axis_angle_to_rotmat(torch.randn(2, 24, 3, generator=g))
    q = axis_angle_to_rotmat(0.3 * torch.randn(2, 24, 3, generator=g))
    delta = rotmat_to_rot6d(q).reshape(2, 144) - identity_rot6d(24)
    assert torch.allclose(apply_delta(r, delta), r @ q, atol=1e-6)
    assert torch.allclose(apply_delta(r, torch.zeros(2, 144)), r, atol=1e-6)
