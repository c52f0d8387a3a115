"""camera_motion: per frame, the background homography from frame t-1 to t, people masked out.

A regular grid over the whole frame, minus every tracklet's box at t-1 (grown by `box_margin`), is
tracked from frame t-1 to t at a working resolution (no weights): by pyramidal Lucas-Kanade with a
forward-backward check (`tracker: lk`, default; models.maths.camera_motion.track_points_lk) or by
sampling OpenCV's dense DIS flow (`tracker: dis`, version 1's; models.nets.flow). A DLT refitted on the
points it explains (models.maths.camera_motion.robust_homography) gives H in image pixels. Why LK: on the
rendered pan DIS reads the tiled floor's motion short (0.91-0.97 of the true one) and the pan's 61.4 deg
chains to 57.0; the same grid tracked by LK chains to 59.6 (docs/accuracy.md, "Camera motion by LK").
The `world` stage turns H into the camera's rotation with the fit's intrinsics (H = K R K^-1).
Each frame is tracked from a keyframe about 1/`key_fps` s earlier, and the pair's H is the quotient of two such
(H(kf -> t) H(kf -> t-1)^-1), so a 60 fps video's tiny per-frame motion is not read short pair after pair.
Frame 0, too few background points or a failed fit give the identity with valid=False.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Literal

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa

from video2mesh.models.maths.camera_motion import background_grid, robust_homography, track_points_lk
from video2mesh.models.nets import flow as flowlib
from video2mesh.pipeline.artifacts import Artifact, fixed
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.stage import Chunk, Context, Stage, frame_chunks

log = logging.getLogger(__name__)

CAMERA_MOTION = Artifact(
    "camera_motion",
    version=1,
    schema=pa.schema([
        ("frame", pa.int64()),
        ("h", fixed(9)),                  # row-major H, frame-1 -> frame, image pixels, H[0,0] = 1
        ("valid", pa.bool_()),
        ("n_points", pa.int32()),         # background points the final fit used
        ("residual_px", pa.float32()),    # their median transfer error, image pixels (NaN if invalid)
    ]),
    doc="Background (people masked) homography per frame, frame t-1 -> t; identity where valid is false.",
)


@dataclass(frozen=True)
class CameraMotionConfig:
    """How the background motion is measured."""

    tracker: Literal["lk", "dis"] = "lk"  # how grid points are followed: Lucas-Kanade, or DIS dense flow sampled
    dis_preset: Literal["ultrafast", "fast", "medium"] = "medium"
    lk_window: Annotated[int, Range(5, 101)] = 21   # LK window side, working-resolution pixels
    lk_levels: Annotated[int, Range(0, 8)] = 3      # LK pyramid levels above the image (motion up to ~window x 2^levels)
    lk_fb_px: Annotated[float, Range(0, 100, lo_open=True)] = 0.5  # forward-backward mismatch that drops a point (work px)
    work_long_side: Annotated[int, Range(16, 8192)] = 512  # flow resolution, as the homography stage (~24 pairs/s on 2 cores)
    grid: Annotated[int, Range(4, 1000)] = 32  # grid x grid points over the frame before masking people out
    box_margin: Annotated[float, Range(0, 10)] = 0.15  # tracklet boxes grown by this share of their size on every side
    min_points: Annotated[int, Range(4, 1_000_000)] = 24  # fewer background points: no estimate for this frame
    chunk_frames: Annotated[int, Range(1, 65536)] = 256
    # Each frame is tracked from a keyframe ~1/key_fps s earlier and the pair's H is the quotient of two such
    # (compute): on the rendered pan, per-pair tracking at 60 fps chained to 0.92 of the true turn (2 px of motion
    # per pair is read short), at 30 fps 0.97, at 15 fps 0.99; from keyframes at 15 per second 0.99 at 30 and 60
    # fps (docs/accuracy.md, "Camera at 60 fps"). 0 = every pair from its previous frame (as before v3).
    key_fps: Annotated[float, Range(0, 1000)] = 15.0
    # Each pair is also tracked backwards (people of the second frame masked) and H is the mean of H(a -> b) and
    # H(b -> a)^-1: twice the tracking. On a 5.6-minute handheld take whose camera returns every 80 frames the
    # chain drifted 6.2 deg instead of 11.2, on a 100-second one 0.14 instead of 0.81 (docs/temporal.md, "A
    # 5.6-minute video"). None (the default) = on for videos of AUTO_SYMMETRIC_S or longer, where a chain's drift
    # adds up (the tracking's cost there: ~5-8 % of the whole run); true / false = always / never.
    symmetric: bool | None = None

    def __post_init__(self) -> None:
        if self.grid < 4 or self.min_points < 4 or self.work_long_side < 16 or self.box_margin < 0:
            raise ValueError("camera_motion: grid >= 4, min_points >= 4, work_long_side >= 16, box_margin >= 0")


def pair_homography(flow: np.ndarray, image_wh: tuple[int, int], boxes: np.ndarray,
                    cfg: CameraMotionConfig) -> tuple[np.ndarray, bool, int, float]:
    """H (3, 3) image pixels, valid, points used, median error of one pair's (h, w, 2) working-size flow."""
    work_wh = (flow.shape[1], flow.shape[0])
    src, keep, work = _background_points(image_wh, work_wh, boxes, cfg)
    moved = work + flowlib.sample_flow(flow, work).astype(np.float64)
    return _homography(src, keep & np.isfinite(moved).all(-1), moved, image_wh, work_wh, cfg)


