"""tracklets: clean tracks for the per-person stages, one id per person.

Per tracker identity: split where a gap is longer than `max_gap` frames, fill shorter gaps by linear
interpolation of the box corners, and split where the box's colours change for good (the tracker
followed another person after a crossing: `_appearance.change_points`, cut where `place_change` puts it, and
the boxes filled in towards the other person dropped). Then stitch pieces of one person across occlusions and missed
stretches (`stages/_stitch.py`: a global assignment over pieces that do not overlap in time, gated by
constant-velocity motion over the gap, box scale and the colour descriptors of `appearance`, taken from the
frames where nobody, detected or gap-filled, stands in front of the person; a piece hidden in all of them has
no colour of its own and links at the colour gate's cost, and only to or from a piece `min_len` would keep), filling
the stitched gaps by interpolation too (flagged `interpolated`); a colour split the stitcher contradicts is undone
(a piece between two stitched pieces of its own tracker id joins them: `rejoin_bridges`). Drop people shorter than `min_len`
detected frames (25 as VIBE; interpolated ones do not count) and than `min_len_s` seconds, drop a box that lies inside a taller person's box for
most of its life and does not move within it (`max_nested`, `nested_max_drift`: a part of that person), smooth the boxes with a centred moving average, add the square crop box, and
number the people 0..n-1 by first frame (then by box centre x), so ids are stable whatever ids the
tracker handed out; every later stage, export file (`track_NNN_*`) and the report use these ids.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
import pandas as pd
import pyarrow as pa

from video2mesh.pipeline.artifacts import Artifact, stack
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.stage import Chunk, Context, Stage

from ._appearance import MAX_COVERED, change_points, mean_descriptor, place_change
from ._stitch import Piece, StitchGates, _centre, stitch

TRACKLETS = Artifact(
    "tracklets",
    version=1,
    schema=pa.schema([
        ("frame", pa.int64()),
        ("track_id", pa.int32()),
        ("x1", pa.float32()), ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32()),
        ("score", pa.float32()),
        ("cx", pa.float32()), ("cy", pa.float32()), ("side", pa.float32()),
        ("interpolated", pa.bool_()),
    ]),
    doc="One row per frame of each tracklet; side = max(w, h) of the smoothed box, unscaled "
        "(features crop 1.1 x side, HRNet pads 1.25 to 3:4).",
)

_BOX = ["x1", "y1", "x2", "y2"]


@dataclass(frozen=True)
class TrackletConfig:
    min_len: Annotated[int, Range(1, None)] = 25  # detected frames; VIBE drops tracks shorter than this
    min_len_s: Annotated[float, Range(0, None)] = 25 / 30  # the same in seconds (VIBE's 25 frames at 30 fps): a
    # person is kept when longer than either, so a 12 fps clip keeps a 1 s walk-on that 25 frames would drop
    max_gap: Annotated[int, Range(0, None)] = 10  # longest gap (frames) filled by interpolation; longer gaps split the track
    smooth_window: Annotated[int, Range(1, 1001)] = 5  # centred moving average over box corners, frames (odd; 1 = off)
    stitch_max_gap_s: Annotated[float, Range(0, 600)] = 3.0  # longest gap a person is stitched across, seconds (0 = no stitching)
    stitch_motion_gate: Annotated[float, Range(0, 100, lo_open=True)] = 0.5  # constant-velocity error allowed, box heights x (1 + gap s)
    stitch_max_appearance: Annotated[float, Range(0, 1)] = 0.4  # Hellinger distance of colour descriptors allowed (1 = ignore colour)
    stitch_max_scale: Annotated[float, Range(1, 100)] = 1.5  # box height ratio allowed across the gap
    stitch_min_len: Annotated[int, Range(1, None)] = 3  # pieces shorter than this (frames) are not stitched (detector noise)
    split_appearance: Annotated[float, Range(0, 1)] = 0.45  # colour change (Hellinger) that splits a tracker identity (1 = never)
    split_window_s: Annotated[float, Range(0.05, 60)] = 0.5  # seconds of unoccluded boxes compared on each side of a split
    max_nested: Annotated[float, Range(0, 1)] = 0.75  # a person whose box lies this much inside a taller person's box
    # (median over its frames) is a part of that person, not another one: dropped (1 = keep everyone). The landmark
    # follower of `detect` can leave such a box on someone's legs or torso; a child held in front of an adult for a
    # whole clip would be dropped too.
    nested_max_drift: Annotated[float, Range(0, None)] = 0.125  # ... unless it moves within that box by more than
    # this share of that person's height (1 s averages, so a limb's swing does not count): someone walking across
    # a person whose arms are out is not a part of them (a legs box on a walker in the multi-person demo moves 0.05;
    # a walker crossing a waving person's box in a rendered crowd 0.17). Very large = v8

    def __post_init__(self) -> None:
        if self.min_len < 1 or self.max_gap < 0:
            raise ValueError("min_len must be >= 1 and max_gap >= 0")
        if self.smooth_window < 1 or self.smooth_window % 2 == 0:
            raise ValueError(f"smooth_window must be odd and >= 1, got {self.smooth_window}")


def split_and_fill(frames: np.ndarray, boxes: np.ndarray, scores: np.ndarray, max_gap: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Pieces of one track: (frames (T,), boxes (T, 4), scores (T,), interpolated (T,) bool).

    `frames` must be sorted and unique. Gaps of at most `max_gap` missing frames are filled by
    linear interpolation between the boxes on either side (score 0, interpolated True).
    """
    pieces = []
    breaks = np.flatnonzero(np.diff(frames) - 1 > max_gap) + 1
    for idx in np.split(np.arange(len(frames)), breaks):
        f, b, s = frames[idx], boxes[idx], scores[idx]
        full = np.arange(f[0], f[-1] + 1)
        filled = np.stack([np.interp(full, f, b[:, k]) for k in range(4)], 1)
        known = np.isin(full, f)
        sc = np.zeros(len(full), np.float32)
        sc[known] = s
        pieces.append((full, filled, sc, ~known))
    return pieces


