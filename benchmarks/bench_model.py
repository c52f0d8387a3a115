"""Mesh model throughput (frames/s through encoder + regressor (+ dynamics head)), SMPL forward, and
the pose embedder. Random weights: the cost does not depend on their values. The synthetic SMPL file
has the official layout and sizes, so its forward costs what the real one does."""
from __future__ import annotations

import tempfile

import torch

from video2mesh.benchmarks import Case
from video2mesh.models.nets.embedder import EmbedderConfig, PoseEmbedder
from video2mesh.models.nets.model import PRESETS, V2MModel
from video2mesh.models.body.smpl import SMPL


def _model_case(preset: str, tracks: int, frames: int, device: str) -> Case:
    def setup():
        model = V2MModel(PRESETS[preset]).to(device).eval()
        cfg = model.cfg
        g = torch.Generator().manual_seed(0)
        f = torch.randn(tracks, frames, 2048, generator=g).to(device)
        u = torch.randn(tracks, frames, cfg.static_dim, generator=g).to(device) if cfg.use_static else None
        d = torch.randn(tracks, frames, cfg.dynamic_dim, generator=g).to(device) if cfg.use_dynamic else None
        h = torch.zeros(cfg.gru_layers, tracks, cfg.gru_hidden, device=device)

        @torch.no_grad()
        def step() -> int:
            with torch.autocast("cuda", enabled=device.startswith("cuda")):
                model(f, u, d, h0=h)  # one streamed window, as the mesh stage runs it
            return tracks * frames
        return step
    return Case("mesh_model", f"{preset} tracks={tracks} window={frames}", setup)


def _smpl_case(batch: int, device: str) -> Case:
    def setup():
        from video2mesh.models.body import synthetic_smpl
        d = tempfile.mkdtemp(prefix="v2m-bench-smpl-")
        synthetic_smpl.write(d, "NEUTRAL")
        body = SMPL(d).to(device)
        g = torch.Generator().manual_seed(0)
        betas = torch.randn(batch, 10, generator=g).to(device)
        pose = (0.3 * torch.randn(batch, 72, generator=g)).to(device)

        @torch.no_grad()
        def step() -> int:
            body(betas, pose)
            return batch
        return step
    return Case("smpl", f"SMPL forward (vertices + joints) batch={batch}", setup)


def _embedder_case(batch: int, device: str) -> Case:
    def setup():
        m = PoseEmbedder(EmbedderConfig()).to(device).eval()
        kp = (torch.rand(batch, 17, 3) * 200).to(device)

        @torch.no_grad()
        def step() -> int:
            m.embed_keypoints(kp)
            return batch
        return step
    return Case("embedder", f"Pr-VIPE embed batch={batch}", setup)


def cases(quick: bool, device: str) -> list[Case]:
    tracks, frames = (2, 64) if quick else (8, 256)
    out = [_model_case(p, tracks, frames, device) for p in ("baseline", "full")]
    if not quick:
        out.append(_model_case("fc_dynamics", tracks, frames, device))
    out += [_smpl_case(64 if quick else 256, device), _embedder_case(256 if quick else 4096, device)]
    return out
