"""Probe (issue 18): MoveNet MultiPose (models/runners/movenet.py) as a whole-body person detector on the crowd clips.

`PYTHONPATH=$PWD/.pyshim python -m video2mesh.benchmarks.movenet_probe [--model JSON] [--clips DIR ...]
[--sizes 256 384 512 tiles] [--seed-size S --seed-score T --every 1 5] [--video MP4 --png DIR] [--json F]`

(a) MoveNet alone: every frame of each clip at each input size (longer side; "tiles" = 256 on the whole
frame plus squares of the frame's height, NMS-merged; "nanodet" = NanoDet's person class at 416
instead, models/runners/nanodet.py), boxes kept at score >= 0.1 / 0.2 / 0.3, scored
with `v2m bench crowd`'s rules as benchmarks/hog_probe.py does (visible person-frames, `evaluate` at
>= 0.5 IoU and cover, each box its own one-frame track): recall, unmatched boxes per frame, turned-away
person-frames found, ms per frame.
(b) The detect stage's own PersonSearch (current DetectConfig defaults) plain and with MoveNet boxes as
extra detections on every k-th frame (hog_probe's `Seeded`: each is verified by BlazePose's landmark
model and followed when its pose flag >= keep_score), scored by hog_probe's `score_search`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from video2mesh.benchmarks.accuracy.crowd import visible
from video2mesh.benchmarks.hog_probe import CACHE, CLIPS, Seeded, back_to_camera, blazepose, hits, read_frames, score_search
from video2mesh.models.runners.movenet import MoveNetMultiPose

THRESHOLDS = (0.1, 0.2, 0.3)


def run_net(net: MoveNetMultiPose, frames, variant: str) -> tuple[list[np.ndarray], float]:
    """Boxes (K, 5) per frame at score >= min(THRESHOLDS), and the median ms per frame."""
    out, ms = [], []
    for f in frames:
        t0 = time.perf_counter()
        if variant == "nanodet":
            b = _nanodet()(f, min_score=min(THRESHOLDS))
        else:
            b, _ = net.tiled(f, 256, min_score=min(THRESHOLDS)) if variant == "tiles" else net(f, int(variant), min(THRESHOLDS))
        ms.append(1000 * (time.perf_counter() - t0))
        out.append(b)
    return out, round(statistics.median(ms), 1)


_NANODET = []


def _nanodet():
    """NanoDet's person class (models/runners/nanodet.py; V2M_NANODET_JSON), loaded on first use."""
    if not _NANODET:
        from video2mesh.models.runners.nanodet import NanoDetPersons

        _NANODET.append(NanoDetPersons())
    return _NANODET[0]


class NanoDetSeeds:
    """NanoDet's person boxes behind MoveNet's call signature (rgb, size, min_score) -> (boxes, None), so the
    same seeding (wrapper or PersonSearch.movenet) can use them; `size` is ignored (NanoDet runs at 416)."""

    def __call__(self, rgb, size, min_score):
        return _nanodet()(rgb, min_score=min_score), None


def alone_clip(net, clip: Path, variants) -> dict:
    from video2mesh.benchmarks.accuracy.groundtruth import read_gt

    gt, frames = read_gt(clip / "gt.npz"), read_frames(clip / "video.mp4")
    frames = frames[: gt["present"].shape[1]]
    vis, back = visible(gt), back_to_camera(gt)[:, : len(frames)]
    row = {"clip": clip.parent.name[:8] + "/" + clip.name[:2], "people": int(len(vis)), "frames": len(frames),
           "visible": int(vis.sum()), "visible_back": int((vis & back).sum()), "variants": {}}
    for v in variants:
        boxes, ms = run_net(net, frames, v)
        for t in THRESHOLDS:
            bx = [b[b[:, 4] >= t] for b in boxes]
            r = {"ms": ms}
            for ov in ("iou", "cover"):
                h, s = hits(gt, bx, ov)
                r[ov] = {**s, "back_found": int((h & back & vis).sum()), "missed_per_person": (vis & ~h).sum(1).tolist()}
            row["variants"][f"{v} s>={t}"] = r
    return row


class MoveNetSeeded(Seeded):
    """MoveNet's boxes (score >= min_score, input `size`) as seeds on every k-th frame."""

    def __init__(self, model, net: MoveNetMultiPose, size: int, min_score: float, every: int):
        super().__init__(model)
        self.net, self.size, self.min_score, self.every, self.calls = net, size, min_score, every, 0

    def seeds(self, rgb):
        self.calls += 1
        if (self.calls - 1) % self.every:
            return []
        return self.net(rgb, self.size, self.min_score)[0]


