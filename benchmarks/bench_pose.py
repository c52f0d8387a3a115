"""pose2d (HRNet-W32) and features (ResNet-50) throughput in crops per second, random weights.

Each step crops N person boxes from a 1280x720 frame, runs the network and decodes, as the stages
do per batch (video decoding excluded; the detect/track benchmarks time that). HRNet runs with the
stage's default flip test, i.e. two network passes per crop.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from video2mesh.benchmarks import Case

FRAME_HW = (720, 1280)


def _frame_and_boxes(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, FRAME_HW + (3,), dtype=np.uint8)
    x1 = rng.uniform(0, 1000, n)
    y1 = rng.uniform(0, 300, n)
    boxes = np.stack([x1, y1, x1 + rng.uniform(80, 250, n), y1 + rng.uniform(200, 400, n)], 1)
    return frame, boxes


def _hrnet(batch: int, flip: bool, device: str) -> Callable[[], Callable[[], int]]:
    def setup() -> Callable[[], int]:
        from video2mesh.models.nets import hrnet

        net = hrnet.PoseHRNet().eval().to(device)
        frame, boxes = _frame_and_boxes(batch)

        def step() -> int:
            hrnet.estimate_keypoints(net, frame, boxes, flip_test=flip, batch_size=batch, device=device)
            return batch
        return step
    return setup


def _resnet(batch: int, device: str) -> Callable[[], Callable[[], int]]:
    def setup() -> Callable[[], int]:
        from video2mesh.models.nets import backbone

        net = backbone.resnet50_features().eval().to(device)
        frame, boxes = _frame_and_boxes(batch)
        centers = (boxes[:, :2] + boxes[:, 2:]) / 2
        sides = (boxes[:, 2:] - boxes[:, :2]).max(1) * 1.1

        def step() -> int:
            crops = backbone.crop_square(frame, centers, sides)
            backbone.extract_features(net, crops, batch_size=batch, device=device)
            return batch
        return step
    return setup


def cases(quick: bool, device: str) -> list[Case]:
    """quick: smaller batches and one timed repeat, a few seconds per case on a 2-core CPU."""
    big = 4 if quick and not device.startswith("cuda") else 32
    rep = 1 if quick else 3
    return [
        Case("pose2d", "hrnet-w32 256x192 flip batch=1", _hrnet(1, True, device), unit="crops", repeat=rep),
        Case("pose2d", f"hrnet-w32 256x192 flip batch={big}", _hrnet(big, True, device), unit="crops", repeat=rep),
        Case("pose2d", f"hrnet-w32 256x192 noflip batch={big}", _hrnet(big, False, device), unit="crops", repeat=rep),
        Case("features", "resnet50 224 batch=1", _resnet(1, device), unit="crops", repeat=rep),
        Case("features", f"resnet50 224 batch={big}", _resnet(big, device), unit="crops", repeat=rep),
    ]
