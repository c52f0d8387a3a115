"""`v2m bench accuracy`: build (or reuse) ground-truth clips, run the normal pipeline on each, score, report.

Rendered mode: render.build_set (Blender) gives video.mp4 + gt.npz per clip. Fast mode (--fast): fastgt
gives gt.npz, fast.py a stand-in video and the injected detect/blazepose artifacts. Either way each clip's
video then goes through flows.video_to_mesh.run_video (the local engine of `v2m run --no-prefect`, with
the user's --method and --set settings), and the published per-track npz files are scored (score.py).
Table per clip and overall (medians over clips); JSON with per clip, overall, settings, machine, timings.
frames/s is frames / the stages' compute seconds (from each stage's run.json, so a cached re-run still
reports what the run took); `seconds` is this call's wall time.
"""
from __future__ import annotations

import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any, Sequence

from video2mesh.pipeline.errors import ConfigError, InputError

from .score import METRIC_KEYS, read_prediction, score_clip

COLUMNS = (("recall", "recall", "{:.3f}"), ("mpjpe_mm", "MPJPE", "{:.0f}"), ("pa_mpjpe_mm", "PA-MPJPE", "{:.0f}"),
           ("pve_mm", "PVE", "{:.0f}"), ("accel_err_mm", "accel", "{:.1f}"), ("w_mpjpe_mm", "W-MPJPE", "{:.0f}"),
           ("wa_mpjpe_mm", "WA-MPJPE", "{:.0f}"), ("drift_m_per_10m", "drift/10m", "{:.2f}"),
           ("travel_ratio", "travel", "{:.2f}"), ("cam_rot_err_deg", "cam deg", "{:.1f}"),
           ("foot_skate_mm", "skate", "{:.1f}"), ("penetration_cm", "pen cm", "{:.1f}"), ("float_cm", "float cm", "{:.1f}"),
           ("flip_rate", "flip", "{:.3f}"), ("frames_per_s", "fps", "{:.2f}"))
KNOWN_STATURE_NOTE = ("WITH KNOWN STATURE: each clip's fit was given the GT body's true stature (fit.stature_m), "
                      "as a user who knows the actor would; these are not the default numbers")
UNITS = ("units: mm (MPJPE, PA-MPJPE, PVE, W-/WA-MPJPE), mm/frame^2 (accel error, VIBE), m per 10 m (drift), "
         "predicted / true root path (travel), degrees (camera rotation vs its first frame, median), "
         "mm/frame (foot skate), cm (floor), fraction (recall, flip)")


def default_mocap() -> list[Path]:
    """../shared/data/mocap from the working folder or from the repository, when present."""
    here = Path(__file__).resolve()
    for base in (Path.cwd().parent, *here.parents):
        d = base / "shared" / "data" / "mocap"
        if d.is_dir():
            return [d]
    return []


def mocap_files(paths: Sequence[str | Path]) -> list[Path]:
    """BVH files of the given files/folders (folders: every *.bvh below, sorted); checks each is mappable."""
    from .mocap import load_mocap

    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob("*.bvh"))
            if not found:
                raise InputError(f"--mocap {p}: no .bvh file in this folder")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"--mocap {p}: no such file or folder")
    for f in files:
        load_mocap(f, frames=2)           # raises InputError naming the joint it cannot map
    return files


def _clips(files: list[Path], root: Path, fast: bool, frames: int | None, fps: float = 30.0) -> list[tuple[Path, Path]]:
    """(clip folder, gt.npz) pairs; rendered videos are `<clip>/video.mp4`, at `fps` frames/s."""
    if fast:
        from .fastgt import build_fast_set

        dirs = build_fast_set(files, root, frames=frames, fps=fps)
    else:
        from .render import build_set

        dirs = build_set(files, root, frames=frames, fps=fps, progress=lambda m: print(m, flush=True))
    return [(d, d / "gt.npz") for d in dirs]


