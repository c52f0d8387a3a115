"""appearance: a colour descriptor of every tracked box, read from the frames once (chunked, resumable).

`tracklets` stitches pieces of the same person with it after an occlusion or a missed stretch; the
tracker itself runs over stored boxes only (`tracks`), so this is the one place identities see pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
import pandas as pd
import pyarrow as pa

from video2mesh.pipeline.artifacts import Artifact, fixed
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.stage import Chunk, Context, Stage, frame_chunks

from ._appearance import DIM, box_descriptor, covered_fraction, outside_fraction

APPEARANCE = Artifact(
    "appearance",
    version=1,
    schema=pa.schema([
        ("frame", pa.int64()),
        ("track_id", pa.int32()),
        ("covered", pa.float32()),
        ("desc", fixed(DIM)),
    ]),
    doc="Per `tracks` row: share of the box hidden (covered by people in front, or outside the image), and "
        "torso/legs HSV histograms (stages/_appearance.py).",
)


@dataclass(frozen=True)
class AppearanceConfig:
    chunk_frames: Annotated[int, Range(1, 65536)] = 256


def plan(ctx: Context, cfg: AppearanceConfig) -> list[Chunk]:
    return frame_chunks(ctx.video.n_frames, cfg.chunk_frames)


def compute(ctx: Context, cfg: AppearanceConfig, chunk: Chunk) -> pd.DataFrame:
    tr = ctx.input_frames("tracks", chunk.start, chunk.stop, columns=["frame", "track_id", "x1", "y1", "x2", "y2"])
    by_frame = {int(f): g for f, g in tr.groupby("frame", sort=True)}
    out = []
    for idx, frame in ctx.frames(chunk.start, chunk.stop):
        ctx.advance(1)
        g = by_frame.get(idx)
        if g is None:
            continue
        boxes = g[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
        cov = np.maximum(covered_fraction(boxes), outside_fraction(boxes, frame.shape[1], frame.shape[0]))
        for tid, box, c in zip(g.track_id.to_numpy(), boxes, cov):
            out.append((idx, int(tid), float(c), box_descriptor(frame, box)))
    if not out:
        return APPEARANCE.empty()
    return pd.DataFrame(out, columns=APPEARANCE.schema.names).astype({"frame": "int64", "track_id": "int32"})


STAGE = Stage(name="appearance", version=3, config=AppearanceConfig, output=APPEARANCE, compute=compute,
              inputs=("probe", "tracks"), plan=plan, doc="colour descriptor of each tracked box (for stitching)")
