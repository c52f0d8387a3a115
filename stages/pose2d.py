"""pose2d: HRNet-W32 COCO-17 keypoints for every tracklet box (top-down, one crop per frame and track)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from video2mesh.models.nets import hrnet
from video2mesh.pipeline.artifacts import Artifact, fixed
from video2mesh.pipeline.assets import Asset
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.errors import AssetMissing
from video2mesh.pipeline.stage import Chunk, Context, Stage, frame_chunks

from ._crops import DTYPES, check_count, chunk_rows, crop_batches

POSE2D = Artifact(
    "pose2d",
    version=1,
    schema=pa.schema([
        ("frame", pa.int64()),
        ("track_id", pa.int32()),
        ("keypoints", fixed(51)),
    ]),
    doc="One row per frame and track: 17 COCO keypoints x (x px, y px, score), flattened row-major.",
)

ASSETS = (
    Asset(
        name="hrnet_w32_coco",
        filename="td-hm_hrnet-w32_8xb64-210e_coco-256x192-81c58e40_20220909.pth",
        source="MMPose model zoo, td-hm_hrnet-w32_8xb64-210e_coco-256x192 (HRNet, Sun et al. CVPR 2019)",
        licence="Apache-2.0 (MMPose)",
        url="https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/topdown_heatmap/coco/"
            "td-hm_hrnet-w32_8xb64-210e_coco-256x192-81c58e40_20220909.pth",
        instructions="The mmpose 0.x file hrnet_w32_coco_256x192-c78dce93_20200708.pth and the original HRNet "
                     "repository's pose_hrnet_w32_256x192.pth (MIT) load too: pass it with "
                     "--weights hrnet_w32_coco=PATH.",
        used_by=("pose2d",),
    ),
)

@dataclass(frozen=True)
class Pose2DConfig:
    chunk_frames: Annotated[int, Range(1, 65536)] = 256
    batch_size: Annotated[int, Range(1, 4096)] = 32
    flip_test: bool = True           # mmpose's test setting for this checkpoint
    padding: Annotated[float, Range(0, 10, lo_open=True)] = 1.25  # box growth before the 3:4 crop (mmpose GetBBoxCenterScale)
    dtype: Literal["float32", "float16"] = "float32"   # float16 only pays on a GPU


def write_random_checkpoint(path, seed: int = 0):
    """An HRNet-W32 checkpoint with random weights in mmpose 1.x's layout ({'meta', 'state_dict'} with
    backbone./head. keys), for tests and benchmarks: the compute cost is real, the keypoints mean nothing."""
    torch.manual_seed(seed)
    net = hrnet.PoseHRNet()
    torch.save({"meta": {"mmpose_version": "1.x layout, random weights"}, "state_dict": net.state_dict()}, path)
    return path


def _network(ctx: Context, cfg: Pose2DConfig) -> torch.nn.Module:
    path = ctx.weight("hrnet_w32_coco")
    try:
        return hrnet.load_hrnet(path, ctx.device, DTYPES[cfg.dtype])
    except hrnet.CheckpointMismatch as e:
        raise AssetMissing(f"{path} is not an HRNet-W32 COCO 256x192 checkpoint: {e}. "
                           f"Use the file named by `v2m models list` for hrnet_w32_coco.") from e


def compute(ctx: Context, cfg: Pose2DConfig, chunk: Chunk) -> pd.DataFrame:
    """Keypoints for the tracklet rows of frames [chunk.start, chunk.stop)."""
    rows = chunk_rows(ctx, chunk, ["frame", "track_id", "x1", "y1", "x2", "y2"])
    if rows.empty:
        ctx.advance(chunk.stop - chunk.start)
        return POSE2D.empty()
    net = ctx.memo("hrnet", lambda: _network(ctx, cfg))
    dtype = DTYPES[cfg.dtype]

    def crop(image: np.ndarray, g: pd.DataFrame) -> tuple[np.ndarray, ...]:
        return hrnet.crop(image, g[["x1", "y1", "x2", "y2"]].to_numpy(np.float64), cfg.padding)

    out = []
    for crops, center, scale in crop_batches(ctx, rows, chunk, cfg.batch_size, crop):
        locs, vals = hrnet.decode_heatmaps(hrnet.predict_heatmaps(net, crops, cfg.flip_test, cfg.batch_size, ctx.device, dtype))
        out.append(np.concatenate([hrnet.heatmap_to_image(locs, center, scale), vals[..., None]], -1))
    keypoints = np.concatenate(out) if out else np.zeros((0, 17, 3))
    check_count(len(keypoints), rows, chunk)
    return pd.DataFrame({"frame": rows.frame.to_numpy(np.int64), "track_id": rows.track_id.to_numpy(np.int32),
                         "keypoints": list(keypoints.reshape(-1, 51).astype(np.float32))})


STAGE = Stage(
    name="pose2d", version=1, config=Pose2DConfig, output=POSE2D, compute=compute,
    inputs=("probe", "tracklets"),
    assets=lambda cfg: ("hrnet_w32_coco",),
    plan=lambda ctx, cfg: frame_chunks(ctx.video.n_frames, cfg.chunk_frames),
    doc="HRNet-W32 COCO-17 keypoints per tracklet box",
)