def gt_stature(gt: dict) -> float:
    """Stature (metres, Anny rest mesh's vertical extent: models/fit/stature.py) of the clip's one GT body,
    what a user who knows the actor would pass as fit.stature_m."""
    from video2mesh.models.body.anny_body import PHENOTYPES
    from video2mesh.models.fit.stature import rest_stature
    from video2mesh.stages.licence_free import load_body

    meta = gt["meta"]
    phens = [p["phenotype"] for p in meta["people"]] if "people" in meta else [meta["phenotype"]]
    if len(phens) != 1:
        raise ConfigError(f"--known-stature: this clip has {len(phens)} people; it gives one stature per "
                          "single-person clip (fit.stature_by_person needs the GT-to-track matching)")
    return round(rest_stature(load_body(None), [phens[0][k] for k in PHENOTYPES]), 3)


def run_clip(clip: Path, gt_path: Path, spec, fast: bool, noise=None, known_stature: bool = False) -> dict[str, Any]:
    """Run the normal pipeline on one clip and score it; returns the clip's row. `known_stature`: the
    fit is told the GT body's stature (fit.stature_m), as a user who knows the actor would."""
    from video2mesh.flows.spec import build_runner
    from video2mesh.flows.video_to_mesh import run_video
    from video2mesh.pipeline.config import merge
    from video2mesh.pipeline.names import find_output_dir

    from .groundtruth import read_gt

    gt = read_gt(gt_path)
    stature = gt_stature(gt) if known_stature else None
    if stature is not None:
        spec = dataclasses.replace(spec, settings=merge(spec.settings, {"fit": {"stature_m": stature}}))
    # every clip's video is video.mp4: one folder per set (the same clip name at another frame rate or length is
    # another video) and per method + settings (variants run side by side must not publish into one folder)
    spec = dataclasses.replace(spec, out=str(Path(spec.out).expanduser() / clip.parent.name / _settings_tag(spec) / clip.name))
    t0 = time.perf_counter()
    if fast:
        from .fast import NoiseModel, fast_clip, inject

        noise = noise or NoiseModel()
        video = fast_clip(gt_path, noise)
        inject(build_runner(spec), video, gt, noise)
    else:
        video = clip / "video.mp4"
    summary = run_video(str(video), spec, use_prefect=False)
    seconds = time.perf_counter() - t0
    out = find_output_dir(spec.out, video, summary["video_digest"])   # this video's, not an older one's of the name
    preds = [read_prediction(p) for p in sorted(out.glob("track_*.npz"))]
    boxes = _track_boxes(summary)
    compute_s = _compute_seconds(summary)
    n = int(gt["present"].shape[1])
    row = {"clip": clip.name, "frames": n, "seconds": round(seconds, 1), "compute_s": round(compute_s, 1),
           "frames_per_s": n / compute_s if compute_s > 0 else None,
           "stages": {n: {"status": s["status"], "seconds": round(s["seconds"], 1)} for n, s in summary["stages"].items()},
           "camera": gt["meta"].get("camera", {}).get("kind") or gt["meta"].get("camera", {}).get("name"),
           "frame_space": sorted({p.frame_space for p in preds}), "outputs": str(out)}
    if stature is not None:
        row["known_stature_m"] = stature
    from video2mesh.stages.licence_free import load_body

    body = load_body(None) if any(p.rig is not None for p in preds) and "verts_world" in gt else None
    row.update(score_clip(gt, preds, boxes, body))
    return row


def _settings_tag(spec) -> str:
    """8 hex digits naming the method and stage settings of a run (its outputs' folder under the set's)."""
    from video2mesh.pipeline.hashing import digest_obj

    return digest_obj({"method": spec.method, "settings": spec.settings}, length=8)


def _compute_seconds(summary: dict) -> float:
    """Seconds the pipeline's stages took when they were computed (each stage folder's run.json), so a
    re-scored clip whose stages are cached still reports the time its run took."""
    total = 0.0
    for s in summary["stages"].values():
        log = Path(s["ref"]["path"]) / "run.json"
        total += json.loads(log.read_text()).get("seconds", 0.0) if log.is_file() else s["seconds"]
    return total


