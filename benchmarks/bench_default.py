"""Licence-free default path: BlazePose keypoints per frame, hand landmarks per hand and Anny fitting per frame (CPU).

Needs the BlazePose and hand .tflite files in the models folder (`v2m models setup-default`); without
them those cases are left out. Inputs are synthetic (a random 1080x1920 frame: the networks' cost
does not depend on the content; tracking mode = one landmark run per frame, the detector only at
re-detections, timed separately) and Anny's own keypoints for the fit.
"""
from __future__ import annotations

import logging

import numpy as np

from . import Case

log = logging.getLogger(__name__)


def _blazepose():
    from video2mesh.models.runners.blazepose import BlazePose
    from video2mesh.pipeline.assets import AssetRegistry
    from video2mesh.stages.licence_free import POSE_ASSETS

    reg = AssetRegistry(POSE_ASSETS)
    if not all(reg.status(a.name).present for a in POSE_ASSETS):
        return None
    return BlazePose(reg.path("blazepose_detector"), reg.path("blazepose_landmark"), num_threads=2)


def _hands():
    from video2mesh.models.runners.hands import Hands
    from video2mesh.pipeline.assets import AssetRegistry
    from video2mesh.stages.licence_free import HAND_ASSETS

    reg = AssetRegistry(HAND_ASSETS)
    if not all(reg.status(a.name).present for a in HAND_ASSETS):
        return None
    return Hands(reg.path("hand_palm_detector"), reg.path("hand_landmark"), num_threads=2)


def cases(quick: bool, device: str) -> list[Case]:
    out: list[Case] = []
    n = 10 if quick else 50
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (1920, 1080, 3), dtype=np.uint8)

    def landmarks_setup():
        from video2mesh.models.runners.blazepose import Roi

        net = _blazepose()
        roi = Roi(540.0, 960.0, 1300.0, 0.1)

        def step() -> int:
            for _ in range(n):
                net.landmarks(frame, roi)
            return n
        return step

    def detect_setup():
        net = _blazepose()

        def step() -> int:
            for _ in range(n):
                net.detect(frame)
            return n
        return step

    if _blazepose() is not None:
        out.append(Case("blazepose", "landmarks (tracking mode) 2 threads", landmarks_setup))
        out.append(Case("blazepose", "detector full frame 2 threads", detect_setup))
    else:
        log.warning("bench_default: BlazePose files missing; run `v2m models setup-default`")

    def hand_setup(palm: bool):
        from video2mesh.models.runners.blazepose import Roi

        net = _hands()
        roi = Roi(540.0, 960.0, 200.0, 0.3)

        def step() -> int:
            for _ in range(n):
                net.palms(frame, roi) if palm else net.landmarks(frame, roi)
            return n
        return step

    if _hands() is not None:    # the hands stage: 2 landmark runs per found hand (body ROI + refine), palms on misses
        out.append(Case("hands", "hand landmarks per hand 2 threads", lambda: hand_setup(False)))
        out.append(Case("hands", "palm detector per search 2 threads", lambda: hand_setup(True)))
    else:
        log.warning("bench_default: hand files missing; run `v2m models setup-default`")

    t_frames = 20 if quick else 100

    def fit_setup():
        import torch

        from video2mesh.models.body.anny_body import FIT_BONES
        from video2mesh.models.fit.anny_fit import MODEL_TO_CAMERA, FitConfig, linear_skeleton, fit_track
        from video2mesh.stages.licence_free import load_body

        body = load_body(None)
        lin = linear_skeleton(body)
        bones = body.bone_index(FIT_BONES)
        g = torch.Generator().manual_seed(0)
        phase = torch.linspace(0, 6, t_frames, dtype=body.dtype)[:, None, None]
        theta = torch.randn(1, len(bones), 3, generator=g, dtype=body.dtype) * 0.3 * torch.sin(phase)
        with torch.no_grad():
            kp = body.keypoints_fk(*body.fk(theta, lin[0], bones), lin[0]).numpy()
        cam = kp @ MODEL_TO_CAMERA.T + np.array([0.0, 0.0, 3.0])
        uv = 1080 * cam[..., :2] / cam[..., 2:] + np.array([540, 960])
        kp2d = np.concatenate([uv, np.ones_like(uv[..., :1])], -1)
        world = cam - cam[:, 11:13].mean(1, keepdims=True)

        def step() -> int:
            fit_track(body, kp2d, world, (1080, 1920), 1920.0, FitConfig(), linear=lin)
            return t_frames
        return step

    out.append(Case("fit", f"anny fit {t_frames} frames, 1 thread", fit_setup, repeat=1 if not quick else 1))
    return out
