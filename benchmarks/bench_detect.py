"""Detector and tracker throughput: YOLO11 n/m (random weights, person bias raised) and ByteTrack."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from . import Case


def _detector_case(arch: str, imgsz: int, batch: int, device: str) -> Case:
    def setup():
        from video2mesh.stages.detect import DetectConfig, detect_frames, load_detector, write_random_checkpoint

        path = Path(tempfile.mkdtemp()) / f"{arch}.pt"
        write_random_checkpoint(path, arch=f"{arch}.yaml")
        model = load_detector(path, device)
        cfg = DetectConfig(imgsz=imgsz, batch=batch)
        frames = [np.random.default_rng(i).integers(0, 255, (720, 1280, 3), dtype=np.uint8) for i in range(batch)]

        def step() -> int:
            detect_frames(model, frames, cfg, device)
            return batch

        return step

    return Case("detect", f"{arch} imgsz={imgsz} batch={batch} 1280x720", setup, unit="frames")


def _tracker_case(n_frames: int, people: int) -> Case:
    def setup():
        import pandas as pd

        from video2mesh.stages.tracks import TrackConfig, associate

        rows = [(f, 100 * p + f, 50, 100 * p + f + 60, 200, 0.9) for f in range(n_frames) for p in range(people)]
        det = pd.DataFrame(rows, columns=["frame", "x1", "y1", "x2", "y2", "score"])

        def step() -> int:
            associate(det, n_frames, TrackConfig(), 30.0)
            return n_frames

        return step

    return Case("tracks", f"bytetrack {people} people", setup, unit="frames")


def cases(quick: bool, device: str) -> list[Case]:
    out = [_detector_case("yolo11n", 640, 1 if quick else 8, device)]
    if not quick:
        out.append(_detector_case("yolo11m", 640, 8, device))
    out.append(_tracker_case(300 if quick else 3000, 5))
    return out