def union(plain: list[np.ndarray], extra: list[np.ndarray], iou: float = 0.3) -> list[np.ndarray]:
    """Per frame: the search's boxes plus each MoveNet box overlapping none of them by IoU > iou."""
    from video2mesh.models.runners.person_search import nms

    out = []
    for p, e in zip(plain, extra):
        both = np.concatenate([p[:, :4], e[:, :4]]).reshape(-1, 4)
        keep = nms(both, np.r_[np.full(len(p), 2.0), e[:, 4]], iou)
        out.append(both[np.sort(keep)])
    return out


def seeded_clip(net, clip: Path, size: int, min_score: float, everies, with_union: bool = False,
                native: bool = False) -> dict:
    """Detect-level recall of detect's person search plain and with MoveNet seeds every k-th frame (native:
    through DetectConfig.movenet_every, i.e. PersonSearch's own wiring, instead of the Seeded wrapper)."""
    from video2mesh.benchmarks.accuracy.groundtruth import read_gt
    from video2mesh.models.runners.person_search import PersonSearch
    from video2mesh.stages.detect import DetectConfig, search_config

    gt, frames = read_gt(clip / "gt.npz"), read_frames(clip / "video.mp4")
    frames = frames[: gt["present"].shape[1]]
    vis, back = visible(gt), back_to_camera(gt)[:, : len(frames)]
    row = {"clip": clip.parent.name[:8] + "/" + clip.name[:2], "visible": int(vis.sum()), "size": size,
           "min_score": min_score, "searches": {}}
    base: dict = {}
    for every in (0, *everies):
        model = MoveNetSeeded(blazepose(), net, size, min_score, every) if every and not native else blazepose()
        dcfg = DetectConfig(backend="blazepose", movenet_every=every if native else 0, movenet_size=size, movenet_score=min_score)
        search = PersonSearch(model, search_config(dcfg), movenet=net)
        t0 = time.perf_counter()
        boxes = [search(f)[:, :4] for f in frames]
        r = score_search(gt, boxes, vis, back, base, time.perf_counter() - t0)
        if every and not native:
            r["movenet_ms_per_frame"] = round(float(np.mean(model.ms)), 1)
        row["searches"][f"+ movenet every {every}" if every else "plain"] = r
        if with_union and not every:        # the plain search's boxes plus MoveNet's boxes where it has none
            t0 = time.perf_counter()
            mn = [net(f, size, min_score)[0] for f in frames]
            u = score_search(gt, union(boxes, mn), vis, back, base, time.perf_counter() - t0)
            row["searches"]["plain + movenet boxes"] = u
    return row


