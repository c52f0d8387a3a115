"""Part-based dynamics decoder (METHOD.md section 5; SRNet group-connected layers, HMMR's dt).

From the current prediction (pose theta_t in 6D and the regressor's last hidden feature) it predicts
delta-rotations for t - dt and t + dt; theta_{t +- dt} = theta_t (+) delta, composed as rotation
matrices R_{t +- dt} = R_t @ R(identity + delta) (a local-frame correction per joint).

Group-connected layer (`GroupLinear`), for groups g = 1..G with input sizes i_g (I = sum i_g) and
output sizes o_g:
- "multiply" (SRNet's default): m_g = sigmoid(BN(w_g^T x_{-g})), y_g = W_g (x_g * m_g) (no b_g: the
  BatchNorm subtracts the batch mean, so a bias before it would never get a gradient; BN's own bias
  takes its place)
- "concat": y_g = W_g [x_g, LeakyReLU(w_g^T x_{-g} + b_g)]
- "none": y_g = W_g x_g (no global context)
w_g starts at 0, so every group starts out independent of the others.

Parameter count (documented and tested):
    P = sum_g [(i_g + e) o_g + o_g]          (W_g with bias; e = 1 in "concat" mode, else 0)
      + [mode != none] sum_g (I - i_g)       (w_g)
      + [mode == concat] G                   (b_g)
      + [mode == multiply] 2 G               (BatchNorm1d(1) affine weight and bias per group)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from video2mesh.models.maths.rotations import identity_rot6d, rot6d_to_rotmat

SMPL_GROUPS: dict[str, tuple[int, ...]] = {
    "torso": (0, 3, 6, 9, 12, 15, 13, 14),
    "left_leg": (1, 4, 7, 10),
    "right_leg": (2, 5, 8, 11),
    "left_arm": (16, 18, 20, 22),
    "right_arm": (17, 19, 21, 23),
}
CONTEXT_MODES = ("multiply", "concat", "none")


def group_linear_params(in_sizes: list[int], out_sizes: list[int], mode: str) -> int:
    """The parameter count of a GroupLinear (formula in the module docstring)."""
    total_in, e = sum(in_sizes), int(mode == "concat")
    p = sum((i + e) * o + o for i, o in zip(in_sizes, out_sizes))
    if mode != "none":
        p += sum(total_in - i for i in in_sizes)
    if mode == "concat":
        p += len(in_sizes)
    if mode == "multiply":
        p += 2 * len(in_sizes)
    return p


class GroupLinear(nn.Module):
    """Group-connected linear layer: list of (N, i_g) -> list of (N, o_g)."""

    def __init__(self, in_sizes: list[int], out_sizes: list[int], mode: str = "multiply") -> None:
        super().__init__()
        if mode not in CONTEXT_MODES:
            raise ValueError(f"context mode must be one of {CONTEXT_MODES}, got {mode!r}")
        if len(in_sizes) != len(out_sizes):
            raise ValueError(f"GroupLinear: {len(in_sizes)} input groups but {len(out_sizes)} output groups")
        self.mode, self.in_sizes = mode, list(in_sizes)
        extra = int(mode == "concat")
        self.lin = nn.ModuleList(nn.Linear(i + extra, o) for i, o in zip(in_sizes, out_sizes))
        if mode != "none":
            total = sum(in_sizes)
            self.context = nn.ModuleList(nn.Linear(total - i, 1, bias=mode == "concat") for i in in_sizes)
            for c in self.context:
                nn.init.zeros_(c.weight)
                if c.bias is not None:
                    nn.init.zeros_(c.bias)
        if mode == "multiply":
            self.context_bn = nn.ModuleList(nn.BatchNorm1d(1) for _ in in_sizes)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for g, x in enumerate(xs):
            if self.mode != "none":
                c = self.context[g](torch.cat([xs[k] for k in range(len(xs)) if k != g], -1))  # (N, 1)
                if self.mode == "multiply":
                    x = x * torch.sigmoid(self.context_bn[g](c))
                else:
                    x = torch.cat([x, F.leaky_relu(c)], -1)
            out.append(self.lin[g](x))
        return out


@dataclass(frozen=True)
class DynamicsConfig:
    part_based: bool = True       # False: a plain fully connected decoder (paper Table 3's "FCN")
    context: str = "multiply"     # SRNet's default global-context mapping
    hidden_per_group: int = 128   # width of each group's hidden features (plain FC: 5x this)
    n_layers: int = 2             # hidden layers
    dt_frames: int = 5            # HMMR's +- 5 frames


class DynamicsDecoder(nn.Module):
    """pose6d (N, 144), feat (N, F) -> delta6d for t - dt and t + dt, each (N, 144)."""

    def __init__(self, feat_dim: int, cfg: DynamicsConfig = DynamicsConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.groups = list(SMPL_GROUPS.values())
        n = [len(g) for g in self.groups]
        h = cfg.hidden_per_group
        if cfg.part_based:
            # First layer: each group reads its own joints and the shared image feature, no context;
            # the following layers are group-connected with the global-context path.
            layers = [GroupLinear([6 * k + feat_dim for k in n], [h] * len(n), "none")]
            layers += [GroupLinear([h] * len(n), [h] * len(n), cfg.context) for _ in range(cfg.n_layers - 1)]
            layers.append(GroupLinear([h] * len(n), [12 * k for k in n], cfg.context))
            self.layers = nn.ModuleList(layers)
            heads = [lin for lin in self.layers[-1].lin]
        else:
            width = h * len(n)
            dims = [144 + feat_dim] + [width] * cfg.n_layers
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
            self.out = nn.Linear(width, 2 * 144)
            heads = [self.out]
        for head in heads:  # start near the identity correction, as the regressor's heads
            nn.init.xavier_uniform_(head.weight, gain=0.01)
            nn.init.zeros_(head.bias)
        order = [j for g in self.groups for j in g]
        self.register_buffer("_joint_of", torch.tensor(order), persistent=False)

    def forward(self, pose6d: torch.Tensor, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = pose6d.shape[0]
        if not self.cfg.part_based:
            x = torch.cat([pose6d, feat], -1)
            for lin in self.layers:
                x = F.relu(lin(x))
            out = self.out(x).reshape(n, 2, 144)
            return out[:, 0], out[:, 1]
        joints = pose6d.reshape(n, 24, 6)
        xs = [torch.cat([joints[:, list(g)].reshape(n, -1), feat], -1) for g in self.groups]
        for i, layer in enumerate(self.layers):
            xs = layer(xs)
            if i < len(self.layers) - 1:
                xs = [F.relu(x) for x in xs]
        # Each group's output is [prev (6 n_g), next (6 n_g)] in the group's joint order.
        prev = torch.cat([x.reshape(n, 2, -1, 6)[:, 0] for x in xs], 1)      # (N, 24, 6) in group order
        nxt = torch.cat([x.reshape(n, 2, -1, 6)[:, 1] for x in xs], 1)
        out_prev, out_next = torch.empty_like(prev), torch.empty_like(nxt)
        out_prev[:, self._joint_of], out_next[:, self._joint_of] = prev, nxt
        return out_prev.reshape(n, 144), out_next.reshape(n, 144)


def apply_delta(rotmat: torch.Tensor, delta6d: torch.Tensor) -> torch.Tensor:
    """(N, 24, 3, 3) poses, (N, 144) deltas -> R @ R(identity + delta), (N, 24, 3, 3)."""
    eye = identity_rot6d(24, dtype=delta6d.dtype, device=delta6d.device)
    return rotmat @ rot6d_to_rotmat(eye + delta6d)
