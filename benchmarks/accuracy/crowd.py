"""`v2m bench crowd`: detection + identity tracking on clips with several people, scored with ground truth.

Rendered clips: `render.build_set(..., people=P)` for each P of `--people` (the first P mocap files, walkers
whose paths cross mid-clip, so the nearer body hides the farther one), cached by content under the
accuracy root like `v2m bench accuracy`. Each clip's video goes through the normal pipeline up to
`tracklets` (probe, detect, tracks, appearance, tracklets; the user's --method / --set apply), and the
tracklets are scored against gt.npz's per-person boxes with models/metrics/tracking.py: recall,
precision, ID switches per 1,000 person-frames, fragmentation, MOTA, IDF1, twice: boxes matching at
IoU >= 0.5 (MOTChallenge), and at intersection over the smaller box >= 0.5 ("cover", the criterion of
`v2m bench accuracy`'s recall), because BlazePose's body box (as wide as half its height) around a thin
walker's mesh box has IoU ~0.4-0.5 even when it is on the right person.

Which person-frames count: a person is *visible* in a frame when its torso is in the image (gt `present`)
and at least VISIBLE_SHARE of its in-image joints are outside the boxes of the people nearer the camera.
Present but hidden person-frames are don't-care (neither a miss nor, for a track box on them, a false
positive), the MOTChallenge convention for occluded people. Per person the report adds the number of
tracks that cover it (`tracks_per_person`: 1 = no fragmentation) and the largest share one track covers.

`--detections gt` isolates association from detection (MOTChallenge's "public detections" idea): the
`detect` artifact is injected as the GT boxes of the *visible* person-frames (hidden ones are missing, as
a perfect detector would miss them), in a separate cache folder (`<cache>/crowd-gt-detections`) so the
stand-in never reaches a normal run; tracks, appearance (real frames) and tracklets then run as usual.

`--poses` also runs each rendered clip on to the licence-free method's `fit` and scores the fitted COCO-17
keypoints of every track against the joints of the person it follows (the one its detected boxes overlap
most): 2D px (median over the joints) and hip-centred 3D mm (mean over the joints, no alignment: pose,
facing and proportions), per person-frame, split into visible and hidden person-frames (hidden: the body
behind someone else, where a track carries a guess). What a crowd does to the exported motion, not only to
the boxes.

Real videos (`--video`, default ../shared/data/videos): no ground truth; the table gives the tracks, their
frame ranges and frames/s. frames/s = frames / compute seconds of detect + tracks + appearance + tracklets
(each stage's run.json, so a cached re-run reports what the run took).
"""
from __future__ import annotations

import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from video2mesh.models.metrics.tracking import evaluate, iou_matrix

VISIBLE_SHARE = 0.5
TRACKING_STAGES = ("detect", "tracks", "appearance", "tracklets")
DEFAULT_WALKERS = ("dataset-2_walk_normal_001", "dataset-2_walk_active_001", "dataset-2_walk_elderly_001",
                   "dataset-2_run_normal_001", "dataset-2_walk-turn-left_normal_001")
# named sets of five people (the Bandai clips in ../shared/data/mocap; `--people P` takes the first P of each), so
# the crowds measured in docs/crowd.md are one flag away: the first three were looked at while tuning `tracklets`,
# "arms" and "group" were rendered after its last change (v10) and never tuned on
MIXES = {
    "walks": DEFAULT_WALKERS,
    "heldout": ("dataset-2_walk-turn-left_active_001", "dataset-2_run_active_001", "dataset-2_walk_elderly_001",
                "dataset-2_walk_active_001", "dataset-2_walk-turn-left_elderly_001"),
    "wave": ("dataset-2_run_elderly_001", "dataset-2_walk_normal_001", "dataset-2_walk-turn-left_normal_001",
             "dataset-2_walk_active_001", "dataset-2_wave-both-hands_active_001"),
    "arms": ("dataset-2_raise-up-both-hands_active_001", "dataset-2_run_normal_001", "dataset-2_wave-both-hands_elderly_001",
             "dataset-2_walk-turn-left_elderly_001", "dataset-2_walk_normal_001"),
    "group": ("dataset-2_run_elderly_001", "dataset-2_raise-up-both-hands_normal_001", "dataset-2_walk_elderly_001",
              "dataset-2_wave-both-hands_normal_001", "dataset-2_run_active_001"),
}
COLUMNS = (("people", "P", "{:d}"), ("frames", "frames", "{:d}"), ("gt", "vis p-f", "{:d}"), ("recall", "recall", "{:.3f}"),
           ("precision", "prec", "{:.3f}"), ("id_switches", "IDSW", "{:d}"), ("switches_per_1000", "IDSW/1k", "{:.1f}"),
           ("fragmentations", "frag", "{:d}"), ("max_tracks_per_person", "trk/pers", "{:d}"), ("mota", "MOTA", "{:.3f}"),
           ("idf1", "IDF1", "{:.3f}"), ("frames_per_s", "fps", "{:.2f}"))


