"""Mesh model training and the command line of the training side (nanoGPT style: one loop, one file).
The embedder's own loop is models/training/train_embedder.py; `main(argv)` dispatches to both and to evaluation.

    python -m video2mesh.models.training.train train-embedder --out runs/emb --smpl-dir SMPL/ --steps 2000
    python -m video2mesh.models.training.train train --out runs/full --smpl-dir SMPL/ --embedder runs/emb/embedder.pt
    python -m video2mesh.models.training.train eval --checkpoint runs/full/model.pt --smpl-dir SMPL/ --protocol both

Every step draws its randomness from (seed, step) alone (batch rows, cameras, dropout, samples), so a
run stopped at any checkpoint and resumed is bit-for-bit the run that never stopped. Logs: log.csv
(one row per logged step) and summary.json in the run folder. AMP (bf16, else fp16 + scaler) on CUDA.
Without --train-db the synthetic set of models/training/synthetic_data.py is used: numbers on it are not paper numbers.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from video2mesh.models.training import datasets, losses, synthetic_data
from video2mesh.models.training.evaluate import model_inputs
from video2mesh.models.nets.embedder import PoseEmbedder, normalize_coco13
from video2mesh.models.training.train_embedder import EmbedderTrainConfig, train_embedder
from video2mesh.models.training.utils import CsvLog, autocast, pick_device, save_state, step_seed

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- mesh model


@dataclass(frozen=True)
class TrainConfig:
    out_dir: str = "runs/model"
    preset: str = "full"               # a key of video2mesh.models.nets.model.PRESETS (baseline, ablations, full)
    smpl_dir: str = ""                 # folder with SMPL_NEUTRAL.pkl
    j_regressor_h36m: str = ""         # J_regressor_h36m.npy: the 14 joints of L_3D and of evaluation
    embedder: str = ""                 # embedder.pt; needed when the preset uses u_t or lambda_unc > 0
    train_db: tuple[str, ...] = ()     # VIBE database files; empty: the synthetic set
    homographies: tuple[str, ...] = () # homography tables (vid_name, frame_id, h) for train_db: d_t's input
    synthetic_videos: int = 32
    synthetic_frames: int = 96
    steps: int = 2000
    batch: int = 32                    # VIBE's
    seqlen: int = 16                   # VIBE's
    lr: float = 5e-5                   # VIBE's Adam learning rate
    lambda_g: float = 1.0
    lambda_dt: float = 1.0
    lambda_unc: float = 1.0
    dt_camera: str = "lstsq"           # L_dt's camera: exact weighted least squares, or "hmmr" (procrustes2d_vis)
    seed: int = 0
    log_every: int = 50
    ckpt_every: int = 500
    device: str = "auto"
    amp: bool = True
    # Sizes of the network when not the preset's (tests shrink it); feature_dim must match the data.
    model_overrides: tuple[tuple[str, int], ...] = ()


def build_model_config(cfg: TrainConfig):
    from video2mesh.models.nets.model import PRESETS

    if cfg.preset not in PRESETS:
        raise ValueError(f"unknown preset {cfg.preset!r}; choose one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[cfg.preset], **dict(cfg.model_overrides))


def build_body(smpl_dir: str, j_regressor_h36m: str, device: torch.device):
    from video2mesh.models.body.smpl import SMPL

    if not smpl_dir or not j_regressor_h36m:
        raise ValueError("training and evaluation need --smpl-dir (SMPL_NEUTRAL.pkl) and --j-regressor-h36m "
                         "(J_regressor_h36m.npy): both are user-supplied assets, see `v2m models`")
    return SMPL(smpl_dir, "neutral", j_regressor_h36m=j_regressor_h36m).to(device)


def load_embedder(path: str, device: torch.device) -> PoseEmbedder:
    emb = PoseEmbedder.from_checkpoint(path).to(device).eval()
    emb.requires_grad_(False)                       # frozen: a feature extractor and a loss, never trained here
    return emb


class TrainingSetupError(ValueError):
    """A training run that must not start as asked (models/ stays free of the pipeline's error types;
    `v2m train` turns it into a settings error: one line, exit 2)."""


def training_db(cfg: TrainConfig, body, feature_dim: int, needs_dt: bool = False) -> dict[str, np.ndarray]:
    """The training rows: VIBE databases (+ homography tables) or the synthetic set (which has homographies).
    A model that uses d_t never trains on identity stacks: without tables it is a TrainingSetupError
    (the CLI's settings error, exit 2)."""
    if cfg.train_db:
        dbs = [datasets.load_vibe_db(p) for p in cfg.train_db]
        keys = set.intersection(*(set(d) for d in dbs))
        db = {k: np.concatenate([np.atleast_1d(d[k]) for d in dbs]) for k in keys if k != "fps"}
        if cfg.homographies:
            db = datasets.attach_homographies(db, list(cfg.homographies))
        if needs_dt and "homography" not in db:
            raise TrainingSetupError(f"preset {cfg.preset!r} uses the dynamic feature d_t but the databases carry no "
                              "homographies: pass --homographies TABLE (flows/homography_table.py) or use a preset "
                              "without d_t (--preset no_dynamic)")
        return db
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
                 w: losses.LossWeights, dt_camera: str = "lstsq") -> dict[str, torch.Tensor]:
    """Total loss L = lambda_G L_G + lambda_dt L_dt + lambda_unc L_unc (eq. 6) and its terms."""
    cfg = model.cfg
    b, t = batch["features"].shape[:2]
    f, u, d = model_inputs(model, embedder, batch)
    out = model(f, u, d)
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
            l_dt.append(losses.dynamics_loss(p2, _targets(batch, dst), w, dt_camera)["total"])
        terms["dt"] = 0.5 * (l_dt[0] + l_dt[1])
        total = total + w.lambda_dt * terms["dt"]
    if w.lambda_unc > 0:
        if embedder is None:
            raise ValueError("lambda_unc > 0 needs the pose embedder checkpoint")
        kp_hat = losses.project_weak_perspective(so.coco17, pred["cam"]).reshape(b, t, 17, 2)
        if u is not None:                                        # u = [mu, sigma] of the input pose, already embedded
            mu, sigma = u.chunk(2, dim=-1)
        else:
            with torch.no_grad():
                mu, sigma = embedder(normalize_coco13(batch["kp2d"]))
        mu_h, sig_h = embedder(normalize_coco13(kp_hat))          # gradients reach the mesh, not the embedder
        terms["unc"] = losses.uncertainty_loss(mu, sigma, mu_h, sig_h)
        total = total + w.lambda_unc * terms["unc"]
    terms["total"] = total
    return terms