def pair_homography_lk(prev_grey: np.ndarray, next_grey: np.ndarray, image_wh: tuple[int, int], boxes: np.ndarray,
                       cfg: CameraMotionConfig) -> tuple[np.ndarray, bool, int, float]:
    """As pair_homography, the grid followed by Lucas-Kanade on the (h, w) working-size grey frames."""
    work_wh = (prev_grey.shape[1], prev_grey.shape[0])
    src, keep, work = _background_points(image_wh, work_wh, boxes, cfg)
    moved, ok = np.zeros_like(work), np.zeros(len(work), bool)
    moved[keep], ok[keep] = track_points_lk(prev_grey, next_grey, work[keep], cfg.lk_window, cfg.lk_levels, cfg.lk_fb_px)
    return _homography(src, keep & ok, moved, image_wh, work_wh, cfg)


def _background_points(image_wh, work_wh, boxes, cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grid (G, 2) image pixels, which points are background (G,), and the grid in working pixels."""
    (w_img, h_img), (w, h) = image_wh, work_wh
    src, keep = background_grid(w_img, h_img, boxes, cfg.grid, cfg.box_margin)
    work = np.stack([(src[:, 0] + 0.5) * w / w_img - 0.5, (src[:, 1] + 0.5) * h / h_img - 0.5], -1)
    return src, keep, work


def _homography(src, ok, moved_work, image_wh, work_wh, cfg) -> tuple[np.ndarray, bool, int, float]:
    """Robust H from grid points `src` (image px) to where they moved (working px), points inside the frame."""
    (w_img, h_img), (w, h) = image_wh, work_wh
    dst = np.stack([(moved_work[:, 0] + 0.5) * w_img / w - 0.5, (moved_work[:, 1] + 0.5) * h_img / h - 0.5], -1)
    inside = (dst[:, 0] >= 0) & (dst[:, 0] <= w_img - 1) & (dst[:, 1] >= 0) & (dst[:, 1] <= h_img - 1)
    return robust_homography(src, dst, ok & inside, min_points=cfg.min_points)


def key_stride(fps: float, key_fps: float) -> int:
    """Frames between keyframes: the video's rate over key_fps, rounded (1 = every pair; key_fps 0 = 1)."""
    return max(int(round(fps / key_fps)), 1) if key_fps > 0 and fps > 0 else 1


def _keyframe(t: int, k: int) -> int:
    """The keyframe frame t (>= 1) is tracked from: the last multiple of k before t."""
    return (t - 1) // k * k


AUTO_SYMMETRIC_S = 30.0    # camera_motion.symmetric=None tracks both ways from this video length up


def is_symmetric(cfg: CameraMotionConfig, n_frames: int, fps: float) -> bool:
    """Whether each pair is tracked both ways: cfg.symmetric, or when None, a video of AUTO_SYMMETRIC_S or more."""
    if cfg.symmetric is not None:
        return bool(cfg.symmetric)
    return n_frames >= AUTO_SYMMETRIC_S * max(fps, 1e-6)


def compute(ctx: Context, cfg: CameraMotionConfig, chunk: Chunk) -> pd.DataFrame:
    start, stop = chunk.start, chunk.stop
    if stop <= start:
        return CAMERA_MOTION.empty()
    w_img, h_img = ctx.video.width, ctx.video.height
    k = key_stride(ctx.video.fps, cfg.key_fps)
    first = _keyframe(start, k) if start > 0 else 0      # the oldest frame this chunk's pairs are tracked from
    boxes = ctx.input_frames("tracklets", first, stop, columns=["frame", "x1", "y1", "x2", "y2"])
    by_frame = {int(f): g[["x1", "y1", "x2", "y2"]].to_numpy(np.float64) for f, g in boxes.groupby("frame")}
    size = flowlib.work_size(w_img, h_img, cfg.work_long_side, multiple=1)
    dis = ctx.memo("camera_motion:dis", lambda: flowlib.DISFlow(cfg.dis_preset)) if cfg.tracker == "dis" else None

    def one_way(a: int, b: int) -> tuple[np.ndarray, bool, int, float]:
        """H from frame a to frame b (people of frame a masked out)."""
        people = by_frame.get(a, np.zeros((0, 4)))
        if cfg.tracker == "lk":
            return pair_homography_lk(imgs[a], imgs[b], (w_img, h_img), people, cfg)
        return pair_homography(dis(imgs[a][None], imgs[b][None])[0], (w_img, h_img), people, cfg)

    symmetric = is_symmetric(cfg, ctx.video.n_frames, ctx.video.fps)

    def track(a: int, b: int) -> tuple[np.ndarray, bool, int, float]:
        """H from frame a to frame b; when symmetric the mean of a -> b and the inverse of b -> a."""
        fwd = one_way(a, b)
        if not symmetric or not fwd[1]:
            return fwd
        bwd = one_way(b, a)
        if not bwd[1]:
            return fwd
        hb = np.linalg.inv(bwd[0])
        hm = 0.5 * (fwd[0] / fwd[0][2, 2] + hb / hb[2, 2])
        return hm / hm[2, 2], True, min(fwd[2], bwd[2]), max(fwd[3], bwd[3])

    n = stop - start
    hs = np.tile(np.eye(3).reshape(1, 9), (n, 1))
    valid, npts, res = np.zeros(n, bool), np.zeros(n, np.int32), np.full(n, np.nan)
    # the previous chunk's last frames are kept: the decoder cannot step back without decoding from 0
    carry = ctx.memo("camera_motion:last_frames", dict)
    imgs: dict[int, np.ndarray] = {}
    if carry.get("size") == size and carry.get("tracker") == cfg.tracker and all(f in carry["imgs"] for f in range(first, start)):
        imgs = {f: carry["imgs"][f] for f in range(first, start)}
    decode_from = start if imgs or start == first else first
    from_key = None                                      # (keyframe, t, H keyframe -> t, ok) of the last frame tracked
    for t, frame in ctx.frames(decode_from, stop, rgb=False):
        img = flowlib.resize_rgb(frame, size)
        imgs[t] = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if cfg.tracker == "lk" else img
        if t >= start and t > 0:
            kf = _keyframe(t, k)
            h, ok, m, med = track(kf, t)
            # H (t-1 -> t) = H (kf -> t) H (kf -> t-1)^-1: the chain of these telescopes to the keyframe pairs, each
            # k frames apart, so the tracker sees ~1/key_fps s of motion whatever the frame rate
            pair, pair_ok = h, ok                        # t - 1 is the keyframe: the pair itself (as v2)
            if t - 1 != kf:
                if from_key is not None and from_key[:2] == (kf, t - 1):
                    prev, prev_ok = from_key[2], from_key[3]
                else:                                    # a chunk's first frame: its previous one is tracked again
                    prev, prev_ok = track(kf, t - 1)[:2]
                pair = h @ np.linalg.inv(prev)
                pair_ok = ok and prev_ok and abs(pair[2, 2]) > 1e-9
                pair = pair / pair[2, 2] if pair_ok else np.eye(3)
            i = t - start
            hs[i], valid[i], npts[i], res[i] = pair.reshape(9), pair_ok, m, med
            from_key = (kf, t, h, ok)
        if t >= start:
            ctx.advance(1)
        for f in [f for f in imgs if f < _keyframe(t + 1, k)]:
            del imgs[f]                                  # only the current keyframe onwards is needed
    carry.update(imgs=dict(imgs), size=size, tracker=cfg.tracker)
    return pd.DataFrame({"frame": np.arange(start, stop, dtype=np.int64), "h": list(hs.astype(np.float32)),
                         "valid": valid, "n_points": npts, "residual_px": res.astype(np.float32)})


def plan(ctx: Context, cfg: CameraMotionConfig) -> list[Chunk]:
    return frame_chunks(ctx.video.n_frames, cfg.chunk_frames)


# v3: key_fps: pairs from keyframes ~1/15 s apart (identical to v2 below 22.5 fps)
# v4: symmetric=None (the default): each pair tracked both ways on videos of 30 s or more (identical below)
STAGE = Stage(name="camera_motion", version=4, config=CameraMotionConfig, output=CAMERA_MOTION, compute=compute,
              inputs=("probe", "tracklets"), plan=plan,
              doc="background homography per frame (people masked out, LK grid tracks + trimmed DLT): the camera's motion")
