"""Fit Anny to one person's keypoint track: 2D COCO keypoints + BlazePose world landmarks.

Unknowns per track: one phenotype (6 values in [0, 1], the person's shape); per frame the rotations
of the fit bones (video2mesh.models.body.anny_body.FIT_BONES), a global rotation and a camera-space translation.

Camera: pinhole, focal length `focal_px` (callers state their guess, e.g. max(W, H) = a 53 degree
field of view along the long side), principal point at the image centre, x right, y down, z forward.

Energy (weights in FitConfig):
- 2D: score-weighted Geman-McClure reprojection error of the 17 COCO keypoints, in units of the
  person's size in pixels (so one weight suits every resolution);
- 3D: hip-centred model keypoints, rotated to camera axes, against BlazePose's world landmarks (metric
  3D, camera-aligned axes), which pins body proportions and depth order of the limbs;
- pose prior: weighted squared rotation angles away from Anny's rest pose (per-bone weights: twist,
  spine and neck segments are stiffer);
- temporal smoothness: squared first differences of bone rotations, global rotation and translation;
- shape prior: weak pull of the phenotype towards the average (0.5).
Left/right swaps: after a first fit, each frame's labels are swapped (left <-> right, 2D and 3D
together) where that lowers the frame's 2D error by `swap_margin`, then the fit continues.
Shape is optimised on a linearisation of the rest skeleton around the average phenotype (the exact
rest model costs ~0.15 s per evaluation, its gradient ~2 s); the final pass re-evaluates the exact
skeleton at the fitted phenotype and refines the pose on it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from video2mesh.models.body.anny_body import COCO_FLIP, FIT_BONES, AnnyBody, Skeleton

log = logging.getLogger(__name__)

# Rest-pose model axes (z up, facing -y) -> camera axes (y down, facing the camera = -z).
MODEL_TO_CAMERA = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
_TORSO = [5, 6, 11, 12]


@dataclass(frozen=True)
class FitConfig:
    """Weights and iteration counts of the Anny fit (defaults tuned on the shared demo videos)."""

    iters_global: int = 40          # global rotation + translation only
    iters_pose: int = 200           # everything, with the left/right check half-way
    iters_refine: int = 40          # pose on the exact skeleton of the fitted shape
    lr: float = 0.05
    w_2d: float = 1.0
    w_3d: float = 2.0
    w_prior: float = 0.002
    w_smooth: float = 0.5 
    w_shape: float = 0.05
    gm_sigma: float = 0.1           # Geman-McClure scale, in person sizes
    min_score: float = 0.3          # keypoints below this score are ignored
    swap_margin: float = 0.8        # swap a frame's labels if its error falls below this fraction
    num_threads: int = 1            # the tensors are small: one thread is ~10x faster than 2 on a busy CPU


@dataclass
class FitResult:
    """Per-track fit. theta (T, n_fit, 3); global_orient, transl (T, 3); phenotype (6,);
    keypoints2d (T, 17, 2) reprojected px; keypoints3d (T, 17, 3) camera metres; residual_px (T,)
    score-weighted mean reprojection error; swapped (T,) bool; skeleton at the fitted shape."""

    theta: np.ndarray
    global_orient: np.ndarray
    transl: np.ndarray
    phenotype: np.ndarray
    keypoints2d: np.ndarray
    keypoints3d: np.ndarray
    residual_px: np.ndarray
    swapped: np.ndarray
    skeleton: Skeleton
    bones: list[int]


def _kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotation R minimising |R src - dst| (centred point sets (N, 3))."""
    u, _, vt = np.linalg.svd(dst.T @ src)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def linear_skeleton(body: AnnyBody, step: float = 0.1) -> tuple[Skeleton, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rest skeleton at phenotype 0.5 and the finite-difference Jacobians of heads and kp_a."""
    with torch.no_grad():
        base = torch.full((1, 6), 0.5, dtype=body.dtype)
        s0 = body.skeleton(base)
        jh, ja = [], []
        for i in range(6):
            p = base.clone()
            p[0, i] += step
            s = body.skeleton(p)
            jh.append((s.heads - s0.heads) / step)
            ja.append((s.kp_a - s0.kp_a) / step)
    return s0, s0.heads, torch.stack(jh, -1), s0.kp_a, torch.stack(ja, -1)


def fit_track(body: AnnyBody, kp2d: np.ndarray, world: np.ndarray, image_size: tuple[int, int], focal_px: float,
              cfg: FitConfig = FitConfig(), linear=None) -> FitResult:
    """Fit one track. kp2d (T, 17, 3) px + score, world (T, 17, 3) metres (camera-aligned, hip-centred),
    image_size (W, H). `linear` may pass a precomputed `linear_skeleton(body)` (shared by tracks)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.num_threads)
    try:
        return _fit_track(body, kp2d, world, image_size, focal_px, cfg, linear)
    finally:
        torch.set_num_threads(threads)


