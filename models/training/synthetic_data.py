"""A synthetic, licence-free training and evaluation set in VIBE's database layout.

Smooth random SMPL motions are posed on a body model (the synthetic SMPL-layout body of
models/body/synthetic_smpl.py in tests), seen through a smoothly moving weak-perspective crop camera:
  - 2D keypoints: COCO-17 of the mesh projected into the crop, mapped to image pixels by a moving
    square box, with pixel noise, per-joint confidence and random occlusions (confidence 0);
  - image features: a fixed random projection of [6D pose, shape, camera] through tanh, plus noise
    (a stand-in for ResNet-50 features that carries the pose, so the regressor has something to learn);
  - homographies: the similarity that maps one frame's box onto the next (camera motion only).
The result is a dict with VIBE's keys (see models/training/datasets.py) plus 'homography' (N, 9) and 'fps', so
the same readers, losses and protocols run on it. Numbers on it are not paper numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

from video2mesh.models.training.datasets import COCO17_FROM_J49_GT, J14_FROM_J49

# H36M-17 regressor rows (SPIN's J_regressor_h36m order) as SMPL joints, for a synthetic regressor:
# pelvis, lhip, lknee, lankle, rhip, rknee, rankle, spine, thorax, nose, headtop, lsho, lelb, lwri, rsho, relb, rwri.
H36M17_AS_SMPL = (0, 1, 4, 7, 2, 5, 8, 6, 12, 15, 15, 16, 18, 20, 17, 19, 21)
# Per-joint motion amplitude (radians) of the sinusoids: larger at hips/knees/shoulders/elbows.
_AMPL = np.full(24, 0.15)
_AMPL[[1, 2, 16, 17]] = 0.5
_AMPL[[4, 5, 18, 19]] = 0.6
_AMPL[[0, 10, 11, 22, 23]] = 0.0        # global orient handled separately; toes and hands still


def synthetic_h36m_regressor(j_regressor: np.ndarray) -> np.ndarray:
    """(24, 6890) SMPL joint regressor -> (17, 6890) H36M-layout regressor (rows picked by joint)."""
    return np.asarray(j_regressor.todense() if hasattr(j_regressor, "todense") else j_regressor)[list(H36M17_AS_SMPL)]


@dataclass(frozen=True)
class SyntheticConfig:
    n_videos: int = 8
    n_frames: int = 96
    fps: float = 30.0
    feature_dim: int = 2048
    image_px: int = 512
    kp_noise_px: float = 1.5
    occlusion_rate: float = 0.05
    feature_noise: float = 0.05
    feature_seed: int = 1234       # fixed apart from `seed` so train and test sets share the "backbone"
    seed: int = 0


def smooth_random_motion(n_frames: int, rng: np.random.Generator, fps: float = 30.0) -> np.ndarray:
    """(T, 72) axis-angle SMPL poses: per-joint sums of 3 sinusoids (0.2-2 Hz) around a random offset,
    and a camera-facing global orientation (180 deg about x: SMPL y-up to camera y-down) that turns slowly."""
    t = np.arange(n_frames) / fps
    freq = rng.uniform(0.2, 2.0, (3, 24, 3))
    phase = rng.uniform(0, 2 * np.pi, (3, 24, 3))
    amp = rng.uniform(0.3, 1.0, (3, 24, 3)) * _AMPL[None, :, None] / 3
    offset = rng.normal(0, 0.15, (24, 3)) * (_AMPL[:, None] > 0)
    pose = offset + (amp[:, None] * np.sin(2 * np.pi * freq[:, None] * t[None, :, None, None] + phase[:, None])).sum(0)
    heading = rng.uniform(-np.pi, np.pi) + np.cumsum(gaussian_filter1d(rng.normal(0, 0.02, n_frames), 5))
    glob = Rotation.from_euler("x", np.pi) * Rotation.from_euler("y", heading[:, None])
    pose[:, 0] = glob.as_rotvec()
    return pose.reshape(n_frames, 72)


def _smooth_walk(n: int, rng: np.random.Generator, lo: float, hi: float, sigma: float = 8.0) -> np.ndarray:
    x = gaussian_filter1d(rng.normal(0, 1, n), sigma, mode="nearest")
    x = (x - x.min()) / max(np.ptp(x), 1e-9)
    return lo + (hi - lo) * x


def _rot6d(pose_aa: np.ndarray) -> np.ndarray:
    r = Rotation.from_rotvec(pose_aa.reshape(-1, 3)).as_matrix()
    return r[:, :, :2].reshape(len(pose_aa), -1)                  # (N, 24 * 6), first two columns


def make_db(body: Callable, cfg: SyntheticConfig = SyntheticConfig(), device: str = "cpu") -> dict[str, np.ndarray]:
    """Build a VIBE-layout database (dict of arrays, N = n_videos * n_frames rows).

    body(betas (B, 10), pose (B, 72)) must return an object with coco17 (B, 17, 3) and h36m14 (B, 14, 3)
    in metres (video2mesh.models.body.smpl.SMPL with a H36M regressor does).
    """
    rng = np.random.default_rng(cfg.seed)
    w_rng = np.random.default_rng(cfg.feature_seed)
    w_feat = w_rng.normal(0, 1, (24 * 6 + 10 + 3, cfg.feature_dim)) / np.sqrt(24 * 6 + 10 + 3)
    rows: dict[str, list] = {k: [] for k in ("vid_name", "frame_id", "joints2D", "joints3D", "pose", "shape",
                                             "bbox", "features", "valid", "homography", "cam")}
    for v in range(cfg.n_videos):
        t_n = cfg.n_frames
        pose = smooth_random_motion(t_n, rng, cfg.fps)
        betas = np.tile(rng.normal(0, 1, 10), (t_n, 1))
        with torch.no_grad():
            out = body(torch.as_tensor(betas, dtype=torch.float32, device=device),
                       torch.as_tensor(pose, dtype=torch.float32, device=device))
        coco = out.coco17.cpu().numpy().astype(np.float64)
        j14 = out.h36m14.cpu().numpy().astype(np.float64)
        cam = np.stack([_smooth_walk(t_n, rng, 0.8, 1.1), _smooth_walk(t_n, rng, -0.1, 0.1),
                        _smooth_walk(t_n, rng, -0.1, 0.1)], -1)                        # (T, 3)
        kp_crop = cam[:, None, :1] * (coco[..., :2] + cam[:, None, 1:])                # (T, 17, 2) in [-1, 1]
        side = _smooth_walk(t_n, rng, 0.35, 0.6) * cfg.image_px
        cx = _smooth_walk(t_n, rng, 0.35, 0.65) * cfg.image_px
        cy = _smooth_walk(t_n, rng, 0.35, 0.65) * cfg.image_px
        px = np.stack([cx, cy], -1)[:, None] + 0.5 * side[:, None, None] * kp_crop
        px = px + rng.normal(0, cfg.kp_noise_px, px.shape)
        conf = rng.uniform(0.6, 1.0, (t_n, 17))
        occluded = rng.random((t_n, 17)) < cfg.occlusion_rate
        px[occluded] += rng.normal(0, 0.2 * cfg.image_px, (int(occluded.sum()), 2))
        conf[occluded] = 0.0
        j2d = np.zeros((t_n, 49, 3))
        j2d[:, COCO17_FROM_J49_GT] = np.concatenate([px, conf[..., None]], -1)
        j3d = np.zeros((t_n, 49, 3))
        j3d[:, J14_FROM_J49] = j14
        code = np.concatenate([_rot6d(pose), betas, cam], -1)
        feats = np.tanh(code @ w_feat) + rng.normal(0, cfg.feature_noise, (t_n, cfg.feature_dim))
        k = side / np.r_[side[0], side[:-1]]
        prev_c = np.stack([np.r_[cx[0], cx[:-1]], np.r_[cy[0], cy[:-1]]], -1)
        hom = np.zeros((t_n, 3, 3))
        hom[:, 0, 0] = hom[:, 1, 1] = k
        hom[:, 2, 2] = 1
        hom[:, :2, 2] = np.stack([cx, cy], -1) - k[:, None] * prev_c
        hom = hom / hom[:, :1, :1]                                                    # H[0, 0] = 1
        rows["vid_name"].append(np.full(t_n, f"synthetic_{cfg.seed}_{v:03d}"))
        rows["frame_id"].append(np.arange(t_n))
        rows["joints2D"].append(j2d)
        rows["joints3D"].append(j3d)
        rows["pose"].append(pose)
        rows["shape"].append(betas)
        rows["bbox"].append(np.stack([cx, cy, side, side], -1))
        rows["features"].append(feats)
        rows["valid"].append(np.ones(t_n))
        rows["homography"].append(hom.reshape(t_n, 9))
        rows["cam"].append(cam)
    db = {k: np.concatenate(v) for k, v in rows.items()}
    for k in ("joints2D", "joints3D", "pose", "shape", "bbox", "features", "homography", "cam"):
        db[k] = db[k].astype(np.float32)
    db["fps"] = np.float32(cfg.fps)
    return db


def pose3d_pool(body: Callable, n: int, seed: int = 0, device: str = "cpu") -> np.ndarray:
    """(n, 13, 3) COCO-13 3D poses, y up, from random smooth motions: a 3D source for the embedder."""
    rng = np.random.default_rng(seed)
    pose = np.concatenate([smooth_random_motion(64, rng) for _ in range(int(np.ceil(n / 64)))])[:n]
    pose[:, :3] = 0.0                                                              # canonical orientation
    with torch.no_grad():
        out = body(torch.zeros(n, 10, device=device), torch.as_tensor(pose, dtype=torch.float32, device=device))
    return out.coco17.cpu().numpy()[:, [0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]]
