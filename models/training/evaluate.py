"""Evaluation protocols (METHOD.md section 7). They choose different frames and so give different numbers:

- "vibe": stride-16 windows of 16 frames per video (tails dropped), every frame of every window,
  stacked across videos; acceleration error over the stacked stream (as VIBE's evaluate.py).
- "tcmr": stride-1 windows of 16 frames per video, the middle frame (index 8) of each window;
  acceleration error per video over its consecutive middle frames; frames with valid = 0 dropped.

Every report names its protocol. Errors in millimetres; acceleration in mm/frame^2 (and mm/s^2 at
the data's fps). Vertices: both sides through the same SMPL with zero translation, compared without
alignment (as VIBE / TCMR / MEVA's compute_error_verts).
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Callable

import numpy as np
import torch

from video2mesh.models.metrics import accuracy as metrics
from video2mesh.models.training.datasets import VibeWindows, WindowSpec
from video2mesh.models.nets.embedder import PoseEmbedder, normalize_coco13

PROTOCOLS = ("vibe", "tcmr")


def model_inputs(model, embedder: PoseEmbedder | None, batch: dict[str, torch.Tensor]):
    """(f, u, d) for V2MModel from a window batch; u from the frozen embedder on the input keypoints."""
    cfg = model.cfg
    u = None
    if cfg.use_static:
        if embedder is None:
            raise ValueError("this model uses the static feature u_t: pass the pose embedder checkpoint")
        mu, sigma = embedder(normalize_coco13(batch["kp2d"]))
        u = torch.cat([mu, sigma], -1)
    d = batch["homography"] if cfg.use_dynamic else None
    return batch["features"], u, d


@torch.no_grad()
def _predict(model, embedder, body: Callable, ds: VibeWindows, batch_size: int, device) -> dict[str, np.ndarray]:
    """Per-window predictions and targets: j14 (W, T, 14, 3), pve (W, T) metres (nan where no SMPL GT)."""
    out = {"pred": [], "gt": [], "pve": [], "valid": [], "has_3d": [], "frame": []}
    for s in range(0, len(ds), batch_size):
        items = [ds[i] for i in range(s, min(s + batch_size, len(ds)))]
        b = {k: torch.stack([it[k] for it in items]).to(device) for k in items[0]}
        res = model(*model_inputs(model, embedder, b))
        n, t = res.betas.shape[:2]
        p = body(res.betas.reshape(-1, 10), res.rotmat.reshape(-1, 24, 3, 3))
        g = body(b["betas"].reshape(-1, 10), b["pose"].reshape(-1, 72))
        pj, gj = p.h36m14.reshape(n, t, 14, 3), b["j14"]
        pve = metrics.mpvpe(p.vertices.reshape(n, t, -1, 3), g.vertices.reshape(n, t, -1, 3))  # no alignment (VIBE)
        pve = torch.where(b["has_smpl"] > 0, pve, torch.full_like(pve, float("nan")))
        for k, v in (("pred", pj), ("gt", gj), ("pve", pve), ("valid", b["valid"]), ("has_3d", b["has_3d"]),
                     ("frame", b["frame"])):
            out[k].append(v.cpu().numpy() if k == "frame" else v.float().cpu().numpy())
    return {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in out.items()}


def evaluate(model, embedder: PoseEmbedder | None, body: Callable, db: dict[str, np.ndarray], protocol: str,
             seqlen: int = 16, batch_size: int = 16, device: str | torch.device = "cpu") -> metrics.Metrics:
    """Metrics of `model` on one VIBE-layout database under `protocol` ("vibe" or "tcmr")."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")
    fps = float(db["fps"]) if "fps" in db else None
    was = model.training
    model.eval()
    stride = seqlen if protocol == "vibe" else 1
    ds = VibeWindows(db, WindowSpec(seqlen=seqlen, stride=stride))
    if len(ds) == 0:
        raise ValueError(f"no video in the database has {seqlen} frames; nothing to evaluate")
    r = _predict(model, embedder, body, ds, batch_size, device)
    model.train(was)
    if protocol == "vibe":
        pred, gt, pve = r["pred"].reshape(-1, 14, 3), r["gt"].reshape(-1, 14, 3), r["pve"].reshape(-1)
        keep = r["has_3d"].reshape(-1) > 0
        streams = [(pred[keep], gt[keep])]
        pve = pve[keep]
    else:
        mid = seqlen // 2
        frames = r["frame"][:, mid]
        vids = np.asarray(db["vid_name"])[frames]
        keep = (r["valid"][:, mid] > 0) & (r["has_3d"][:, mid] > 0)
        pred, gt, pve = r["pred"][:, mid], r["gt"][:, mid], r["pve"][:, mid]
        streams = [(pred[keep & (vids == v)], gt[keep & (vids == v)]) for v in dict.fromkeys(vids)]
        pred, gt, pve = pred[keep], gt[keep], pve[keep]
    p, g = metrics.align_root(pred), metrics.align_root(gt)
    acc = [metrics.accel_error(metrics.align_root(a), metrics.align_root(b)) for a, b in streams if len(a) >= 3]
    acc = float(np.concatenate(acc).mean() * 1000) if acc else None
    pve_ok = pve[~np.isnan(pve)]
    return metrics.Metrics(
        protocol=protocol, n_frames=int(len(p)), mpjpe_mm=float(metrics.mpjpe(p, g).mean() * 1000),
        pa_mpjpe_mm=float(metrics.pa_mpjpe(pred, gt).mean() * 1000),
        mpvpe_mm=float(pve_ok.mean() * 1000) if len(pve_ok) else None, accel_err_mm_per_frame2=acc,
        accel_err_mm_per_s2=float(metrics.per_s2(acc, fps)) if acc is not None and fps else None, fps=fps)


def as_row(m: metrics.Metrics) -> dict:
    """A flat dict for CSV/JSON reports (the protocol is a column, never implicit)."""
    return asdict(m)
