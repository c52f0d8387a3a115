"""Long tracks: the windowed Anny fit's time and peak memory against the track's length.

The input is a synthetic keypoint track (Anny's own keypoints of a slow random motion, projected by a
pinhole camera; the fit's cost does not depend on what the keypoints show), fitted with the shape
fixed (as every window of a long track is) and few iterations (the cost per iteration is what scales).
Windowed cases use the fit stage's defaults (256-frame windows, 32 frames of context each side):
frames/s should stay flat and peak RSS bounded as the track grows. `single window` cases fit the whole
track at once, for comparison (its memory grows with the length). Quick mode: 300 and 1200 frames.
"""
from __future__ import annotations

import numpy as np

from . import Case

ITERS = dict(iters_global=4, iters_pose=10, iters_refine=2)
POLISH = 4   # final L-BFGS iterations, about the stage's 60 in the same proportion as ITERS to its 280 Adam steps


def _track(body, lin, t_frames: int):
    import torch

    from video2mesh.models.body.anny_body import FIT_BONES
    from video2mesh.models.fit.anny_fit import MODEL_TO_CAMERA

    bones = body.bone_index(FIT_BONES)
    g = torch.Generator().manual_seed(0)
    base = torch.randn(1, len(bones), 3, generator=g, dtype=body.dtype) * 0.3
    with torch.no_grad():
        kp = []
        for s in range(0, t_frames, 512):                  # FK in slices: the input itself stays small
            phase = torch.sin(torch.arange(s, min(s + 512, t_frames), dtype=body.dtype) / 15.0)[:, None, None]
            kp.append(body.keypoints_fk(*body.fk(base * phase, lin[0], bones), lin[0]).numpy())
    cam = np.concatenate(kp) @ MODEL_TO_CAMERA.T + np.array([0.0, 0.0, 3.0])
    uv = 1080 * cam[..., :2] / cam[..., 2:] + np.array([540, 960])
    return np.concatenate([uv, np.ones_like(uv[..., :1])], -1), cam - cam[:, 11:13].mean(1, keepdims=True)


def cases(quick: bool, device: str) -> list[Case]:
    lengths = (300, 1200) if quick else (300, 1200, 4800)

    def setup(t_frames: int, windowed: bool):
        def build():
            from video2mesh.models.fit.anny_fit import FitConfig, fit_track, linear_skeleton
            from video2mesh.models.fit.temporal import SMOOTHING, fit_windowed
            from video2mesh.stages.fit_anny import FitAnnyConfig
            from video2mesh.stages.licence_free import load_body

            body = load_body(None)
            lin = linear_skeleton(body)
            kp2d, world = _track(body, lin, t_frames)
            cfg = FitConfig(**ITERS, w_accel=SMOOTHING["standard"].w_accel, sigma_3d=0.1, lr_end=0.02,
                            polish_iters=POLISH)
            phen = np.full(6, 0.5)
            one = lambda k, w: fit_track(body, k, w, (1080, 1920), 1080.0, cfg, linear=lin, phenotype=phen)  # noqa: E731
            st = FitAnnyConfig()

            def step() -> int:
                if windowed:
                    fit_windowed(one, kp2d, world, st.window, st.overlap)
                else:
                    one(kp2d, world)
                return t_frames
            return step
        return build

    out = [Case("fit_long", f"windowed 256+2x32, {n} frames, {sum(ITERS.values())} iters + {POLISH} L-BFGS", setup(n, True),
                repeat=1, warmup=0) for n in lengths]
    out += [Case("fit_long", f"single window, {n} frames, {sum(ITERS.values())} iters + {POLISH} L-BFGS", setup(n, False),
                 repeat=1, warmup=0) for n in lengths[:2]]
    return out