def smooth_boxes(boxes: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average (T, 4) -> (T, 4); near the ends the window shrinks to what exists."""
    if window <= 1 or len(boxes) < 2:
        return boxes.copy()
    h = window // 2
    c = np.concatenate([np.zeros((1, boxes.shape[1])), np.cumsum(boxes, 0)])
    i = np.arange(len(boxes))
    lo, hi = np.maximum(i - h, 0), np.minimum(i + h + 1, len(boxes))
    return (c[hi] - c[lo]) / (hi - lo)[:, None]


def _pieces(tracks: pd.DataFrame, cfg: TrackletConfig, appearance: pd.DataFrame | None, fps: float
            ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]]:
    """Gap-split, gap-filled, colour-change-split pieces of every tracker identity:
    (frames, boxes, scores, interpolated, tracker id)."""
    out = []
    for tid, g in tracks.sort_values(["track_id", "frame"]).groupby("track_id", sort=True):
        g = g.drop_duplicates("frame", keep="first")
        for p in split_and_fill(g["frame"].to_numpy(), g[_BOX].to_numpy(np.float64), g["score"].to_numpy(np.float32), cfg.max_gap):
            cuts = sorted({cut for seen, cut in _colour_cuts(appearance, int(tid), p[0][~p[3]], cfg, fps)
                           if _crossed(tracks, int(tid), seen, max(1, int(round(cfg.split_window_s * fps))))})
            parts = np.split(np.arange(len(p[0])), np.searchsorted(p[0], cuts))
            for n, idx in enumerate(parts):
                if n < len(parts) - 1:                       # boxes filled in towards the next person are nobody's
                    seen = np.flatnonzero(~p[3][idx])
                    idx = idx[:seen[-1] + 1] if len(seen) else idx[:0]
                if len(idx):
                    out.append((*(x[idx] for x in p), int(tid)))
    return out


def _crossed(tracks: pd.DataFrame, tid: int, frame: int, window: int, cover: float = 0.5) -> bool:
    """Whether another tracker identity's box overlaps `tid`'s box (intersection >= `cover` of the smaller
    box, as people crossing do) within `window` frames of `frame`: a tracker
    can only have followed someone else out of a crossing; a colour change with nobody near is the person
    (bending down, turning round, stepping into shade), not another one."""
    near = tracks[(tracks.frame - frame).abs() <= window]
    mine = near[near.track_id == tid].drop_duplicates("frame").set_index("frame")[_BOX]
    other = near[(near.track_id != tid) & near.frame.isin(mine.index)]
    a, b = mine.loc[other.frame.to_numpy()].to_numpy(), other[_BOX].to_numpy()   # same-frame pairs
    w = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    h = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    return bool(np.any(inter >= cover * np.maximum(np.minimum(area(a), area(b)), 1e-9)))


def _colour_cuts(appearance: pd.DataFrame | None, tid: int, frames: np.ndarray, cfg: TrackletConfig, fps: float
                 ) -> list[tuple[int, int]]:
    """Where tracker identity `tid` changes colour for good: (the frame where the colour windows see the change,
    the frame where a split starts a new piece: `place_change`)."""
    if appearance is None or not len(appearance) or cfg.split_appearance >= 1:
        return []
    rows = appearance[(appearance.track_id == tid) & appearance.frame.isin(frames)].sort_values("frame")
    window = max(3, int(round(cfg.split_window_s * fps)))
    if len(rows) < 2 * window:
        return []
    desc, covered, f = stack(rows["desc"]), rows["covered"].to_numpy(), rows.frame.to_numpy()
    return [(int(f[t]), int(f[place_change(desc, covered, t, window, f)]))
            for t in change_points(desc, covered, window, cfg.split_appearance)]


def covered_by_pieces(frames: np.ndarray, boxes: np.ndarray, others: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(T,) share of each box (T, 4) at `frames` covered by the boxes in front of it (lower bottom edge) among
    `others` [(frames, boxes)] on the same frame, the sum of overlaps capped at 1 (as `appearance` counts it),
    but with the others' gap-filled boxes: a person the detector missed for a few frames still stands there."""
    out = np.zeros(len(frames))
    for f, b in others:
        common, i, j = np.intersect1d(frames, f, return_indices=True)
        if not len(common):
            continue
        mine, theirs = boxes[i], b[j]
        w = np.clip(np.minimum(mine[:, 2], theirs[:, 2]) - np.maximum(mine[:, 0], theirs[:, 0]), 0, None)
        h = np.clip(np.minimum(mine[:, 3], theirs[:, 3]) - np.maximum(mine[:, 1], theirs[:, 1]), 0, None)
        area = np.maximum((mine[:, 2] - mine[:, 0]) * (mine[:, 3] - mine[:, 1]), 1e-6)
        out[i] += np.where(theirs[:, 3] > mine[:, 3], w * h / area, 0.0)
    return np.minimum(out, 1.0)


def _colour(appearance: pd.DataFrame | None, piece: tuple, others: list[tuple[np.ndarray, np.ndarray]]
            ) -> tuple[np.ndarray | None, bool]:
    """A piece's colour descriptor over its detected frames that nobody hides, and whether it is hidden in all
    of them (then None: its boxes show the people in front, whose colours would veto or fake a stitch).
    Hidden = `appearance`'s covered share (detected boxes in front, the image border) or the share that the
    gap-filled pieces of `others` cover, whichever is larger, above MAX_COVERED."""
    f, b, _, interp, tid = piece
    if appearance is None or not len(appearance):
        return None, False
    rows = appearance[(appearance.track_id == tid) & appearance.frame.isin(f[~interp])].sort_values("frame")
    rows = rows.drop_duplicates("frame")
    if not len(rows):
        return None, False
    at = np.searchsorted(f, rows.frame.to_numpy())
    covered = np.maximum(rows["covered"].to_numpy(), covered_by_pieces(f[at], b[at], others))
    clear = covered <= MAX_COVERED
    if not clear.any():
        return None, True
    return mean_descriptor(stack(rows["desc"])[clear], covered[clear], MAX_COVERED), False


def _join(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]):
    """One person's pieces (in time order) as one run of frames; frames between pieces interpolated."""
    f = np.concatenate([p[0] for p in parts])
    b, s, i = (np.concatenate([p[k] for p in parts]) for k in (1, 2, 3))
    full = np.arange(f[0], f[-1] + 1)
    known = np.isin(full, f)
    boxes = np.stack([np.interp(full, f, b[:, k]) for k in range(4)], 1)
    sc, interp = np.zeros(len(full), np.float32), np.ones(len(full), bool)
    sc[known], interp[known] = s, i
    return full, boxes, sc, interp


def people(tracks: pd.DataFrame, cfg: TrackletConfig, appearance: pd.DataFrame | None = None, fps: float = 30.0):
    """Per person: (frames, boxes, scores, interpolated), before min_len and smoothing."""
    pieces = _pieces(tracks, cfg, appearance, fps)
    max_gap = int(round(cfg.stitch_max_gap_s * fps))
    if max_gap <= cfg.max_gap or len(pieces) < 2:
        return [p[:4] for p in pieces]
    long = [p for p in pieces if len(p[0]) >= cfg.stitch_min_len]
    min_len = min_length(cfg, fps)
    gates = StitchGates(max_gap=max_gap, fps=fps, motion_gate=cfg.stitch_motion_gate, max_scale=cfg.stitch_max_scale,
                        max_appearance=cfg.stitch_max_appearance, min_hidden=min_len)
    known = [(p[0][~p[3]], p[1][~p[3]]) for p in long]
    # who can hide whom: the gap-filled pieces that may become people (enough detected frames), not detector noise
    occluders = [k for k, p in enumerate(long) if np.count_nonzero(~p[3]) >= min_len]
    colours = [_colour(appearance, p, [long[j][:2] for j in occluders if j != k]) for k, p in enumerate(long)]
    chains = stitch([Piece(f, b, desc, hidden) for (f, b), (desc, hidden) in zip(known, colours)], gates)
    chains = rejoin_orphans(chains, long, min_len, cfg.max_gap)
    chains = rejoin_bridges(chains, long, cfg.max_gap)
    short = [p[:4] for p in pieces if len(p[0]) < cfg.stitch_min_len]
    return [_join([long[k][:4] for k in c]) for c in chains] + short


def min_length(cfg: TrackletConfig, fps: float) -> int:
    """Detected frames a person needs: min_len frames or min_len_s seconds, whichever is fewer."""
    return min(cfg.min_len, max(1, int(np.ceil(cfg.min_len_s * fps - 1e-9))))


def _follows(a: np.ndarray, b: np.ndarray, max_gap: int) -> bool:
    """Whether frames `b` start right after frames `a` end, or after a gap of at most `max_gap` frames: two
    pieces of one tracker id so close were one piece (its gaps filled) until a colour split cut them apart."""
    return 0 <= b[0] - a[-1] - 1 <= max_gap


def rejoin_orphans(chains: list[list[int]], pieces: list, min_len: int, max_gap: int = 0) -> list[list[int]]:
    """Undo colour splits that made an orphan: a chain that is one piece with fewer than `min_len` detected
    frames, cut by a colour change from the piece of the same tracker id right before or after it (`_follows`),
    goes back to that piece's chain (when no frame of it overlaps). A real jump to another person leaves a piece that
    stitches to that person's other pieces; a piece nobody takes and min_len would drop was a false split
    (a person half hidden changes colour too), and dropping it would lose those frames of a real person.
    pieces: (frames, boxes, scores, interpolated, tracker id); chains: lists of indices into pieces."""
    owner = {k: c for c, chain in enumerate(chains) for k in chain}
    out = [list(c) for c in chains]
    for c, chain in enumerate(chains):
        if len(chain) != 1 or np.count_nonzero(~pieces[chain[0]][3]) >= min_len:
            continue
        k = chain[0]
        f = pieces[k][0]
        for j, q in enumerate(pieces):
            if j == k or q[4] != pieces[k][4] or not (_follows(q[0], f, max_gap) or _follows(f, q[0], max_gap)):
                continue
            target = out[owner[j]]
            frames = np.concatenate([pieces[i][0] for i in target])
            if owner[j] != c and not np.isin(f, frames).any():
                target.append(k)
                target.sort(key=lambda i: pieces[i][0][0])
                out[c] = []
                owner[k] = owner[j]
                break
    return [c for c in out if c]


def rejoin_bridges(chains: list[list[int]], pieces: list, max_gap: int = 0) -> list[list[int]]:
    """Undo colour splits that the stitcher contradicts: when one chain holds pieces A and C of one tracker id
    and a piece B of the same id runs from A's end to C's start (`_follows`: the tracker followed one box through
    without a break longer than max_gap), and B stands alone (no chain took it), B is that person too and joins the chain. A colour
    change with someone passing in front whom the detector never saw splits a person so (nobody's box covers
    theirs), and the chain A-C then runs interpolated beside B: one person, two tracks.
    pieces: (frames, boxes, scores, interpolated, tracker id); chains: lists of indices into pieces."""
    out = [list(c) for c in chains]
    alone = {c[0]: k for k, c in enumerate(out) if len(c) == 1}
    for chain in out:
        for a, c in list(zip(chain, chain[1:])):           # the pairs as stitched (the loop inserts into chain)
            if pieces[a][4] != pieces[c][4]:
                continue
            for b, k in list(alone.items()):
                q = pieces[b]
                if q[4] == pieces[a][4] and _follows(pieces[a][0], q[0], max_gap) and _follows(q[0], pieces[c][0], max_gap):
                    chain.insert(chain.index(c), b)
                    out[k] = []
                    del alone[b]
                    break
    return [c for c in out if c]


def nested_share(inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """(N,) share of each `inner` box's area (N, 4) [x1, y1, x2, y2] inside the `outer` box on the same row."""
    w = np.clip(np.minimum(inner[:, 2], outer[:, 2]) - np.maximum(inner[:, 0], outer[:, 0]), 0, None)
    h = np.clip(np.minimum(inner[:, 3], outer[:, 3]) - np.maximum(inner[:, 1], outer[:, 1]), 0, None)
    area = np.maximum((inner[:, 2] - inner[:, 0]) * (inner[:, 3] - inner[:, 1]), 1e-9)
    return w * h / area


def drift_within(inner: np.ndarray, outer: np.ndarray, window: int, where: np.ndarray) -> float:
    """How far the centre of the `inner` boxes (T, 4) moves within the `outer` boxes (T, 4) of the same frames,
    as a share of the outer boxes' median height: the larger of the x and y ranges, over the frames `where`, of
    the centre offset averaged over a centred `window` (a part of a person swings about a fixed place in that
    person's box and averages out; someone walking across it does not). Only frames with a whole window
    count (a half window at the ends would not average a swing out): none when the frames are fewer than one
    window, and then 0."""
    h = window // 2
    whole = np.zeros(len(inner), bool)
    whole[h:len(inner) - h] = True
    offset = smooth_boxes(_centre(inner) - _centre(outer), window)[where & whole]
    if len(offset) < 2:
        return 0.0
    return float(np.ptp(offset, axis=0).max() / max(np.median(outer[:, 3] - outer[:, 1]), 1e-9))


def drop_nested(pieces: list, max_nested: float, max_height: float = 0.8, max_drift: float = np.inf,
                window: int = 1) -> list:
    """`pieces` (frames, boxes, scores, interpolated) without those lying inside a taller kept piece's box: per
    frame the most any piece at least 1 / max_height times taller covers of it; dropped when the median over
    its *detected* frames reaches `max_nested` (interpolated boxes are no evidence: a person stitched across
    an occlusion has their filled-in boxes behind the occluder, inside its box, for as long as they were
    hidden). A taller piece within whose box the piece moves by more than `max_drift` of the taller piece's height
    (`drift_within`, `window`-frame averages over the detected frames it holds the piece) does not hold it: that
    is another person walking across, not a part. Shortest boxes are judged first, so of two overlapping
    pieces the taller stays."""
    if max_nested >= 1 or len(pieces) < 2:
        return pieces
    height = [float(np.median(p[1][:, 3] - p[1][:, 1])) for p in pieces]
    dropped: set[int] = set()
    for i in sorted(range(len(pieces)), key=lambda k: height[k]):
        f, b = pieces[i][0], pieces[i][1]
        seen = ~np.asarray(pieces[i][3], bool) if len(pieces[i]) > 3 else np.ones(len(f), bool)
        cover = np.zeros(len(f))
        for j, q in enumerate(pieces):
            if j == i or j in dropped:
                continue
            common, ii, jj = np.intersect1d(f, q[0], return_indices=True)
            if not len(common):
                continue
            taller = (b[ii, 3] - b[ii, 1]) <= max_height * (q[1][jj, 3] - q[1][jj, 1])
            share = np.where(taller, nested_share(b[ii], q[1][jj]), 0.0)
            if drift_within(b[ii], q[1][jj], window, seen[ii] & (share >= max_nested)) > max_drift:
                continue
            cover[ii] = np.maximum(cover[ii], share)
        if np.median(cover[seen] if seen.any() else cover) >= max_nested:
            dropped.add(i)
    return [p for k, p in enumerate(pieces) if k not in dropped]


def make_tracklets(tracks: pd.DataFrame, cfg: TrackletConfig, appearance: pd.DataFrame | None = None,
                   fps: float = 30.0) -> pd.DataFrame:
    """The `tracklets` table from a `tracks` table and its `appearance` rows (pure function)."""
    min_len = min_length(cfg, fps)
    pieces = [(f, smooth_boxes(b, cfg.smooth_window), s, i) for f, b, s, i in people(tracks, cfg, appearance, fps)
              if np.count_nonzero(~i) >= min_len]   # detected frames: gaps filled between 4 boxes are no evidence
    pieces = drop_nested(pieces, cfg.max_nested, max_drift=cfg.nested_max_drift,
                         window=2 * int(round(fps / 2)) + 1)                 # odd, about 1 s
    if not pieces:
        return TRACKLETS.empty()
    pieces.sort(key=lambda p: (p[0][0], (p[1][0, 0] + p[1][0, 2]) / 2))
    out = []
    for tid, (f, b, s, interp) in enumerate(pieces):
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        out.append(pd.DataFrame({
            "frame": f.astype(np.int64), "track_id": np.full(len(f), tid, np.int32),
            "x1": b[:, 0], "y1": b[:, 1], "x2": b[:, 2], "y2": b[:, 3], "score": s,
            "cx": (b[:, 0] + b[:, 2]) / 2, "cy": (b[:, 1] + b[:, 3]) / 2, "side": np.maximum(w, h),
            "interpolated": interp,
        }))
    return pd.concat(out, ignore_index=True).sort_values(["frame", "track_id"], kind="stable").reset_index(drop=True)


def compute(ctx: Context, cfg: TrackletConfig, chunk: Chunk) -> pd.DataFrame:
    return make_tracklets(ctx.input("tracks"), cfg, ctx.input("appearance"), ctx.video.fps)


# v4: max_nested (a box inside a taller person's is part of that person); min_len counts detected frames
# v5: a colour change splits a tracker identity only where another one's box overlaps it (a crossing), and a
# split piece left alone and too short goes back to its tracker id's piece (rejoin_orphans)
# v6: `max_nested` judges a piece by its detected frames only (a person stitched across an occlusion was dropped
# as a part of the occluder, their filled-in boxes lying inside its box)
# v7: a piece's colour for stitching comes from its frames nobody hides, counting the gap-filled boxes of people
# the detector missed for a few frames; a piece hidden in all its frames has no colour (the colour gate
# cannot veto or fake its link), where before it took the colours of the person in front
# v8: a piece that a colour split cut out between two pieces of its tracker id which the stitcher joined again
# rejoins them (rejoin_bridges): someone the detector never saw passing in front of a person split them in two
# v9: a box inside a taller person's box that moves within it (`nested_max_drift`) is someone walking across
# them, not a part of them (a walker inside a waving person's arms-out box was dropped)
# v10: a colour split is placed where the rows around it agree (and after the tracker's gap there), and the boxes
# a gap filled in towards the next person are dropped: the split of a tracker that took someone else on re-finding
# came up to g rows early, handing that many of the first person's frames to the second; the rejoins undo a split
# across such a gap too (`_follows`)
# v11: a link with no colour evidence (to or from a piece hidden in all its frames) needs one of its two pieces to
# have `min_len` detected frames: two fragments min_len would each drop, joined by motion alone across a
# 40-frame gap, made a ghost person (4-person walks crowd: 47 of its 58 frames filled in)
STAGE = Stage(name="tracklets", version=11, config=TrackletConfig, output=TRACKLETS, compute=compute,
              inputs=("probe", "tracks", "appearance"),
              doc="gap filling, stitching one person's pieces, min length, box smoothing, square crop boxes")