def visible(gt: dict) -> np.ndarray:
    """(P, T) bool: present and at least VISIBLE_SHARE of the in-image joints outside nearer people's boxes."""
    uv, vis, box, present = gt["joints_2d"], gt["visible"], gt["bbox"], gt["present"]
    depth = np.median(gt["joints_cam"][..., 2], -1)                                  # (P, T) metres
    n_p = len(present)
    hidden = np.zeros(vis.shape, bool)                                               # (P, T, J)
    for p in range(n_p):
        for q in range(n_p):
            if q == p:
                continue
            nearer = present[q] & (depth[q] < depth[p])                              # (T,)
            b = box[q][:, None, :]                                                   # (T, 1, 4)
            inside = (uv[p, ..., 0] >= b[..., 0]) & (uv[p, ..., 0] <= b[..., 2]) & \
                     (uv[p, ..., 1] >= b[..., 1]) & (uv[p, ..., 1] <= b[..., 3])
            hidden[p] |= inside & nearer[:, None]
    shown = (vis & ~hidden).sum(-1) / np.maximum(vis.sum(-1), 1)
    return present & (shown >= VISIBLE_SHARE)


def _people_tracks(gt: dict, mask: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    return {p: (np.flatnonzero(mask[p]), gt["bbox"][p][mask[p]]) for p in range(len(mask)) if mask[p].any()}


def _coverage(gt_tracks: dict, matched: dict[tuple[int, int], int]) -> dict[int, dict[str, Any]]:
    """Per visible person: the tracks CLEAR-MOT paired with it in >= 10 % of its frames, and the best one's share."""
    out = {}
    for p, (frames, _) in gt_tracks.items():
        counts = {h: n for (o, h), n in matched.items() if o == p}
        out[p] = {"frames": int(len(frames)), "tracks": sorted(h for h, n in counts.items() if n >= 0.1 * len(frames)),
                  "best_share": round(max(counts.values(), default=0) / len(frames), 3)}
    return out


def score_clip(gt: dict, hyp: dict[int, tuple[np.ndarray, np.ndarray]], overlap: str = "iou") -> dict[str, Any]:
    """Tracking scores of tracklet boxes `hyp` against one clip's ground truth (overlap "iou" or "cover" >= 0.5)."""
    vis = visible(gt)
    gt_tracks = _people_tracks(gt, vis)
    matched: dict[tuple[int, int], int] = {}
    s = evaluate(gt_tracks, hyp, iou=0.5, ignore=_people_tracks(gt, gt["present"] & ~vis), overlap=overlap, matched=matched)
    cov = _coverage(gt_tracks, matched)
    return {**s.to_dict(), "people": int(len(vis)), "per_person": cov,
            "max_tracks_per_person": max((len(c["tracks"]) for c in cov.values()), default=0),
            "hidden_share": round(float(1 - vis.sum() / max(gt["present"].sum(), 1)), 3)}


def frame_ranges(frames: Sequence[int]) -> str:
    """Sorted frame numbers as ranges: [0, 1, 2, 5, 7, 8] -> '0-2,5,7-8' ('-' when none); the runs are the
    report's (stages/_report_media.spans)."""
    from video2mesh.stages._report_media import spans

    runs = spans(np.asarray(sorted(frames), np.int64))
    return ",".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs) if runs else "-"


