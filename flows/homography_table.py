"""Homography tables for training on VIBE's databases (issue 19): the paper's d_t from the source videos.

VIBE's databases (`*_db.pt`) hold boxes and frame ids but no frames, so d_t cannot be computed from
them. A user who has the source videos (3DPW, MPI-INF-3DHP and InstaVariety ship them to registered
users) writes one table per database with this module; `v2m train --homographies TABLE` attaches it
by (vid_name, frame_id) (models/training/datasets.py `attach_homographies`).

    python -m video2mesh.flows.homography_table --db 3dpw_train_db.pt --video NAME=PATH ... --out h.parquet

Per video and pair of consecutive database frames it runs the homography stage's own maths
(stages/homography.py): dense flow over the whole frame at the stage's working resolution, the
stage's grid in the person's box at frame t-1 displaced by the flow, and its normalised DLT with
H[0,0] = 1. A video's first frame, or a failed fit, gives the identity (as the stage). DIS flow (no
weights); RAFT through `--raft-weights` when a GPU makes it affordable.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from video2mesh.models.maths.geometry import dlt_homography_np
from video2mesh.models.nets import flow as flowlib
from video2mesh.models.training import datasets
from video2mesh.pipeline.errors import InputError
from video2mesh.pipeline.video import FrameReader, probe
from video2mesh.stages.homography import HomographyConfig, correspondences, flow_size

log = logging.getLogger(__name__)


def video_homographies(video: str | Path, frame_id: np.ndarray, bbox_cxcywh: np.ndarray,
                       cfg: HomographyConfig = HomographyConfig(), estimator=None) -> np.ndarray:
    """(T,) ascending frame indices of `video` and their (T, 4) person boxes [cx, cy, w, h] (VIBE's bbox)
    -> (T, 9) row-major H from frame_id[i-1] to frame_id[i] in image pixels, H[0,0] = 1; row 0 identity."""
    info = probe(video)
    frame_id = np.asarray(frame_id, np.int64)
    if np.any(np.diff(frame_id) <= 0) or frame_id[-1] >= info.n_frames:
        raise InputError(f"{video}: frame ids must ascend and stay below its {info.n_frames} frames")
    est = estimator or flowlib.DISFlow(cfg.dis_preset)
    size = flow_size(cfg, info.width, info.height)
    b = np.asarray(bbox_cxcywh, np.float64)
    xyxy = np.c_[b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2]
    out = np.tile(np.eye(3).reshape(1, 9), (len(frame_id), 1))
    wanted = {int(f): i for i, f in enumerate(frame_id)}
    prev = None
    with FrameReader(info) as reader:
        for t, frame in reader.frames(int(frame_id[0]), int(frame_id[-1]) + 1):
            img = flowlib.resize_rgb(frame, size)
            i = wanted.get(t)
            if i is not None and i > 0 and prev is not None and prev[0] == frame_id[i - 1]:
                fl = est(prev[1][None], img[None])[0]
                src, dst, mask = correspondences(fl, xyxy[i - 1:i], (info.width, info.height), cfg)
                h, ok = dlt_homography_np(src, dst, mask, min_points=cfg.min_points)
                if bool(ok[0]):
                    out[i] = h[0].reshape(9)
            if i is not None:
                prev = (t, img)
    return out


def table_for_db(db: dict[str, np.ndarray], videos: dict[str, str | Path], out: str | Path,
                 cfg: HomographyConfig = HomographyConfig()) -> Path:
    """Write the homography table of every database row whose vid_name is in `videos` (name -> file)."""
    names, frames, hs = [], [], []
    vid = np.asarray(db["vid_name"]).astype(str)
    for name, path in videos.items():
        rows = np.flatnonzero(vid == name)
        if not len(rows):
            raise InputError(f"video {name!r} is not in the database (its vid_name values are e.g. {vid[0]!r})")
        order = rows[np.argsort(db["frame_id"][rows])]
        log.info("homographies: %s (%d frames) from %s", name, len(order), path)
        hs.append(video_homographies(path, db["frame_id"][order], db["bbox"][order], cfg))
        names.append(vid[order])
        frames.append(db["frame_id"][order])
    return datasets.write_homography_table(out, np.concatenate(names), np.concatenate(frames), np.concatenate(hs))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m video2mesh.flows.homography_table", description=__doc__.split("\n")[0])
    p.add_argument("--db", required=True, help="VIBE database file (*_db.pt)")
    p.add_argument("--video", nargs="+", required=True, metavar="VID_NAME=PATH", help="the frames of each vid_name")
    p.add_argument("--out", required=True, help="Parquet table to write")
    a = p.parse_args(argv)
    videos = {}
    for kv in a.video:
        k, sep, v = kv.partition("=")
        if not sep:
            raise SystemExit(f"--video {kv!r}: expected VID_NAME=PATH")
        videos[k] = v
    table_for_db(datasets.load_vibe_db(a.db), videos, a.out)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(main())