def _track_boxes(summary: dict) -> dict:
    """track id -> (frames, boxes) from the run's `tracklets` artifact."""
    from video2mesh.pipeline.store import ArtifactStore

    ref = summary["stages"]["tracklets"]["ref"]
    df = ArtifactStore(summary["cache_root"]).read_df(ref["path"])
    return {int(t): (g.frame.to_numpy(), g[["x1", "y1", "x2", "y2"]].to_numpy()) for t, g in df.groupby("track_id")}


def overall(rows: list[dict]) -> dict[str, Any]:
    """Median over clips of each metric (clips where it is defined)."""
    out = {}
    for k in (*METRIC_KEYS, "recall", "pve_mm", "cam_rot_err_deg", "frames_per_s"):
        vals = [r[k] for r in rows if r.get(k) is not None]
        out[k] = statistics.median(vals) if vals else None
    out["clips"] = len(rows)
    return out


def format_table(rows: list[dict], total: dict) -> str:
    head = f"{'clip':<44}" + "".join(f"{name:>10}" for _, name, _ in COLUMNS)
    lines = [head, "-" * len(head)]
    for r in [*rows, {"clip": "overall (median)", **total}]:
        cells = "".join(f"{(fmt.format(r[k]) if r.get(k) is not None else '-'):>10}" for k, _, fmt in COLUMNS)
        lines.append(f"{r['clip'][:44]:<44}{cells}")
    return "\n".join(lines + [UNITS])


def write_json(doc: dict[str, Any], path: str | Path) -> None:
    """A benchmark's JSON (`v2m bench accuracy` / `crowd`): numpy scalars as floats, parent folders made."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, indent=1, default=float) + "\n")
    print(f"wrote {path}")


def machine() -> dict[str, Any]:
    import os
    import platform

    import psutil

    return {"python": platform.python_version(), "cpus": psutil.cpu_count(), "load_avg_1m": os.getloadavg()[0],
            "platform": platform.platform()}


def run_accuracy(mocap: Sequence[str] | None, *, fast: bool, frames: int | None, spec, root: Path,
                 json_path: str | None = None, known_stature: bool = False, fps: float = 30.0) -> dict[str, Any]:
    """The whole benchmark; prints the table, returns (and optionally writes) the JSON document.
    `fps`: the clips' frame rate (the mocap resampled; per-frame metrics such as accel are per frame^2 at it).
    `known_stature`: each clip's fit is given its GT body's stature (not the default numbers: the
    runs go to <spec.out>-known-stature and the table and JSON say so)."""
    if fast and spec.method != "licence-free":
        raise ConfigError("--fast stands in for BlazePose's keypoints, which only the licence-free method uses; "
                          "drop --fast or use --method licence-free")
    paths = list(mocap or []) or default_mocap()
    if not paths:
        raise InputError("no mocap given and ../shared/data/mocap not found: pass --mocap DIR_OR_FILE")
    files = mocap_files(paths)
    t0 = time.perf_counter()
    if not 1 <= fps <= 240:
        raise ConfigError(f"--fps {fps:g}: give the rendered clips' frame rate, 1 to 240")
    clips = _clips(files, Path(root), fast, frames, fps)
    build_s = time.perf_counter() - t0
    if known_stature:
        spec = dataclasses.replace(spec, out=str(Path(spec.out).expanduser()) + "-known-stature")
        print(KNOWN_STATURE_NOTE, flush=True)
    rows = []
    for clip, gt_path in clips:
        rows.append(run_clip(clip, gt_path, spec, fast, known_stature=known_stature))
        print(format_table(rows[-1:], {}).splitlines()[2], flush=True)
    total = overall(rows)
    print(format_table(rows, total))
    if known_stature:
        print(KNOWN_STATURE_NOTE)
    doc = {"mode": "fast" if fast else "rendered", "method": spec.method, "settings": spec.settings,
           "known_stature": known_stature, **({"note_known_stature": KNOWN_STATURE_NOTE} if known_stature else {}),
           "mocap": [str(f) for f in files], "frames": frames, "fps": fps, "root": str(root), "build_s": round(build_s, 1),
           "machine": machine(), "clips": rows, "overall": total,
           "note": "synthetic Anny bodies rendered from mocap; not 3DPW / EMDB numbers"}
    if json_path:
        write_json(doc, json_path)
    return doc
