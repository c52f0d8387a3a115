"""Shared by the per-box stages: walk the frames of a chunk once, crop every tracklet box, batch the crops."""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import pandas as pd
import torch

from video2mesh.pipeline.stage import Chunk, Context

# Network precision by config name (float16 only pays on a GPU).
DTYPES = {"float32": torch.float32, "float16": torch.float16}


def crop_batches(ctx: Context, rows: pd.DataFrame, chunk: Chunk, batch_size: int,
                 crop: Callable[[np.ndarray, pd.DataFrame], tuple[np.ndarray, ...]]) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield tuples of arrays (crops, per-crop geometry...) of at least `batch_size` crops (the last fewer).

    `rows` are tracklet rows of the chunk sorted by frame; `crop(image_rgb, rows_of_frame)` returns
    arrays whose first axis runs over those rows. The crops come out in the order of `rows`, so
    results can be assigned back row by row. Frames are decoded once, only up to the last box, and
    only cropped boxes are kept in memory (a frame at a time). Reports progress per frame.
    """
    by_frame = dict(iter(rows.groupby("frame", sort=True)))
    last = min(int(rows.frame.max()) + 1, chunk.stop)
    pending: list[tuple[np.ndarray, ...]] = []
    n_pending = 0
    for f, image in ctx.frames(chunk.start, last, rgb=True):
        g = by_frame.get(f)
        if g is not None:
            pending.append(crop(image, g))
            n_pending += len(g)
            if n_pending >= batch_size:
                yield tuple(np.concatenate(p) for p in zip(*pending))
                pending, n_pending = [], 0
        ctx.advance(1)
    if pending:
        yield tuple(np.concatenate(p) for p in zip(*pending))
    ctx.advance(chunk.stop - last)


def chunk_rows(ctx: Context, chunk: Chunk, columns: list[str]) -> pd.DataFrame:
    """Tracklet rows of the chunk's frames, sorted by (frame, track_id)."""
    rows = ctx.input_frames("tracklets", chunk.start, chunk.stop, columns=columns)
    return rows.sort_values(["frame", "track_id"], kind="stable").reset_index(drop=True)


def check_count(n_done: int, rows: pd.DataFrame, chunk: Chunk) -> None:
    """Every row got a result, or the video ended before its tracklets did."""
    if n_done != len(rows):
        raise RuntimeError(f"frames {chunk.start}..{chunk.stop}: results for {n_done} of {len(rows)} tracklet boxes; "
                           f"the video ended before its tracklets (was it changed after tracking?)")
