"""Probe (issue 18): where the person-frames that `v2m bench crowd` misses are lost.

`python -m video2mesh.benchmarks.miss_probe DETAIL_JSON [--root DIR] [--people 4 5] [--json F]`

DETAIL_JSON is the JSON of `v2m bench crowd ... --json F` (its rows carry `misses`: per person the visible
frames no track box covers at IoU >= 0.5). For every such person-frame of the rendered clips with `--people`
people it asks, with the runners the detect stage itself uses (no pipeline state):
1. does MoveNet MultiPose (the licence-free seeds, 384 px) have a box on that person (IoU >= 0.5 with the GT
   box) at score >= 0.1 (what the default keeps) and >= 0.2?
2. run on that box (an upright ROI around it, as `PersonSearch` verifies a seed), does BlazePose's landmark
   model return that person (pose flag >= 0.5 and the landmark box at IoU >= 0.5 with the GT box)?
3. the same with the people nearer the camera than them painted grey along their GT skeleton (limbs, torso,
   head; GT 2D joints). This uses the ground truth, so it is a bound for "explain away the person in front",
   not a method the pipeline can run as is.
A miss with a yes at 1 and 2 is lost after detection (the search's merges, or tracking). docs/crowd.md,
"MoveNet sees most of the people the pipeline misses".
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

LIMBS = ((5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16), (5, 6), (11, 12), (0, 5), (0, 6))
GREY = (128, 128, 128)
MOVENET_SIZE = 384


def frame_list(text: str) -> list[int]:
    """"3-5,9" -> [3, 4, 5, 9]; "-" -> [] (the `misses` strings of the crowd bench's JSON)."""
    out: list[int] = []
    for part in ([] if text.strip() in ("", "-") else text.split(",")):
        a, _, b = part.partition("-")
        out += range(int(a), int(b or a) + 1)
    return out


def paint_out(rgb: np.ndarray, joints2d: np.ndarray, height_px: float) -> np.ndarray:
    """rgb with one person's body painted grey along their COCO-17 joints (17+, 2) px: limbs of width 0.1 x
    their height, the torso quadrilateral filled, the head a disc of radius 0.07 x their height."""
    out = rgb.copy()
    pt = lambda j: (int(round(joints2d[j, 0])), int(round(joints2d[j, 1])))  # noqa: E731
    width = max(int(0.10 * height_px), 3)
    for a, b in LIMBS:
        cv2.line(out, pt(a), pt(b), GREY, width)
    cv2.fillConvexPoly(out, np.round(joints2d[[5, 6, 12, 11], :2]).astype(np.int32), GREY)
    cv2.circle(out, pt(0), max(int(0.07 * height_px), 3), GREY, -1)
    return out


def nearer_people(gt: dict, person: int, t: int, box: np.ndarray) -> list[int]:
    """People present at frame t, nearer the camera than `person` (GT hip depth), whose box touches `box`."""
    from video2mesh.benchmarks.accuracy.score import box_iou

    z = gt["joints_cam"][person, t, [11, 12], 2].mean()
    return [q for q in range(len(gt["bbox"])) if q != person and gt["present"][q, t]
            and gt["joints_cam"][q, t, [11, 12], 2].mean() < z and box_iou(box[None], gt["bbox"][q, t][None])[0, 0] > 0]


def probe_clip(clip: Path, misses: dict, movenet, blazepose) -> dict:
    """Counts for one clip: missed person-frames, MoveNet boxes on them (>= 0.1, >= 0.2), the landmark model
    on the >= 0.1 box returning that person, plainly and with the nearer people painted out."""
    from video2mesh.benchmarks.accuracy.groundtruth import read_gt
    from video2mesh.benchmarks.accuracy.score import box_iou
    from video2mesh.benchmarks.hog_probe import read_frames
    from video2mesh.models.runners.blazepose import roi_from_box
    from video2mesh.models.runners.person_search import landmark_box

    gt, frames = read_gt(clip / "gt.npz"), read_frames(clip / "video.mp4")
    n = {"missed": 0, "movenet_0.1": 0, "movenet_0.2": 0, "verified": 0, "verified_painted": 0}

    def returns(rgb, seed, truth) -> bool:
        lm = blazepose.landmarks(rgb, roi_from_box(*seed))
        return lm.pose_score >= 0.5 and box_iou(truth[None], landmark_box(lm.image[:33, :2], 0.04)[None])[0, 0] >= 0.5

    for person, m in misses.items():
        p = int(person)
        for t in frame_list(m["missed"]):
            n["missed"] += 1
            truth = gt["bbox"][p, t]
            boxes = movenet(frames[t], MOVENET_SIZE, 0.1)[0]
            iou = box_iou(truth[None], boxes[:, :4])[0] if len(boxes) else np.zeros(0)
            hit = iou >= 0.5
            if not hit.any():
                continue
            n["movenet_0.1"] += 1
            n["movenet_0.2"] += int((hit & (boxes[:, 4] >= 0.2)).any())
            seed = boxes[int(np.argmax(iou)), :4]
            n["verified"] += int(returns(frames[t], seed, truth))
            painted = frames[t]
            for q in nearer_people(gt, p, t, seed):
                painted = paint_out(painted, gt["joints_2d"][q, t], float(gt["bbox"][q, t, 3] - gt["bbox"][q, t, 1]))
            n["verified_painted"] += int(returns(painted, seed, truth))
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("detail_json", help="JSON of `v2m bench crowd ... --json F`")
    ap.add_argument("--root", help="the crowd bench's --root (default: the JSON's)")
    ap.add_argument("--people", type=int, nargs="+", default=[4, 5])
    ap.add_argument("--model", type=Path, default=None, help="MoveNet model.json (default: $V2M_MOVENET_JSON or the models cache)")
    ap.add_argument("--json", help="write the counts here")
    a = ap.parse_args(argv)
    from video2mesh.benchmarks.hog_probe import blazepose
    from video2mesh.models.runners.movenet import MoveNetMultiPose

    doc = json.loads(Path(a.detail_json).read_text())
    root = Path(a.root or doc["root"])
    movenet = MoveNetMultiPose(a.model)
    bp = blazepose()
    rows, total = [], {}
    for r in doc["rendered"]:
        if r["people"] not in a.people:
            continue
        clip = next(p for p in root.glob(f"*/{r['clip']}") if (p / "gt.npz").exists())
        n = probe_clip(clip, r["misses"], movenet, bp)
        rows.append({"mix": r["mix"], "people": r["people"], **n})
        total = {k: total.get(k, 0) + v for k, v in n.items()}
        print(f"{r['mix']:8s} {r['people']}  " + "  ".join(f"{k} {v}" for k, v in n.items()), flush=True)
    print("total     " + "  ".join(f"{k} {v}" for k, v in total.items()))
    if a.json:
        Path(a.json).write_text(json.dumps({"source": a.detail_json, "rows": rows, "total": total}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
