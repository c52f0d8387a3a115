"""BlazePose (MediaPipe's full-body pose detector + 33-landmark model) run from its .tflite files.

Two networks, both Apache-2.0, taken from the `mediapipe==0.10.21` wheel (see stages/blazepose.py):

- detector `pose_detection.tflite`: input (1, 224, 224, 3) RGB in [-1, 1], the whole frame (or a
  crop) letterboxed into a square; outputs (1, 2254, 12) box + 4 alignment keypoints per SSD anchor
  and (1, 2254, 1) logits. Keypoint 0 is the hip centre, keypoint 1 a point whose distance to it is
  half the body's extent and whose direction gives the body's tilt.
- landmarks `pose_landmark_full.tflite`: input (1, 256, 256, 3) RGB in [0, 1], a rotated square
  region of interest (ROI); outputs (1, 195) = 39 x (x, y, z, visibility, presence) in crop pixels
  (39 = 33 body landmarks + 2 alignment points + 4 unused), (1, 1) pose flag, a segmentation mask,
  heatmaps, and (1, 117) = 39 x 3 world landmarks in metres, hip-centred.

The constants follow MediaPipe's public graph configs (pose_detection_cpu.pbtxt: SSD anchor options,
0.5 score threshold, weighted NMS at IoU 0.3; pose_detection_to_roi / pose_landmarks_to_roi: ROI
centred on alignment point 0, side = 2 x |p1 - p0| x 1.25, rotation making p0 -> p1 point up).
This is our own code; MediaPipe is not imported. The heat-map refinement of landmarks and MediaPipe's
landmark smoothing filters are not implemented (a smoothing step belongs to the fitting stage).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .litert import TfliteNet

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
N_LANDMARKS = 33           # body landmarks; the model's 34th/35th are the alignment points
N_MODEL_LANDMARKS = 39
ROI_SCALE = 1.25           # MediaPipe's RectTransformationCalculator scale for both ROIs

# BlazePose 33 -> COCO-17 (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles).
COCO_FROM_BLAZEPOSE = np.array([0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28])
# Left/right pairs of the 33 BlazePose landmarks (for mirroring).
BLAZEPOSE_FLIP = np.array([0, 4, 5, 6, 1, 2, 3, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19,
                           22, 21, 24, 23, 26, 25, 28, 27, 30, 29, 32, 31])


def ssd_anchors() -> np.ndarray:
    """(2254, 2) anchor centres (x, y) in [0, 1] of the pose detector.

    MediaPipe's SsdAnchorsCalculator with 5 layers, strides (8, 16, 32, 32, 32), one aspect ratio
    plus the interpolated one (2 anchors per cell and layer), fixed anchor size; consecutive layers of
    equal stride share one feature map, so the 7x7 map gets 6 anchors per cell: 28*28*2 + 14*14*2 +
    7*7*6 = 2254.
    """
    strides = [8, 16, 32, 32, 32]
    out = []
    layer = 0
    while layer < len(strides):
        n_same = 0
        s = strides[layer]
        while layer < len(strides) and strides[layer] == s:
            n_same += 2
            layer += 1
        fm = int(np.ceil(DETECTOR_SIZE / s))
        ys, xs = np.meshgrid((np.arange(fm) + 0.5) / fm, (np.arange(fm) + 0.5) / fm, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(cells, n_same, axis=0))
    return np.concatenate(out).astype(np.float32)


@dataclass(frozen=True)
class Roi:
    """A rotated square in image pixels: centre, side, rotation (radians; 0 = upright body)."""

    cx: float
    cy: float
    size: float
    rotation: float = 0.0

    def crop_to_image(self, out_size: int) -> np.ndarray:
        """(2, 3) affine map from crop pixels (u, v) of an out_size^2 crop to image pixels."""
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        rot = np.array([[c, -s], [s, c]])
        a = rot * (self.size / out_size)
        b = np.array([self.cx, self.cy]) - rot @ np.array([self.size / 2, self.size / 2])
        return np.concatenate([a, b[:, None]], axis=1)

    def as_array(self) -> np.ndarray:
        return np.array([self.cx, self.cy, self.size, self.rotation], dtype=np.float32)


@dataclass(frozen=True)
class Detection:
    """A person found by the detector, in image pixels."""

    box: np.ndarray        # (4,) x1, y1, x2, y2
    keypoints: np.ndarray  # (4, 2) alignment keypoints
    score: float

    def roi(self) -> Roi:
        return roi_from_alignment(self.keypoints[0], self.keypoints[1])


@dataclass(frozen=True)
class Landmarks:
    """One landmark-model result in image pixels (the first 33 of 39 rows are the body landmarks).

    image: (39, 3) x px, y px, z (same scale as x, relative to the hips); visibility, presence: (39,)
    probabilities; world: (39, 3) metres, hip-centred, rotated back to image axes; pose_score: the
    model's pose flag (probability that a person fills the ROI).
    """

    image: np.ndarray
    visibility: np.ndarray
    presence: np.ndarray
    world: np.ndarray
    pose_score: float
    roi: Roi

    def next_roi(self) -> Roi:
        """The ROI for the next frame, from the two alignment landmarks (MediaPipe's tracking mode)."""
        return roi_from_alignment(self.image[33, :2], self.image[34, :2])

    def coco17(self) -> np.ndarray:
        """(17, 3) COCO keypoints: x px, y px, score (landmark visibility)."""
        idx = COCO_FROM_BLAZEPOSE
        return np.concatenate([self.image[idx, :2], self.visibility[idx, None]], axis=1).astype(np.float32)


def roi_from_alignment(p0: np.ndarray, p1: np.ndarray, scale: float = ROI_SCALE) -> Roi:
    """ROI centred on p0 with side 2|p1 - p0| * scale, rotated so that p0 -> p1 points up (pixels)."""
    dx, dy = float(p1[0] - p0[0]), float(p1[1] - p0[1])
    size = 2.0 * np.hypot(dx, dy) * scale
    rotation = np.pi / 2 - np.arctan2(-dy, dx)
    rotation = (rotation + np.pi) % (2 * np.pi) - np.pi
    return Roi(float(p0[0]), float(p0[1]), float(size), float(rotation))


def roi_from_box(x1: float, y1: float, x2: float, y2: float, scale: float = ROI_SCALE) -> Roi:
    """Upright ROI around a person box (the seed when the detector finds nobody in the box)."""
    return Roi((x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * scale, 0.0)


def crop(rgb: np.ndarray, roi: Roi, out_size: int) -> np.ndarray:
    """(out_size, out_size, 3) uint8 crop of the ROI (zero outside the image)."""
    m = roi.crop_to_image(out_size)
    return cv2.warpAffine(rgb, m, (out_size, out_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, np.float64), -80.0, 80.0)))


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box a (4,) with boxes b (N, 4)."""
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(union, 1e-9)


def weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, iou: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED non-max suppression (boxes (N, 4), keypoints (N, K, 2), scores (N,)): each kept detection is the score-weighted mean of
    the boxes (and keypoints) overlapping the best remaining one by more than `iou`."""
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    alive = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        ov = _iou(boxes[i], boxes) > iou
        ov &= alive
        w = scores[ov][:, None]
        out.append(((boxes[ov] * w).sum(0) / w.sum(), (kps[ov] * w[:, :, None]).sum(0) / w.sum(), float(scores[i])))
        alive &= ~ov
    return out