def person_misses(gt: dict, hyp: dict[int, tuple[np.ndarray, np.ndarray]], detections=None,
                  iou: float = 0.5) -> dict[int, dict[str, Any]]:
    """Per person: where they are visible, which of those frames no tracklet box covers (IoU >= iou), and of
    those, how many the `detect` table (frame, x1, y1, x2, y2 columns; None = not known) had a box for: a miss
    with a detection was lost by tracking (tracks, tracklets), one without by the detector. What the tables'
    recall does not say: who is missed, and by which stage."""
    vis = visible(gt)
    boxes: dict[int, list[np.ndarray]] = {}
    for f, b in hyp.values():
        for k, fr in enumerate(np.asarray(f)):
            boxes.setdefault(int(fr), []).append(np.asarray(b[k], np.float64))
    dets = ({int(fr): g[["x1", "y1", "x2", "y2"]].to_numpy(np.float64) for fr, g in detections.groupby("frame")}
            if detections is not None else None)
    out = {}
    for p in range(len(vis)):
        seen = np.flatnonzero(vis[p])
        if not len(seen):
            continue
        truth = lambda fr: gt["bbox"][p, fr][None].astype(np.float64)  # noqa: E731
        hit = lambda fr, bs: len(bs) > 0 and iou_matrix(truth(fr), np.asarray(bs)).max() >= iou  # noqa: E731
        missed = [int(fr) for fr in seen if not hit(fr, boxes.get(int(fr), []))]
        out[p] = {"visible": frame_ranges(seen), "visible_n": int(len(seen)), "missed": frame_ranges(missed),
                  "missed_n": len(missed),
                  "missed_detected": None if dets is None else sum(hit(fr, dets.get(fr, [])) for fr in missed)}
    return out


def format_misses(rows: list[dict]) -> str:
    """One line per person of each rendered clip: visible frames, missed frames, and how many misses `detect` had."""
    lines = []
    for r in rows:
        names = r.get("names") or []
        for p, m in sorted(r.get("misses", {}).items(), key=lambda kv: int(kv[0])):
            who = names[int(p)] if int(p) < len(names) else f"person {p}"
            det = "" if m["missed_detected"] is None else f" (detect had a box on {m['missed_detected']})"
            lines.append(f"{label(r)}  {who}: visible {m['visible']} ({m['visible_n']} f); missed {m['missed_n']}: "
                         f"{m['missed']}{det}")
    return "\n".join(lines)


def gt_detections(gt: dict, mask: np.ndarray):
    """The `detect` artifact a perfect detector of the person-frames in mask (P, T) would give (score 0.9)."""
    import pandas as pd

    p, f = np.nonzero(mask)
    order = np.lexsort((p, f))
    b = gt["bbox"][p[order], f[order]].astype(np.float32)
    return pd.DataFrame({"frame": f[order].astype(np.int64), "x1": b[:, 0], "y1": b[:, 1], "x2": b[:, 2], "y2": b[:, 3],
                         "score": np.full(len(b), 0.9, np.float32), "follower": np.int64(-1), "drifted": np.int64(-1)})


def run_video_tracking(video: Path, spec, out_name: str, detections=None) -> tuple[dict, dict, dict[str, float]]:
    """(tracklets by id, run summary, compute seconds of each of TRACKING_STAGES) for one video; `detections`, when
    given, is injected as the `detect` artifact (spec.cache must then be a cache of its own)."""
    from video2mesh.flows.spec import build_runner
    from video2mesh.flows.video_to_mesh import run_video
    from video2mesh.pipeline.store import ArtifactStore

    spec = dataclasses.replace(spec, out=str(Path(spec.out).expanduser() / out_name), until="tracklets")
    if detections is not None:
        from .fast import _write_artifact

        runner = build_runner(spec)
        info, probe_res = runner.probe_video(video)
        _write_artifact(runner, info, "detect", {"probe": probe_res.ref.key}, detections)
    summary = run_video(str(video), spec, use_prefect=False)
    df = ArtifactStore(summary["cache_root"]).read_df(summary["stages"]["tracklets"]["ref"]["path"])
    hyp = {int(t): (g.frame.to_numpy(), g[["x1", "y1", "x2", "y2"]].to_numpy()) for t, g in df.groupby("track_id")}
    seconds = {}
    for name in TRACKING_STAGES:
        s = summary["stages"].get(name)
        if s is None:
            continue
        log = Path(s["ref"]["path"]) / "run.json"
        seconds[name] = round(json.loads(log.read_text()).get("seconds", 0.0) if log.is_file() else s["seconds"], 3)
    return hyp, summary, seconds


