"""Person recall and cost of the licence-free detector variants: rendered multi-person clips + real videos.

`python -m video2mesh.benchmarks.detect_recall [--clips DIR ...] [--videos MP4 ...] [--frames N] [--json F]`

Rendered clips are the accuracy benchmark's sets (`video.mp4` + `gt.npz` per clip folder, made by
`benchmarks/accuracy/render.py build_set(..., people=P)`; default: every multi-person clip under
`<cache>/accuracy`). A GT person-frame counts ("visible") when the person is present (a torso joint
visible, groundtruth.py) and their mesh box is >= --min-px tall. Matching per frame: Hungarian on
IoU + intersection over the smaller box, a pair counts when the latter is >= score.MIN_COVER (the
accuracy benchmark's rule: BlazePose's boxes are loose squares around tight mesh boxes). Recall =
matched visible person-frames / visible person-frames; precision = matched boxes / boxes (a box on a
GT person below --min-px or not present is neither hit nor false). Real videos have no GT: boxes per
frame are reported. frames/s = frames / detection seconds on this machine (load from other jobs
counts; compare variants of one run).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from video2mesh.benchmarks.accuracy.score import MIN_COVER, box_iou
from video2mesh.models.runners.person_search import PersonSearch, SearchConfig

def variants() -> dict[str, SearchConfig]:
    """before = the old blazepose backend (whole frame only); after = the detect stage's defaults; and
    each of the two additions alone (ablations)."""
    from dataclasses import replace

    from video2mesh.stages.detect import DetectConfig, search_config

    after = search_config(DetectConfig(backend="blazepose"))
    return {"before": SearchConfig(), "after": after, "tiles only": replace(after, track=False),
            "track only": replace(after, tile_fracs=()), "after no verify": replace(after, verify=False),
            "after cover 0.9": replace(after, nms_cover=0.9), "tiles every 2": replace(after, tiles_every=2),
            "new inside off": replace(after, new_cover=1.0), "same pose off": replace(after, same_pose=1.0)}


def read_frames(path: Path, n: int) -> list[np.ndarray]:
    """The first n frames (0 = all) of a video as RGB uint8."""
    cap, out = cv2.VideoCapture(str(path)), []
    while not n or len(out) < n:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return out


def run_variant(model, cfg: SearchConfig, frames: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """Boxes per frame ((K, 5) each) and frames/s of one variant over consecutive frames."""
    search = PersonSearch(model, cfg)
    t0 = time.perf_counter()
    out = [search(f) for f in frames]
    return out, len(frames) / (time.perf_counter() - t0)


def unoccluded(gt_boxes: np.ndarray, depth: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(P, T) share of each person's box not covered by the boxes of people nearer the camera.

    gt_boxes (P, T, 4) pixels, depth (P, T) camera z of the hips (metres), present (P, T). Boxes are
    coarser than silhouettes (outstretched arms), so this overstates occlusion a little."""
    n_p, n_t = present.shape
    out = np.ones((n_p, n_t))
    for f in range(n_t):
        for i in range(n_p):
            x1, y1, x2, y2 = np.floor(gt_boxes[i, f]).astype(int)
            if x2 <= x1 or y2 <= y1:
                continue
            mask = np.ones((y2 - y1, x2 - x1), bool)
            for j in np.flatnonzero(present[:, f] & (depth[:, f] < depth[i, f])):
                a = np.floor(gt_boxes[j, f]).astype(int) - [x1, y1, x1, y1]
                mask[max(a[1], 0):max(a[3], 0), max(a[0], 0):max(a[2], 0)] = False
            out[i, f] = mask.mean()
    return out


