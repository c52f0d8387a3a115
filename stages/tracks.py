"""tracks: associate stored detections into identities with ByteTrack or BoT-SORT (ultralytics).

Runs over the `detect` table only, never the frames: changing a tracker setting re-runs this cheap
stage and nothing upstream. BoT-SORT's global motion compensation needs frames, so it is off here
(gmc_method 'none'); its other logic (camera-independent Kalman state, IoU + score fusion) stays.

Follower cue: a `detect` row may carry the id of the landmark-follower chain that produced it (`follower`,
-1 = none). A follower stays on its person from frame to frame (its ROI comes from that person's landmarks),
so a box from the chain that fed a track last frame is preferred for that track, and a box whose follower
jumped off a person (`drifted`) never goes to that person's track: where two look-alikes cross, the hidden
person's follower slides onto the one in front, and its box overlaps the Kalman prediction of the hidden
person's track more than the front person's own (2-person crowd clip, frame 85: IoU 0.72 vs 0.65), so plain
ByteTrack hands the front person to the hidden one's track (docs/crowd.md, "Follower ids").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from video2mesh.pipeline.artifacts import Artifact
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.stage import Chunk, Context, Stage

TRACKS = Artifact(
    "tracks",
    version=1,
    schema=pa.schema([
        ("frame", pa.int64()),
        ("track_id", pa.int32()),
        ("x1", pa.float32()), ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32()),
        ("score", pa.float32()),
    ]),
    doc="Detections that the tracker kept, with the tracker's identity; boxes are the detector's.",
)


@dataclass(frozen=True)
class TrackConfig:
    tracker: Literal["bytetrack", "botsort"] = "bytetrack"
    track_high_thresh: Annotated[float, Range(0, 1)] = 0.25  # ultralytics defaults, see cfg/trackers/bytetrack.yaml
    track_low_thresh: Annotated[float, Range(0, 1)] = 0.1
    new_track_thresh: Annotated[float, Range(0, 1)] = 0.25
    track_buffer: Annotated[int, Range(0, 100_000)] = 30  # frames a lost track is kept (at 30 fps; scaled by the video's fps)
    match_thresh: Annotated[float, Range(0, 1)] = 0.8
    fuse_score: bool = True
    proximity_thresh: Annotated[float, Range(0, 1)] = 0.5  # BoT-SORT only
    appearance_thresh: Annotated[float, Range(0, 1)] = 0.8  # BoT-SORT only
    follower_cost: Annotated[float, Range(0, 1)] = 0.5  # cost cap of a box from the follower that fed the track last
    # frame (1 = no preference): a follower can slide gradually onto someone else (5-person clip), so IoU still rules
    drifted: bool = True  # a box whose follower jumped off a track's person never goes to that track


class _Dets:
    """The Results-like view ultralytics trackers read: conf, cls, xywh, boolean indexing."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray):
        self.xyxy = xyxy
        self.conf = conf
        self.cls = np.zeros(len(conf), np.float32)

    @property
    def xywh(self) -> np.ndarray:
        wh = self.xyxy[:, 2:4] - self.xyxy[:, 0:2]
        return np.concatenate([self.xyxy[:, 0:2] + wh / 2, wh], 1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, i) -> "_Dets":
        return _Dets(self.xyxy[i], self.conf[i])


def make_tracker(cfg: TrackConfig, fps: float):
    from ultralytics.trackers.bot_sort import BOTSORT
    from ultralytics.trackers.byte_tracker import BYTETracker
    from ultralytics.utils import IterableSimpleNamespace

    args = IterableSimpleNamespace(
        tracker_type=cfg.tracker, track_high_thresh=cfg.track_high_thresh, track_low_thresh=cfg.track_low_thresh,
        new_track_thresh=cfg.new_track_thresh, track_buffer=max(1, round(cfg.track_buffer * fps / 30.0)),
        match_thresh=cfg.match_thresh, fuse_score=cfg.fuse_score, gmc_method="none",
        proximity_thresh=cfg.proximity_thresh, appearance_thresh=cfg.appearance_thresh, with_reid=False, model="auto",
    )
    return BOTSORT(args) if cfg.tracker == "botsort" else BYTETracker(args)


