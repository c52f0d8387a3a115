"""Pr-VIPE probabilistic 2D pose embedder (METHOD.md section 3; google-research poem/).

A 2D pose of 13 COCO keypoints is embedded as a Gaussian N(mu, diag(sigma^2)) in R^D (D = 32).
The frozen embedder gives the static feature u_t = [mu_t, sigma_t] (R^64) and the uncertainty loss.
Training losses live in models/training/losses.py (issue 6) against this interface.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoint

# COCO indices kept: nose, shoulders, elbows, wrists, hips, knees, ankles.
COCO13 = (0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)
# Positions within COCO13 of the left/right shoulders (COCO 5, 6) and hips (COCO 11, 12).
_SHOULDERS, _HIPS = (1, 2), (7, 8)
KIND = "pose_embedder"
# Poem's 2D scale unit (KeypointProfile2D scale_unit = 0.5): the largest shoulder/hip distance maps to 0.5.
SPAN = 0.5
# Checkpoints written before the fix were trained on inputs 4x larger (divided by 0.5 x max: span 2).
_LEGACY = {"input_span": 2.0, "bn_eps": 1e-5, "bn_momentum": 0.1}


def normalize_coco13(kp: torch.Tensor) -> torch.Tensor:
    """(..., 17, 2+) COCO keypoints (pixels; extra columns such as scores ignored) -> (..., 26).

    Poem's 2D normalisation (LEGACY_2DCOCO13 profile): subtract the hip midpoint, multiply by
    0.5 / (the largest of the six pairwise distances among the shoulders and hips), so that
    distance becomes 0.5; flatten the 13 kept points. Poem-compatible input.
    """
    if kp.dim() < 2 or kp.shape[-2] != 17 or kp.shape[-1] < 2:
        raise ValueError(f"normalize_coco13: expected (..., 17, 2+) keypoints, got {tuple(kp.shape)}")
    p = kp[..., list(COCO13), :2]                                         # (..., 13, 2)
    centre = 0.5 * (p[..., _HIPS[0], :] + p[..., _HIPS[1], :])
    p = p - centre[..., None, :]
    anchors = p[..., list(_SHOULDERS + _HIPS), :]                          # (..., 4, 2)
    d = (anchors[..., :, None, :] - anchors[..., None, :, :]).norm(dim=-1)  # (..., 4, 4)
    scale = SPAN / d.flatten(-2).amax(-1).clamp_min(1e-6)
    return (p * scale[..., None, None]).flatten(-2)


@dataclass(frozen=True)
class EmbedderConfig:
    in_dim: int = 26
    hidden: int = 1024
    n_blocks: int = 2
    embed_dim: int = 32          # D; the paper's value, so u_t = [mu, sigma] has 64 columns
    dropout: float = 0.3
    raw_a_init: float = -0.65    # Pr-VIPE's initial a = ELU(raw_a) + 1
    b_init: float = -0.5
    input_span: float = SPAN     # span the weights were trained on; inputs (span 0.5) are rescaled to it
    init: str = "he_normal"      # poem: He-normal (truncated) weights and biases; "torch": PyTorch's default
    bn_eps: float = 1e-3         # TF batch_normalization's defaults (poem): eps 1e-3, moving-average 0.99
    bn_momentum: float = 0.01


def _dense(i: int, o: int, cfg: EmbedderConfig) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, o), nn.BatchNorm1d(o, eps=cfg.bn_eps, momentum=cfg.bn_momentum),
                         nn.ReLU(inplace=True), nn.Dropout(cfg.dropout))


def _he_normal_(t: torch.Tensor, fan_in: int) -> None:
    """TF's he_normal: normal(0, sqrt(2 / fan_in)) truncated at 2 std (std corrected by 0.8796)."""
    std = (2.0 / fan_in) ** 0.5 / 0.87962566103423978
    nn.init.trunc_normal_(t, 0.0, std, -2 * std, 2 * std)


class _ResBlock(nn.Module):
    def __init__(self, width: int, cfg: EmbedderConfig) -> None:
        super().__init__()
        self.body = nn.Sequential(_dense(width, width, cfg), _dense(width, width, cfg))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PoseEmbedder(nn.Module):
    """(N, 26) normalised poses -> mu (N, D), sigma (N, D) > 0. Leading dims beyond N are flattened."""

    def __init__(self, cfg: EmbedderConfig = EmbedderConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.init not in ("he_normal", "torch"):
            raise ValueError(f"EmbedderConfig.init must be 'he_normal' or 'torch', got {cfg.init!r}")
        self.stem = _dense(cfg.in_dim, cfg.hidden, cfg)
        self.blocks = nn.Sequential(*[_ResBlock(cfg.hidden, cfg) for _ in range(cfg.n_blocks)])
        self.mu = nn.Linear(cfg.hidden, cfg.embed_dim)
        self.sigma = nn.Linear(cfg.hidden, cfg.embed_dim)
        self.raw_a = nn.Parameter(torch.tensor(cfg.raw_a_init))
        self.b = nn.Parameter(torch.tensor(cfg.b_init))
        if cfg.init == "he_normal":
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    _he_normal_(m.weight, m.in_features)
                    _he_normal_(m.bias, m.out_features)       # TF's fan_in of a 1-D shape is its length

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (..., 26) poses normalised by `normalize_coco13` (span 0.5)."""
        lead = x.shape[:-1]
        if self.cfg.input_span != SPAN:
            x = x * (self.cfg.input_span / SPAN)
        h = self.blocks(self.stem(x.reshape(-1, x.shape[-1])))
        mu = self.mu(h)
        sigma = F.elu(self.sigma(h)) + 1
        return mu.reshape(*lead, -1), sigma.reshape(*lead, -1)

    def embed_keypoints(self, kp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., 17, 2+) COCO keypoints in pixels -> mu, sigma (..., D)."""
        return self(normalize_coco13(kp))

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> "PoseEmbedder":
        ckpt = checkpoint.load(path, KIND)
        values = dict(ckpt["config"])
        if "input_span" not in values:               # written before poem's normalisation: keep what it learned
            values.update(_LEGACY, init="torch")
        model = cls(checkpoint.config_from(EmbedderConfig, values, path))
        model.load_state_dict(ckpt["state_dict"])
        return model.eval()

    def save(self, path: str | Path, meta: dict | None = None) -> Path:
        return checkpoint.save(path, KIND, self.cfg, self, meta)


def sample(mu: torch.Tensor, sigma: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(..., D) Gaussians -> (..., K, D) samples z = mu + sigma * eps (reparameterised)."""
    eps = torch.randn(*mu.shape[:-1], k, mu.shape[-1], generator=generator, dtype=mu.dtype, device=mu.device)
    return mu[..., None, :] + sigma[..., None, :] * eps


def matching_prob(z1: torch.Tensor, z2: torch.Tensor, raw_a: torch.Tensor, b: torch.Tensor, s: float = 0.1) -> torch.Tensor:
    """p(m | z1, z2) = (1 - s) sigmoid(-a ||z1 - z2|| + b) + s / 2 with a = ELU(raw_a) + 1; (..., D) -> (...)."""
    a = F.elu(raw_a) + 1
    d = (z1 - z2).norm(dim=-1)
    return (1 - s) * torch.sigmoid(-a * d + b) + s / 2