def run_video_fit(video: Path, spec, out_name: str):
    """(tracklets, fit) tables of one video run to the `fit` stage (licence-free method)."""
    from video2mesh.flows.video_to_mesh import run_video
    from video2mesh.pipeline.store import ArtifactStore

    spec = dataclasses.replace(spec, out=str(Path(spec.out).expanduser() / out_name), until="fit")
    summary = run_video(str(video), spec, use_prefect=False)
    store = ArtifactStore(summary["cache_root"])
    return tuple(store.read_df(summary["stages"][name]["ref"]["path"]) for name in ("tracklets", "fit"))


HIPS = (11, 12)


def score_poses(gt: dict, tracklets, fit) -> dict[str, Any]:
    """Fitted keypoints (fit rows: keypoints (51,), keypoints3d (51,)) against the GT joints of the person each
    track follows: per person-frame the median 2D distance (px) and the mean hip-centred 3D distance (mm) of
    COCO-17, summarised (n, median, p90) over visible, hidden and all person-frames."""
    vis = visible(gt)
    owner = {}
    for t, g in tracklets[~tracklets["interpolated"]].groupby("track_id"):
        overlap = np.zeros(len(vis))
        for f, box in zip(g["frame"].to_numpy(), g[["x1", "y1", "x2", "y2"]].to_numpy(float)):
            overlap += iou_matrix(box[None], gt["bbox"][:, f])[0] * gt["present"][:, f]
        owner[int(t)] = int(np.argmax(overlap))
    rows = []
    for t, f, kp, kp3 in zip(fit["track_id"], fit["frame"], fit["keypoints"], fit["keypoints3d"]):
        p = owner.get(int(t))
        if p is None or not gt["present"][p, f]:
            continue
        k2 = np.asarray(kp, float).reshape(17, 3)[:, :2]
        k3 = np.asarray(kp3, float).reshape(17, 3)
        g3 = gt["joints_cam"][p, f, :17].astype(float)
        e3 = np.linalg.norm((k3 - k3[list(HIPS)].mean(0)) - (g3 - g3[list(HIPS)].mean(0)), axis=1).mean()
        rows.append((bool(vis[p, f]), float(np.median(np.linalg.norm(k2 - gt["joints_2d"][p, f, :17], axis=1))), 1000 * e3))
    out = {}
    for name, keep in (("visible", lambda v: v), ("hidden", lambda v: not v), ("all", lambda v: True)):
        px = np.array([r[1] for r in rows if keep(r[0])])
        mm = np.array([r[2] for r in rows if keep(r[0])])
        out[name] = {"n": int(len(px)), **({"px_median": float(np.median(px)), "px_p90": float(np.percentile(px, 90)),
                                           "mm_median": float(np.median(mm)), "mm_p90": float(np.percentile(mm, 90))}
                                          if len(px) else {})}
    out["track_person"] = owner
    return out


def format_poses(rows: list[dict]) -> str:
    head = f"{'clip':<40}" + "".join(f"{h:>12}" for h in ("vis p-f", "px med/p90", "mm med/p90", "hid p-f", "px med/p90", "mm med/p90"))
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = ""
        for part in ("visible", "hidden"):
            q = r["poses"][part]
            cells += f"{q['n']:>12d}" + (f"{q['px_median']:>6.1f}/{q['px_p90']:<5.1f}{q['mm_median']:>6.0f}/{q['mm_p90']:<5.0f}"
                                         if q["n"] else f"{'-':>12}{'-':>12}")
        lines.append(f"{label(r):<40}{cells}")
    return "\n".join(lines)


