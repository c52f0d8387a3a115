"""Training loops: the Pr-VIPE pose embedder and the mesh model (nanoGPT style: one file, one loop each).

    python -m models.train train-embedder --out runs/emb --smpl-dir SMPL/ --steps 2000
    python -m models.train train --out runs/full --smpl-dir SMPL/ --embedder runs/emb/embedder.pt
    python -m models.train eval --checkpoint runs/full/model.pt --smpl-dir SMPL/ --protocol both

Every step draws its randomness from (seed, step) alone (batch rows, cameras, dropout, samples), so a
run stopped at any checkpoint and resumed is bit-for-bit the run that never stopped. Logs: log.csv
(one row per logged step) and summary.json in the run folder. AMP (bf16, else fp16 + scaler) on CUDA.
Without --train-db the synthetic set of models/synthetic_data.py is used: numbers on it are not paper numbers.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models import datasets, losses, synthetic_data
from models.embedder import COCO13, EmbedderConfig, PoseEmbedder, normalize_coco13

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- shared helpers


def step_seed(seed: int, step: int) -> int:
    """One integer per (run seed, step): the only source of randomness of that step."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


def pick_device(name: str) -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))


def autocast(device: torch.device, enabled: bool):
    use = enabled and device.type == "cuda"
    dtype = torch.bfloat16 if use and torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=use)


