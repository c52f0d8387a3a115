"""blazepose: 2D + 3D keypoints per frame and tracklet from MediaPipe's BlazePose networks.

The licence-free keypoint backend (see stages/licence_free.py). Each tracklet of the main path's
tracker is followed on its own: its box seeds a detector run inside the box, the detection gives a
rotated ROI, and from then on the landmark model's own alignment points give the next frame's ROI
(MediaPipe's tracking mode). The detector runs again (re-detection) when the pose flag drops below
`min_pose_score` or when the tracked ROI leaves the tracker's box, which keeps each tracklet on
its own person when people cross.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import pandas as pd
import pyarrow as pa

from video2mesh.models.runners.blazepose import COCO_FROM_BLAZEPOSE, N_LANDMARKS, BlazePose, Roi, roi_from_box
from video2mesh.pipeline.artifacts import Artifact, fixed
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.stage import Chunk, Context, Stage, frame_chunks

from .licence_free import POSE_ASSETS as ASSETS, WHEEL_MEMBERS  # noqa: F401  (this stage's weight files, declared with their set-up)

log = logging.getLogger(__name__)

BLAZEPOSE = Artifact(
    "blazepose",
    version=1,
    schema=pa.schema([
        ("frame", pa.int64()),
        ("track_id", pa.int32()),
        ("keypoints", fixed(51)),      # COCO-17 x (x px, y px, score), like pose2d
        ("landmarks", fixed(N_LANDMARKS * 5)),  # 33 x (x px, y px, z px-scale, visibility, presence)
        ("world", fixed(N_LANDMARKS * 3)),      # 33 x (x, y, z) metres, hip-centred, image axes
        ("pose_score", pa.float32()),  # the landmark model's pose flag (person present in the ROI)
        ("roi", fixed(4)),             # cx px, cy px, side px, rotation rad of the crop used
        ("redetected", pa.bool_()),    # the ROI came from the detector / the tracker box, not tracking
    ]),
    doc="BlazePose keypoints per frame and tracklet; COCO-17 in `keypoints`, all 33 in `landmarks`.",
)


@dataclass(frozen=True)
class BlazePoseConfig:
    """Parameters of the BlazePose keypoint stage."""

    chunk_frames: Annotated[int, Range(1, 65536)] = 256
    num_threads: Annotated[int, Range(1, 256)] = 2
    min_detection_score: Annotated[float, Range(0, 1)] = 0.5  # MediaPipe's pose detector threshold
    min_pose_score: Annotated[float, Range(0, 1)] = 0.5  # MediaPipe's threshold on the landmark model's pose flag
    seed_scale: Annotated[float, Range(0, 20, lo_open=True)] = 1.5  # detector crop side / tracker box side (the person plus context)
    max_center_drift: Annotated[float, Range(0, 20)] = 0.5  # re-detect when the ROI centre leaves the box by this x box side


def _assets(cfg: BlazePoseConfig) -> tuple[str, ...]:
    return ("blazepose_detector", "blazepose_landmark")


def _plan(ctx: Context, cfg: BlazePoseConfig) -> list[Chunk]:
    return frame_chunks(ctx.video.n_frames, cfg.chunk_frames)


def load_runner(ctx: Context, cfg: BlazePoseConfig) -> BlazePose:
    return ctx.memo("blazepose", lambda: BlazePose(
        ctx.weight("blazepose_detector"), ctx.weight("blazepose_landmark"), num_threads=cfg.num_threads,
        min_detection_score=cfg.min_detection_score))


def seed_roi(net: BlazePose, rgb: np.ndarray, box: np.ndarray, cfg: BlazePoseConfig) -> Roi:
    """ROI for a tracker box (x1, y1, x2, y2): the detection inside a crop around the box whose
    hip centre lies in the box (best score), else an upright ROI around the box."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1, 8.0)
    dets = net.detect(rgb, Roi((x1 + x2) / 2, (y1 + y2) / 2, side * cfg.seed_scale, 0.0))
    for d in dets:
        hx, hy = d.keypoints[0]
        if x1 <= hx <= x2 and y1 <= hy <= y2:
            return d.roi()
    return roi_from_box(x1, y1, x2, y2)