def walkers(paths: Sequence[str | Path] | None, mix: str = "walks") -> list[Path]:
    """The mocap files people are taken from, in order: the given ones, or the MIXES entry `mix` in
    ../shared/data/mocap."""
    from video2mesh.pipeline.errors import ConfigError, InputError

    from .bench import default_mocap, mocap_files

    if paths:
        return mocap_files(paths)
    if mix not in MIXES:
        raise ConfigError(f"bench crowd: --mix {mix!r} is not one of {', '.join(MIXES)} (or 'all')")
    found = {p.stem: p for d in default_mocap() for p in d.rglob("*.bvh")}
    missing = [w for w in MIXES[mix] if w not in found]
    if missing:
        raise InputError(f"bench crowd: mocap {', '.join(missing)} not found; pass --mocap FILE (one per person, in order)")
    return [found[w] for w in MIXES[mix]]


def mix_names(text: str | None) -> list[str]:
    """`--mix` as names: comma-separated MIXES keys, 'all' for every one (None: the default walks)."""
    from video2mesh.pipeline.errors import ConfigError

    if not text:
        return ["walks"]
    names = list(MIXES) if text.strip() == "all" else [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in MIXES]
    if bad or not names:
        raise ConfigError(f"--mix {text!r}: give one or more of {', '.join(MIXES)} separated by commas, or all")
    return names


def rendered_rows(people: Sequence[int], files: list[Path], frames: int, spec, root: Path,
                  oracle: bool = False, poses: bool = False, mix: str = "given") -> list[dict]:
    from video2mesh.pipeline.errors import InputError

    from video2mesh.pipeline.store import ArtifactStore

    from .groundtruth import read_gt
    from .render import build_set

    rows = []
    for n in people:
        if n > len(files):
            raise InputError(f"bench crowd: --people {n} needs {n} mocap files, got {len(files)}")
        [clip] = build_set(files[:n], root, frames=frames, people=n, progress=lambda m: print(m, flush=True))
        gt = read_gt(clip / "gt.npz")
        dets = gt_detections(gt, visible(gt)) if oracle else None
        hyp, summary, stage_s = run_video_tracking(clip / "video.mp4", spec, clip.name, dets)
        t, seconds = int(gt["present"].shape[1]), sum(stage_s.values())
        detected = ArtifactStore(summary["cache_root"]).read_df(summary["stages"]["detect"]["ref"]["path"])
        names = [f.stem.removeprefix("dataset-2_").removesuffix("_001") for f in files[:n]]
        rows.append({"clip": clip.name, "mix": mix, "names": names, "frames": t, "compute_s": round(seconds, 2),
                     "stage_s": stage_s,
                     "frames_per_s": t / seconds if seconds > 0 else None, **score_clip(gt, hyp),
                     "cover": score_clip(gt, hyp, "cover"), "misses": person_misses(gt, hyp, detected)})
        if poses:
            tracklets, fit = run_video_fit(clip / "video.mp4", spec, clip.name)
            rows[-1]["poses"] = score_poses(gt, tracklets, fit)
        print(format_table(rows[-1:]).splitlines()[2], flush=True)
    return rows


def real_rows(videos: Sequence[Path], spec) -> list[dict]:
    rows = []
    for v in videos:
        hyp, summary, stage_s = run_video_tracking(Path(v), spec, Path(v).stem)
        n, seconds = int(summary["n_frames"]), sum(stage_s.values())
        rows.append({"clip": Path(v).name, "frames": n, "fps_video": summary["fps"], "compute_s": round(seconds, 2),
                     "stage_s": stage_s,
                     "frames_per_s": n / seconds if seconds > 0 else None, "tracks": len(hyp),
                     "track_ranges": {t: [int(f[0]), int(f[-1])] for t, (f, _) in hyp.items()}})
    return rows


def label(row: dict) -> str:
    """A rendered clip's name for the tables (40 characters): its mix, then its people without the common prefix."""
    name = row["clip"].removeprefix("00_").replace("dataset-2_", "").replace("_001", "")
    return ((f"{row['mix']}: " if row.get("mix") not in (None, "given") else "") + name)[:40]


