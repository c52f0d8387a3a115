"""homography: per track and frame, the homography from frame t-1 to t (the paper's dynamic feature).

Dense flow is computed once per successive frame pair for the whole frame, at a working resolution,
and shared by every track present in both frames; it is not stored. Per track, a regular grid inside
its box at frame t-1 (or the whole frame, as You2Me does for camera motion) displaced by the flow
gives correspondences, and a DLT (video2mesh.models.maths.geometry) gives H with H[0,0] = 1. A track's first frame,
a box outside the image, too few usable points or a degenerate fit give the identity with
valid=False. `video2mesh.models.maths.geometry.homography_stacks` turns a track's rows into the 135-d stacks d_t
(the mesh stage does so as it streams).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from video2mesh.models.nets import flow as flowlib
from video2mesh.models.maths.geometry import box_grid, dlt_homography_np
from video2mesh.pipeline.artifacts import Artifact, fixed
from video2mesh.pipeline.assets import Asset
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.errors import ConfigError
from video2mesh.pipeline.stage import Chunk, Context, Stage, frame_chunks

log = logging.getLogger(__name__)

HOMOGRAPHY = Artifact(
    "homography",
    version=1,
    schema=pa.schema([
        ("frame", pa.int64()),
        ("track_id", pa.int32()),
        ("h", fixed(9)),
        ("valid", pa.bool_()),
    ]),
    doc="Row-major H (9) mapping frame-1 to frame in image pixels, H[0,0] = 1; identity where valid is false.",
)

_OFFLINE = "Without this file (e.g. offline), run with `--set homography.backend=dis` (OpenCV DIS flow, no weights)."
ASSETS = (
    Asset(
        name="raft_large",
        filename="raft_large_C_T_SKHT_V2-ff5fadd5.pth",
        source="torchvision RAFT large, weights C_T_SKHT_V2 (torchvision's default for raft_large)",
        licence="BSD-3-Clause (torchvision)",
        url="https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth",
        instructions="The file name's ff5fadd5 is the start of its sha256. " + _OFFLINE,
        used_by=("homography",),
    ),
    Asset(
        name="raft_small",
        filename="raft_small_C_T_V2-01064c6d.pth",
        source="torchvision RAFT small, weights C_T_V2 (torchvision's default for raft_small)",
        licence="BSD-3-Clause (torchvision)",
        url="https://download.pytorch.org/models/raft_small_C_T_V2-01064c6d.pth",
        instructions="The file name's 01064c6d is the start of its sha256. " + _OFFLINE,
        used_by=("homography",),
    ),
)
RAFT_BACKENDS = ("raft_large", "raft_small")


@dataclass(frozen=True)
class HomographyConfig:
    """How flow is computed and where the correspondences are taken."""

    # DIS by default: no weights, ~24 pairs/s at 512 px on 2 CPU cores, where RAFT large (the
    # paper's flow; `v2m models fetch raft_large`, then --set homography.backend=raft_large) runs
    # ~0.1 pairs/s on a CPU. On a GPU, RAFT large is the better choice.
    backend: Literal["raft_large", "raft_small", "dis", "ptlflow"] = "dis"
    # Long side of the flow resolution (multiple of 8 for RAFT), chosen for throughput: RAFT's
    # all-pairs correlation grows with the square of the pixel count (512x288: 21 MB, 1920x1080:
    # 4.2 GB) and a person box stays ~100-300 px tall at 512.
    work_long_side: Annotated[int, Range(16, 8192)] = 512
    raft_iterations: Annotated[int, Range(1, 1000)] = 12  # torchvision's default number of flow updates
    dis_preset: Literal["ultrafast", "fast", "medium"] = "medium"
    ptlflow_model: str = "raft"
    ptlflow_ckpt: str = "things"
    region: Literal["box", "frame"] = "box"   # "frame": camera motion, as You2Me
    grid: Annotated[int, Range(2, 1000)] = 17  # grid x grid points (You2Me: 17 x 17)
    min_points: Annotated[int, Range(4, 1_000_000)] = 16  # fewer usable points: a sliver at the border, unreliable
    min_box_px: Annotated[float, Range(0, None)] = 4.0  # boxes narrower than this after clipping to the image are unusable
    batch_pairs: Annotated[int, Range(1, 1024)] = 4  # frame pairs per flow call
    chunk_frames: Annotated[int, Range(1, 65536)] = 256

    def __post_init__(self) -> None:
        if self.backend in RAFT_BACKENDS and self.work_long_side % flowlib.RAFT_MULTIPLE:
            raise ValueError(f"work_long_side must be a multiple of {flowlib.RAFT_MULTIPLE} for RAFT, got {self.work_long_side}")
        if self.work_long_side < 16:
            raise ValueError(f"work_long_side must be >= 16, got {self.work_long_side}")
        if self.grid < 2 or self.min_points < 4 or self.batch_pairs < 1 or self.raft_iterations < 1:
            raise ValueError("grid must be >= 2, min_points >= 4, batch_pairs >= 1 and raft_iterations >= 1")


def assets(cfg: HomographyConfig) -> tuple[str, ...]:
    return (cfg.backend,) if cfg.backend in RAFT_BACKENDS else ()


def flow_size(cfg: HomographyConfig, width: int, height: int) -> tuple[int, int]:
    """(w, h) the flow is computed at."""
    if cfg.backend in RAFT_BACKENDS:
        return flowlib.work_size(width, height, cfg.work_long_side, flowlib.RAFT_MULTIPLE, flowlib.RAFT_MIN_SIDE)
    return flowlib.work_size(width, height, cfg.work_long_side, multiple=1)


def make_estimator(ctx: Context, cfg: HomographyConfig) -> flowlib.FlowEstimator:
    log.info("homography: %s flow at %s on %s", cfg.backend, flow_size(cfg, ctx.video.width, ctx.video.height), ctx.device)
    if cfg.backend == "dis":
        return flowlib.DISFlow(cfg.dis_preset)
    if cfg.backend == "ptlflow":
        try:
            return flowlib.PtlflowFlow(cfg.ptlflow_model, cfg.ptlflow_ckpt, ctx.device)
        except ImportError as e:
            raise ConfigError(str(e)) from e
    model = flowlib.load_raft(cfg.backend, ctx.weight(cfg.backend), ctx.device)
    return flowlib.RaftFlow(model, cfg.raft_iterations, ctx.device)


def correspondences(flow: np.ndarray, boxes: np.ndarray, image_wh: tuple[int, int], cfg: HomographyConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid points in each box of frame t-1 and where the flow takes them in frame t.

    Args:
        flow: (h, w, 2) flow at the working resolution.
        boxes: (K, 4) x1 y1 x2 y2 in image pixels at frame t-1.
        image_wh: (W, H) of the video.

    Returns:
        src, dst: (K, G, 2) image pixels; mask: (K, G) bool, usable points.
    """
    W, H = image_wh
    h, w = flow.shape[:2]
    sx, sy = w / W, h / H
    clipped = np.stack([boxes[:, 0].clip(0, W - 1), boxes[:, 1].clip(0, H - 1),
                        boxes[:, 2].clip(0, W - 1), boxes[:, 3].clip(0, H - 1)], 1)
    usable = ((clipped[:, 2] - clipped[:, 0]) >= cfg.min_box_px) & ((clipped[:, 3] - clipped[:, 1]) >= cfg.min_box_px)
    src = box_grid(clipped, cfg.grid)                                        # (K, G, 2)
    # pixel centres: x_work + 0.5 = (x + 0.5) * sx
    src_w = np.stack([(src[..., 0] + 0.5) * sx - 0.5, (src[..., 1] + 0.5) * sy - 0.5], -1)
    f = flowlib.sample_flow(flow, src_w).astype(np.float64)                   # (K, G, 2), NaN outside
    dst = src + np.stack([f[..., 0] / sx, f[..., 1] / sy], -1)
    inside = (dst[..., 0] >= 0) & (dst[..., 0] <= W - 1) & (dst[..., 1] >= 0) & (dst[..., 1] <= H - 1)
    mask = usable[:, None] & np.isfinite(dst).all(-1) & inside
    return src, dst, mask