def _drifted(roi: Roi, box: np.ndarray, cfg: BlazePoseConfig) -> bool:
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1, 1.0)
    m = cfg.max_center_drift * side
    outside = not (x1 - m <= roi.cx <= x2 + m and y1 - m <= roi.cy <= y2 + m)
    return outside or not (0.3 * side <= roi.size <= 4.0 * side)


def track_keypoints(net: BlazePose, frames, boxes_by_frame: dict[int, dict[int, np.ndarray]], cfg: BlazePoseConfig,
                    on_frame=None) -> list[dict]:
    """Follow every tracklet through `frames` ((frame, rgb) pairs); one row per (frame, track) box."""
    state: dict[int, Roi] = {}
    rows: list[dict] = []
    for f, rgb in frames:
        for tid, box in sorted(boxes_by_frame.get(f, {}).items()):
            roi, fresh = state.get(tid), False
            if roi is None or _drifted(roi, box, cfg):
                roi, fresh = seed_roi(net, rgb, box, cfg), True
            lm = net.landmarks(rgb, roi)
            if lm.pose_score < cfg.min_pose_score and not fresh:
                roi, fresh = seed_roi(net, rgb, box, cfg), True
                lm = net.landmarks(rgb, roi)
            state[tid] = lm.next_roi() if lm.pose_score >= cfg.min_pose_score else None
            n = N_LANDMARKS
            rows.append({
                "frame": f, "track_id": tid,
                "keypoints": lm.coco17().reshape(-1),
                "landmarks": np.concatenate([lm.image[:n], lm.visibility[:n, None], lm.presence[:n, None]], 1).reshape(-1),
                "world": lm.world[:n].reshape(-1),
                "pose_score": lm.pose_score,
                "roi": roi.as_array(),
                "redetected": fresh,
            })
        if on_frame is not None:
            on_frame()
    return rows


def compute(ctx: Context, cfg: BlazePoseConfig, chunk: Chunk) -> pd.DataFrame:
    if chunk.stop <= chunk.start:
        return BLAZEPOSE.empty()
    tr = ctx.input_frames("tracklets", chunk.start, chunk.stop, columns=["frame", "track_id", "x1", "y1", "x2", "y2"])
    boxes: dict[int, dict[int, np.ndarray]] = {}
    for r in tr.itertuples(index=False):
        boxes.setdefault(int(r.frame), {})[int(r.track_id)] = np.array([r.x1, r.y1, r.x2, r.y2], np.float32)
    if not boxes:
        ctx.advance(chunk.stop - chunk.start)
        return BLAZEPOSE.empty()
    net = load_runner(ctx, cfg)
    rows = track_keypoints(net, ctx.frames(chunk.start, chunk.stop, rgb=True), boxes, cfg, on_frame=ctx.advance)
    if not rows:
        return BLAZEPOSE.empty()
    df = pd.DataFrame(rows)
    df["frame"] = df["frame"].astype(np.int64)
    df["track_id"] = df["track_id"].astype(np.int32)
    df["pose_score"] = df["pose_score"].astype(np.float32)
    return df


STAGE = Stage(name="blazepose", version=1, config=BlazePoseConfig, output=BLAZEPOSE, compute=compute,
              inputs=("probe", "tracklets"), assets=_assets, plan=_plan,
              doc="BlazePose 2D/3D keypoints per tracklet (licence-free path)")

__all__ = ["ASSETS", "BLAZEPOSE", "BlazePoseConfig", "COCO_FROM_BLAZEPOSE", "STAGE", "WHEEL_MEMBERS", "track_keypoints"]
