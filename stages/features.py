"""features: ResNet-50 (SPIN's HMR backbone) 2048-d image features for every tracklet box.

Precision: stored as float16. A 2048-d feature is then 4 KiB per frame and track instead of 8 KiB
(the largest per-frame artifact of the pipeline), and float16 keeps a relative error below 1e-3
(tests/stages/test_features.py measures it on real activations), far under the frame-to-frame
variation of the features that the temporal encoder sees. Consumers convert back to float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from video2mesh.models.nets import backbone
from video2mesh.pipeline.artifacts import Artifact, fixed
from video2mesh.pipeline.assets import Asset
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.errors import AssetMissing
from video2mesh.pipeline.stage import Chunk, Context, Stage, frame_chunks

from ._crops import DTYPES, check_count, chunk_rows, crop_batches

FEATURES = Artifact(
    "features",
    version=1,
    schema=pa.schema([
        ("frame", pa.int64()),
        ("track_id", pa.int32()),
        ("feature", fixed(backbone.FEATURE_DIM, pa.float16())),
    ]),
    doc="One row per frame and track: the 2048-d ResNet-50 feature of the 224x224 crop, float16.",
)

ASSETS = (
    Asset(
        name="resnet50_spin",
        filename="spin_model_checkpoint.pt",
        source="SPIN (Kolotouros et al. ICCV 2019) HMR checkpoint data/model_checkpoint.pt; VIBE ships the same "
               "network as data/vibe_data/spin_model_checkpoint.pth.tar",
        licence="BSD-3-Clause (SPIN repository, University of Pennsylvania / MPI-IS); the network was trained "
                "with SMPL fits, see SPIN's README for the terms of its data",
        url="http://visiondata.cis.upenn.edu/spin/model_checkpoint.pt",
        instructions="This is the file SPIN's fetch_data.sh downloads (github.com/nkolot/SPIN). VIBE's "
                     "spin_model_checkpoint.pth.tar (scripts/prepare_data.sh in github.com/mkocabas/VIBE) works "
                     "too, as does a torchvision resnet50 state_dict (ImageNet features, not HMR ones): pass "
                     "either with --weights resnet50_spin=PATH.",
        used_by=("features",),
    ),
)

@dataclass(frozen=True)
class FeaturesConfig:
    chunk_frames: Annotated[int, Range(1, 65536)] = 256
    batch_size: Annotated[int, Range(1, 4096)] = 32
    scale: Annotated[float, Range(0, 10, lo_open=True)] = 1.1  # crop side = tracklet side x 1.1 (VIBE demo's bbox_scale)
    dtype: Literal["float32", "float16"] = "float32"   # network precision; float16 only pays on a GPU


def spin_layout(resnet_state: dict[str, torch.Tensor]) -> dict:
    """SPIN's data/model_checkpoint.pt layout around a torchvision resnet50 state_dict: {'model': HMR
    state_dict, 'optimizer', 'epoch'}; the HMR regressor (fc1 on [feature, 144 pose, 10 shape, 3 cam])
    and its mean-parameter buffers ride along (zeros here), torchvision's classifier `fc.` does not."""
    hmr = {k: v for k, v in resnet_state.items() if not k.startswith("fc.")}
    z = torch.zeros
    hmr.update({"fc1.weight": z(1024, backbone.FEATURE_DIM + 157), "fc1.bias": z(1024),
                "fc2.weight": z(1024, 1024), "fc2.bias": z(1024),
                "decpose.weight": z(144, 1024), "decpose.bias": z(144),
                "decshape.weight": z(10, 1024), "decshape.bias": z(10),
                "deccam.weight": z(3, 1024), "deccam.bias": z(3),
                "init_pose": z(1, 144), "init_shape": z(1, 10), "init_cam": z(1, 3)})
    return {"model": hmr, "optimizer": {}, "epoch": 0}


def write_random_checkpoint(path, seed: int = 0):
    """A ResNet-50 with random weights in SPIN's checkpoint layout (`spin_layout`), for tests and
    benchmarks: the compute cost is real, the features mean nothing."""
    import torchvision

    torch.manual_seed(seed)
    torch.save(spin_layout(torchvision.models.resnet50(weights=None).state_dict()), path)
    return path


def _network(ctx: Context, cfg: FeaturesConfig) -> torch.nn.Module:
    path = ctx.weight("resnet50_spin")
    try:
        return backbone.load_resnet50(path, ctx.device, DTYPES[cfg.dtype])
    except backbone.CheckpointMismatch as e:
        raise AssetMissing(f"{path} is not a SPIN/VIBE HMR or torchvision ResNet-50 checkpoint: {e}. "
                           f"See `v2m models list` for resnet50_spin.") from e


def compute(ctx: Context, cfg: FeaturesConfig, chunk: Chunk) -> pd.DataFrame:
    """Features for the tracklet rows of frames [chunk.start, chunk.stop)."""
    rows = chunk_rows(ctx, chunk, ["frame", "track_id", "cx", "cy", "side"])
    if rows.empty:
        ctx.advance(chunk.stop - chunk.start)
        return FEATURES.empty()
    net = ctx.memo("resnet50", lambda: _network(ctx, cfg))

    def crop(image: np.ndarray, g: pd.DataFrame) -> tuple[np.ndarray, ...]:
        return (backbone.crop_square(image, g[["cx", "cy"]].to_numpy(np.float64), g.side.to_numpy(np.float64) * cfg.scale),)

    out = [backbone.extract_features(net, crops, cfg.batch_size, ctx.device, DTYPES[cfg.dtype])
           for (crops,) in crop_batches(ctx, rows, chunk, cfg.batch_size, crop)]
    feats = np.concatenate(out) if out else np.zeros((0, backbone.FEATURE_DIM), np.float32)
    check_count(len(feats), rows, chunk)
    if len(feats) and not np.abs(feats).max() < np.finfo(np.float16).max:
        raise RuntimeError(f"features reach {np.abs(feats).max():.3g}, beyond float16 (65504): "
                           f"the weight file is not a trained ResNet-50, or its BatchNorm statistics are missing")
    return pd.DataFrame({"frame": rows.frame.to_numpy(np.int64), "track_id": rows.track_id.to_numpy(np.int32),
                         "feature": list(feats.astype(np.float16))})


STAGE = Stage(
    name="features", version=1, config=FeaturesConfig, output=FEATURES, compute=compute,
    inputs=("probe", "tracklets"),
    assets=lambda cfg: ("resnet50_spin",),
    plan=lambda ctx, cfg: frame_chunks(ctx.video.n_frames, cfg.chunk_frames),
    doc="ResNet-50 (HMR) 2048-d features per tracklet box",
)
