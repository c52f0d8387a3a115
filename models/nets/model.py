"""The paper's model (METHOD.md sections 2, 3, 5): temporal encoder + [g_t, u_t, d_t] -> IEF SMPL
regressor, plus the part-based dynamics head. Switches in `ModelConfig` make the ablations of paper
Tables 2 and 3 configurations (`PRESETS`); `baseline` is VIBE and loads its released generator.

    model = V2MModel(PRESETS["full"])
    out = model(f, u, d)                    # f (B, T, 2048), u (B, T, 64), d (B, T, 135)
    out = model(f2, u2, d2, h0=out.hidden)  # next chunk of the same tracks (GRU is unidirectional)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import torch
from torch import nn

from . import checkpoint
from .dynamics import DynamicsConfig, DynamicsDecoder, apply_delta
from .regressor import Regressor
from video2mesh.models.maths.rotations import rot6d_to_rotmat
from .temporal import TemporalEncoder

KIND = "v2m_model"
VIBE_BODY_PREFIX = "regressor.smpl."   # VIBE's generator carries its SMPL buffers; ours live in video2mesh.models.body.smpl


@dataclass(frozen=True)
class ModelConfig:
    feature_dim: int = 2048           # ResNet-50 pooled feature f_t
    gru_hidden: int = 1024            # VIBE's released weights: 2 x 1024, unidirectional
    gru_layers: int = 2
    regressor_hidden: int = 1024
    n_iter: int = 3                   # IEF iterations
    use_static: bool = True           # u_t = [mu, sigma] of the pose embedder
    static_dim: int = 64              # 2 x D, D = 32
    use_dynamic: bool = True          # d_t = 15 stacked homographies
    dynamic_dim: int = 135
    use_dynamics_head: bool = True    # part-based (or FC) delta-pose for t -+ dt
    part_based: bool = True           # False: plain fully connected dynamics decoder
    context: str = "multiply"         # SRNet global-context mapping: multiply | concat | none
    dyn_hidden_per_group: int = 128
    dyn_layers: int = 2
    dt_frames: int = 5                # HMMR's dt

    @property
    def extra_dim(self) -> int:
        """Columns appended to g_t before the regressor."""
        return self.static_dim * self.use_static + self.dynamic_dim * self.use_dynamic


_BASE = ModelConfig()
PRESETS: dict[str, ModelConfig] = {
    "full": _BASE,
    "baseline": dataclasses.replace(_BASE, use_static=False, use_dynamic=False, use_dynamics_head=False),
    # Table 2 (temporal encoders; decoder as in the full model)
    "no_static": dataclasses.replace(_BASE, use_static=False),
    "no_dynamic": dataclasses.replace(_BASE, use_dynamic=False),
    "no_static_no_dynamic": dataclasses.replace(_BASE, use_static=False, use_dynamic=False),
    # Table 3 (dynamics predictor)
    "no_dynamics_head": dataclasses.replace(_BASE, use_dynamics_head=False),
    "no_dynamic_no_dynamics_head": dataclasses.replace(_BASE, use_dynamic=False, use_dynamics_head=False),
    # Section 3.3: group-connected vs fully connected dynamics decoder
    "fc_dynamics": dataclasses.replace(_BASE, part_based=False),
}


@dataclass(frozen=True)
class ModelOutput:
    """pose6d (B, T, 144), rotmat (B, T, 24, 3, 3), betas (B, T, 10), cam (B, T, 3) [s, tx, ty] in the
    crop, rotmat_prev / rotmat_next (B, T, 24, 3, 3): the head's poses for t - dt and t + dt (None
    without the head), hidden (L, B, H): GRU state after the last frame."""

    pose6d: torch.Tensor
    rotmat: torch.Tensor
    betas: torch.Tensor
    cam: torch.Tensor
    rotmat_prev: torch.Tensor | None
    rotmat_next: torch.Tensor | None
    hidden: torch.Tensor


class V2MModel(nn.Module):
    def __init__(self, cfg: ModelConfig = _BASE, mean_params: str | Path | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = TemporalEncoder(cfg.feature_dim, cfg.gru_hidden, cfg.gru_layers)
        self.regressor = Regressor(cfg.feature_dim + cfg.extra_dim, cfg.regressor_hidden, cfg.n_iter, mean_params)
        if cfg.use_dynamics_head:
            self.dynamics = DynamicsDecoder(cfg.regressor_hidden, DynamicsConfig(
                part_based=cfg.part_based, context=cfg.context, hidden_per_group=cfg.dyn_hidden_per_group,
                n_layers=cfg.dyn_layers, dt_frames=cfg.dt_frames))

    def forward(self, f: torch.Tensor, u: torch.Tensor | None = None, d: torch.Tensor | None = None,
                h0: torch.Tensor | None = None, lengths: torch.Tensor | None = None) -> ModelOutput:
        """f (B, T, 2048); u (B, T, 64) if use_static; d (B, T, 135) if use_dynamic; h0 (L, B, H);
        lengths (B,) for right-padded batches of unequal tracks (see TemporalEncoder)."""
        cfg = self.cfg
        b, t = f.shape[:2]
        g, hidden = self.encoder(f, h0, lengths)
        parts = [g]
        for used, x, name, dim in ((cfg.use_static, u, "u (static feature)", cfg.static_dim),
                                   (cfg.use_dynamic, d, "d (dynamic feature)", cfg.dynamic_dim)):
            if not used:
                continue
            if x is None or tuple(x.shape) != (b, t, dim):
                raise ValueError(f"this model uses {name}: expected shape {(b, t, dim)}, got "
                                 f"{None if x is None else tuple(x.shape)}")
            parts.append(x.to(g.dtype))
        r = self.regressor(torch.cat(parts, -1).reshape(b * t, -1))   # (B*T, 2048 + extra)
        rotmat = rot6d_to_rotmat(r.pose6d)                             # (B*T, 24, 3, 3)
        prev = nxt = None
        if cfg.use_dynamics_head:
            dp, dn = self.dynamics(r.pose6d, r.hidden)
            prev = apply_delta(rotmat, dp).reshape(b, t, 24, 3, 3)
            nxt = apply_delta(rotmat, dn).reshape(b, t, 24, 3, 3)
        return ModelOutput(pose6d=r.pose6d.reshape(b, t, -1), rotmat=rotmat.reshape(b, t, 24, 3, 3),
                           betas=r.shape.reshape(b, t, -1), cam=r.cam.reshape(b, t, -1),
                           rotmat_prev=prev, rotmat_next=nxt, hidden=hidden)

    # -- checkpoints ------------------------------------------------------------------------------
    def save(self, path: str | Path, meta: dict | None = None) -> Path:
        return checkpoint.save(path, KIND, self.cfg, self, meta)

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> "V2MModel":
        return checkpoint.rebuild(cls, ModelConfig, path, KIND)


def stream(model: V2MModel, windows: Iterable[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]],
           h0: torch.Tensor | None = None) -> Iterator[ModelOutput]:
    """Run consecutive windows (f, u, d) of the same tracks, carrying the GRU state: equals one pass."""
    h = h0
    for f, u, d in windows:
        out = model(f, u, d, h0=h)
        h = out.hidden
        yield out


def vibe_generator_state(raw: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """VIBE's checkpoint dict (with `gen_state_dict`) or the generator state_dict itself -> the network
    tensors, without the `regressor.smpl.*` body-model buffers (SMPL is loaded from its own asset)."""
    sd = raw["gen_state_dict"] if "gen_state_dict" in raw else raw
    return {k: v for k, v in sd.items() if not k.startswith(VIBE_BODY_PREFIX)}


def from_vibe(raw: Mapping[str, torch.Tensor], cfg: ModelConfig = PRESETS["baseline"]) -> V2MModel:
    """A model initialised from VIBE's generator weights.

    `baseline` takes them as they are (every key used, none missing). A config with u_t and/or d_t
    gets regressor.fc1's extra input columns (between g_t and the fed-back SMPL parameters) set to
    zero, so it starts out computing exactly VIBE; the dynamics head keeps its fresh initialisation.
    Raises ValueError naming missing or unexpected keys.
    """
    net = vibe_generator_state(raw)
    model = V2MModel(cfg)
    target = model.state_dict()
    ours = {k for k in target if not k.startswith("dynamics.")}
    missing, unexpected = sorted(ours - set(net)), sorted(set(net) - ours)
    if missing or unexpected:
        raise ValueError(f"not a VIBE generator state_dict for this config: missing {missing}, unexpected {unexpected}")
    net = dict(net)
    w = net["regressor.fc1.weight"]
    n_feat = cfg.feature_dim
    if w.shape[1] + cfg.extra_dim != target["regressor.fc1.weight"].shape[1]:
        raise ValueError(f"VIBE regressor.fc1 takes {w.shape[1]} inputs; this config expects "
                         f"{target['regressor.fc1.weight'].shape[1] - cfg.extra_dim}")
    if cfg.extra_dim:
        zeros = w.new_zeros(w.shape[0], cfg.extra_dim)
        net["regressor.fc1.weight"] = torch.cat([w[:, :n_feat], zeros, w[:, n_feat:]], 1)
    try:
        model.load_state_dict({**target, **net}, strict=True)
    except RuntimeError as e:
        raise ValueError(f"VIBE weights do not fit this config: {e}") from e
    return model


def random_vibe_gen_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the key names and shapes of VIBE's `gen_state_dict` (vibe_model_w_3dpw),
    for tests and benchmarks. Small weights (std 0.03) keep the IEF loop's outputs finite and moderate."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s, scale=0.03: scale * torch.randn(*s, generator=g)  # noqa: E731
    hid, f_in = _BASE.gru_hidden, _BASE.feature_dim
    sd = {}
    for layer, n_in in ((0, f_in), (1, hid)):
        sd[f"encoder.gru.weight_ih_l{layer}"] = r(3 * hid, n_in)
        sd[f"encoder.gru.weight_hh_l{layer}"] = r(3 * hid, hid)
        sd[f"encoder.gru.bias_ih_l{layer}"] = r(3 * hid)
        sd[f"encoder.gru.bias_hh_l{layer}"] = r(3 * hid)
    sd["encoder.linear.weight"], sd["encoder.linear.bias"] = r(f_in, hid), r(f_in)
    sd["regressor.fc1.weight"], sd["regressor.fc1.bias"] = r(1024, f_in + 157), r(1024)
    sd["regressor.fc2.weight"], sd["regressor.fc2.bias"] = r(1024, 1024), r(1024)
    sd["regressor.decpose.weight"], sd["regressor.decpose.bias"] = r(144, 1024), r(144)
    sd["regressor.decshape.weight"], sd["regressor.decshape.bias"] = r(10, 1024), r(10)
    sd["regressor.deccam.weight"], sd["regressor.deccam.bias"] = r(3, 1024), r(3)
    sd["regressor.init_pose"] = r(1, 144, scale=1.0)
    sd["regressor.init_shape"] = r(1, 10, scale=0.5)
    sd["regressor.init_cam"] = torch.tensor([[0.9, 0.02, 0.1]])
    # VIBE's generator also stores its SMPL (smplx 0.1.x) buffers; their values do not matter here.
    for k, s in {"betas": (64, 10), "global_orient": (64, 3), "body_pose": (64, 69), "faces_tensor": (13776, 3),
                 "v_template": (6890, 3), "shapedirs": (6890, 3, 10), "J_regressor": (24, 6890),
                 "posedirs": (207, 20670), "parents": (24,), "lbs_weights": (6890, 24),
                 "J_regressor_extra": (9, 6890), "vertex_joint_selector.extra_joints_idxs": (21,)}.items():
        sd[f"{VIBE_BODY_PREFIX}{k}"] = torch.zeros(s)
    return sd