def real_video(net, path: Path, size: int, min_score: float, png: Path | None, n: int) -> dict:
    """No GT: MoveNet boxes (red, score) and detect's plain (blue) / seeded (green) boxes on the first n frames."""
    from video2mesh.models.runners.person_search import PersonSearch
    from video2mesh.stages.detect import DetectConfig, search_config

    frames = read_frames(path)[:n]
    cfg = search_config(DetectConfig(backend="blazepose"))
    plain, seeded = PersonSearch(blazepose(), cfg), PersonSearch(MoveNetSeeded(blazepose(), net, size, min_score, 1), cfg)
    out = {"video": path.name, "frames": len(frames), "size": list(frames[0].shape[:2]), "movenet": [], "plain": [], "seeded": []}
    for i, f in enumerate(frames):
        mb, b0, b1 = net(f, size, min_score)[0], plain(f), seeded(f)
        for k, v in (("movenet", mb), ("plain", b0), ("seeded", b1)):
            out[k].append(len(v))
        if png and i in (0, len(frames) // 2, len(frames) - 1):
            png.mkdir(parents=True, exist_ok=True)
            img = cv2.cvtColor(f, cv2.COLOR_RGB2BGR)
            for b, col, th in [(b, (0, 0, 255), 2) for b in mb] + [(b, (255, 0, 0), 3) for b in b0] + [(b, (0, 255, 0), 1) for b in b1]:
                cv2.rectangle(img, (int(b[0]), int(b[1])), (int(b[2]), int(b[3])), col, th)
            for b in mb:
                cv2.putText(img, f"{b[4]:.2f}", (int(b[0]), int(b[1]) + 14), 0, 0.5, (0, 0, 255), 1)
            cv2.imwrite(str(png / f"{path.stem}_movenet{size}_{i:03d}.png"), img)
    return out


def alone_table(rows: list[dict], ov: str) -> str:
    lines = [f"{'clip':<13}{'vis':>5}{'back':>5}  {'variant':<14}{'recall':>7}{'FP/f':>6}{'back found':>11}{'ms/f':>7}  missed per person"]
    for r in rows:
        for k, v in r["variants"].items():
            s = v[ov]
            lines.append(f"{r['clip']:<13}{r['visible']:>5}{r['visible_back']:>5}  {k:<14}{s['recall']:>7.3f}{s['fp_per_frame']:>6.2f}"
                         f"{s['back_found']:>11}{v['ms']:>7.0f}  {s['missed_per_person']}")
    return "\n".join(lines)


def seed_table(rows: list[dict]) -> str:
    lines = [f"{'clip':<13}{'search':<22}{'rec IoU':>8}{'rec cov':>8}{'FP cov':>7}{'new':>5}{'lost':>5}{'miss back':>10}"
             f"{'s/frame':>8}{'mn ms/f':>8}  missed per person (cover)"]
    for r in rows:
        for name, x in r["searches"].items():
            c = x["cover"]
            lines.append(f"{r['clip']:<13}{name:<22}{x['iou']['recall']:>8.3f}{c['recall']:>8.3f}{c['fp']:>7}"
                         f"{c.get('new_finds', ''):>5}{c.get('lost', ''):>5}{c['missed_back']:>10}{x['s_per_frame']:>8.2f}"
                         f"{x.get('movenet_ms_per_frame', ''):>8}  {c['missed_per_person']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="MoveNet model.json (default: $V2M_MOVENET_JSON or the models cache)")
    ap.add_argument("--clips", nargs="*", type=Path, default=None)
    ap.add_argument("--sizes", nargs="*", default=["256", "384", "512", "tiles"])
    ap.add_argument("--seed-size", type=int, default=256, help="MoveNet input size for the seeds (0: no seeded search)")
    ap.add_argument("--seed-score", type=float, default=0.2)
    ap.add_argument("--seed-net", choices=["movenet", "nanodet"], default="movenet", help="whose boxes seed the search")
    ap.add_argument("--every", nargs="*", type=int, default=[1, 5])
    ap.add_argument("--native", action="store_true", help="seed through DetectConfig.movenet_every (PersonSearch's wiring)")
    ap.add_argument("--union", action="store_true", help="also score the plain search's boxes + MoveNet boxes where it has none "
                    "(s/frame of that row: MoveNet alone)")
    ap.add_argument("--video", nargs="*", type=Path, default=[])
    ap.add_argument("--video-frames", type=int, default=5)
    ap.add_argument("--png", type=Path, default=None)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    net = MoveNetMultiPose(a.model)
    clips = a.clips if a.clips is not None else sorted(p.parent for c in CLIPS for p in (CACHE / c).glob("*/gt.npz"))
    alone, seeded = [], []
    for clip in clips:
        if a.sizes:
            alone.append(alone_clip(net, clip, a.sizes))
            print(alone_table(alone[-1:], "cover"), flush=True)
        if a.seed_size:
            seeds = NanoDetSeeds() if a.seed_net == "nanodet" else net
            seeded.append(seeded_clip(seeds, clip, a.seed_size, a.seed_score, a.every, a.union, a.native))
            print(seed_table(seeded[-1:]), flush=True)
    real = [real_video(net, v, a.seed_size or 256, a.seed_score, a.png, a.video_frames) for v in a.video]
    load = Path("/proc/loadavg").read_text().split()[:3]
    for ov in ("iou", "cover") if alone else ():
        print(f"\ndetector alone, matching at {ov} >= 0.5 (crowd bench rules):\n" + alone_table(alone, ov))
    if seeded:
        print(f"\ndetect's person search, MoveNet seeds at {a.seed_size} score >= {a.seed_score}:\n" + seed_table(seeded))
    for r in real:
        print(f"{r['video']}: boxes/frame movenet {r['movenet']} plain {r['plain']} seeded {r['seeded']}")
    print(f"load {load}")
    if a.json:
        a.json.write_text(json.dumps({"alone": alone, "seeded": seeded, "real": real, "load": load,
                                      "thresholds": THRESHOLDS}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
