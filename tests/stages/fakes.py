"""Fake upstream stages (tracklets, mesh) with the shared schemas, for export/report tests.

The fake mesh stage makes smooth synthetic SMPL motion: an upright person seen by the camera
(root turned 180 degrees about X, as in camera axes with y down), swaying limbs, walking sideways.
joints3d come from smplx on the synthetic body, with `transl` = trans (camera axes, metres).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from scipy.spatial.transform import Rotation

from video2mesh.pipeline.artifacts import Artifact, fixed
from video2mesh.pipeline.assets import Asset, AssetRegistry
from video2mesh.pipeline.runner import Runner
from video2mesh.pipeline.stage import Chunk, Context, Stage
from video2mesh.pipeline.store import ArtifactStore
from video2mesh.stages import probe
from video2mesh.stages._smpl import load_smpl_arrays, smpl_layer

MESH = Artifact("mesh", 1, pa.schema([
    ("frame", pa.int64()), ("track_id", pa.int32()), ("pose", fixed(72)), ("betas", fixed(10)),
    ("betas_track", fixed(10)), ("cam_crop", fixed(3)), ("cam_orig", fixed(4)), ("trans", fixed(3)),
    ("joints3d", fixed(72)), ("coco3d", fixed(51)), ("joints2d", fixed(48)), ("coco2d", fixed(34)),
    ("uncertainty", pa.float32()), ("pose_prev", fixed(72)), ("pose_next", fixed(72)),
]))
TRACKLETS = Artifact("tracklets", 1, pa.schema([
    ("frame", pa.int64()), ("track_id", pa.int32()), ("x1", pa.float32()), ("y1", pa.float32()),
    ("x2", pa.float32()), ("y2", pa.float32()), ("score", pa.float32()), ("cx", pa.float32()),
    ("cy", pa.float32()), ("side", pa.float32()), ("interpolated", pa.bool_()),
]))
# track id -> (first frame, last frame + 1)
TRACKS = {0: (0, 12), 1: (3, 10)}
W, H, FPS = 96, 64, 25.0


def write_video(path: Path, n: int = 12) -> Path:
    """A tiny mp4 (W x H, FPS) whose frames differ, so the probe and frame reader have something real."""
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for i in range(n):
        img = np.full((H, W, 3), 40 + 10 * i, np.uint8)
        cv2.putText(img, str(i), (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
        vw.write(img)
    vw.release()
    return path


def synthetic_motion(tid: int, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth pose (T, 72), trans (T, 3) camera metres and betas (10,) for one track."""
    t = frames.astype(np.float64) / FPS
    rng = np.random.default_rng(tid)
    amp = rng.uniform(0.1, 0.5, 69)
    phase = rng.uniform(0, 2 * np.pi, 69)
    body = amp * np.sin(2 * np.pi * 0.7 * t[:, None] + phase)               # (T, 69)
    yaw = Rotation.from_rotvec(np.stack([0 * t, 0.6 * np.sin(t), 0 * t], 1))
    root = (Rotation.from_rotvec([np.pi, 0, 0]) * yaw).as_rotvec()            # upright in camera axes
    pose = np.concatenate([root, body], 1)
    trans = np.stack([-0.4 + 0.8 * tid + 0.3 * t, 0.2 + 0.02 * np.sin(3 * t), 4.0 + 0.1 * t], 1)
    betas = rng.normal(0, 1, 10)
    return pose, trans, betas


@dataclass(frozen=True)
class FakeConfig:
    """The fakes have no parameters."""


def _mesh(ctx: Context, cfg: FakeConfig, chunk: Chunk) -> pd.DataFrame:
    arrays = load_smpl_arrays(ctx.weight("smpl_neutral"))
    layer = smpl_layer(arrays)
    rows = []
    for tid, (a, b) in TRACKS.items():
        frames = np.arange(a, b)
        pose, trans, betas = synthetic_motion(tid, frames)
        with torch.no_grad():
            out = layer(global_orient=torch.tensor(pose[:, :3], dtype=torch.float32),
                        body_pose=torch.tensor(pose[:, 3:], dtype=torch.float32),
                        betas=torch.tensor(betas, dtype=torch.float32).expand(len(frames), -1),
                        transl=torch.tensor(trans, dtype=torch.float32))
        j = out.joints[:, :24].numpy()
        for i, f in enumerate(frames):
            rows.append({
                "frame": int(f), "track_id": tid, "pose": pose[i], "betas": betas + 0.01 * i, "betas_track": betas,
                "cam_crop": [0.9, 0.0, 0.1], "cam_orig": [0.3, 0.45, 0.1, 0.2], "trans": trans[i],
                "joints3d": j[i].reshape(-1), "coco3d": np.zeros(51), "joints2d": np.full(48, 30.0) + i,
                "coco2d": np.zeros(34), "uncertainty": 0.1 + 0.01 * i, "pose_prev": pose[i], "pose_next": pose[i],
            })
    return pd.DataFrame(rows)


def _tracklets(ctx: Context, cfg: FakeConfig, chunk: Chunk) -> pd.DataFrame:
    rows = []
    for tid, (a, b) in TRACKS.items():
        for f in range(a, b):
            interp = f == a + 2
            rows.append({"frame": f, "track_id": tid, "x1": 10.0 + 40 * tid, "y1": 5.0, "x2": 40.0 + 40 * tid, "y2": 60.0,
                         "score": 0.0 if interp else (0.2 if f == a + 4 else 0.9), "cx": 25.0 + 40 * tid, "cy": 32.5,
                         "side": 55.0, "interpolated": interp})
    return pd.DataFrame(rows)


FAKE_MESH = Stage("mesh", 1, FakeConfig, MESH, _mesh, inputs=("probe",), assets=lambda c: ("smpl_neutral",))
FAKE_TRACKLETS = Stage("tracklets", 1, FakeConfig, TRACKLETS, _tracklets, inputs=("probe",))


def make_runner(tmp_path: Path, smpl_dir: Path, extra: dict[str, Stage], configs: dict | None = None) -> Runner:
    assets = [Asset(f"smpl_{g}", f"SMPL_{g.upper()}.pkl", "synthetic test body", "none")
              for g in ("neutral", "male", "female")]
    stages = {"probe": probe.STAGE, "tracklets": FAKE_TRACKLETS, "mesh": FAKE_MESH, **extra}
    return Runner(stages=stages, store=ArtifactStore(tmp_path / "cache"),
                  registry=AssetRegistry(assets, models_dir=smpl_dir), configs=configs or {})