def _fit_track(body, kp2d, world, image_size, focal_px, cfg, linear) -> FitResult:
    dt = body.dtype
    t_frames = kp2d.shape[0]
    w_img, h_img = image_size
    bones = body.bone_index(FIT_BONES)
    prior_w = torch.tensor(list(FIT_BONES.values()), dtype=dt)
    s0, h0, jh, a0, ja = linear or linear_skeleton(body)
    centre = torch.tensor([w_img / 2, h_img / 2], dtype=dt)

    kp = torch.as_tensor(kp2d[..., :2], dtype=dt)
    score = torch.as_tensor(np.where(kp2d[..., 2] >= cfg.min_score, kp2d[..., 2], 0.0), dtype=dt)
    wl = torch.as_tensor(world, dtype=dt)
    wl = wl - wl[:, 11:13].mean(1, keepdim=True)
    size = torch.as_tensor(_person_size(kp2d), dtype=dt)[:, None]            # (T, 1) px

    # Initial global rotation from the torso (rest model vs world landmarks), depth from scale.
    with torch.no_grad():
        rest_kp = body.keypoints_fk(*body.fk(torch.zeros(1, len(bones), 3, dtype=dt), s0, bones), s0)[0].numpy()
    rest_c = rest_kp - rest_kp[11:13].mean(0)
    glob0, trans0 = [], []
    for t in range(t_frames):
        dst = world[t][_TORSO] - world[t][11:13].mean(0)
        r = _kabsch(rest_c[_TORSO], dst) if np.isfinite(dst).all() and np.abs(dst).sum() > 1e-6 else MODEL_TO_CAMERA
        glob0.append(_rotvec(r))
        hip2d = kp2d[t, 11:13, :2].mean(0)
        height_m = np.ptp(rest_kp[:, 2])
        z = focal_px * height_m / max(float(size[t, 0]), 1.0)
        trans0.append([(hip2d[0] - w_img / 2) * z / focal_px, (hip2d[1] - h_img / 2) * z / focal_px, z])
    glob = torch.tensor(np.array(glob0), dtype=dt, requires_grad=True)
    trans = torch.tensor(np.array(trans0), dtype=dt)
    # translation of the model origin = hip-centre translation minus the rotated hip offset
    with torch.no_grad():
        import roma

        hip_model = torch.as_tensor(rest_kp[11:13].mean(0), dtype=dt)
        trans = trans - (roma.rotvec_to_rotmat(glob) @ hip_model)
    trans.requires_grad_(True)
    theta = torch.zeros(t_frames, len(bones), 3, dtype=dt, requires_grad=True)
    phen = torch.zeros(6, dtype=dt, requires_grad=True)                    # logits; sigmoid(0) = 0.5

    def skeleton(phi_logit):
        dphi = torch.sigmoid(phi_logit) - 0.5
        return Skeleton(heads=h0 + jh @ dphi, rest_rotations=s0.rest_rotations, ref_from_rest=s0.ref_from_rest,
                        parents=s0.parents, kp_a=a0 + ja @ dphi, rest_vertices=s0.rest_vertices)

    def forward(sk):
        import roma

        model_kp = body.keypoints_fk(*body.fk(theta, sk, bones), sk)                  # (T, 17, 3)
        rg = roma.rotvec_to_rotmat(glob)
        cam = model_kp @ rg.transpose(1, 2) + trans[:, None]
        proj = focal_px * cam[..., :2] / cam[..., 2:].clamp(min=1e-3) + centre
        return cam, proj

    def energy(sk, kp, score, wl, per_frame=False):
        cam, proj = forward(sk)
        r2 = ((proj - kp) ** 2).sum(-1) / size ** 2
        gm = r2 / (r2 + cfg.gm_sigma ** 2)
        e2d = (score * gm).sum(-1) / score.sum(-1).clamp(min=1e-6)
        rel = cam - cam[:, 11:13].mean(1, keepdim=True)
        e3d = (score * ((rel - wl) ** 2).sum(-1)).sum(-1) / score.sum(-1).clamp(min=1e-6)
        if per_frame:
            return e2d + cfg.w_3d / cfg.w_2d * e3d
        e = cfg.w_2d * e2d.mean() + cfg.w_3d * e3d.mean()
        e = e + cfg.w_prior * (prior_w[None, :, None] * theta ** 2).sum((1, 2)).mean()
        if t_frames > 1:
            e = e + cfg.w_smooth * (((theta[1:] - theta[:-1]) ** 2).sum((1, 2)).mean()
                                    + ((glob[1:] - glob[:-1]) ** 2).sum(-1).mean()
                                    + ((trans[1:] - trans[:-1]) ** 2).sum(-1).mean())
        return e + cfg.w_shape * ((torch.sigmoid(phen) - 0.5) ** 2).sum()

    def run(params, iters, sk_fn):
        opt = torch.optim.Adam(params, lr=cfg.lr)
        for _ in range(iters):
            opt.zero_grad()
            e = energy(sk_fn(), kp, score, wl)
            e.backward()
            opt.step()
        return float(e.detach())

    run([glob, trans], cfg.iters_global, lambda: skeleton(phen))
    half = cfg.iters_pose // 2
    run([glob, trans, theta, phen], half, lambda: skeleton(phen))
    # Left/right: relabel the frames whose error drops when left and right are swapped.
    with torch.no_grad():
        sk = skeleton(phen)
        e_keep = energy(sk, kp, score, wl, per_frame=True)
        e_swap = energy(sk, kp[:, COCO_FLIP], score[:, COCO_FLIP], wl[:, COCO_FLIP], per_frame=True)
        swapped = (e_swap < cfg.swap_margin * e_keep).numpy()
    if swapped.any():
        log.info("left/right swapped in %d of %d frames", int(swapped.sum()), t_frames)
        sw = torch.as_tensor(swapped)
        kp = torch.where(sw[:, None, None], kp[:, COCO_FLIP], kp)
        score = torch.where(sw[:, None], score[:, COCO_FLIP], score)
        wl = torch.where(sw[:, None, None], wl[:, COCO_FLIP], wl)
    run([glob, trans, theta, phen], cfg.iters_pose - half, lambda: skeleton(phen))
    with torch.no_grad():
        exact = body.skeleton(torch.sigmoid(phen)[None])
    run([glob, trans, theta], cfg.iters_refine, lambda: exact)

    with torch.no_grad():
        cam, proj = forward(exact)
        err = ((proj - kp) ** 2).sum(-1).sqrt()
        resid = (score * err).sum(-1) / score.sum(-1).clamp(min=1e-6)
    return FitResult(theta=theta.detach().numpy(), global_orient=glob.detach().numpy(), transl=trans.detach().numpy(),
                     phenotype=torch.sigmoid(phen).detach().numpy(), keypoints2d=proj.numpy(),
                     keypoints3d=cam.numpy(), residual_px=resid.numpy(), swapped=swapped, skeleton=exact, bones=bones)


def _person_size(kp2d: np.ndarray) -> np.ndarray:
    """(T,) person size in px: the diagonal of the confident keypoints' box (at least 16 px)."""
    out = np.zeros(len(kp2d))
    for t, k in enumerate(kp2d):
        ok = k[:, 2] >= 0.3
        pts = k[ok, :2] if ok.sum() >= 2 else k[:, :2]
        out[t] = max(float(np.linalg.norm(pts.max(0) - pts.min(0))), 16.0)
    return out


def _rotvec(r: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(r).as_rotvec()
