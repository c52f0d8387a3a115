"""Test material for the per-box stages: a tiny synthetic video and a stand-in `tracklets` stage.

The real `tracklets` stage (the lead's) is not needed: a fake one returns fixed rows in the shared
tracklets schema, so pose2d/features run through the real runner and store.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa

from video2mesh.pipeline.artifacts import Artifact
from video2mesh.pipeline.assets import AssetRegistry
from video2mesh.pipeline.runner import Runner
from video2mesh.pipeline.stage import Chunk, Context, Stage
from video2mesh.pipeline.store import ArtifactStore
from video2mesh.stages import all_assets
from video2mesh.stages import probe

TRACKLETS = Artifact("tracklets", 1, pa.schema([
    ("frame", pa.int64()), ("track_id", pa.int32()),
    ("x1", pa.float32()), ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32()),
    ("score", pa.float32()), ("cx", pa.float32()), ("cy", pa.float32()), ("side", pa.float32()),
    ("interpolated", pa.bool_()),
]))

N_FRAMES, WIDTH, HEIGHT = 5, 160, 120


def write_video(path: Path) -> Path:
    """Five 160x120 frames: a textured background and two coloured 'people' moving right."""
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8), (7, 7), 0)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (WIDTH, HEIGHT))
    for f in range(N_FRAMES):
        img = background.copy()
        cv2.rectangle(img, (20 + 4 * f, 20), (60 + 4 * f, 100), (40, 200, 90), -1)
        cv2.rectangle(img, (100 - 3 * f, 30), (130 - 3 * f, 110), (220, 60, 30), -1)
        out.write(img)
    out.release()
    return path


def tracklet_rows() -> pd.DataFrame:
    """Track 0 on every frame, track 1 on frames 1..3 (one box partly outside the frame)."""
    rows = []
    for f in range(N_FRAMES):
        boxes = [(0, 20 + 4 * f, 20, 60 + 4 * f, 100)]
        if 1 <= f <= 3:
            boxes.append((1, 100 - 3 * f, 30, 130 - 3 * f, 125))
        for tid, x1, y1, x2, y2 in boxes:
            w, h = x2 - x1, y2 - y1
            rows.append(dict(frame=f, track_id=tid, x1=x1, y1=y1, x2=x2, y2=y2, score=0.9,
                             cx=(x1 + x2) / 2, cy=(y1 + y2) / 2, side=max(w, h), interpolated=False))
    # unsorted, as a stage must not rely on its input's row order
    return pd.DataFrame(rows).iloc[::-1].reset_index(drop=True)


@dataclass(frozen=True)
class FakeTrackletsConfig:
    pass


def _tracklets(ctx: Context, cfg: FakeTrackletsConfig, chunk: Chunk) -> pd.DataFrame:
    return tracklet_rows()


FAKE_TRACKLETS = Stage(name="tracklets", version=1, config=FakeTrackletsConfig, output=TRACKLETS,
                       compute=_tracklets, inputs=("probe",))


def runner(tmp_path: Path, stage: Stage, weights: dict[str, Path], config=None) -> Runner:
    """A runner over probe -> fake tracklets -> `stage`, with a store in `tmp_path`."""
    registry = AssetRegistry(all_assets(), models_dir=tmp_path / "models", overrides=weights)
    return Runner(stages={"probe": probe.STAGE, "tracklets": FAKE_TRACKLETS, stage.name: stage},
                  store=ArtifactStore(tmp_path / "store"), registry=registry,
                  configs={stage.name: config} if config is not None else {})


def read_frames_rgb(path: Path) -> list[np.ndarray]:
    """Every frame of the video, decoded with OpenCV directly (not through the pipeline)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames

