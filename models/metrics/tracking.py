"""Multi-object tracking metrics on person boxes: CLEAR-MOT and the identity measures.

- CLEAR-MOT (Bernardin & Stiefelhagen, "Evaluating Multiple Object Tracking Performance: The CLEAR MOT
  Metrics", EURASIP JIVP 2008): per frame, a ground-truth person keeps the track it was last matched to
  when their boxes still overlap enough; the rest are matched by the Hungarian algorithm on IoU. Misses
  (FN), false positives (FP) and identity switches (a person matched to another track than its last one)
  give MOTA = 1 - (FN + FP + IDSW) / GT. Fragmentation: times a person's matched span is interrupted
  (tracked -> untracked while present, counted between its first and last matched frame), as the
  CLEAR-MOT / MOTChallenge tools (py-motmetrics `num_fragmentations`) count it.
- IDF1 (Ristani et al., "Performance Measures and a Data Set for Multi-Target, Multi-Camera Tracking",
  ECCV 2016 workshops): one global one-to-one assignment of tracks to people maximising the frames where
  they match; IDF1 = 2 IDTP / (GT detections + track detections).

A person and a track match in a frame when their boxes' IoU >= `iou` (0.5 by default, the MOTChallenge
threshold). `overlap="cover"` uses the intersection over the smaller box instead (>= the same threshold):
for detectors whose box is defined differently from the ground truth's (BlazePose's square-ish body box
around a thin mesh box), where IoU would score a correct detection as a miss. Don't-care person-frames (`ignore`, e.g. mostly occluded) are dropped, with any track box that
matches one of them in that frame (the MOTChallenge preprocessing), so neither a miss nor a detection
there counts. A track box is dropped only when the one assignment of track boxes to *all* people of the
frame, counted and don't-care together, gives it to a don't-care person (MOT16's preprocessing): a box on
a visible person is not taken away because a hidden person stands inside it. With `cover`, every box that
contains a person's box scores 1, so ties between such boxes are broken by IoU (the box of the right size).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

Tracks = dict[int, tuple[np.ndarray, np.ndarray]]   # id -> (frames (N,) int, boxes (N, 4) x1 y1 x2 y2 pixels)


@dataclass(frozen=True)
class TrackingScores:
    gt: int                 # person-frames counted (present, not don't-care)
    hyp: int                # track boxes counted
    tp: int
    fn: int
    fp: int
    id_switches: int
    fragmentations: int
    mota: float
    idf1: float
    idtp: int
    recall: float
    precision: float
    switches_per_1000: float    # ID switches per 1,000 counted person-frames

    def to_dict(self) -> dict:
        return asdict(self)


def iou_matrix(a: np.ndarray, b: np.ndarray, cover: bool = False) -> np.ndarray:
    """IoU of boxes a (N, 4) against b (M, 4), x1 y1 x2 y2 -> (N, M); cover: intersection over the smaller box."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), -1)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), -1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    if cover:
        union = np.minimum(area(a)[:, None], area(b)[None, :])
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _by_frame(tracks: Tracks) -> dict[int, tuple[list[int], list[np.ndarray]]]:
    out: dict[int, tuple[list[int], list[np.ndarray]]] = {}
    for tid, (frames, boxes) in tracks.items():
        for f, b in zip(np.asarray(frames).tolist(), np.asarray(boxes, float).reshape(-1, 4)):
            ids, bx = out.setdefault(int(f), ([], []))
            ids.append(int(tid))
            bx.append(b)
    return out


def _rank(a: np.ndarray, b: np.ndarray, cover: bool) -> tuple[np.ndarray, np.ndarray]:
    """(overlap (N, M) compared with the threshold, score (N, M) the assignments maximise): with cover, the
    score adds IoU so that of two boxes both containing a person's box the one closer in size wins."""
    ov = iou_matrix(a, b, cover)
    return ov, ov + iou_matrix(a, b) if cover else ov


def _drop_dont_care(gt_f, hyp_f, ignore: Tracks, iou: float, cover: bool) -> dict:
    """Track boxes per frame without those that one Hungarian assignment (overlap >= iou) of the frame's track
    boxes to its counted and don't-care people together gives to a don't-care person."""
    ign = _by_frame(ignore)
    out = {}
    for f, (hids, hbox) in hyp_f.items():
        keep = np.ones(len(hids), bool)
        if f in ign:
            people = np.array(gt_f.get(f, ([], []))[1] + ign[f][1]).reshape(-1, 4)
            n_counted = len(people) - len(ign[f][1])
            ov, score = _rank(people, np.array(hbox), cover)
            r, c = linear_sum_assignment(-np.where(ov >= iou, score, 0.0))
            hit = (ov[r, c] >= iou) & (r >= n_counted)
            keep[c[hit]] = False
        out[f] = ([h for h, k in zip(hids, keep) if k], [b for b, k in zip(hbox, keep) if k])
    return out


