"""Retarget canonical mocap joints onto Anny: inverse kinematics through Anny's own forward model.

Unknowns per frame: the rotations of Anny's fit bones (models.body.anny_body.FIT_BONES, the same bones the
licence-free fit moves) and a global rotation. Energy (weights in RetargetConfig):
- bone directions: for each SEGMENTS pair, the unit vector between Anny's joint centres against the
  mocap's (proportions differ between skeletons, directions do not);
- positions: pelvis-centred Anny joints against the mocap's scaled by the leg-length ratio (weak: pins
  spine curvature and shoulder height);
- pose prior: FIT_BONES-weighted squared rotation angles from Anny's rest pose (twist has no joint to
  pin it: the prior keeps it small); smoothness: squared first differences of the bone rotations.
Frames are solved in batches of `chunk` frames, each batch warm-started from the previous batch's last
frame (the first from a per-frame Kabsch fit of the torso), with Adam. The root translation is the mocap
pelvis scaled by the leg-length ratio (Anny leg / mocap leg), so steps keep their length relative to the
legs and planted feet stay planted. The result is placed with its feet on the floor (y = 0).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from video2mesh.models.body.anny_body import FIT_BONES, AnnyBody
from video2mesh.models.body.anny_keypoints import keypoints23

from .mocap import CANONICAL, Mocap

log = logging.getLogger(__name__)

# Canonical joint -> the Anny bone whose head is that joint centre.
ANNY_JOINTS = {
    "left_hip": "upperleg01.L", "right_hip": "upperleg01.R", "left_knee": "lowerleg01.L", "right_knee": "lowerleg01.R",
    "left_ankle": "foot.L", "right_ankle": "foot.R", "left_toe": "toe3-1.L", "right_toe": "toe3-1.R",
    "left_shoulder": "upperarm01.L", "right_shoulder": "upperarm01.R", "left_elbow": "lowerarm01.L",
    "right_elbow": "lowerarm01.R", "left_wrist": "wrist.L", "right_wrist": "wrist.R", "neck": "neck01", "head": "head",
}
PELVIS = len(CANONICAL)           # a derived point: the hip centre, appended after CANONICAL
_C = {n: i for i, n in enumerate(CANONICAL)} | {"pelvis": PELVIS}
SEGMENTS = [  # (from, to, weight)
    ("pelvis", "neck", 3.0), ("neck", "head", 1.0), ("right_hip", "left_hip", 2.0),
    ("right_shoulder", "left_shoulder", 1.0), ("neck", "left_shoulder", 0.5), ("neck", "right_shoulder", 0.5),
    *[(f"{s}_{a}", f"{s}_{b}", 1.0) for s in ("left", "right")
      for a, b in (("hip", "knee"), ("knee", "ankle"), ("ankle", "toe"), ("shoulder", "elbow"), ("elbow", "wrist"))],
]
_TORSO = [_C[n] for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder", "neck")]


@dataclass(frozen=True)
class RetargetConfig:
    chunk: int = 48                 # frames per batch
    iters_first: int = 300          # first batch starts from the rest pose
    iters: int = 120                # later batches start from the previous batch's last frame
    lr: float = 0.04
    w_dir: float = 1.0
    w_pos: float = 2.0              # per m^2, pelvis-centred
    w_prior: float = 0.002
    w_smooth: float = 0.2
    num_threads: int = 1            # small tensors: one thread beats two on a busy CPU


@dataclass
class Retargeted:
    """One person: vertices (T, V, 3) and joints23 (T, 23, 3) world metres, feet on y = 0;
    joint_centres (T, C, 3) Anny's canonical joint centres; residual_mm (T,) mean distance of Anny's
    pelvis-centred joint centres to the scaled mocap's; scale (Anny leg / mocap leg); seconds taken.
    The pose: theta (T, len(FIT_BONES), 3) as in AnnyBody.fk, rotation (T, 3, 3) model -> world and
    transl (T, 3): world = rotation @ model + transl for fk's heads and Anny's posed vertices alike."""

    vertices: np.ndarray
    joints23: np.ndarray
    joint_centres: np.ndarray
    residual_mm: np.ndarray
    scale: float
    seconds: float
    theta: np.ndarray
    rotation: np.ndarray
    transl: np.ndarray


def _points(heads: torch.Tensor, bone_ids: list[int]) -> torch.Tensor:
    """(B, C + 1, 3) canonical joint centres (+ pelvis) from fk heads (B, J, 3)."""
    p = heads[:, bone_ids]
    return torch.cat([p, 0.5 * (p[:, _C["left_hip"]] + p[:, _C["right_hip"]])[:, None]], 1)


def _kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotations (B, 3, 3) minimising |R src_b - dst_b|, src (N, 3), dst (B, N, 3), both centred."""
    u, _, vt = np.linalg.svd(np.einsum("bni,nj->bij", dst, src))
    d = np.sign(np.linalg.det(u @ vt))
    u[:, :, 2] *= d[:, None]
    return u @ vt


