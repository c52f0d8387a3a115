"""Probe (issue 18): motion proposals (models/maths/motion_proposals.py) as seeds of detect's person search.

`PYTHONPATH=$PWD/.pyshim python -m video2mesh.benchmarks.motion_probe [--clips DIR ...] [--every K] [--gap G]
[--video MP4 --png DIR] [--json F]`

Same harness as benchmarks/hog_probe.py's `--seed` mode (its scoring, crowd bench rules: visible
person-frames, `evaluate` at >= 0.5 IoU / cover): the detect stage's `PersonSearch` (current
DetectConfig defaults) runs once plain and once with a model whose whole-frame detector call also
returns the motion candidates as upright detections, which PersonSearch then verifies with the landmark
model (pose flag >= keep_score) and follows. The proposer is told last frame's boxes (people already
found: left out of the homography and of the proposals).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from video2mesh.benchmarks.accuracy.crowd import visible
from video2mesh.benchmarks.hog_probe import CACHE, CLIPS, Seeded, back_to_camera, blazepose, read_frames, score_search
from video2mesh.models.maths.motion_proposals import MotionConfig, MotionProposer


class MotionSeeded(Seeded):
    """Motion candidates as seeds; `n`: candidates per frame (-1 where the proposer did not run)."""

    def __init__(self, model, proposer: MotionProposer):
        super().__init__(model)
        self.proposer, self.known, self.n = proposer, np.zeros((0, 4)), []

    def seeds(self, rgb):
        boxes = self.proposer(rgb, self.known)
        self.n.append(len(boxes) if self.proposer.ran else -1)
        return boxes


def seeded_clip(clip: Path, cfg: MotionConfig, every: int, native: bool = False) -> dict:
    """Detect-level recall of detect's person search without and with motion seeds (native: through
    DetectConfig.motion_every / motion_gap, i.e. the stage's own code, instead of the seeding wrapper)."""
    from video2mesh.benchmarks.accuracy.groundtruth import read_gt
    from video2mesh.models.runners.person_search import PersonSearch
    from video2mesh.stages.detect import DetectConfig, search_config

    gt, frames = read_gt(clip / "gt.npz"), read_frames(clip / "video.mp4")
    frames = frames[: gt["present"].shape[1]]
    vis, back = visible(gt), back_to_camera(gt)[:, : len(frames)]
    row = {"clip": clip.parent.name[:8] + "/" + clip.name[:2], "visible": int(vis.sum()), "people": [
        m["mocap"].split("_")[1] if "mocap" in m else "?" for m in json.loads((clip / "meta.json").read_text())["people"]]}
    base = {}
    for name in ("detect", "detect + motion"):
        model = blazepose() if name == "detect" or native else MotionSeeded(blazepose(), MotionProposer(cfg, every))
        dcfg = DetectConfig(backend="blazepose", motion_every=every if native and name != "detect" else 0, motion_gap=cfg.gap)
        search = PersonSearch(model, search_config(dcfg))
        t0, boxes = time.perf_counter(), []
        for f in frames:
            boxes.append(search(f)[:, :4])
            if isinstance(model, MotionSeeded):
                model.known = boxes[-1]
        sec = time.perf_counter() - t0
        r = score_search(gt, boxes, vis, back, base, sec)
        if native and search.motion is not None:
            r["candidates_per_frame"] = None
        if isinstance(model, MotionSeeded):
            ran = np.array(model.n) >= 0
            r["motion_ms_median"] = round(float(np.median(np.array(model.ms)[ran])), 1)   # on the frames it proposed on
            r["motion_ms_per_frame"] = round(float(np.mean(model.ms)), 1)                # amortised over all frames
            r["candidates_per_frame"] = round(float(np.clip(model.n, 0, None).mean()), 2)
        row[name] = r
    return row