class FollowerCue:
    """Wraps a tracker's `get_dists` (track x detection cost, 0 = certain) with the follower ids.

    `chains` holds the current frame's follower id per detection (-1: none), `drifted` the follower each
    detection's ROI jumped off (-1: none); `fed[track_id]` the follower that fed each track last. A pair
    whose follower fed that track costs at most `same_cost` if the boxes touch at all (a tie-breaker, not
    an override: a follower can also slide gradually onto someone else, and then IoU must still win), and
    that detection then cannot go to another track in the same matrix; a detection whose follower jumped
    off a track's person never goes to that track (the follower is no longer on them: docs/crowd.md,
    "Follower ids").
    """

    def __init__(self, tracker, same_cost: float = 0.5, drifted: bool = True):
        self.same_cost, self.use_drifted = same_cost, drifted
        self.chains = np.zeros(0, np.int64)
        self.drifted = np.zeros(0, np.int64)
        self.fed: dict[int, int] = {}
        plain = tracker.get_dists
        tracker.get_dists = lambda tracks, dets: self.adjust(plain(tracks, dets), tracks, dets)

    def adjust(self, dists: np.ndarray, tracks: list, dets: list) -> np.ndarray:
        """dists (T, D) from the tracker -> the same with the follower cue applied."""
        if not len(tracks) or not len(dets):
            return dists
        det_chain = np.array([self.chains[int(d.idx)] for d in dets], np.int64)
        det_left = np.array([self.drifted[int(d.idx)] for d in dets], np.int64)
        trk_chain = np.array([self.fed.get(t.track_id, -1) for t in tracks], np.int64)
        out = np.array(dists, np.float64)
        same = (det_chain[None, :] >= 0) & (det_chain[None, :] == trk_chain[:, None]) & (out < 1)
        owned = same.any(0)[None, :] & ~same  # the detection's follower fed another track here
        left = (det_left[None, :] >= 0) & (det_left[None, :] == trk_chain[:, None]) & self.use_drifted
        if self.same_cost < 1:
            out[same] = np.minimum(out[same], self.same_cost)
            out[owned] = 1.0
        out[left] = 1.0  # it slid off that track's person
        return out

    def fed_by(self, tracker) -> None:
        """Record which follower fed each track the tracker updated this frame (confirmed or not)."""
        for t in tracker.tracked_stracks:
            if t.frame_id == tracker.frame_id and self.chains[int(t.idx)] >= 0:
                self.fed[t.track_id] = int(self.chains[int(t.idx)])


def associate(det: pd.DataFrame, n_frames: int, cfg: TrackConfig, fps: float) -> pd.DataFrame:
    """Run the tracker frame by frame over a detections table; returns rows of the `tracks` schema.
    Optional `follower` and `drifted` columns (int, -1 = none) are the follower cue (`FollowerCue`)."""
    tracker = make_tracker(cfg, fps)
    cue = FollowerCue(tracker, cfg.follower_cost, cfg.drifted)
    by_frame = {f: g for f, g in det.groupby("frame", sort=True)}
    empty = _Dets(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
    out = []
    for f in range(n_frames):
        g = by_frame.get(f)
        dets = empty if g is None else _Dets(g[["x1", "y1", "x2", "y2"]].to_numpy(np.float32), g["score"].to_numpy(np.float32))
        cue.chains, cue.drifted = (
            [np.full(len(dets), -1, np.int64)] * 2 if g is None or "follower" not in g
            else [g["follower"].to_numpy(np.int64), g["drifted"].to_numpy(np.int64)])
        res = tracker.update(dets, None)
        cue.fed_by(tracker)
        for row in res:  # [x1, y1, x2, y2, track_id, score, cls, idx]
            i = int(row[7])
            out.append((f, int(row[4]), *dets.xyxy[i], float(dets.conf[i])))
    if not out:
        return TRACKS.empty()
    a = pd.DataFrame(out, columns=TRACKS.schema.names)
    return a.astype({"frame": "int64", "track_id": "int32"}).sort_values(["frame", "track_id"], kind="stable").reset_index(drop=True)


def compute(ctx: Context, cfg: TrackConfig, chunk: Chunk) -> pd.DataFrame:
    return associate(ctx.input("detect"), ctx.video.n_frames, cfg, ctx.video.fps)


# v2: the follower cue (detect's `follower` column)
STAGE = Stage(name="tracks", version=2, config=TrackConfig, output=TRACKS, compute=compute,
              inputs=("probe", "detect"), doc="ByteTrack / BoT-SORT association over stored detections")