def evaluate(gt: Tracks, hyp: Tracks, iou: float = 0.5, ignore: Tracks | None = None,
             overlap: str = "iou", matched: dict[tuple[int, int], int] | None = None) -> TrackingScores:
    """CLEAR-MOT and IDF1 of tracks `hyp` against people `gt` (both id -> (frames, boxes)); overlap "iou" or "cover".
    `matched`, when given, is filled with {(person, track): frames the CLEAR-MOT assignment paired them}."""
    if overlap not in ("iou", "cover"):
        raise ValueError(f"overlap must be 'iou' or 'cover', got {overlap!r}")
    cover = overlap == "cover"
    gt_f, hyp_f = _by_frame(gt), _by_frame(hyp)
    if ignore:
        hyp_f = _drop_dont_care(gt_f, hyp_f, ignore, iou, cover)
    last: dict[int, int] = {}                        # person -> track it was last matched to
    tracked: dict[int, list[bool]] = {}              # person -> matched or not, per present frame
    pair_frames: dict[tuple[int, int], int] = {}     # (person, track) -> frames with IoU >= iou (for IDF1)
    tp = fn = fp = sw = n_gt = n_hyp = 0
    for f in sorted(set(gt_f) | set(hyp_f)):
        oids, obox = gt_f.get(f, ([], []))
        hids, hbox = hyp_f.get(f, ([], []))
        n_gt, n_hyp = n_gt + len(oids), n_hyp + len(hids)
        empty = np.zeros((len(oids), len(hids)))
        ov, score = _rank(np.array(obox), np.array(hbox), cover) if oids and hids else (empty, empty)
        ok = ov >= iou
        for i, j in zip(*np.nonzero(ok)):
            key = (oids[i], hids[j])
            pair_frames[key] = pair_frames.get(key, 0) + 1
        matches = {}
        for i, o in enumerate(oids):                # keep last correspondences that still hold
            if o in last and last[o] in hids:
                j = hids.index(last[o])
                if ok[i, j] and j not in matches.values():
                    matches[i] = j
        free_i = [i for i in range(len(oids)) if i not in matches]
        free_j = [j for j in range(len(hids)) if j not in matches.values()]
        if free_i and free_j:
            sub = np.where(ok[np.ix_(free_i, free_j)], 2.0 - score[np.ix_(free_i, free_j)], 1e6)  # best overlap first
            for r, c in zip(*linear_sum_assignment(sub)):
                if sub[r, c] < 1e6:
                    matches[free_i[r]] = free_j[c]
        for i, o in enumerate(oids):
            hit = i in matches
            tracked.setdefault(o, []).append(hit)
            if hit:
                h = hids[matches[i]]
                if matched is not None:
                    matched[(o, h)] = matched.get((o, h), 0) + 1
                sw += int(o in last and last[o] != h)
                last[o] = h
        tp += len(matches)
        fn += len(oids) - len(matches)
        fp += len(hids) - len(matches)
    frag = sum(_fragments(np.array(v)) for v in tracked.values())
    idtp = _id_true_positives(pair_frames)
    return TrackingScores(
        gt=n_gt, hyp=n_hyp, tp=tp, fn=fn, fp=fp, id_switches=sw, fragmentations=frag,
        mota=1.0 - (fn + fp + sw) / n_gt if n_gt else float("nan"),
        idf1=2 * idtp / (n_gt + n_hyp) if n_gt + n_hyp else float("nan"), idtp=idtp,
        recall=tp / n_gt if n_gt else float("nan"), precision=tp / (tp + fp) if tp + fp else float("nan"),
        switches_per_1000=1000.0 * sw / n_gt if n_gt else float("nan"))


def _fragments(hit: np.ndarray) -> int:
    """Tracked -> untracked transitions between the first and the last tracked frame of one person."""
    idx = np.flatnonzero(hit)
    if len(idx) == 0:
        return 0
    span = hit[idx[0]: idx[-1] + 1].astype(int)
    return int(np.sum(np.diff(span) == -1))


def _id_true_positives(pair_frames: dict[tuple[int, int], int]) -> int:
    """Largest total of matched frames over one-to-one person <-> track assignments (Ristani et al.)."""
    if not pair_frames:
        return 0
    oids = sorted({o for o, _ in pair_frames})
    hids = sorted({h for _, h in pair_frames})
    w = np.zeros((len(oids), len(hids)))
    for (o, h), n in pair_frames.items():
        w[oids.index(o), hids.index(h)] = n
    r, c = linear_sum_assignment(-w)
    return int(w[r, c].sum())