def seed_table(rows: list[dict]) -> str:
    lines = [f"{'clip':<13}{'search':<17}{'rec IoU':>8}{'rec cov':>8}{'FP cov':>7}{'FP/f':>6}{'new':>5}{'lost':>5}"
             f"{'miss back':>10}{'s/frame':>8}{'cand/f':>7}{'ms/f':>6}  missed per person (cover)"]
    for r in rows:
        for name in ("detect", "detect + motion"):
            x, c = r[name], r[name]["cover"]
            lines.append(f"{r['clip']:<13}{name:<17}{x['iou']['recall']:>8.3f}{c['recall']:>8.3f}{c['fp']:>7}"
                         f"{c['fp_per_frame']:>6.2f}{c.get('new_finds', ''):>5}{c.get('lost', ''):>5}{c['missed_back']:>10}"
                         f"{x['s_per_frame']:>8.2f}{x.get('candidates_per_frame') or '':>7}{x.get('motion_ms_per_frame', ''):>6}"
                         f"  {c['missed_per_person']}")
        lines.append(f"{'':<13}people: {' '.join(r['people'])}")
    return "\n".join(lines)


def real_video(path: Path, cfg: MotionConfig, every: int, n: int, png: Path | None) -> dict:
    """No GT: candidates (red) and detect's boxes with motion seeds (green) on the first n frames."""
    from video2mesh.models.runners.person_search import PersonSearch
    from video2mesh.stages.detect import DetectConfig, search_config

    frames = read_frames(path)[:n]
    model = MotionSeeded(blazepose(), MotionProposer(cfg, every))
    plain = PersonSearch(blazepose(), search_config(DetectConfig(backend="blazepose")))
    search = PersonSearch(model, search_config(DetectConfig(backend="blazepose")))
    out = {"video": path.name, "frames": len(frames), "plain": [], "seeded": [], "candidates": []}
    for i, f in enumerate(frames):
        cand_before = len(model.n)
        b0, b1 = plain(f), search(f)
        model.known = b1[:, :4]
        cand = model.proposer.last
        out["plain"].append(len(b0))
        out["seeded"].append(len(b1))
        out["candidates"].append(max(model.n[cand_before], 0) if len(model.n) > cand_before else 0)
        if png and i >= len(frames) - 2:                  # the last two (proposals need gap frames first)
            png.mkdir(parents=True, exist_ok=True)
            img = cv2.cvtColor(f, cv2.COLOR_RGB2BGR)
            for b in cand:
                cv2.rectangle(img, (int(b[0]), int(b[1])), (int(b[2]), int(b[3])), (0, 0, 255), 2)
            for b in b0:
                cv2.rectangle(img, (int(b[0]), int(b[1])), (int(b[2]), int(b[3])), (255, 0, 0), 3)
            for b in b1:
                cv2.rectangle(img, (int(b[0]), int(b[1])), (int(b[2]), int(b[3])), (0, 255, 0), 1)
            cv2.imwrite(str(png / f"{path.stem}_motion_{i:03d}.png"), img)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="*", type=Path, default=None)
    ap.add_argument("--every", type=int, default=2, help="propose on every k-th frame")
    ap.add_argument("--gap", type=int, default=3)
    ap.add_argument("--diff", type=float, default=MotionConfig.diff)
    ap.add_argument("--max-candidates", type=int, default=MotionConfig.max_candidates)
    ap.add_argument("--native", action="store_true", help="seed through DetectConfig.motion_every (the stage's code)")
    ap.add_argument("--video", nargs="*", type=Path, default=[])
    ap.add_argument("--video-frames", type=int, default=5)
    ap.add_argument("--png", type=Path, default=None)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    cfg = MotionConfig(gap=a.gap, diff=a.diff, max_candidates=a.max_candidates)
    clips = a.clips if a.clips is not None else sorted(p.parent for c in CLIPS for p in (CACHE / c).glob("*/gt.npz"))
    rows = []
    for clip in clips:
        rows.append(seeded_clip(clip, cfg, a.every, a.native))
        print(seed_table(rows[-1:]), flush=True)
    real = [real_video(v, cfg, a.every, a.video_frames, a.png) for v in a.video]
    print(f"\nmotion seeds every {a.every} gap {a.gap} diff {a.diff}; load {Path('/proc/loadavg').read_text().split()[:3]}")
    print(seed_table(rows))
    for r in real:
        print(f"{r['video']}: boxes/frame plain {r['plain']} seeded {r['seeded']} candidates {r['candidates']}")
    if a.json:
        a.json.write_text(json.dumps({"config": cfg.__dict__, "every": a.every, "rows": rows, "real": real,
                                      "load": Path("/proc/loadavg").read_text().split()[:3]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