def train(cfg: TrainConfig, resume: bool = True):
    """Train a V2MModel; writes state.pt (resumable), model.pt, log.csv, summary.json in out_dir."""
    from video2mesh.models.nets.model import V2MModel

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = pick_device(cfg.device)
    mcfg = build_model_config(cfg)
    # Real databases first: a missing homography table is a one-line refusal before any model loads.
    db = training_db(cfg, None, mcfg.feature_dim, needs_dt=mcfg.use_dynamic) if cfg.train_db else None
    body = build_body(cfg.smpl_dir, cfg.j_regressor_h36m, dev)
    needs_emb = mcfg.use_static or cfg.lambda_unc > 0
    if needs_emb and not cfg.embedder:
        raise ValueError(f"preset {cfg.preset!r} with lambda_unc={cfg.lambda_unc} needs the pose embedder: "
                         "pass --embedder runs/<emb>/embedder.pt (train one with train-embedder)")
    embedder = load_embedder(cfg.embedder, dev) if needs_emb else None
    if db is None:
        db = training_db(cfg, body, mcfg.feature_dim, needs_dt=mcfg.use_dynamic)
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
            terms = model_losses(model, embedder, body, batch, w, cfg.dt_camera)
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
    for name in ("lr", "dropout", "ema_decay"):
        e.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(EmbedderTrainConfig, name))
    e.add_argument("--optimizer", choices=("adagrad", "adam"), default=EmbedderTrainConfig.optimizer)
    e.add_argument("--shared-bn", action="store_true", help="one BN batch over both views (default: per view, as poem)")
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
    t.add_argument("--homographies", nargs="*", default=[], metavar="TABLE",
                   help="homography tables for --train-db (needed by presets that use d_t)")
    t.add_argument("--dt-camera", choices=sorted(losses.CAMERAS), default=TrainConfig.dt_camera,
                   help="L_dt's 2D camera: lstsq (exact weighted least squares) or hmmr (HMMR's procrustes2d_vis)")
    t.add_argument("--set", nargs="*", default=[], metavar="FIELD=INT",
                   help="override a ModelConfig size, e.g. feature_dim=256 gru_hidden=256 (synthetic data follows feature_dim)")
    for name in ("steps", "batch", "seqlen", "synthetic_videos", "synthetic_frames", "log_every", "ckpt_every"):
        t.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(TrainConfig, name))
    for name in ("lr", "lambda_g", "lambda_dt", "lambda_unc"):
        t.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(TrainConfig, name))
    v.add_argument("--checkpoint", required=True)
    v.add_argument("--db", nargs="*", default=[], help="VIBE database files; none: a synthetic test set")
    v.add_argument("--protocol", choices=("vibe", "tcmr", "both"), default="both")
    v.add_argument("--fps", type=float, default=0.0, help="frame rate of --db files for mm/s^2 (3DPW: 30); 0: leave out")
    v.add_argument("--synthetic-videos", type=int, default=8)
    v.add_argument("--synthetic-frames", type=int, default=96)
    v.add_argument("--out", default="", help="write the metrics as JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    if a.cmd == "train-embedder":
        pools = [datasets.bvh_to_coco13(datasets.read_bvh(f), a.bvh_unit_m) for f in a.bvh]
        if a.smpl_dir:
            from video2mesh.models.body.smpl import SMPL

            pools.append(synthetic_data.pose3d_pool(SMPL(a.smpl_dir), a.synthetic_poses, seed=a.seed))
        if not pools:
            raise SystemExit("train-embedder needs a 3D pose source: --bvh FILES and/or --smpl-dir DIR")
        cfg = EmbedderTrainConfig(out_dir=a.out, steps=a.steps, batch=a.batch, seed=a.seed, embed_dim=a.embed_dim,
                                  hidden=a.hidden, lr=a.lr, dropout=a.dropout, device=a.device,
                                  optimizer=a.optimizer, ema_decay=a.ema_decay, per_view_bn=not a.shared_bn)
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
                          homographies=tuple(a.homographies),
                          synthetic_videos=a.synthetic_videos,
                          synthetic_frames=a.synthetic_frames, steps=a.steps, batch=a.batch, lr=a.lr,
                          lambda_g=a.lambda_g, lambda_dt=a.lambda_dt, lambda_unc=a.lambda_unc, seed=a.seed,
                          dt_camera=a.dt_camera,
                          device=a.device))
    else:
        from video2mesh.models.training.evaluate import as_row, evaluate
        from video2mesh.models.nets.model import V2MModel

        dev = pick_device(a.device)
        model = V2MModel.from_checkpoint(a.checkpoint).to(dev)
        body = build_body(a.smpl_dir, a.j_regressor_h36m, dev)
        emb = load_embedder(a.embedder, dev) if a.embedder else None
        if a.db:
            dbs = {Path(p).stem: datasets.load_vibe_db(p) for p in a.db}
            if a.fps > 0:
                for db in dbs.values():
                    db["fps"] = np.float32(a.fps)
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
