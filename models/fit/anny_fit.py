"""Fit Anny to one person's keypoint track: 2D COCO keypoints + BlazePose world landmarks.

Unknowns per track: one phenotype (6 values in [0, 1], the person's shape); per frame the rotations
of the fit bones (video2mesh.models.body.anny_body.FIT_BONES), a global rotation and a camera-space translation.

Camera: pinhole, focal length `focal_px` (callers state their guess, e.g. max(W, H) = a 53 degree
field of view along the long side), principal point at the image centre, x right, y down, z forward.

Energy (weights in FitConfig):
- 2D: score-weighted Geman-McClure reprojection error of the 17 COCO keypoints, in units of the
  person's size in pixels (so one weight suits every resolution);
- 3D: hip-centred model keypoints, rotated to camera axes, against BlazePose's world landmarks (metric
  3D, camera-aligned axes), which pins body proportions and depth order of the limbs; robust when
  `sigma_3d` > 0: sigma^2 r^2 / (r^2 + sigma^2), equal to r^2 for small residuals, bounded by sigma^2
  for a landmark that is simply wrong;
- per-keypoint weights: the caller's score (BlazePose visibility x presence x temporal robustness,
  see models/fit/temporal.py), zero below `min_score`;
- pose prior: weighted squared rotation angles away from Anny's rest pose (per-bone weights: twist,
  spine and neck segments are stiffer);
- temporal smoothness: squared first differences of bone rotations, global rotation and translation;
- temporal dynamics prior (`w_accel`): squared accelerations of the camera-space keypoints per body
  part (the paper's part groups on COCO-17: torso, head, left/right arm, left/right leg, weights
  PART_ACCEL: heavy parts move smoothly, hands may accelerate), in metres per frame^2: per frame, not
  per second^2, because what it fights is BlazePose's per-frame noise, whose second difference per
  frame is the same at any frame rate (real motion per frame is smaller at higher rates, so the same
  weight bends it less there); and the same over `accel_stride` frames (`w_accel_stride`), which a video
  faster than the reference rate gets for the prior's physical strength (models/fit/temporal.stride_prior);
- shape prior: weak pull of the phenotype towards the average (0.5).
Left/right swaps: after a first fit, each frame's labels are swapped (left <-> right, 2D and 3D
together) where that lowers the frame's 2D error by `swap_margin`, then the fit continues.
Optimisation: Adam per phase (global rotation + translation; everything; pose on the exact skeleton),
the dynamics prior joining only in the second half of the pose phase (it couples neighbouring frames,
and Adam started from the straight rest pose under it stalls: fit v2's body came out larger, farther
and jerkier than without it), then `polish_iters` of L-BFGS on the per-frame unknowns, which reaches
the energy's minimum where Adam keeps ~lr of dither in every per-frame unknown (docs/temporal.md).
Shape is optimised on a linearisation of the rest skeleton around the average phenotype (the exact
rest model costs ~0.15 s per evaluation, its gradient ~2 s); the final pass re-evaluates the exact
skeleton at the fitted phenotype and refines the pose on it.
Known stature (`stature_m` > 0, models/fit/stature.py): the phenotype is held at that stature (its `height`
solved before every shape step, and on the exact mesh at the end), the initial depth follows that body's
size, and the caller sets `free_3d_scale` so the world landmarks' (average adult) size does not count.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from video2mesh.models.body.anny_body import COCO_FLIP, FIT_BONES, AnnyBody, Skeleton
from video2mesh.models.fit.stature import KnownStature

log = logging.getLogger(__name__)

# Rest-pose model axes (z up, facing -y) -> camera axes (y down, facing the camera = -z).
MODEL_TO_CAMERA = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
_TORSO = [5, 6, 11, 12]   # COCO shoulders and hips
_HIPS = slice(11, 13)     # COCO left and right hip: their midpoint is the body's centre, in 2D and 3D
# The paper's part groups on COCO-17 with acceleration-prior weights (relative; see w_accel): the torso
# carries the mass and moves smoothly, head and legs less so, wrists and elbows may accelerate most.
PART_ACCEL: dict[str, tuple[tuple[int, ...], float]] = {
    "torso": ((5, 6, 11, 12), 2.0),
    "head": ((0, 1, 2, 3, 4), 1.0),
    "arm_left": ((7, 9), 0.5),
    "arm_right": ((8, 10), 0.5),
    "leg_left": ((13, 15), 1.0),
    "leg_right": ((14, 16), 1.0),
}


def part_accel_weights() -> np.ndarray:
    """(17,) per-keypoint weight of the acceleration prior, from PART_ACCEL."""
    w = np.zeros(17)
    for idx, wt in PART_ACCEL.values():
        w[list(idx)] = wt
    return w


@dataclass(frozen=True)
class FitConfig:
    """Weights and iteration counts of the Anny fit (defaults tuned on the shared demo videos)."""

    iters_global: int = 40          # global rotation + translation only
    iters_pose: int = 200           # everything, with the left/right check half-way
    iters_refine: int = 40          # pose on the exact skeleton of the fitted shape
    lr: float = 0.05
    lr_end: float = 1.0             # each phase's rate decays to lr x lr_end (cosine; 1 = constant, as before)
    w_2d: float = 1.0
    w_3d: float = 2.0
    w_prior: float = 0.002
    w_smooth: float = 0.5 
    w_shape: float = 0.05
    gm_sigma: float = 0.1           # Geman-McClure scale, in person sizes
    min_score: float = 0.3          # keypoints below this score are ignored
    swap_margin: float = 0.8        # swap a frame's labels if its error falls below this fraction
    w_accel: float = 0.0            # part-based acceleration prior (0 = off, the fit before it existed)
    accel_stride: int = 1           # a second acceleration prior over `accel_stride` frames (x[t+k] - 2 x[t] +
    w_accel_stride: float = 0.0     # x[t-k]), weight w_accel_stride (0 = none): the stiffer prior of a fast
                                    # video without the stiffness per frame (models/fit/temporal.rate_scaled)
    sigma_3d: float = 0.0           # robust scale of the 3D term, metres (0 = plain squares)
    polish_iters: int = 0           # final L-BFGS iterations on the per-frame unknowns (0 = none)
    stature_m: float = 0.0          # the person's stature if the user knows it, metres (0 = unknown): a
                                    # constraint on the phenotype (models/fit/stature.py)
    free_3d_scale: bool = False     # the 3D term compares shapes, not sizes: the world landmarks are scaled
                                    # per track by the least-squares factor onto the model (see _world_scale)
    num_threads: int = 1            # the tensors are small: one thread is ~10x faster than 2 on a busy CPU
                                    # (set from the main thread only: see torch_threads)


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
              cfg: FitConfig = FitConfig(), linear=None, phenotype: np.ndarray | None = None) -> FitResult:
    """Fit one track. kp2d (T, 17, 3) px + score, world (T, 17, 3) metres (camera-aligned, hip-centred),
    image_size (W, H). `linear` may pass a precomputed `linear_skeleton(body)` (shared by tracks).
    `phenotype` (6,) in (0, 1) fixes the shape (windows of a long track share their track's shape):
    only the pose is fitted, on the exact skeleton of that shape (its height re-solved if cfg.stature_m)."""
    with torch_threads(cfg.num_threads):
        prob = _Problem.build(body, image_size, focal_px, cfg, linear or linear_skeleton(body))
        targets = _Targets.build(kp2d, world, cfg.min_score, body.dtype)
        known = KnownStature.build(body, cfg.stature_m, phenotype) if cfg.stature_m > 0 else None
        x = _initial_unknowns(prob, kp2d, world, targets.size, rest=known.rest if known else None)
        if phenotype is not None:
            return _fit_pose_only(prob, x, targets, known.phenotype if known else np.asarray(phenotype, np.float64))
        if known:
            known.start(x.phen)
        on_linear = lambda: prob.linear_skeleton_at(known.project(x.phen) if known else x.phen)  # noqa: E731
        _descend(prob, x, targets, [x.glob, x.trans], cfg.iters_global, on_linear)
        half = cfg.iters_pose // 2
        _descend(prob, x, targets, [x.glob, x.trans, x.theta, x.phen], half, on_linear, dynamics=False)
        swapped = _swapped_frames(prob, x, targets)
        if swapped.any():
            log.info("left/right swapped in %d of %d frames", int(swapped.sum()), len(swapped))
            targets = targets.relabelled(torch.as_tensor(swapped))
        _descend(prob, x, targets, [x.glob, x.trans, x.theta, x.phen], cfg.iters_pose - half, on_linear)
        with torch.no_grad():
            if known:
                known.finish(x.phen)
            exact = body.skeleton(torch.sigmoid(x.phen)[None])
        _descend(prob, x, targets, [x.glob, x.trans, x.theta], cfg.iters_refine, lambda: exact)
        _polish(prob, x, targets, exact)
        return _result(prob, x, targets, exact, swapped)


def _fit_pose_only(prob: _Problem, x: _Unknowns, targets: _Targets, phenotype: np.ndarray) -> FitResult:
    """The same phases as fit_track with the shape fixed at `phenotype` (6,), on its exact skeleton."""
    cfg = prob.cfg
    with torch.no_grad():
        p = torch.as_tensor(np.clip(phenotype, 1e-6, 1 - 1e-6), dtype=prob.body.dtype)
        x.phen.copy_(torch.log(p / (1 - p)))
        exact = prob.body.skeleton(p[None])
    on_exact = lambda: exact  # noqa: E731
    _descend(prob, x, targets, [x.glob, x.trans], cfg.iters_global, on_exact)
    half = cfg.iters_pose // 2
    _descend(prob, x, targets, [x.glob, x.trans, x.theta], half, on_exact, dynamics=False)
    swapped = _swapped_frames(prob, x, targets, exact)
    if swapped.any():
        targets = targets.relabelled(torch.as_tensor(swapped))
    _descend(prob, x, targets, [x.glob, x.trans, x.theta], cfg.iters_pose - half + cfg.iters_refine, on_exact)
    _polish(prob, x, targets, exact)
    return _result(prob, x, targets, exact, swapped)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op thread count set to `n` inside the block and the previous count restored after.

    The count is process-wide, so only the main thread changes it: `v2m watch` runs videos on worker
    threads, where one worker's restore would undo another's setting (and the workers would race on
    which value is "previous"); there the block runs with the process's own setting.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class _Problem:
    """The fixed parts of one track's fit: body, fitted bones with their prior weights (n_fit,), the
    linearised rest skeleton (see linear_skeleton), camera (focal px, principal point (2,) px)."""

    body: AnnyBody
    bones: list[int]
    prior_w: torch.Tensor
    linear: tuple
    focal_px: float
    centre: torch.Tensor
    cfg: FitConfig

    @classmethod
    def build(cls, body: AnnyBody, image_size: tuple[int, int], focal_px: float, cfg: FitConfig, linear) -> _Problem:
        w_img, h_img = image_size
        return cls(body=body, bones=body.bone_index(FIT_BONES),
                   prior_w=torch.tensor(list(FIT_BONES.values()), dtype=body.dtype), linear=linear,
                   focal_px=focal_px, centre=torch.tensor([w_img / 2, h_img / 2], dtype=body.dtype), cfg=cfg)

    def linear_skeleton_at(self, phen_logit: torch.Tensor) -> Skeleton:
        """Rest skeleton at phenotype sigmoid(phen_logit) (6,), linearised around the average (0.5)."""
        s0, h0, jh, a0, ja = self.linear
        dphi = torch.sigmoid(phen_logit) - 0.5
        return Skeleton(heads=h0 + jh @ dphi, rest_rotations=s0.rest_rotations, ref_from_rest=s0.ref_from_rest,
                        parents=s0.parents, kp_a=a0 + ja @ dphi, rest_vertices=s0.rest_vertices)


@dataclass(frozen=True)
class _Targets:
    """What a track is fitted to. kp (T, 17, 2) px; score (T, 17), 0 below min_score; world (T, 17, 3)
    metres, hip-centred; size (T, 1) the person's size in px (scales the 2D error)."""

    kp: torch.Tensor
    score: torch.Tensor
    world: torch.Tensor
    size: torch.Tensor

    @classmethod
    def build(cls, kp2d: np.ndarray, world: np.ndarray, min_score: float, dtype: torch.dtype) -> _Targets:
        wl = torch.as_tensor(world, dtype=dtype)
        return cls(kp=torch.as_tensor(kp2d[..., :2], dtype=dtype),
                   score=torch.as_tensor(np.where(kp2d[..., 2] >= min_score, kp2d[..., 2], 0.0), dtype=dtype),
                   world=wl - wl[:, _HIPS].mean(1, keepdim=True),
                   size=torch.as_tensor(_person_size(kp2d), dtype=dtype)[:, None])

    def flipped(self) -> _Targets:
        """Left and right labels exchanged in every frame."""
        return _Targets(self.kp[:, COCO_FLIP], self.score[:, COCO_FLIP], self.world[:, COCO_FLIP], self.size)

    def relabelled(self, swapped: torch.Tensor) -> _Targets:
        """Left and right labels exchanged in the frames where `swapped` (T,) bool is true."""
        f = self.flipped()
        return _Targets(torch.where(swapped[:, None, None], f.kp, self.kp),
                        torch.where(swapped[:, None], f.score, self.score),
                        torch.where(swapped[:, None, None], f.world, self.world), self.size)


@dataclass(frozen=True)
class _Unknowns:
    """The optimised tensors: glob (T, 3) axis-angle rest model -> camera; trans (T, 3) camera metres
    of the model origin; theta (T, n_fit, 3) bone rotations; phen (6,) logits (sigmoid(0) = 0.5)."""

    glob: torch.Tensor
    trans: torch.Tensor
    theta: torch.Tensor
    phen: torch.Tensor


def _initial_unknowns(prob: _Problem, kp2d: np.ndarray, world: np.ndarray, size: torch.Tensor,
                      rest: Skeleton | None = None) -> _Unknowns:
    """Global rotation from the torso (rest model vs world landmarks), depth from the person's size in
    px against the rest model's height; rest pose, average shape. `rest`: the rest skeleton whose size
    sets the depth (default: the average body's)."""
    body, dt = prob.body, prob.body.dtype
    s0 = prob.linear[0] if rest is None else rest
    with torch.no_grad():
        rest_kp = body.keypoints_fk(*body.fk(torch.zeros(1, len(prob.bones), 3, dtype=dt), s0, prob.bones), s0)[0].numpy()
    rest_c = rest_kp - rest_kp[_HIPS].mean(0)
    height_m = np.ptp(rest_kp[:, 2])
    glob0, trans0 = [], []
    for t in range(len(kp2d)):
        dst = world[t][_TORSO] - world[t][_HIPS].mean(0)
        r = _kabsch(rest_c[_TORSO], dst) if np.isfinite(dst).all() and np.abs(dst).sum() > 1e-6 else MODEL_TO_CAMERA
        glob0.append(_rotvec(r))
        z = prob.focal_px * height_m / max(float(size[t, 0]), 1.0)
        hip_px = kp2d[t, _HIPS, :2].mean(0) - prob.centre.numpy()
        trans0.append([hip_px[0] * z / prob.focal_px, hip_px[1] * z / prob.focal_px, z])
    glob = torch.tensor(continuous_rotvecs(np.array(glob0)), dtype=dt, requires_grad=True)
    # translation of the model origin = hip-centre translation minus the rotated hip offset
    with torch.no_grad():
        hip_model = torch.as_tensor(rest_kp[_HIPS].mean(0), dtype=dt)
        trans = torch.tensor(np.array(trans0), dtype=dt) - (_rotmat(glob) @ hip_model)
    return _Unknowns(glob=glob, trans=trans.requires_grad_(True),
                     theta=torch.zeros(len(kp2d), len(prob.bones), 3, dtype=dt, requires_grad=True),
                     phen=torch.zeros(6, dtype=dt, requires_grad=True))


def continuous_rotvecs(r: np.ndarray) -> np.ndarray:
    """(T, 3) rotation vectors -> the same rotations, each frame's vector chosen among its equivalents (angle + 2 pi k
    about its axis) nearest the previous frame's.

    The smoothness term squares differences of consecutive global rotation vectors, which measure how far the body
    turned only while the vectors are continuous. A body facing away from the camera is a half turn (angle pi) from
    the rest model's axes, where canonical vectors (angle <= pi) of nearly equal rotations jump between +pi u and
    -pi u: from such a start the smoothness pulled a back view round to a side view (fit v11, docs/accuracy.md,
    "walk-turn-left under a pan"). An upright body's vector (a quarter turn about x, then any turn about the
    vertical) stays at least a quarter turn from every multiple of 2 pi, where the axis would be undefined."""
    out = np.array(r, np.float64, copy=True)
    for t in range(1, len(out)):
        a = float(np.linalg.norm(out[t]))
        if a < 1e-9:
            continue
        u = out[t] / a
        k0 = round((float(u @ out[t - 1]) - a) / (2 * np.pi))
        cands = [u * (a + 2 * np.pi * k) for k in (k0 - 1, k0, k0 + 1)]
        out[t] = min(cands, key=lambda c: float(((c - out[t - 1]) ** 2).sum()))
    return out


def canonical_rotvecs(r: np.ndarray) -> np.ndarray:
    """(T, 3) rotation vectors with angles above pi replaced by their equivalent of angle <= pi (others untouched)."""
    out = np.array(r, copy=True)
    a = np.linalg.norm(out, axis=-1)
    wound = a > np.pi
    if wound.any():
        w = np.mod(a[wound], 2 * np.pi)
        w = np.where(w > np.pi, w - 2 * np.pi, w)
        out[wound] = (out[wound] / a[wound, None] * w[:, None]).astype(out.dtype)
    return out


def _rotmat(rotvec: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle -> (..., 3, 3) with roma, imported on first use: roma loads torch._dynamo
    (~1.5 s), which every CLI start (the stage registry imports this module) paid before."""
    import roma

    return roma.rotvec_to_rotmat(rotvec)


def _project(prob: _Problem, x: _Unknowns, sk: Skeleton) -> tuple[torch.Tensor, torch.Tensor]:
    """Model keypoints in camera space (T, 17, 3) metres and projected (T, 17, 2) px."""
    model_kp = prob.body.keypoints_fk(*prob.body.fk(x.theta, sk, prob.bones), sk)                  # (T, 17, 3)
    cam = model_kp @ _rotmat(x.glob).transpose(1, 2) + x.trans[:, None]
    proj = prob.focal_px * cam[..., :2] / cam[..., 2:].clamp(min=1e-3) + prob.centre
    return cam, proj


def _data_terms(prob: _Problem, x: _Unknowns, sk: Skeleton, tg: _Targets,
                projected: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame (T,) score-weighted 2D Geman-McClure error and hip-centred 3D squared error
    (`projected`: _project's output when the caller has it already)."""
    cam, proj = projected if projected is not None else _project(prob, x, sk)
    r2 = ((proj - tg.kp) ** 2).sum(-1) / tg.size ** 2
    gm = r2 / (r2 + prob.cfg.gm_sigma ** 2)
    e2d = (tg.score * gm).sum(-1) / tg.score.sum(-1).clamp(min=1e-6)
    rel = cam - cam[:, _HIPS].mean(1, keepdim=True)
    world = tg.world * _world_scale(rel, tg) if prob.cfg.free_3d_scale else tg.world
    r3 = ((rel - world) ** 2).sum(-1)
    if prob.cfg.sigma_3d > 0:
        s2 = prob.cfg.sigma_3d ** 2
        r3 = s2 * r3 / (r3 + s2)
    e3d = (tg.score * r3).sum(-1) / tg.score.sum(-1).clamp(min=1e-6)
    return e2d, e3d


def _energy(prob: _Problem, x: _Unknowns, sk: Skeleton, tg: _Targets, dynamics: bool = True) -> torch.Tensor:
    """The scalar energy of the module docstring (`dynamics`: with the acceleration prior)."""
    cfg = prob.cfg
    cam, proj = _project(prob, x, sk)
    e2d, e3d = _data_terms(prob, x, sk, tg, (cam, proj))
    e = cfg.w_2d * e2d.mean() + cfg.w_3d * e3d.mean()
    e = e + cfg.w_prior * (prob.prior_w[None, :, None] * x.theta ** 2).sum((1, 2)).mean()
    if len(x.theta) > 1:
        e = e + cfg.w_smooth * (((x.theta[1:] - x.theta[:-1]) ** 2).sum((1, 2)).mean()
                                + ((x.glob[1:] - x.glob[:-1]) ** 2).sum(-1).mean()
                                + ((x.trans[1:] - x.trans[:-1]) ** 2).sum(-1).mean())
    if dynamics and cfg.w_accel > 0 and len(x.theta) > 2:
        e = e + cfg.w_accel * _accel_prior(cam)
    k = cfg.accel_stride
    if dynamics and cfg.w_accel_stride > 0 and k > 1 and len(x.theta) > 2 * k:
        e = e + cfg.w_accel_stride * _accel_prior(cam, k)
    return e + cfg.w_shape * ((torch.sigmoid(x.phen) - 0.5) ** 2).sum()


def _accel_prior(cam: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """Part-weighted mean squared acceleration of camera-space keypoints cam (T, 17, 3) metres, in
    (m / frame^2)^2; over `stride` frames: the second difference x[t+k] - 2 x[t] + x[t-k], in (m / k frames^2)^2."""
    k = stride
    acc = cam[2 * k:] - 2 * cam[k:-k] + cam[:-2 * k]                                   # (T-2k, 17, 3)
    w = torch.as_tensor(part_accel_weights(), dtype=cam.dtype)
    return ((acc ** 2).sum(-1) * w).sum(-1).mean() / w.sum()


def _descend(prob: _Problem, x: _Unknowns, tg: _Targets, params: list[torch.Tensor], iters: int,
             skeleton: Callable[[], Skeleton], dynamics: bool = True) -> None:
    """`iters` Adam steps on `params` (a fresh optimiser per phase), the skeleton rebuilt per step.
    The acceleration prior (`dynamics`) only acts once the pose is free: in the global phase the
    per-frame depth guesses still jitter by decimetres, and a prior that strong would outweigh the
    (bounded, robust) 2D term; callers also leave it out until the pose has converged without it."""
    opt = torch.optim.Adam(params, lr=prob.cfg.lr)
    # cosine decay to lr_end x lr: at a constant rate Adam keeps stepping ~lr around the minimum in every
    # per-frame unknown (a few cm, a few degrees), and that dither is jitter in the exported motion
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(iters, 1), eta_min=prob.cfg.lr * prob.cfg.lr_end)
    dynamics = dynamics and any(p is x.theta for p in params)
    for _ in range(iters):
        opt.zero_grad()
        _energy(prob, x, skeleton(), tg, dynamics).backward()
        opt.step()
        if prob.cfg.lr_end < 1.0:
            sched.step()


def _polish(prob: _Problem, x: _Unknowns, tg: _Targets, sk: Skeleton) -> None:
    """`cfg.polish_iters` L-BFGS iterations (strong Wolfe line search) on the per-frame unknowns at the
    fixed skeleton `sk`, with the dynamics prior."""
    if prob.cfg.polish_iters <= 0:
        return
    params = [x.glob, x.trans, x.theta]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=prob.cfg.polish_iters, history_size=20,
                            line_search_fn="strong_wolfe")
    before = [p.detach().clone() for p in params]

    def closure():
        opt.zero_grad()
        e = _energy(prob, x, sk, tg, True)
        e.backward()
        return e

    opt.step(closure)
    if not all(torch.isfinite(p).all() for p in params):
        with torch.no_grad():
            for p, b in zip(params, before):
                p.copy_(b)


def _swapped_frames(prob: _Problem, x: _Unknowns, tg: _Targets, sk: Skeleton | None = None) -> np.ndarray:
    """(T,) bool: frames whose data error drops below swap_margin of itself with left/right exchanged."""
    cfg = prob.cfg
    with torch.no_grad():
        sk = sk if sk is not None else prob.linear_skeleton_at(x.phen)
        e_keep = _data_terms(prob, x, sk, tg)
        e_swap = _data_terms(prob, x, sk, tg.flipped())
        per_frame = [e2d + cfg.w_3d / cfg.w_2d * e3d for e2d, e3d in (e_keep, e_swap)]
        return (per_frame[1] < cfg.swap_margin * per_frame[0]).numpy()


def _result(prob: _Problem, x: _Unknowns, tg: _Targets, exact: Skeleton, swapped: np.ndarray) -> FitResult:
    with torch.no_grad():
        cam, proj = _project(prob, x, exact)
        err = ((proj - tg.kp) ** 2).sum(-1).sqrt()
        resid = (tg.score * err).sum(-1) / tg.score.sum(-1).clamp(min=1e-6)
    # canonical vectors (angle <= pi) out, as before fit v11: the unknowns may have wound past pi (continuous_rotvecs)
    return FitResult(theta=x.theta.detach().numpy(), global_orient=canonical_rotvecs(x.glob.detach().numpy()),
                     transl=x.trans.detach().numpy(), phenotype=torch.sigmoid(x.phen).detach().numpy(),
                     keypoints2d=proj.numpy(), keypoints3d=cam.numpy(), residual_px=resid.numpy(), swapped=swapped,
                     skeleton=exact, bones=prob.bones)


def _world_scale(rel: torch.Tensor, tg: _Targets) -> torch.Tensor:
    """Scalar s minimising the score-weighted sum |rel - s world|^2 over all frames (rel (T, 17, 3) the
    model's hip-centred keypoints), detached: at a given stature BlazePose's world landmarks keep their
    shape (directions, proportions) but not their size, an average adult's (docs/accuracy.md, "Body size")."""
    with torch.no_grad():
        num = (tg.score * (rel * tg.world).sum(-1)).sum()
        return num / (tg.score * (tg.world ** 2).sum(-1)).sum().clamp(min=1e-9)


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