def format_table(rows: list[dict], overlap: str = "iou") -> str:
    """The rendered clips' table; overlap "cover" shows the scores at intersection over the smaller box."""
    head = f"{'clip':<40}" + "".join(f"{name:>9}" for _, name, _ in COLUMNS)
    lines = [head, "-" * len(head)]
    for r in rows:
        r = r if overlap == "iou" else {**r, **r["cover"]}
        cells = "".join(f"{(fmt.format(r[k]) if r.get(k) is not None else '-'):>9}" for k, _, fmt in COLUMNS)
        lines.append(f"{label(r):<40}{cells}")
    return "\n".join(lines)


def run_crowd(people: Sequence[int], mocap: Sequence[str] | None, videos: Sequence[str] | None, *, frames: int,
              spec, root: Path, json_path: str | None = None, detections: str = "pipeline",
              poses: bool = False, mixes: Sequence[str] = ("walks",), detail: bool = False) -> dict[str, Any]:
    """The whole benchmark; prints the tables, returns (and optionally writes) the JSON document.
    detections: "pipeline" (the method's detector) or "gt" (visible GT boxes injected; no real videos).
    mixes: MIXES names, each rendered with every count in `people` (ignored when `mocap` is given)."""
    from video2mesh.flows.spec import default_cache_root

    from .bench import machine, write_json

    t0 = time.perf_counter()
    oracle = detections == "gt"
    if oracle:
        cache = Path(spec.cache).expanduser() if spec.cache else default_cache_root()
        spec = dataclasses.replace(spec, cache=str(cache / "crowd-gt-detections"), out=str(Path(spec.out) / "gt-detections"))
        videos = []
    sets = ([("given", walkers(mocap))] if mocap else [(m, walkers(None, m)) for m in mixes]) if people else []
    rows = []
    for name, files in sets:
        rows += rendered_rows(people, files, frames, spec, Path(root), oracle, poses, name)
    if rows:
        print("boxes matching at IoU >= 0.5:\n" + format_table(rows))
        print("boxes matching at intersection over the smaller box >= 0.5:\n" + format_table(rows, "cover"))
        if detail:
            print("who is missed (visible frames no track box covers at IoU >= 0.5):\n" + format_misses(rows))
    if poses and rows:
        print("fitted keypoints against each person's own joints (2D px; hip-centred 3D mm), person-frames visible "
              "and hidden:\n" + format_poses(rows))
    if videos is None:
        shared = [Path(d).parent / "videos" for d in _mocap_dirs()]
        videos = sorted(p for d in shared if d.is_dir() for p in d.glob("*.mp4"))
    real = real_rows([Path(v) for v in videos], spec)
    for r in real:
        print(f"{r['clip']}: {r['frames']} frames at {r['fps_video']:.0f} fps, {r['tracks']} tracks "
              f"{r['track_ranges']}, {r['frames_per_s']:.2f} frames/s")
    keys = ("recall", "precision", "switches_per_1000", "fragmentations", "mota", "idf1")
    overall = {k: statistics.median([r[k] for r in rows]) for k in (*keys, "frames_per_s")} if rows else {}
    overall["cover"] = {k: statistics.median([r["cover"][k] for r in rows]) for k in keys} if rows else {}
    doc = {"method": spec.method, "settings": spec.settings, "detections": detections, "people": list(people), "frames": frames,
           "mocap": [str(f) for _, files in sets for f in files],
           "mixes": {name: [str(f) for f in files] for name, files in sets},
           "root": str(root), "iou": 0.5, "visible_share": VISIBLE_SHARE,
           "rendered": rows, "overall_rendered_median": overall, "real": real, "machine": machine(),
           "seconds": round(time.perf_counter() - t0, 1),
           "note": "synthetic Anny bodies (identical region colours) rendered from mocap; real videos have no GT"}
    if json_path:
        write_json(doc, json_path)
    return doc


def _mocap_dirs() -> list[Path]:
    from .bench import default_mocap

    return default_mocap()