def retarget(body: AnnyBody, mocap: Mocap, phenotype: np.ndarray, cfg: RetargetConfig = RetargetConfig()) -> Retargeted:
    """Fit Anny of `phenotype` (6,) in [0, 1] to `mocap` (see module docstring)."""
    import roma

    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.num_threads)
    try:
        dt = body.dtype
        bones = body.bone_index(FIT_BONES)
        bone_ids = body.bone_index([ANNY_JOINTS[c] for c in CANONICAL])
        prior_w = torch.tensor(list(FIT_BONES.values()), dtype=dt)
        phen = torch.as_tensor(np.asarray(phenotype, float)[None], dtype=dt)
        with torch.no_grad():
            sk = body.skeleton(phen)
            rest = _points(body.fk(torch.zeros(1, len(bones), 3, dtype=dt), sk, bones)[1], bone_ids)[0].numpy()
        m = mocap.joints
        m = np.concatenate([m, 0.5 * (m[:, _C["left_hip"]] + m[:, _C["right_hip"]])[:, None]], 1)   # (T, C+1, 3)
        present = np.isfinite(m[0, :, 0])
        legs = lambda p: np.linalg.norm(p[..., _C["left_hip"], :] - p[..., _C["left_knee"], :], axis=-1) + \
            np.linalg.norm(p[..., _C["left_knee"], :] - p[..., _C["left_ankle"], :], axis=-1)   # noqa: E731
        scale = float(legs(rest) / np.median(legs(m)))
        target = np.nan_to_num((m - m[:, PELVIS:PELVIS + 1]) * scale)                         # pelvis-centred
        glob0 = _kabsch(rest[_TORSO] - rest[PELVIS], target[:, _TORSO])                          # (T, 3, 3)
        theta = _solve(body, sk, bones, bone_ids, prior_w, target, present, glob0, cfg)
        glob = roma.rotvec_to_rotmat(theta[1])
        with torch.no_grad():
            pts = _points(body.fk(theta[0], sk, bones)[1], bone_ids) @ glob.transpose(1, 2)    # (T, C+1, 3)
            pts = pts.numpy()
        pts_c = pts - pts[:, PELVIS:PELVIS + 1]
        ok = present[:PELVIS]
        residual = np.linalg.norm(pts_c[:, :PELVIS][:, ok] - target[:, :PELVIS][:, ok], axis=-1).mean(1) * 1000
        transl = m[:, PELVIS] * scale - pts[:, PELVIS]                                           # (T, 3)
        verts = _vertices(body, sk, bones, phen, theta[0], glob) + transl[:, None].astype(np.float32)
        floor = float(np.percentile(verts[..., 1].min(1), 10))   # planted frames define the floor
        verts[..., 1] -= floor
        centres = pts[:, :PELVIS] + transl[:, None]
        centres[..., 1] -= floor
        return Retargeted(vertices=verts, joints23=keypoints23(body, verts), joint_centres=centres,
                          residual_mm=residual, scale=scale, seconds=time.perf_counter() - start,
                          theta=theta[0].numpy(), rotation=glob.numpy(), transl=transl - [0.0, floor, 0.0])
    finally:
        torch.set_num_threads(threads)


def _solve(body, sk, bones, bone_ids, prior_w, target, present, glob0, cfg):
    """(theta (T, n_bones, 3), glob rotvecs (T, 3)) by batched, warm-started Adam (see module docstring)."""
    import roma

    dt = body.dtype
    t_all = len(target)
    seg = [(_C[a], _C[b], w) for a, b, w in SEGMENTS if present[_C[a]] and present[_C[b]]]
    ia, ib = [s[0] for s in seg], [s[1] for s in seg]
    w_seg = torch.tensor([s[2] for s in seg], dtype=dt)
    w_pt = torch.as_tensor(present, dtype=dt)
    tgt_all = torch.as_tensor(target, dtype=dt)
    out_theta, out_glob = [], []
    prev = torch.zeros(1, len(bones), 3, dtype=dt)
    for s in range(0, t_all, cfg.chunk):
        tgt = tgt_all[s:s + cfg.chunk]
        b = len(tgt)
        d_tgt = tgt[:, ib] - tgt[:, ia]
        d_tgt = d_tgt / d_tgt.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        theta = prev[-1:].expand(b, -1, -1).clone().requires_grad_(True)
        glob = roma.rotmat_to_rotvec(torch.as_tensor(glob0[s:s + b], dtype=dt)).requires_grad_(True)
        opt = torch.optim.Adam([theta, glob], lr=cfg.lr)
        anchor = prev[-1:] if s > 0 else None
        for _ in range(cfg.iters_first if s == 0 else cfg.iters):
            opt.zero_grad()
            p = _points(body.fk(theta, sk, bones)[1], bone_ids) @ roma.rotvec_to_rotmat(glob).transpose(1, 2)
            p = p - p[:, PELVIS:PELVIS + 1]
            d = p[:, ib] - p[:, ia]
            d = d / d.norm(dim=-1, keepdim=True).clamp(min=1e-6)
            e = cfg.w_dir * (w_seg * ((d - d_tgt) ** 2).sum(-1)).sum(-1).mean()
            e = e + cfg.w_pos * (w_pt * ((p - tgt) ** 2).sum(-1)).sum(-1).mean()
            e = e + cfg.w_prior * (prior_w[None, :, None] * theta ** 2).sum((1, 2)).mean()
            seq = theta if anchor is None else torch.cat([anchor, theta])
            if len(seq) > 1:
                e = e + cfg.w_smooth * ((seq[1:] - seq[:-1]) ** 2).sum((1, 2)).mean()
            e.backward()
            opt.step()
        prev = theta.detach()
        out_theta.append(prev)
        out_glob.append(glob.detach())
    return torch.cat(out_theta), torch.cat(out_glob)


def _vertices(body, sk, bones, phen, theta, glob, batch: int = 64) -> np.ndarray:
    """(T, V, 3) float32 posed vertices, rotated by glob (T, 3, 3), through Anny's own skinning."""
    out = []
    with torch.no_grad():
        for s in range(0, len(theta), batch):
            rot = body.deltas_from_theta(theta[s:s + batch], sk, bones)
            v = body.posed(rot, phen)["vertices"] @ glob[s:s + batch].transpose(1, 2)
            out.append(v.numpy().astype(np.float32))
    return np.concatenate(out)
