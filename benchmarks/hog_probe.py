"""Probe (issue 18): would OpenCV's HOG people detectors find the people our BlazePose path never finds?

`PYTHONPATH=/tmp/cvc:$PWD/.pyshim python -m video2mesh.benchmarks.hog_probe [--clips DIR ...] [--video MP4]
[--json F] [--png DIR]` (/tmp/cvc: an unpacked opencv-contrib-python-headless wheel; the installed
opencv-python 5.1 has no HOG people detector, docs/detection.md).

Scored with `v2m bench crowd`'s rules (benchmarks/accuracy/crowd.py): a counted person-frame is a
*visible* one (`crowd.visible`), present-but-hidden ones are don't-care, and boxes match by
models/metrics/tracking.py's `evaluate` at >= 0.5, IoU and cover (intersection over the smaller box).
Every box is its own one-frame track here (no identities: detection, not tracking), so `evaluate`'s
matched pairs say which person-frames a detector found.

The current pipeline's boxes come from the crowd bench's cached run of the clip (`--runs`, its
`<clip>/video/run.json` names the `detect` and `tracklets` artifacts); a clip without a cached run gets
the detect stage's person search (current DetectConfig defaults) run here. "pipeline misses" = visible
person-frames its tracklets (what the bench scores) do not match. HOG is then asked about those.

Verification (`+lm`): each HOG box -> `roi_from_box` -> BlazePose's landmark model (the follower's call in
models/runners/person_search.py) -> kept when its pose flag >= keep_score, its box then the landmark
box (`landmark_box`, detect.box_pad), as the follower would give it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from video2mesh.benchmarks.accuracy.crowd import _people_tracks, visible
from video2mesh.models.metrics.tracking import evaluate

CACHE = Path.home() / ".cache/video2mesh/cache/accuracy"
CLIPS = ("524ce0086b055295", "9e0ff8b273d06c29", "f612d283859204f0", "acf75aa6023da94c")
WINDOWS = {"default": ((64, 128), "HOGDescriptor_getDefaultPeopleDetector"),   # cv2 function names (contrib only)
           "daimler": ((48, 96), "HOGDescriptor_getDaimlerPeopleDetector")}
# name -> detector, upscale, winStride, padding, scale (hitThreshold: collect at LOW_HIT, filter by weight)
VARIANTS = {"default x1": ("default", 1.0, 8, 8, 1.05), "default x1.5": ("default", 1.5, 8, 8, 1.05),
            "default x2": ("default", 2.0, 8, 8, 1.05), "daimler x1": ("daimler", 1.0, 8, 8, 1.05),
            "daimler x1.5": ("daimler", 1.5, 8, 8, 1.05)}
LOW_HIT = -0.5        # detectMultiScale's hitThreshold; boxes are then kept when their weight >= each of THRESHOLDS
THRESHOLDS = (0.0, 0.5, 1.0)
GROUP = 2             # detectMultiScale groupThreshold (OpenCV's default)


def make_hog(kind: str) -> cv2.HOGDescriptor:
    win, svm = WINDOWS[kind]
    hog = cv2.HOGDescriptor(win, (16, 16), (8, 8), (8, 8), 9)
    hog.setSVMDetector(getattr(cv2, svm)())
    return hog


def hog_boxes(hog, rgb: np.ndarray, up: float, stride: int, pad: int, scale: float) -> np.ndarray:
    """(K, 5) x1 y1 x2 y2 (frame pixels) + SVM weight of one frame, found at hitThreshold LOW_HIT."""
    img = cv2.resize(rgb, None, fx=up, fy=up, interpolation=cv2.INTER_LINEAR) if up != 1 else rgb
    rects, w = hog.detectMultiScale(img, hitThreshold=LOW_HIT, winStride=(stride, stride), padding=(pad, pad),
                                    scale=scale, groupThreshold=GROUP)
    if len(rects) == 0:
        return np.zeros((0, 5), np.float32)
    r = np.asarray(rects, np.float32) / up
    return np.concatenate([r[:, :2], r[:, :2] + r[:, 2:], np.asarray(w, np.float32).reshape(-1, 1)], 1)


def back_to_camera(gt: dict) -> np.ndarray:
    """(P, T) bool: the person is turned away from the camera (their front faces away from the ray to them, by
    any angle: the crowd clips' walkers cross the view, 3/4 from behind). Forward = (left - right shoulder) x up
    in camera axes (x right, y down, z ahead; COCO joints 5, 6 of joints_cam)."""
    left, right = gt["joints_cam"][..., 5, :], gt["joints_cam"][..., 6, :]             # (P, T, 3) metres
    fwd = np.cross(left - right, np.array([0.0, -1.0, 0.0]))
    return (fwd * (left + right)).sum(-1) > 0


def read_frames(path: Path) -> list[np.ndarray]:
    cap, out = cv2.VideoCapture(str(path)), []
    while True:
        ok, bgr = cap.read()
        if not ok:
            return out
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def hits(gt: dict, boxes: list[np.ndarray], overlap: str) -> tuple[np.ndarray, dict]:
    """(P, T) bool visible person-frames matched by a box, and evaluate()'s counts; every box its own track."""
    vis = visible(gt)
    hyp = {f * 1000 + k: (np.array([f]), b[None, :4]) for f, bs in enumerate(boxes) for k, b in enumerate(bs)}
    matched: dict = {}
    s = evaluate(_people_tracks(gt, vis), hyp, iou=0.5, ignore=_people_tracks(gt, gt["present"] & ~vis),
                 overlap=overlap, matched=matched)
    hit = np.zeros_like(vis)
    for (p, h), _ in matched.items():
        hit[p, h // 1000] = True
    return hit, {"recall": round(s.recall, 3), "fp": s.fp, "fp_per_frame": round(s.fp / len(boxes), 2), "boxes": s.hyp}


def pipeline_boxes(clip: Path, runs: Path, n: int, frames) -> dict[str, list[np.ndarray]]:
    """The current pipeline's per-frame boxes of `clip`: cached crowd-bench `detect` + `tracklets`, else detect's
    person search run here (detect only)."""
    from video2mesh.pipeline.store import ArtifactStore

    run = runs / clip.name / "video" / "run.json"
    if run.is_file():
        summary = json.loads(run.read_text())
        out, store = {}, ArtifactStore(summary["cache_root"])
        for name in ("detect", "tracklets"):
            path = Path(summary["stages"][name]["ref"]["path"])
            if path.is_dir():
                df = store.read_df(path)
                out[name] = [df[df.frame == f][["x1", "y1", "x2", "y2"]].to_numpy() for f in range(n)]
        if "tracklets" in out:
            return out
    from video2mesh.stages.detect import DetectConfig, search_config
    from video2mesh.models.runners.person_search import PersonSearch

    search = PersonSearch(blazepose(), search_config(DetectConfig(backend="blazepose")))
    return {"detect (run here)": [search(f)[:, :4] for f in frames]}


_MODEL = []


def blazepose():
    if not _MODEL:
        from video2mesh.models.runners.blazepose import BlazePose
        from video2mesh.pipeline.assets import default_models_dir

        m = default_models_dir()
        _MODEL.append(BlazePose(m / "pose_detection.tflite", m / "pose_landmark_full.tflite"))
    return _MODEL[0]


ROI_SCALE = [1.25]    # ROI side / HOG box's longer side (1.25: roi_from_box's, as for a detector box; --lm-roi-scale)


def verify(rgb: np.ndarray, boxes: np.ndarray, keep: float = 0.5, pad: float = 0.04) -> np.ndarray:
    """HOG boxes (K, 5) -> the landmark boxes (M, 5) [.., pose flag] of those whose pose flag >= keep."""
    from video2mesh.models.runners.blazepose import roi_from_box
    from video2mesh.models.runners.person_search import landmark_box

    out = []
    for b in boxes:
        lm = blazepose().landmarks(rgb, roi_from_box(*b[:4], scale=ROI_SCALE[0]))
        if lm.pose_score >= keep:
            out.append([*landmark_box(lm.image[:33, :2], pad), lm.pose_score])
    return np.asarray(out, np.float32).reshape(-1, 5)


class Seeded:
    """BlazePose whose whole-frame detector call also returns `seeds(rgb)` boxes (M, 4+) as upright
    detections (alignment p0 = box centre, |p1 - p0| = half the longer side: `roi_from_box`'s ROI), so
    PersonSearch verifies each with the landmark model and follows what passes, in the detect stage's own
    code path (nothing in stages/ changed). `ms`: milliseconds per whole-frame call spent on the seeds."""

    def __init__(self, model):
        self.model, self.ms = model, []

    def seeds(self, rgb) -> np.ndarray:
        raise NotImplementedError

    def landmarks(self, rgb, roi):
        return self.model.landmarks(rgb, roi)

    def detect(self, rgb, roi=None):
        from video2mesh.models.runners.blazepose import Detection

        out = self.model.detect(rgb, roi)
        if roi is None:
            t0 = time.perf_counter()
            for b in self.seeds(rgb):
                c, r = (b[:2] + b[2:4]) / 2, max(b[2] - b[0], b[3] - b[1]) / 2
                out.append(Detection(b[:4].astype(np.float32), np.array([c, c - [0, r], c, c], np.float32), 0.5))
            self.ms.append(1000 * (time.perf_counter() - t0))
        return out


class HogSeeded(Seeded):
    """A HOG variant's boxes (weight >= min_weight) as seeds."""

    def __init__(self, model, variant: str, min_weight: float):
        super().__init__(model)
        kind, self.up, self.stride, self.pad, self.scale = VARIANTS[variant]
        self.hog, self.min_weight = make_hog(kind), min_weight

    def seeds(self, rgb):
        return [b for b in hog_boxes(self.hog, rgb, self.up, self.stride, self.pad, self.scale) if b[4] >= self.min_weight]


def seeded_clip(clip: Path, variant: str, min_weight: float) -> dict:
    """Detect-level recall of the detect stage's person search (current defaults) without and with HOG seeds."""
    from video2mesh.benchmarks.accuracy.groundtruth import read_gt
    from video2mesh.models.runners.person_search import PersonSearch
    from video2mesh.stages.detect import DetectConfig, search_config

    gt, frames = read_gt(clip / "gt.npz"), read_frames(clip / "video.mp4")
    frames = frames[: gt["present"].shape[1]]
    vis, back = visible(gt), back_to_camera(gt)[:, : len(frames)]
    row = {"clip": clip.parent.name[:8] + "/" + clip.name[:2], "visible": int(vis.sum()), "variant": variant,
           "min_weight": min_weight}
    base = {}
    for name, model in (("detect", blazepose()), ("detect + HOG seeds", HogSeeded(blazepose(), variant, min_weight))):
        search = PersonSearch(model, search_config(DetectConfig(backend="blazepose")))
        t0 = time.perf_counter()
        boxes = [search(f)[:, :4] for f in frames]
        sec = time.perf_counter() - t0
        r = score_search(gt, boxes, vis, back, base, sec)
        if isinstance(model, HogSeeded):
            r["hog_ms_median"] = round(statistics.median(model.ms), 1)
        row[name] = r
    return row


def score_search(gt: dict, boxes: list[np.ndarray], vis: np.ndarray, back: np.ndarray, base: dict, sec: float) -> dict:
    """One person search's boxes per frame scored both ways (IoU, cover): recall etc., misses per person and
    turned away; the first call of a clip fills `base` (its hits), later ones count new finds and losses
    against it."""
    r = {"s_per_frame": round(sec / len(boxes), 3), "boxes_per_frame": round(sum(map(len, boxes)) / len(boxes), 2)}
    first = not base
    for ov in ("iou", "cover"):
        h, sc = hits(gt, boxes, ov)
        r[ov] = {**sc, "missed_per_person": (vis & ~h).sum(1).tolist(), "missed_back": int((vis & ~h & back).sum())}
        if first:
            base[ov] = h
        else:
            r[ov]["new_finds"] = int((h & ~base[ov]).sum())
            r[ov]["lost"] = int((base[ov] & ~h).sum())
    return r


def run_variants(frames: list[np.ndarray], names) -> tuple[dict[str, list[np.ndarray]], dict[str, float]]:
    """Boxes per frame of each HOG variant (at LOW_HIT) and its median ms/frame."""
    boxes, ms = {}, {}
    for name in names:
        kind, up, stride, pad, scale = VARIANTS[name]
        hog, out, t = make_hog(kind), [], []
        for f in frames:
            t0 = time.perf_counter()
            out.append(hog_boxes(hog, f, up, stride, pad, scale))
            t.append(1000 * (time.perf_counter() - t0))
        boxes[name], ms[name] = out, round(statistics.median(t), 1)
    return boxes, ms


def probe_clip(clip: Path, runs: Path, names, lm_variants: list[str], lm_hit: float) -> dict:
    from video2mesh.benchmarks.accuracy.groundtruth import read_gt

    gt, frames = read_gt(clip / "gt.npz"), read_frames(clip / "video.mp4")
    n = min(len(frames), gt["present"].shape[1])
    frames = frames[:n]
    vis = visible(gt)
    pipe = pipeline_boxes(clip, runs, n, frames)
    ref = "tracklets" if "tracklets" in pipe else next(iter(pipe))
    row = {"clip": clip.parent.name[:8] + "/" + clip.name[:2], "clip_dir": str(clip), "people": int(len(vis)), "frames": n,
           "visible": int(vis.sum()), "pipeline_ref": ref, "pipeline": {}, "hog": {}}
    miss, miss_det = {}, {}
    for name, bx in pipe.items():
        for ov in ("iou", "cover"):
            h, s = hits(gt, bx, ov)
            row["pipeline"][f"{name} {ov}"] = s
            if name == ref:
                miss[ov] = vis & ~h
            if name.startswith("detect"):
                miss_det[ov] = vis & ~h
    row["missed"] = {ov: int(m.sum()) for ov, m in miss.items()}
    row["missed_per_person"] = {ov: m.sum(1).tolist() for ov, m in miss.items()}
    row["missed_by_detect"] = {ov: int(m.sum()) for ov, m in miss_det.items()}
    row["missed_frames_per_person"] = {ov: [np.flatnonzero(p).tolist() for p in m] for ov, m in miss.items()}
    back = back_to_camera(gt)[:, :n]
    row["missed_back"] = {ov: int((m & back).sum()) for ov, m in miss.items()}
    row["px_height_median"] = [round(float(np.median(np.diff(gt["bbox"][p, :n][vis[p], 1::2], axis=1))), 0)
                               if vis[p].any() else None for p in range(len(vis))]
    hog, ms = run_variants(frames, names)
    variants = {f"{k} w>={t}": [b[b[:, 4] >= t] for b in v] for k, v in hog.items() for t in THRESHOLDS}
    lm_ms = {}
    for k in (v for v in lm_variants if v in hog):
        t0, name = time.perf_counter(), f"{k} w>={lm_hit} +lm"
        variants[name] = [verify(f, b[b[:, 4] >= lm_hit]) for f, b in zip(frames, hog[k])]
        lm_ms[name] = round(1000 * (time.perf_counter() - t0) / n, 1)
    for name, bx in variants.items():
        r = {"ms": ms.get(name.split(" w>=")[0])}
        if name in lm_ms:
            r["ms_lm_extra"] = lm_ms[name]
        for ov in ("iou", "cover"):
            h, s = hits(gt, bx, ov)
            r[ov] = {**s, "finds_missed": int((h & miss[ov]).sum()),
                     "finds_missed_per_person": (h & miss[ov]).sum(1).tolist(),
                     "finds_missed_back": int((h & miss[ov] & back).sum()),
                     "finds_missed_frames_per_person": [np.flatnonzero(p).tolist() for p in h & miss[ov]],
                     "finds_missed_by_detect": int((h & miss_det[ov]).sum()) if ov in miss_det else None,
                     "union_recall": round(float(((h | (vis & ~miss[ov])) & vis).sum() / vis.sum()), 3)}
        row["hog"][name] = r
    return row


def real_video(path: Path, names, lm_variants: list[str], lm_hit: float, png: Path | None) -> dict:
    """No GT: boxes per frame of each variant, (verified) and annotated PNGs of 3 frames."""
    frames = read_frames(path)
    hog, ms = run_variants(frames, names)
    out = {"video": path.name, "frames": len(frames), "size": list(frames[0].shape[:2]), "variants": {}}
    for k, v in hog.items():
        for t in THRESHOLDS:
            out["variants"][f"{k} w>={t}"] = {"boxes_per_frame": [int((b[:, 4] >= t).sum()) for b in v], "ms": ms[k]}
    for lm_variant in (v for v in lm_variants if v in hog):
        lm = [verify(f, b[b[:, 4] >= lm_hit]) for f, b in zip(frames, hog[lm_variant])]
        out["variants"][f"{lm_variant} w>={lm_hit} +lm"] = {"boxes_per_frame": [len(b) for b in lm]}
        if png:
            png.mkdir(parents=True, exist_ok=True)
            for i in sorted({0, len(frames) // 2, len(frames) - 1}):
                img = cv2.cvtColor(frames[i], cv2.COLOR_RGB2BGR)
                for b in hog[lm_variant][i]:
                    if b[4] >= lm_hit:
                        cv2.rectangle(img, (int(b[0]), int(b[1])), (int(b[2]), int(b[3])), (0, 0, 255), 2)
                        cv2.putText(img, f"{b[4]:.2f}", (int(b[0]), int(b[1]) + 12), 0, 0.4, (0, 0, 255), 1)
                for b in lm[i]:
                    cv2.rectangle(img, (int(b[0]), int(b[1])), (int(b[2]), int(b[3])), (0, 255, 0), 2)
                cv2.imwrite(str(png / f"{path.stem}_{lm_variant.replace(' ', '_')}_{i:03d}.png"), img)
    return out


def table(rows: list[dict], ov: str) -> str:
    lines = [f"{'clip':<20}{'variant':<28}{'recall':>7}{'FP/f':>7}{'ms/f':>7}{'finds missed':>14}{'(back)':>9}{'union rec':>10}"]
    for r in rows:
        name = r["clip"][:18]
        p = r["pipeline"][f"{r['pipeline_ref']} {ov}"]
        lines.append(f"{name:<20}{'pipeline ' + r['pipeline_ref']:<28}{p['recall']:>7.3f}{p['fp_per_frame']:>7.2f}{'':>7}"
                     f"{'missed ' + str(r['missed'][ov]):>14}{r['missed_back'][ov]:>9}{'':>10}")
        for k, v in r["hog"].items():
            s = v[ov]
            ms = f"{v['ms']:.0f}" + (f"+{v['ms_lm_extra']:.0f}" if "ms_lm_extra" in v else "")
            lines.append(f"{'':<20}{k:<28}{s['recall']:>7.3f}{s['fp_per_frame']:>7.2f}{ms:>7}"
                         f"{str(s['finds_missed']) + '/' + str(r['missed'][ov]):>14}{s['finds_missed_back']:>9}{s['union_recall']:>10.3f}")
    return "\n".join(lines)


def seed_table(rows: list[dict]) -> str:
    lines = [f"{'clip':<13}{'search':<20}{'rec IoU':>8}{'rec cov':>8}{'FP/f cov':>9}{'new':>5}{'lost':>5}"
             f"{'missed back':>12}{'s/frame':>8}  missed per person (cover)"]
    for r in rows:
        for name in ("detect", "detect + HOG seeds"):
            x, c = r[name], r[name]["cover"]
            lines.append(f"{r['clip']:<13}{name:<20}{x['iou']['recall']:>8.3f}{c['recall']:>8.3f}{c['fp_per_frame']:>9.2f}"
                         f"{c.get('new_finds', ''):>5}{c.get('lost', ''):>5}{c['missed_back']:>12}{x['s_per_frame']:>8.2f}  {c['missed_per_person']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="*", type=Path, default=None,
                    help="rendered clip folders (video.mp4 + gt.npz); default: every clip under the crowd sets " + " ".join(CLIPS))
    ap.add_argument("--runs", type=Path, default=CACHE / "runs-crowd", help="the crowd bench's --out (cached runs)")
    ap.add_argument("--video", nargs="*", type=Path, default=[], help="real videos (no GT)")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--lm", nargs="*", default=["default x2", "daimler x1.5"], help="variants whose boxes are verified by the landmark model")
    ap.add_argument("--lm-hit", type=float, default=0.0, help="HOG weight a box needs to be verified")
    ap.add_argument("--lm-roi-scale", type=float, default=1.25,
                    help="ROI side / HOG box side for the landmark model (HOG windows hold the person in ~0.75 of their height)")
    ap.add_argument("--seed", default=None, help="also run detect's person search with this variant's boxes as seeds")
    ap.add_argument("--seed-weight", type=float, default=0.0, help="HOG weight a seed box needs")
    ap.add_argument("--seed-only", action="store_true", help="only the --seed comparison (no per-variant tables)")
    ap.add_argument("--png", type=Path, default=None, help="folder for annotated frames of the real videos")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    if not hasattr(cv2, "HOGDescriptor_getDaimlerPeopleDetector"):
        raise SystemExit("hog_probe: this cv2 has no HOG people detectors; put an opencv-contrib build first on PYTHONPATH")
    ROI_SCALE[0] = a.lm_roi_scale
    clips = a.clips if a.clips is not None else sorted(p.parent for c in CLIPS for p in (CACHE / c).glob("*/gt.npz"))
    rows, seeded = [], []
    for clip in clips:
        if not a.seed_only:
            rows.append(probe_clip(clip, a.runs, a.variants, a.lm, a.lm_hit))
            print(table(rows[-1:], "cover"), flush=True)
        if a.seed:
            seeded.append(seeded_clip(clip, a.seed, a.seed_weight))
            print(seed_table(seeded[-1:]), flush=True)
    real = [real_video(v, a.variants, a.lm, a.lm_hit, a.png) for v in a.video]
    for ov in ("iou", "cover"):
        print(f"\nmatching at {ov} >= 0.5 (crowd bench rules):\n" + table(rows, ov))
    if seeded:
        print(f"\ndetect's person search, HOG seeds {a.seed} w>={a.seed_weight}:\n" + seed_table(seeded))
    for r in real:
        print(f"\n{r['video']} ({r['frames']} frames, no GT): boxes per frame")
        for k, v in r["variants"].items():
            print(f"  {k:<28}{v['boxes_per_frame']}  ms/f {v.get('ms', '-')}")
    if a.json:
        doc = {"cv2": cv2.__file__, "cv2_version": cv2.__version__, "threads": cv2.getNumThreads(),
               "variants": {k: dict(zip(("detector", "upscale", "win_stride", "padding", "scale"), v)) for k, v in VARIANTS.items()},
               "hit_threshold": LOW_HIT, "lm_roi_scale": a.lm_roi_scale, "lm_hit": a.lm_hit, "weight_thresholds": THRESHOLDS, "group_threshold": GROUP,
               "load": Path("/proc/loadavg").read_text().split()[:3], "rendered": rows, "seeded": seeded, "real": real}
        a.json.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
