"""hands: 21 hand landmarks (2D pixels + 3D metres), handedness and presence per tracklet, frame and hand.

The licence-free path's finger input (models/runners/hands.py). Each hand's region comes from the
`blazepose` row of its person (MediaPipe holistic's hand-from-pose rule on the wrist, index and pinky
landmarks), so hands stay with their tracklet whatever the other people do; a hand whose wrist
BlazePose does not see (visibility < `min_wrist_visibility`) is skipped. When the landmark model
finds no hand in that region (presence < `min_presence`) and `palm_fallback` is on, the palm
detector searches a larger upright square about it and the landmark model runs again on the palm
nearest the body's estimate (`source` = "palm"). A hand found is looked at again `refine_passes`
times in the ROI its own landmarks give (MediaPipe's tracking rule), which is much tighter. `--set hands.enabled=false` turns the stage (and so
the finger motion of `fingers` / `fit_export`) off: the artifact is empty and no hand file is needed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import pandas as pd
import pyarrow as pa

from video2mesh.models.runners.blazepose import N_LANDMARKS, Roi
from video2mesh.models.runners.hands import N_HAND, POSE_HAND, HandLandmarks, Hands, roi_from_landmarks, roi_from_pose
from video2mesh.pipeline.artifacts import Artifact, fixed, stack
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.stage import Chunk, Context, Stage, frame_chunks

from .licence_free import HAND_ASSETS as ASSETS  # noqa: F401  (this stage's weight files, declared with their set-up)

log = logging.getLogger(__name__)

HANDS = Artifact(
    "hands",
    version=1,
    schema=pa.schema([
        ("frame", pa.int64()),
        ("track_id", pa.int32()),
        ("side", pa.string()),             # "left" | "right": the person's hand, from BlazePose's arm
        ("landmarks", fixed(N_HAND * 3)),  # 21 x (x px, y px, z px-scale relative to the wrist), MediaPipe's order
        ("world", fixed(N_HAND * 3)),      # 21 x (x, y, z) metres about the hand's centre, image axes
        ("presence", pa.float32()),        # the landmark model's hand flag
        ("right", pa.float32()),           # the model's probability that this is a right hand
        ("roi", fixed(4)),                 # cx px, cy px, side px, rotation rad of the crop used
        ("source", pa.string()),           # "pose" (the body's ROI) | "palm" (the palm detector's)
    ]),
    doc="MediaPipe hand landmarks per tracklet, frame and hand (licence-free path); empty when hands.enabled=false.",
)


@dataclass(frozen=True)
class HandsConfig:
    """Parameters of the hand landmark stage."""

    enabled: bool = True              # false: no hands, fingers stay at Anny's rest pose (the output before hands)
    chunk_frames: Annotated[int, Range(1, 65536)] = 256
    num_threads: Annotated[int, Range(1, 256)] = 2
    min_wrist_visibility: Annotated[float, Range(0, 1)] = 0.1  # MediaPipe holistic's threshold to look for a hand
    min_presence: Annotated[float, Range(0, 1)] = 0.5  # MediaPipe's threshold on the hand flag
    palm_fallback: bool = True        # search with the palm detector when the body's ROI holds no hand
    palm_search_scale: Annotated[float, Range(1, 10)] = 1.5  # palm search square / body-derived hand ROI side
    min_palm_score: Annotated[float, Range(0, 1)] = 0.5      # MediaPipe's palm detector threshold
    refine_passes: Annotated[int, Range(0, 5)] = 1  # re-runs on the ROI of the hand's own landmarks (MediaPipe's tracking
                                      # ROI): the body's ROI is loose; one pass cut the 2D error ~3x on hands_render


def _assets(cfg: HandsConfig) -> tuple[str, ...]:
    return ("hand_palm_detector", "hand_landmark") if cfg.enabled else ()


def _plan(ctx: Context, cfg: HandsConfig) -> list[Chunk]:
    return frame_chunks(ctx.video.n_frames if cfg.enabled else 0, cfg.chunk_frames)


def load_runner(ctx: Context, cfg: HandsConfig) -> Hands:
    return ctx.memo("hands", lambda: Hands(ctx.weight("hand_palm_detector"), ctx.weight("hand_landmark"),
                                           num_threads=cfg.num_threads, min_palm_score=cfg.min_palm_score))


def find_hand(net: Hands, rgb: np.ndarray, body: np.ndarray, side: str, cfg: HandsConfig) -> tuple[HandLandmarks, str] | None:
    """One hand of one person: body (33, 5) BlazePose landmarks (x px, y px, z, visibility, presence).
    None when BlazePose does not see the wrist."""
    w, p, i = POSE_HAND[side]
    if body[w, 3] < cfg.min_wrist_visibility:
        return None
    roi = roi_from_pose(body[w, :2], body[p, :2], body[i, :2])
    hand, source = net.landmarks(rgb, roi), "pose"
    if hand.presence < cfg.min_presence and cfg.palm_fallback:
        palms = net.palms(rgb, Roi(roi.cx, roi.cy, roi.size * cfg.palm_search_scale, 0.0))
        if palms:
            near = min(palms, key=lambda q: float(np.hypot(*(q.box.reshape(2, 2).mean(0) - (roi.cx, roi.cy)))))
            retry = net.landmarks(rgb, near.roi())
            if retry.presence > hand.presence:
                hand, source = retry, "palm"
    for _ in range(cfg.refine_passes if hand.presence >= cfg.min_presence else 0):
        again = net.landmarks(rgb, roi_from_landmarks(hand.image))
        if again.presence < cfg.min_presence:
            break
        hand = again
    return hand, source


def hand_rows(net: Hands, frames, bodies: dict[int, dict[int, np.ndarray]], cfg: HandsConfig, on_frame=None) -> list[dict]:
    """Rows of HANDS for (frame, rgb) pairs; bodies: frame -> track -> (33, 5) landmarks."""
    rows = []
    for f, rgb in frames:
        for tid, body in sorted(bodies.get(f, {}).items()):
            for side in ("left", "right"):
                got = find_hand(net, rgb, body, side, cfg)
                if got is None:
                    continue
                h, source = got
                rows.append({"frame": f, "track_id": tid, "side": side, "landmarks": h.image.reshape(-1),
                             "world": h.world.reshape(-1), "presence": h.presence, "right": h.right,
                             "roi": h.roi.as_array(), "source": source})
        if on_frame is not None:
            on_frame()
    return rows


def compute(ctx: Context, cfg: HandsConfig, chunk: Chunk) -> pd.DataFrame:
    if not cfg.enabled or chunk.stop <= chunk.start:
        return HANDS.empty()
    bp = ctx.input_frames("blazepose", chunk.start, chunk.stop, columns=["frame", "track_id", "landmarks"])
    if bp.empty:
        ctx.advance(chunk.stop - chunk.start)
        return HANDS.empty()
    lms = stack(bp["landmarks"], N_LANDMARKS * 5, np.float64).reshape(-1, N_LANDMARKS, 5)
    bodies: dict[int, dict[int, np.ndarray]] = {}
    for f, tid, lm in zip(bp.frame.to_numpy(), bp.track_id.to_numpy(), lms):
        bodies.setdefault(int(f), {})[int(tid)] = lm
    rows = hand_rows(load_runner(ctx, cfg), ctx.frames(chunk.start, chunk.stop, rgb=True), bodies, cfg, on_frame=ctx.advance)
    if not rows:
        return HANDS.empty()
    df = pd.DataFrame(rows)
    df["frame"] = df["frame"].astype(np.int64)
    df["track_id"] = df["track_id"].astype(np.int32)
    for c in ("presence", "right"):
        df[c] = df[c].astype(np.float32)
    return df


# v2: the refine pass (v1 entries exist in caches of this branch's first runs)
STAGE = Stage(name="hands", version=2, config=HandsConfig, output=HANDS, compute=compute,
              inputs=("probe", "blazepose"), assets=_assets, plan=_plan,
              doc="MediaPipe hand landmarks per tracklet from BlazePose's arms (licence-free path)")

__all__ = ["ASSETS", "HANDS", "HandsConfig", "STAGE", "find_hand", "hand_rows"]