class BlazePose:
    """The two BlazePose networks on the CPU through LiteRT (`ai-edge-litert`).

    `detect(rgb, roi)` finds people inside a square ROI (the whole frame by default);
    `landmarks(rgb, roi)` runs the landmark model on a rotated ROI. Images are (H, W, 3) uint8 RGB.
    """

    def __init__(self, detector_path: str | Path, landmark_path: str | Path, num_threads: int = 2,
                 min_detection_score: float = 0.5, nms_iou: float = 0.3):
        self._det = TfliteNet(detector_path, ("Identity", "Identity_1"), num_threads)  # boxes, logits
        # landmarks, pose flag, world landmarks
        self._lm = TfliteNet(landmark_path, ("Identity", "Identity_1", "Identity_4"), num_threads)
        self.anchors = ssd_anchors()
        self.min_detection_score = min_detection_score
        self.nms_iou = nms_iou

    def detect(self, rgb: np.ndarray, roi: Roi | None = None) -> list[Detection]:
        """People in `roi` (default: the whole frame, letterboxed), best score first."""
        if roi is None:
            h, w = rgb.shape[:2]
            roi = Roi(w / 2, h / 2, float(max(w, h)), 0.0)
        x = crop(rgb, roi, DETECTOR_SIZE).astype(np.float32) / 127.5 - 1.0
        boxes_out, logits = self._det(x[None])
        raw = boxes_out[0]
        scores = _sigmoid(logits[0, :, 0])
        keep = scores >= self.min_detection_score
        if not keep.any():
            return []
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        c = raw[:, 0:2] / DETECTOR_SIZE + anchors
        wh = raw[:, 2:4] / DETECTOR_SIZE
        boxes = np.concatenate([c - wh / 2, c + wh / 2], axis=1)
        kps = raw[:, 4:12].reshape(-1, 4, 2) / DETECTOR_SIZE + anchors[:, None, :]
        m = roi.crop_to_image(1)  # normalised crop coords -> image pixels
        out = []
        for box, kp, s in weighted_nms(boxes, kps, scores, self.nms_iou):
            corners = np.array([[box[0], box[1]], [box[2], box[3]]])
            corners = corners @ m[:, :2].T + m[:, 2]
            kp_img = kp @ m[:, :2].T + m[:, 2]
            out.append(Detection(np.concatenate([corners.min(0), corners.max(0)]).astype(np.float32),
                                 kp_img.astype(np.float32), s))
        return out

    def landmarks(self, rgb: np.ndarray, roi: Roi) -> Landmarks:
        """The landmark model on one ROI, mapped back to image pixels."""
        x = crop(rgb, roi, LANDMARK_SIZE).astype(np.float32) / 255.0
        out, flag_out, world_out = self._lm(x[None])
        raw = out[0].reshape(N_MODEL_LANDMARKS, 5)
        flag = float(flag_out[0, 0])
        world = world_out[0].reshape(N_MODEL_LANDMARKS, 3).astype(np.float64)
        m = roi.crop_to_image(LANDMARK_SIZE)
        img = np.empty((N_MODEL_LANDMARKS, 3))
        img[:, :2] = raw[:, :2] @ m[:, :2].T + m[:, 2]
        img[:, 2] = raw[:, 2] * roi.size / LANDMARK_SIZE
        c, s = np.cos(roi.rotation), np.sin(roi.rotation)
        wx, wy = world[:, 0].copy(), world[:, 1].copy()
        world[:, 0], world[:, 1] = c * wx - s * wy, s * wx + c * wy
        return Landmarks(image=img.astype(np.float32), visibility=_sigmoid(raw[:, 3]).astype(np.float32),
                         presence=_sigmoid(raw[:, 4]).astype(np.float32), world=world.astype(np.float32),
                         pose_score=flag, roi=roi)