def score(dets: list[np.ndarray], gt_boxes: np.ndarray, present: np.ndarray, min_px: float,
          shown: np.ndarray | None = None, min_shown: float = 0.0) -> dict:
    """Recall of visible GT person-frames and precision of boxes. gt_boxes (P, T, 4), present (P, T);
    shown (P, T): unoccluded share of each box (`unoccluded`), a person-frame counts when >= min_shown."""
    gt_boxes, present = gt_boxes[:, : len(dets)], present[:, : len(dets)]  # scored frames only
    height = gt_boxes[..., 3] - gt_boxes[..., 1]
    visible = present & (height >= min_px)
    if shown is not None:
        visible &= shown[:, : len(dets)] >= min_shown
    hit = np.zeros_like(visible)
    n_box = n_true = 0
    for f, d in enumerate(dets):
        people = np.flatnonzero(present[:, f])
        if len(d) and len(people):
            g = gt_boxes[people, f]
            iou, cover = box_iou(d[:, :4], g), box_iou(d[:, :4], g, over_min=True)
            rows, cols = linear_sum_assignment(-(iou + cover))
            ok = cover[rows, cols] >= MIN_COVER
            for r, c in zip(rows[ok], cols[ok]):
                hit[people[c], f] = True
            ignored = sum(1 for c in cols[ok] if not visible[people[c], f])
        else:
            ok, ignored = np.zeros(0, bool), 0
        n_box += len(d) - ignored
        n_true += int(ok.sum()) - ignored
    return {"visible_person_frames": int(visible.sum()), "recall": float(hit[visible].mean()) if visible.any() else None,
            "precision": n_true / n_box if n_box else None,
            "recall_per_person": [float(hit[i][visible[i]].mean()) if visible[i].any() else None
                                  for i in range(len(visible))]}


def default_clips() -> list[Path]:
    from video2mesh.flows.spec import default_cache_root

    root = default_cache_root() / "accuracy"
    return sorted(p.parent for p in root.glob("*/*/gt.npz") if "+" in p.parent.name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="*", type=Path, default=None, help="rendered clip folders (video.mp4 + gt.npz)")
    ap.add_argument("--videos", nargs="*", type=Path, default=[], help="real videos (no GT: boxes per frame)")
    ap.add_argument("--frames", type=int, default=0, help="first N frames of each clip (0 = all)")
    ap.add_argument("--min-px", type=float, default=100.0, help="GT people shorter than this (px) are not scored")
    ap.add_argument("--min-shown", type=float, default=0.5,
                    help="GT person-frames whose box is hidden by nearer people's boxes beyond 1 - this are not scored")
    ap.add_argument("--only", nargs="*", default=None, help="variant names to run")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    from video2mesh.models.runners.blazepose import BlazePose
    from video2mesh.pipeline.assets import default_models_dir

    m = default_models_dir()
    model = BlazePose(m / "pose_detection.tflite", m / "pose_landmark_full.tflite")
    chosen = {k: v for k, v in variants().items() if a.only is None or k in a.only}
    rows = []
    for clip in (default_clips() if a.clips is None else a.clips):
        gt = np.load(clip / "gt.npz")
        frames = read_frames(clip / "video.mp4", a.frames)
        hips = gt["joints_cam"][:, :, 11:13, 2].mean(-1)                 # (P, T) COCO hips' camera z
        shown = unoccluded(gt["bbox"], hips, gt["present"])
        for name, cfg in chosen.items():
            dets, fps = run_variant(model, cfg, frames)
            all_present = score(dets, gt["bbox"], gt["present"], a.min_px)
            rows.append({"clip": clip.name, "variant": name, "frames": len(frames), "fps": fps,
                         **score(dets, gt["bbox"], gt["present"], a.min_px, shown, a.min_shown),
                         "recall_all_present": all_present["recall"],
                         "person_frames_all_present": all_present["visible_person_frames"]})
            print(_line(rows[-1]), flush=True)
    for video in a.videos:
        frames = read_frames(video, a.frames)
        for name, cfg in chosen.items():
            dets, fps = run_variant(model, cfg, frames)
            tall = [int(((d[:, 3] - d[:, 1]) >= a.min_px).sum()) for d in dets]
            rows.append({"clip": video.stem, "variant": name, "frames": len(frames), "fps": fps,
                         "boxes_per_frame": float(np.mean([len(d) for d in dets])),
                         "tall_boxes_per_frame": float(np.mean(tall)), "recall": None, "precision": None})
            print(_line(rows[-1]), flush=True)
    if a.json:
        a.json.write_text(json.dumps({"min_px": a.min_px, "min_shown": a.min_shown, "rows": rows}, indent=1))
    return 0


def _line(r: dict) -> str:
    f = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
    extra = f" boxes/frame {r['boxes_per_frame']:.2f}" if "boxes_per_frame" in r else ""
    return (f"{r['clip'][:40]:40s} {r['variant']:22s} frames {r['frames']:4d} fps {r['fps']:6.2f} "
            f"recall {f(r['recall'])} (all present {f(r.get('recall_all_present'))}) precision {f(r['precision'])}{extra}")


if __name__ == "__main__":
    raise SystemExit(main())