def compute(ctx: Context, cfg: HomographyConfig, chunk: Chunk) -> pd.DataFrame:
    start, stop = chunk.start, chunk.stop
    cols = ["frame", "track_id", "x1", "y1", "x2", "y2"]
    tr = ctx.input_frames("tracklets", max(start - 1, 0), stop, columns=cols)
    rows = tr[tr.frame >= start].sort_values(["frame", "track_id"]).reset_index(drop=True)
    ctx_done = 0
    if rows.empty:
        ctx.advance(stop - start)
        return HOMOGRAPHY.empty()
    W, Hh = ctx.video.width, ctx.video.height
    # the track's box at t-1, if the track exists there
    prev = tr.rename(columns={c: c + "_prev" for c in ("x1", "y1", "x2", "y2")}).assign(frame=tr.frame + 1)
    rows = rows.merge(prev, on=["frame", "track_id"], how="left")
    if cfg.region == "frame":
        has_prev = rows.x1_prev.notna().to_numpy()
        rows.loc[has_prev, ["x1_prev", "y1_prev", "x2_prev", "y2_prev"]] = [0.0, 0.0, W - 1.0, Hh - 1.0]
    need = rows.x1_prev.notna().to_numpy()
    n = len(rows)
    h_out = np.tile(np.eye(3, dtype=np.float32).reshape(1, 9), (n, 1))
    valid = np.zeros(n, bool)

    pair_frames = np.unique(rows.frame.to_numpy()[need])                     # t with a pair (t-1, t)
    if len(pair_frames):
        est = ctx.memo(f"flow:{cfg.backend}", lambda: make_estimator(ctx, cfg))
        size = flow_size(cfg, W, Hh)
        boxes_prev = rows[["x1_prev", "y1_prev", "x2_prev", "y2_prev"]].to_numpy(np.float64)
        frame_of_row = rows.frame.to_numpy()
        src_all = np.zeros((n, cfg.grid * cfg.grid, 2))
        dst_all = np.zeros_like(src_all)
        mask_all = np.zeros((n, cfg.grid * cfg.grid), bool)
        wanted = set(pair_frames.tolist())
        batch: list[tuple[int, np.ndarray, np.ndarray]] = []

        def flush() -> None:
            if not batch:
                return
            flows = est(np.stack([b[1] for b in batch]), np.stack([b[2] for b in batch]))
            for (t, _, _), fl in zip(batch, flows):
                idx = np.flatnonzero(need & (frame_of_row == t))
                if cfg.region == "frame":  # one fit per frame, shared by its tracks
                    s, d, m = correspondences(fl, boxes_prev[idx[:1]], (W, Hh), cfg)
                    s, d, m = (np.repeat(a, len(idx), 0) for a in (s, d, m))
                else:
                    s, d, m = correspondences(fl, boxes_prev[idx], (W, Hh), cfg)
                src_all[idx], dst_all[idx], mask_all[idx] = s, d, m
            batch.clear()

        # The previous chunk's last frame is kept, so the next chunk need not seek back one frame
        # (the decoder cannot step back: it would reopen the file and decode from frame 0).
        carry = ctx.memo("homography:last_frame", dict)
        first = int(pair_frames[0]) - 1
        last_img = None
        if carry.get("t") == first and carry.get("size") == size:
            last_img, first = carry["img"], first + 1
        for t, frame in ctx.frames(first, int(pair_frames[-1]) + 1, rgb=False):
            img = flowlib.resize_rgb(frame, size)
            carry.update(t=t, img=img, size=size)
            if t in wanted and last_img is not None:
                batch.append((t, last_img, img))
                if len(batch) >= cfg.batch_pairs:
                    flush()
            last_img = img
            if t >= start:
                ctx.advance(1)
                ctx_done += 1
        flush()
        rows_idx = np.flatnonzero(need)
        # numpy's DLT: the points are on the CPU already and it ran ~10x faster than torch's
        # on 2 busy cores (benchmarks/bench_flow.py); both give the same H.
        H, ok = dlt_homography_np(src_all[rows_idx], dst_all[rows_idx], mask_all[rows_idx], min_points=cfg.min_points)
        h_out[rows_idx] = H.reshape(-1, 9).astype(np.float32)
        valid[rows_idx] = ok
    ctx.advance(max(stop - start - ctx_done, 0))
    return pd.DataFrame({
        "frame": rows.frame.to_numpy(np.int64),
        "track_id": rows.track_id.to_numpy(np.int32),
        "h": list(h_out),
        "valid": valid,
    })


def plan(ctx: Context, cfg: HomographyConfig) -> list[Chunk]:
    return frame_chunks(ctx.video.n_frames, cfg.chunk_frames)


STAGE = Stage(
    name="homography",
    version=1,
    config=HomographyConfig,
    output=HOMOGRAPHY,
    compute=compute,
    inputs=("probe", "tracklets"),
    assets=assets,
    plan=plan,
    doc="per-track homographies frame t-1 -> t from dense flow on a grid in the box (DLT, H[0,0] = 1)",
)
