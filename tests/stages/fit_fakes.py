"""A fake `fit` stage (the schema of stages.fit_anny.FIT) for the licence-free path's export/report tests.

No BlazePose and no fitting: the rig parameters are a known Anny pose (random rotations of the fitted
bones, one phenotype per track, upright in front of the camera, walking), the COCO keypoints3d are
whatever the test asks for (report tests need closed-form motion, not Anny's keypoints).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from video2mesh.pipeline.stage import Chunk, Context, Stage
from video2mesh.models.body.anny_body import N_BONES
from video2mesh.stages.fit_anny import FIT


@dataclass(frozen=True)
class FakeFitConfig:
    """The fake has no parameters."""


def rig_params(body, tid: int, frames: np.ndarray) -> dict[str, np.ndarray]:
    """Known Anny rig parameters of one track: bone_rotations (T, 104, 3), global_orient (T, 3),
    transl (T, 3) camera metres, phenotype (6,) (as stages.fit_anny stores them)."""
    import roma
    import torch
    from scipy.spatial.transform import Rotation

    from video2mesh.models.body.anny_body import FIT_BONES
    from video2mesh.models.fit.anny_fit import MODEL_TO_CAMERA
    from video2mesh.stages.fit_anny import bone_rotations

    bones = body.bone_index(FIT_BONES)
    g = torch.Generator().manual_seed(10 + tid)
    theta = torch.randn(len(frames), len(bones), 3, generator=g, dtype=body.dtype) * 0.3
    phen = np.array([0.3 + 0.3 * tid, 0.5, 0.5, 0.6, 0.5 - 0.1 * tid, 0.5], np.float32)
    with torch.no_grad():
        sk = body.skeleton(torch.as_tensor(phen[None]))
    f = frames.astype(np.float64)
    rg = MODEL_TO_CAMERA @ roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, 0.4 - 0.8 * tid])).numpy()
    orient = np.repeat(Rotation.from_matrix(rg @ sk.rest_rotations[0].T.numpy()).as_rotvec()[None], len(frames), 0)
    transl = np.stack([-0.5 + tid + 0.03 * f, 0.3 + 0.0 * f, 4.0 + 0.05 * f], 1)
    return {"bone_rotations": bone_rotations(body, theta.numpy(), sk, bones), "global_orient": orient,
            "transl": transl, "phenotype": phen}


def fit_frame(tracks: dict[int, np.ndarray], rig: Callable[[int, np.ndarray], dict] | None = None,
              keypoints3d: Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
              confidence: Callable[[int, np.ndarray], np.ndarray] | None = None) -> pd.DataFrame:
    """Rows of a `fit` artifact for {track_id: frames}. `rig(tid, frames)` gives rig parameters (default:
    rest pose), `keypoints3d(tid, frames)` -> ((T, 17, 3), transl (T, 3)) overrides the keypoints and the
    root, `confidence(tid, frames)` the per-frame confidence (default 0.9)."""
    rows = []
    for tid, frames in tracks.items():
        n = len(frames)
        p = rig(tid, frames) if rig else {"bone_rotations": np.zeros((n, N_BONES, 3)), "global_orient": np.zeros((n, 3)),
                                          "transl": np.tile([0.0, 0.0, 4.0], (n, 1)), "phenotype": np.full(6, 0.5)}
        kp3 = np.zeros((n, 17, 3))
        if keypoints3d:
            kp3, p["transl"] = keypoints3d(tid, frames)
        conf = confidence(tid, frames) if confidence else np.full(n, 0.9)
        for i, f in enumerate(frames):
            rows.append({
                "frame": int(f), "track_id": tid, "body_model": "anny", "rig": "anny",
                "bone_rotations": np.asarray(p["bone_rotations"][i]).reshape(-1), "global_orient": p["global_orient"][i],
                "transl": p["transl"][i], "phenotype": p["phenotype"], "keypoints": np.full(51, 10.0),
                "keypoints3d": kp3[i].reshape(-1), "residual_px": 2.0 * (1 - conf[i]) / conf[i],
                "confidence": conf[i], "swapped": False, "focal_px": 96.0,
                "keypoints_input": np.full(51, 10.0), "flipped_input": False,
            })
    df = pd.DataFrame(rows)
    df["frame"] = df["frame"].astype(np.int64)
    df["track_id"] = df["track_id"].astype(np.int32)
    for c in ("residual_px", "confidence", "focal_px"):
        df[c] = df[c].astype(np.float32)
    return df


def fake_fit_stage(df: pd.DataFrame) -> Stage:
    """A `fit` stage that returns `df` (inputs: probe only)."""
    def compute(ctx: Context, cfg: FakeFitConfig, chunk: Chunk) -> pd.DataFrame:
        return df

    return Stage("fit", 1, FakeFitConfig, FIT, compute, inputs=("probe",))


@dataclass(frozen=True)
class FakeCameraConfig:
    """The fake has no parameters."""


def fake_camera_stage() -> Stage:
    """A `camera_motion` stage of a still camera: the identity homography, valid, at every frame."""
    from video2mesh.stages.camera_motion import CAMERA_MOTION

    def compute(ctx: Context, cfg: FakeCameraConfig, chunk: Chunk) -> pd.DataFrame:
        n = ctx.video.n_frames
        return pd.DataFrame({"frame": np.arange(n, dtype=np.int64), "h": list(np.tile(np.eye(3, dtype=np.float32).reshape(9), (n, 1))),
                             "valid": np.ones(n, bool), "n_points": np.full(n, 100, np.int32),
                             "residual_px": np.zeros(n, np.float32)})

    return Stage("camera_motion", 1, FakeCameraConfig, CAMERA_MOTION, compute, inputs=("probe",))


def fake_fingers_stage(df: pd.DataFrame | None = None) -> Stage:
    """A `fingers` stage giving `df` (default: none, as with hands.enabled=false)."""
    from video2mesh.stages.fingers import FINGERS

    def compute(ctx: Context, cfg: FakeCameraConfig, chunk: Chunk) -> pd.DataFrame:
        return FINGERS.empty() if df is None else df

    return Stage("fingers", 1, FakeCameraConfig, FINGERS, compute, inputs=("probe",))


def world_stages(frame: str = "camera") -> tuple[dict[str, Stage], dict]:
    """Stages camera_motion (still fake) + world + fingers (none), and the world config for `frame`
    ("camera": the fit's camera space, as the exports were before the world stage)."""
    from video2mesh.stages import world

    return ({"camera_motion": fake_camera_stage(), "world": world.STAGE, "fingers": fake_fingers_stage()},
            {"world": world.WorldStageConfig(frame=frame)})