def save_state(path: Path, **state) -> None:
    """Atomic torch.save (temp file + rename): a killed run never leaves half a checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


class CsvLog:
    def __init__(self, path: Path, fields: list[str], append: bool) -> None:
        self.path, self.fields = path, fields
        if not append or not path.exists():
            with open(path, "w", newline="") as f:
                csv.writer(f).writerow(fields)

    def write(self, row: dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([f"{row[k]:.6g}" if isinstance(row[k], float) else row[k] for k in self.fields])


def coco13_to_17(kp13: torch.Tensor) -> torch.Tensor:
    """(..., 13, C) -> (..., 17, C) with the 4 unused face points zero (normalize_coco13 ignores them)."""
    out = kp13.new_zeros(*kp13.shape[:-2], 17, kp13.shape[-1])
    out[..., list(COCO13), :] = kp13
    return out


# ----------------------------------------------------------------------------- embedder


@dataclass(frozen=True)
class EmbedderTrainConfig:
    out_dir: str = "runs/embedder"
    steps: int = 5000
    batch: int = 256
    lr: float = 1e-3                  # Adam; Pr-VIPE's own schedule is longer, this converges on our pools
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


def train_embedder(cfg: EmbedderTrainConfig, pose3d: np.ndarray, resume: bool = True) -> PoseEmbedder:
    """Train a PoseEmbedder on random-camera views of `pose3d` (N, 13, 3) y-up metres; writes
    <out_dir>/state.pt (resumable), embedder.pt (the checkpoint the pipeline loads), log.csv, summary.json."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = PoseEmbedder(EmbedderConfig(embed_dim=cfg.embed_dim, hidden=cfg.hidden, dropout=cfg.dropout)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start = 0
    if resume and (out / "state.pt").exists():
        st = torch.load(out / "state.pt", map_location=dev, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
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
            mu, sigma = model(torch.cat([v1, v2]))                               # one BN batch for both views
        mu, sigma = mu.float(), sigma.float()
        n = len(v1)
        terms = losses.embedder_loss(mu[:n], sigma[:n], mu[n:], sigma[n:], pose, model.raw_a, model.b,
                                     generator=torch.Generator(dev).manual_seed(s))
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            csv_log.write({"step": done, **{k: float(v.detach()) for k, v in terms.items()}, "seconds": time.time() - t0})
        if done % cfg.ckpt_every == 0 or done == cfg.steps:
            save_state(out / "state.pt", model=model.state_dict(), opt=opt.state_dict(), step=done,
                       config=dataclasses.asdict(cfg))
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


# ----------------------------------------------------------------------------- mesh model


@dataclass(frozen=True)
class TrainConfig:
    out_dir: str = "runs/model"
    preset: str = "full"               # a key of models.model.PRESETS (baseline, ablations, full)
    smpl_dir: str = ""                 # folder with SMPL_NEUTRAL.pkl
    j_regressor_h36m: str = ""         # J_regressor_h36m.npy: the 14 joints of L_3D and of evaluation
    embedder: str = ""                 # embedder.pt; needed when the preset uses u_t or lambda_unc > 0
    train_db: tuple[str, ...] = ()     # VIBE database files; empty: the synthetic set
    synthetic_videos: int = 32
    synthetic_frames: int = 96
    steps: int = 2000
    batch: int = 32                    # VIBE's
    seqlen: int = 16                   # VIBE's
    lr: float = 5e-5                   # VIBE's Adam learning rate
    lambda_g: float = 1.0
    lambda_dt: float = 1.0
    lambda_unc: float = 1.0
    seed: int = 0
    log_every: int = 50
    ckpt_every: int = 500
    device: str = "auto"
    amp: bool = True
    # Sizes of the network when not the preset's (tests shrink it); feature_dim must match the data.
    model_overrides: tuple[tuple[str, int], ...] = ()


def build_model_config(cfg: TrainConfig):
    from models.model import PRESETS

    if cfg.preset not in PRESETS:
        raise ValueError(f"unknown preset {cfg.preset!r}; choose one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[cfg.preset], **dict(cfg.model_overrides))


def build_body(smpl_dir: str, j_regressor_h36m: str, device: torch.device):
    from models.smpl import SMPL

    if not smpl_dir or not j_regressor_h36m:
        raise ValueError("training and evaluation need --smpl-dir (SMPL_NEUTRAL.pkl) and --j-regressor-h36m "
                         "(J_regressor_h36m.npy): both are user-supplied assets, see `v2m models`")
    return SMPL(smpl_dir, "neutral", j_regressor_h36m=j_regressor_h36m).to(device)


def load_embedder(path: str, device: torch.device) -> PoseEmbedder:
    emb = PoseEmbedder.from_checkpoint(path).to(device).eval()
    emb.requires_grad_(False)                       # frozen: a feature extractor and a loss, never trained here
    return emb


def training_db(cfg: TrainConfig, body, feature_dim: int) -> dict[str, np.ndarray]:
    if cfg.train_db:
        dbs = [datasets.load_vibe_db(p) for p in cfg.train_db]
        keys = set.intersection(*(set(d) for d in dbs))
        return {k: np.concatenate([np.atleast_1d(d[k]) for d in dbs]) for k in keys if k != "fps"}
    sc = synthetic_data.SyntheticConfig(n_videos=cfg.synthetic_videos, n_frames=cfg.synthetic_frames,
                                        feature_dim=feature_dim, seed=cfg.seed)
    return synthetic_data.make_db(body, sc, device=str(next(body.buffers()).device))


def _flat(x: torch.Tensor, k: int) -> torch.Tensor:
    return x.reshape(-1, *x.shape[k:])


def _targets(batch: dict[str, torch.Tensor], frames: slice = slice(None)) -> dict[str, torch.Tensor]:
    return {"kp2d": _flat(batch["kp2d"][:, frames], 2), "j14": _flat(batch["j14"][:, frames], 2),
            "pose": _flat(batch["pose"][:, frames], 2), "betas": _flat(batch["betas"][:, frames], 2),
            "has_3d": _flat(batch["has_3d"][:, frames], 2), "has_smpl": _flat(batch["has_smpl"][:, frames], 2)}


def model_losses(model, embedder: PoseEmbedder | None, body, batch: dict[str, torch.Tensor],
                 w: losses.LossWeights) -> dict[str, torch.Tensor]:
    """Total loss L = lambda_G L_G + lambda_dt L_dt + lambda_unc L_unc (eq. 6) and its terms."""
    from models.evaluate import model_inputs

    cfg = model.cfg
    b, t = batch["features"].shape[:2]
    out = model(*model_inputs(model, embedder, batch))
    so = body(_flat(out.betas, 2), _flat(out.rotmat, 2))
    pred = {"rotmat": _flat(out.rotmat, 2), "betas": _flat(out.betas, 2), "kp3d": so.coco17, "j14": so.h36m14,
            "cam": _flat(out.cam, 2)}
    terms = {f"g_{k}": v for k, v in losses.generator_loss(pred, _targets(batch), w).items()}
    total = w.lambda_g * terms["g_total"]
    if cfg.use_dynamics_head and w.lambda_dt > 0:
        dt, l_dt = cfg.dt_frames, []
        for rot, src, dst in ((out.rotmat_prev, slice(dt, t), slice(0, t - dt)),
                              (out.rotmat_next, slice(0, t - dt), slice(dt, t))):
            r, beta = _flat(rot[:, src], 2), _flat(out.betas[:, src], 2)
            s2 = body(beta, r)
            p2 = {"rotmat": r, "betas": beta, "kp3d": s2.coco17, "j14": s2.h36m14}
            l_dt.append(losses.dynamics_loss(p2, _targets(batch, dst), w)["total"])
        terms["dt"] = 0.5 * (l_dt[0] + l_dt[1])
        total = total + w.lambda_dt * terms["dt"]
    if w.lambda_unc > 0:
        if embedder is None:
            raise ValueError("lambda_unc > 0 needs the pose embedder checkpoint")
        kp_hat = losses.project_weak_perspective(so.coco17, pred["cam"]).reshape(b, t, 17, 2)
        with torch.no_grad():
            mu, sigma = embedder(normalize_coco13(batch["kp2d"]))
        mu_h, sig_h = embedder(normalize_coco13(kp_hat))          # gradients reach the mesh, not the embedder
        terms["unc"] = losses.uncertainty_loss(mu, sigma, mu_h, sig_h)
        total = total + w.lambda_unc * terms["unc"]
    terms["total"] = total
    return terms


def train(cfg: TrainConfig, resume: bool = True):
    """Train a V2MModel; writes state.pt (resumable), model.pt, log.csv, summary.json in out_dir."""
    from models.model import V2MModel

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = pick_device(cfg.device)
    mcfg = build_model_config(cfg)
    body = build_body(cfg.smpl_dir, cfg.j_regressor_h36m, dev)
    needs_emb = mcfg.use_static or cfg.lambda_unc > 0
    embedder = load_embedder(cfg.embedder, dev) if needs_emb else None
    if needs_emb and not cfg.embedder:
        raise ValueError(f"preset {cfg.preset!r} with lambda_unc={cfg.lambda_unc} needs --embedder")
    db = training_db(cfg, body, mcfg.feature_dim)
    ds = datasets.VibeWindows(db, datasets.WindowSpec(seqlen=cfg.seqlen, stride=max(1, cfg.seqlen // 2)))
    if len(ds) == 0:
        raise ValueError(f"no training window of {cfg.seqlen} frames in the data")
    torch.manual_seed(cfg.seed)
    model = V2MModel(mcfg).to(dev)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    scaler = torch.amp.GradScaler(enabled=cfg.amp and dev.type == "cuda" and not torch.cuda.is_bf16_supported())
    w = losses.LossWeights(lambda_g=cfg.lambda_g, lambda_dt=cfg.lambda_dt, lambda_unc=cfg.lambda_unc)
    start = 0
    if resume and (out / "state.pt").exists():
        st = torch.load(out / "state.pt", map_location=dev, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        scaler.load_state_dict(st["scaler"])
        start = st["step"]
        log.info("resuming training at step %d", start)
    fields = ["step", "total", "g_total", "g_kp_2d", "g_kp_3d", "g_pose", "g_shape", "dt", "unc", "seconds"]
    csv_log = CsvLog(out / "log.csv", fields, append=start > 0)
    t0 = time.time()
    model.train()
    for step in range(start, cfg.steps):
        s = step_seed(cfg.seed, step)
        torch.manual_seed(s)
        idx = np.random.default_rng(s).choice(len(ds), size=min(cfg.batch, len(ds)), replace=False)
        items = [ds[int(i)] for i in idx]
        batch = {k: torch.stack([it[k] for it in items]).to(dev) for k in items[0]}
        with autocast(dev, cfg.amp):
            terms = model_losses(model, embedder, body, batch, w)
        opt.zero_grad(set_to_none=True)
        scaler.scale(terms["total"]).backward()
        scaler.step(opt)
        scaler.update()
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            row = {k: float(terms[k].detach()) if k in terms else "" for k in fields}
            csv_log.write({**row, "step": done, "seconds": time.time() - t0})
        if done % cfg.ckpt_every == 0 or done == cfg.steps:
            save_state(out / "state.pt", model=model.state_dict(), opt=opt.state_dict(), scaler=scaler.state_dict(),
                       step=done, config=dataclasses.asdict(cfg))
    model.eval()
    model.save(out / "model.pt", meta={"train": dataclasses.asdict(cfg)})
    (out / "summary.json").write_text(json.dumps({"config": dataclasses.asdict(cfg), "steps": cfg.steps}, indent=2))
    return model


# ----------------------------------------------------------------------------- entry point


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="v2m", description="train and evaluate the video2mesh models")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("train-embedder", help="train the Pr-VIPE pose embedder on random-camera views of 3D poses")
    e.add_argument("--out", required=True)
    e.add_argument("--bvh", nargs="*", default=[], help="CMU BVH files (3D pose source)")
    e.add_argument("--bvh-unit-m", type=float, default=1.0, help=f"metres per BVH unit ({datasets.CMU_UNIT_M} for raw CMU)")
    e.add_argument("--smpl-dir", default="", help="add synthetic SMPL poses posed on this body")
    e.add_argument("--synthetic-poses", type=int, default=20000)
    for name in ("steps", "batch", "seed", "embed_dim", "hidden"):
        e.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(EmbedderTrainConfig, name))
    for name in ("lr", "dropout"):
        e.add_argument("--" + name, type=float, default=getattr(EmbedderTrainConfig, name))
    e.add_argument("--device", default="auto")
    t = sub.add_parser("train", help="train the mesh model (a preset: full, baseline or an ablation)")
    v = sub.add_parser("eval", help="evaluate a model checkpoint under the VIBE and/or TCMR protocol")
    for q in (t, v):
        q.add_argument("--smpl-dir", required=True)
        q.add_argument("--j-regressor-h36m", required=True)
        q.add_argument("--embedder", default="")
        q.add_argument("--device", default="auto")
        q.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True)
    t.add_argument("--preset", default="full")
    t.add_argument("--train-db", nargs="*", default=[])
    t.add_argument("--set", nargs="*", default=[], metavar="FIELD=INT",
                   help="override a ModelConfig size, e.g. feature_dim=256 gru_hidden=256 (synthetic data follows feature_dim)")
    for name in ("steps", "batch", "seqlen", "synthetic_videos", "synthetic_frames", "log_every", "ckpt_every"):
        t.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(TrainConfig, name))
    for name in ("lr", "lambda_g", "lambda_dt", "lambda_unc"):
        t.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(TrainConfig, name))
    v.add_argument("--checkpoint", required=True)
    v.add_argument("--db", nargs="*", default=[], help="VIBE database files; none: a synthetic test set")
    v.add_argument("--protocol", choices=("vibe", "tcmr", "both"), default="both")
    v.add_argument("--synthetic-videos", type=int, default=8)
    v.add_argument("--synthetic-frames", type=int, default=96)
    v.add_argument("--out", default="", help="write the metrics as JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    if a.cmd == "train-embedder":
        pools = [datasets.bvh_to_coco13(datasets.read_bvh(f), a.bvh_unit_m) for f in a.bvh]
        if a.smpl_dir:
            from models.smpl import SMPL

            pools.append(synthetic_data.pose3d_pool(SMPL(a.smpl_dir), a.synthetic_poses, seed=a.seed))
        if not pools:
            raise SystemExit("train-embedder needs a 3D pose source: --bvh FILES and/or --smpl-dir DIR")
        cfg = EmbedderTrainConfig(out_dir=a.out, steps=a.steps, batch=a.batch, seed=a.seed, embed_dim=a.embed_dim,
                                  hidden=a.hidden, lr=a.lr, dropout=a.dropout, device=a.device)
        train_embedder(cfg, np.concatenate(pools).astype(np.float32))
    elif a.cmd == "train":
        overrides = []
        for kv in a.set:
            k, sep, v = kv.partition("=")
            if not sep or not v.lstrip("-").isdigit():
                raise SystemExit(f"--set {kv!r}: expected FIELD=INT (a ModelConfig size)")
            overrides.append((k, int(v)))
        train(TrainConfig(out_dir=a.out, preset=a.preset, smpl_dir=a.smpl_dir, j_regressor_h36m=a.j_regressor_h36m,
                          model_overrides=tuple(overrides), seqlen=a.seqlen, log_every=a.log_every,
                          ckpt_every=a.ckpt_every, embedder=a.embedder, train_db=tuple(a.train_db),
                          synthetic_videos=a.synthetic_videos,
                          synthetic_frames=a.synthetic_frames, steps=a.steps, batch=a.batch, lr=a.lr,
                          lambda_g=a.lambda_g, lambda_dt=a.lambda_dt, lambda_unc=a.lambda_unc, seed=a.seed,
                          device=a.device))
    else:
        from models.evaluate import as_row, evaluate
        from models.model import V2MModel

        dev = pick_device(a.device)
        model = V2MModel.from_checkpoint(a.checkpoint).to(dev)
        body = build_body(a.smpl_dir, a.j_regressor_h36m, dev)
        emb = load_embedder(a.embedder, dev) if a.embedder else None
        if a.db:
            dbs = {Path(p).stem: datasets.load_vibe_db(p) for p in a.db}
        else:
            # A held-out synthetic set: another seed than any training run's (seeds there are small).
            sc = synthetic_data.SyntheticConfig(n_videos=a.synthetic_videos, n_frames=a.synthetic_frames,
                                                feature_dim=model.cfg.feature_dim, seed=10_000 + a.seed)
            dbs = {"synthetic_test": synthetic_data.make_db(body, sc, device=str(dev))}
        protocols = ("vibe", "tcmr") if a.protocol == "both" else (a.protocol,)
        rows = [{"dataset": n, **as_row(evaluate(model, emb, body, db, p, device=dev))} for n, db in dbs.items()
                for p in protocols]
        for r in rows:
            log.info("%s", r)
        if a.out:
            Path(a.out).write_text(json.dumps(rows, indent=2))
        else:
            print(json.dumps(rows, indent=2))  # the command's result, on stdout by request
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(main())
