"""Training-side costs: metrics, the Pr-VIPE loss with mining, and one embedder training step."""
from __future__ import annotations

import numpy as np
import torch

from video2mesh.benchmarks import Case


def _metrics(n_frames: int, device: str):
    from video2mesh.models.metrics import accuracy as metrics

    def setup():
        g = torch.Generator().manual_seed(0)
        a = torch.randn(n_frames, 14, 3, generator=g).to(device)
        b = torch.randn(n_frames, 14, 3, generator=g).to(device)

        def step() -> int:
            metrics.pa_mpjpe(a, b)
            metrics.accel_error(a, b)
            return n_frames

        return step

    return setup


def _embedder_loss(batch: int, device: str):
    from video2mesh.models.training import losses

    def setup():
        g = torch.Generator().manual_seed(0)
        mu = torch.randn(2 * batch, 32, generator=g).to(device).requires_grad_()
        sig = torch.full((2 * batch, 32), 0.5, device=device, requires_grad=True)
        pose = torch.randn(batch, 13, 3, generator=g).to(device)
        raw_a, b = torch.tensor(-0.65, device=device), torch.tensor(-0.5, device=device)

        def step() -> int:
            out = losses.embedder_loss(mu[:batch], sig[:batch], mu[batch:], sig[batch:], pose, raw_a, b)
            out["total"].backward()
            return batch

        return step

    return setup


def _embedder_step(batch: int, hidden: int, device: str):
    def setup():
        from video2mesh.models.training import train_embedder as train
        from video2mesh.models.nets.embedder import EmbedderConfig, PoseEmbedder

        torch.manual_seed(0)
        pool = np.random.default_rng(0).normal(0, 0.3, (4 * batch, 13, 3)).astype(np.float32)
        model = PoseEmbedder(EmbedderConfig(hidden=hidden)).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        from video2mesh.models.training import losses

        def step() -> int:
            pose, v1, v2 = (t.to(device) for t in train.embedder_step_batch(pool, batch, 0))
            mu, sigma = model(torch.cat([v1, v2]))
            out = losses.embedder_loss(mu[:batch], sigma[:batch], mu[batch:], sigma[batch:], pose, model.raw_a, model.b)
            opt.zero_grad()
            out["total"].backward()
            opt.step()
            return batch

        return step

    return setup


def cases(quick: bool, device: str) -> list[Case]:
    n = 1000 if quick else 10000
    b = 64 if quick else 256
    return [
        Case("train", f"PA-MPJPE + accel error, {n} frames x 14 joints", _metrics(n, device)),
        Case("train", f"Pr-VIPE loss (K=20, semi-hard mining), batch {b}", _embedder_loss(b, device), unit="poses"),
        Case("train", f"embedder train step, batch {b}, hidden {256 if quick else 1024}",
             _embedder_step(b, 256 if quick else 1024, device), unit="poses"),
    ]
