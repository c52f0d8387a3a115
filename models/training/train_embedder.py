"""Pr-VIPE pose embedder pretraining (METHOD.md section 3) on random-camera views of 3D poses.

    python -m video2mesh.models.training.train train-embedder --out runs/emb --bvh mocap/*.bvh --bvh-unit-m 0.056444

Writes <out>/state.pt (resumable), embedder.pt (the checkpoint the pipeline loads), log.csv and
summary.json (with the cross-view retrieval accuracy and its chance level).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from video2mesh.models.training import datasets, losses
from video2mesh.models.nets.embedder import EmbedderConfig, PoseEmbedder, normalize_coco13
from video2mesh.models.training.utils import CsvLog, autocast, coco13_to_17, pick_device, save_state, step_seed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbedderTrainConfig:
    """Defaults are poem's Pr-VIPE recipe (poem/pr_vipe/train_base.py flags): Adagrad lr 0.02
    (initial accumulator 0.1, TF's), batch 256, EMA 0.9999 of the weights with TF's num_updates
    warm-up (decay_t = min(0.9999, (1 + t) / (10 + t))), batch norm per view; its 5M steps are ours to choose."""

    out_dir: str = "runs/embedder"
    steps: int = 5000
    batch: int = 256
    optimizer: str = "adagrad"        # poem; "adam" is the previous recipe (lr 1e-3)
    lr: float = 0.02
    ema_decay: float = 0.9999         # 0: no average; embedder.pt then holds the last weights
    per_view_bn: bool = True          # poem runs the network once per view, so BN statistics are per view
    seed: int = 0
    embed_dim: int = 32
    hidden: int = 1024
    dropout: float = 0.3
    log_every: int = 50
    ckpt_every: int = 500
    device: str = "auto"
    amp: bool = True


def embedder_step_batch(pose3d: np.ndarray, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows and two random-camera views for one step: pose (B, 13, 3), view1, view2 (B, 26) normalised."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(pose3d), size=min(batch, len(pose3d)), replace=False)
    p = pose3d[idx]
    views = torch.as_tensor(datasets.project_random_views(p, rng, n_views=2))  # (2, B, 13, 2)
    x = normalize_coco13(coco13_to_17(views))                                    # (2, B, 26)
    return torch.as_tensor(p, dtype=torch.float32), x[0], x[1]


def make_optimizer(cfg: EmbedderTrainConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, initial_accumulator_value=0.1, eps=1e-10)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose 'adagrad' (poem) or 'adam'")


class WeightAverage:
    """TF's ExponentialMovingAverage with num_updates = step, over trainable parameters only (as poem's
    add_moving_average): shadow <- d shadow + (1 - d) w, d = min(decay, (1 + step) / (10 + step))."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        for k, p in model.named_parameters():
            if k in self.shadow:
                self.shadow[k].mul_(d).add_(p.detach(), alpha=1 - d)

    def averaged(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """model's state_dict with the averaged weights (BN running statistics are the live ones)."""
        return {k: self.shadow.get(k, v) for k, v in model.state_dict().items()}


def train_embedder(cfg: EmbedderTrainConfig, pose3d: np.ndarray, resume: bool = True) -> PoseEmbedder:
    """Train a PoseEmbedder on random-camera views of `pose3d` (N, 13, 3) y-up metres; writes
    <out_dir>/state.pt (resumable), embedder.pt (the checkpoint the pipeline loads), log.csv, summary.json."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = PoseEmbedder(EmbedderConfig(embed_dim=cfg.embed_dim, hidden=cfg.hidden, dropout=cfg.dropout)).to(dev)
    opt = make_optimizer(cfg, model.parameters())
    ema = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    start = 0
    if resume and (out / "state.pt").exists():
        st = torch.load(out / "state.pt", map_location=dev, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        if ema is not None:
            ema.shadow = st["ema"]
        start = st["step"]
        log.info("resuming embedder training at step %d", start)
    csv_log = CsvLog(out / "log.csv", ["step", "total", "ratio", "positive", "kl", "seconds"], append=start > 0)
    t0 = time.time()
    model.train()
    for step in range(start, cfg.steps):
        s = step_seed(cfg.seed, step)
        torch.manual_seed(s)                                                     # dropout of this step
        pose, v1, v2 = (t.to(dev) for t in embedder_step_batch(pose3d, cfg.batch, s))
        with autocast(dev, cfg.amp):
            if cfg.per_view_bn:                                                  # poem: one pass (BN batch) per view
                (mu1, sig1), (mu2, sig2) = model(v1), model(v2)
            else:
                mu, sigma = model(torch.cat([v1, v2]))
                n = len(v1)
                (mu1, sig1), (mu2, sig2) = (mu[:n], sigma[:n]), (mu[n:], sigma[n:])
        terms = losses.embedder_loss(mu1.float(), sig1.float(), mu2.float(), sig2.float(), pose, model.raw_a, model.b,
                                     generator=torch.Generator(dev).manual_seed(s))
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()
        if ema is not None:
            ema.update(model, step)
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            csv_log.write({"step": done, **{k: float(v.detach()) for k, v in terms.items()}, "seconds": time.time() - t0})
        if done % cfg.ckpt_every == 0 or done == cfg.steps:
            save_state(out / "state.pt", model=model.state_dict(), opt=opt.state_dict(), step=done,
                       ema=ema.shadow if ema is not None else None, config=dataclasses.asdict(cfg))
    if ema is not None:                                     # poem evaluates and exports the averaged weights
        model.load_state_dict(ema.averaged(model))
    model.eval()
    model.save(out / "embedder.pt", meta={"steps": cfg.steps, "seed": cfg.seed, "n_poses": int(len(pose3d))})
    acc, chance = retrieval_accuracy(model, pose3d[: min(len(pose3d), 512)], seed=cfg.seed + 1)
    (out / "summary.json").write_text(json.dumps({"config": dataclasses.asdict(cfg), "retrieval_top1": acc,
                                                  "retrieval_chance": chance}, indent=2))
    return model


@torch.no_grad()
def retrieval_accuracy(model: PoseEmbedder, pose3d: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Top-1 cross-view retrieval: each pose's view 1 queries the N view-2 embeddings; a hit is its own
    pose (or one within normalised PA-MPJPE 0.1, i.e. the same pose by the mining rule). Returns
    (accuracy, chance = mean fraction of candidates that count as a hit)."""
    rng = np.random.default_rng(seed)
    views = torch.as_tensor(datasets.project_random_views(pose3d, rng, n_views=2))
    x = normalize_coco13(coco13_to_17(views))
    dev = next(model.parameters()).device
    was = model.training
    model.eval()
    mu1, _ = model(x[0].to(dev))
    mu2, _ = model(x[1].to(dev))
    model.train(was)
    same = (losses.pose3d_distance(torch.as_tensor(pose3d), torch.as_tensor(pose3d)) < 0.1)
    same |= torch.eye(len(pose3d), dtype=torch.bool)
    best = torch.cdist(mu1.float(), mu2.float()).argmin(1).cpu()
    hit = same[torch.arange(len(pose3d)), best]
    return float(hit.float().mean()), float(same.float().mean())
