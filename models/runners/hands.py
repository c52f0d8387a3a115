"""MediaPipe Hands (palm detector + 21-landmark model) run from its .tflite files, seeded by BlazePose.

Two networks, both Apache-2.0, from the `mediapipe==0.10.21` wheel (see stages/licence_free.py):

- palm detector `palm_detection_full.tflite`: input (1, 192, 192, 3) RGB in [0, 1], a square crop;
  outputs (1, 2016, 18) box + 7 palm keypoints per SSD anchor and (1, 2016, 1) logits. Keypoint 0 is
  the wrist centre, keypoint 2 the middle finger's MCP joint.
- landmarks `hand_landmark_full.tflite`: input (1, 224, 224, 3) RGB in [0, 1], a rotated square ROI
  with the fingers pointing up; outputs (1, 63) = 21 x (x, y, z) in crop pixels, (1, 1) hand presence,
  (1, 1) handedness, (1, 63) = 21 x 3 world landmarks in metres about the hand's centre.

ROIs follow MediaPipe's public graph configs (our own code; MediaPipe is not imported):
- from the body (holistic's hand-from-pose rule): with the BlazePose wrist W, index I and pinky P,
  the middle finger's MCP is estimated as M = (2 I + P) / 3; the ROI is centred on M, side
  2 |M - W|, rotated so that W -> M points up, then scaled x2.7 and shifted by -0.1 x side along
  the ROI's own up axis (towards the fingers).
- from a palm detection (the fallback when the body's ROI holds no hand): the box's centre and the
  larger of its sides, rotated so that keypoint 0 -> keypoint 2 points up, scaled x2.6, shifted by
  -0.5 x side along the ROI's up axis.
- from a previous result's landmarks (MediaPipe's tracking rule, used here to refine): up axis from the
  wrist to the middle knuckle, the landmarks' box in that frame, scaled x2, shifted by -0.1 x side.
Landmark smoothing and the re-crop network of MediaPipe's holistic graph are not implemented (the
`fingers` stage smooths; the refine pass does the re-crop's job).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .blazepose import Roi, _sigmoid, crop, weighted_nms
from .litert import TfliteNet

PALM_SIZE = 192
HAND_SIZE = 224
N_HAND = 21
# BlazePose landmark indices of each side's wrist, pinky knuckle and index knuckle
POSE_HAND = {"left": (15, 17, 19), "right": (16, 18, 20)}
POSE_ROI_SCALE, POSE_ROI_SHIFT = 2.7, -0.1
PALM_ROI_SCALE, PALM_ROI_SHIFT = 2.6, -0.5
LANDMARK_ROI_SCALE, LANDMARK_ROI_SHIFT = 2.0, -0.1


def upright_rotation(p0: np.ndarray, p1: np.ndarray) -> float:
    """Rotation (rad, in (-pi, pi]) of a ROI whose up axis points from p0 to p1 (image pixels, y down)."""
    r = np.pi / 2 - np.arctan2(-(float(p1[1]) - float(p0[1])), float(p1[0]) - float(p0[0]))
    return float((r + np.pi) % (2 * np.pi) - np.pi)


def transformed_roi(cx: float, cy: float, side: float, rotation: float, scale: float, shift_y: float) -> Roi:
    """MediaPipe's RectTransformation on a square: shift the centre by `shift_y` x side along the ROI's
    own y axis (rotated; negative = up in the ROI), then scale the side."""
    s, c = np.sin(rotation), np.cos(rotation)
    dx, dy = -side * shift_y * s, side * shift_y * c
    return Roi(float(cx + dx), float(cy + dy), float(side * scale), float(rotation))


def roi_from_pose(wrist: np.ndarray, pinky: np.ndarray, index: np.ndarray) -> Roi:
    """Hand ROI from three BlazePose landmarks (x, y pixels) of one arm (module docstring's rule)."""
    w, p, i = (np.asarray(v, np.float64)[:2] for v in (wrist, pinky, index))
    m = (2.0 * i + p) / 3.0
    side = 2.0 * float(np.hypot(*(m - w)))
    return transformed_roi(m[0], m[1], side, upright_rotation(w, m), POSE_ROI_SCALE, POSE_ROI_SHIFT)


def roi_from_landmarks(image: np.ndarray) -> Roi:
    """ROI of MediaPipe's hand tracking from a previous result's 21 landmarks (x, y pixels): up axis from
    the wrist (0) to the middle knuckle (9), the landmarks' box in that rotated frame, scaled x2 and
    shifted by -0.1 x its side along the up axis, square on its long side."""
    pts = np.asarray(image, np.float64)[:, :2]
    rotation = upright_rotation(pts[0], pts[9])
    c, s = np.cos(rotation), np.sin(rotation)
    local = pts @ np.array([[c, -s], [s, c]])                      # image -> ROI axes (rotate by -rotation)
    lo, hi = local.min(0), local.max(0)
    mid = np.array([[c, -s], [s, c]]) @ ((lo + hi) / 2)
    return transformed_roi(mid[0], mid[1], float((hi - lo).max()), rotation, LANDMARK_ROI_SCALE, LANDMARK_ROI_SHIFT)


def palm_anchors() -> np.ndarray:
    """(2016, 2) anchor centres (x, y) in [0, 1] of the palm detector: strides 8, 16, 16, 16 with two
    anchors per cell and layer, layers of one stride sharing a map: 24*24*2 + 12*12*6 = 2016."""
    out = []
    for stride, per_cell in ((8, 2), (16, 6)):
        fm = PALM_SIZE // stride
        ys, xs = np.meshgrid((np.arange(fm) + 0.5) / fm, (np.arange(fm) + 0.5) / fm, indexing="ij")
        out.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


@dataclass(frozen=True)
class Palm:
    """A palm found by the detector, in image pixels."""

    box: np.ndarray        # (4,) x1, y1, x2, y2
    keypoints: np.ndarray  # (7, 2)
    score: float

    def roi(self) -> Roi:
        side = float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))
        cx, cy = (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2
        return transformed_roi(cx, cy, side, upright_rotation(self.keypoints[0], self.keypoints[2]),
                               PALM_ROI_SCALE, PALM_ROI_SHIFT)


@dataclass(frozen=True)
class HandLandmarks:
    """One landmark-model result.

    image: (21, 3) x px, y px, z (x's scale, relative to the wrist's depth); world: (21, 3) metres about
    the hand's centre, rotated back to image axes (x right, y down, z away from the camera);
    presence: probability that a hand fills the ROI; right: probability that it is a right hand (of
    the person, on an unmirrored image); roi: the crop used.
    """

    image: np.ndarray
    world: np.ndarray
    presence: float
    right: float
    roi: Roi


class Hands:
    """The palm detector and the hand landmark model on the CPU through LiteRT (`ai-edge-litert`).
    Images are (H, W, 3) uint8 RGB."""

    def __init__(self, palm_path: str | Path, landmark_path: str | Path, num_threads: int = 2,
                 min_palm_score: float = 0.5, nms_iou: float = 0.3):
        self._palm = TfliteNet(palm_path, ("Identity", "Identity_1"), num_threads)  # boxes, logits
        # landmarks, presence, handedness, world landmarks
        self._lm = TfliteNet(landmark_path, ("Identity", "Identity_1", "Identity_2", "Identity_3"), num_threads)
        self.anchors = palm_anchors()
        self.min_palm_score = min_palm_score
        self.nms_iou = nms_iou

    def palms(self, rgb: np.ndarray, roi: Roi) -> list[Palm]:
        """Palms inside a square ROI, best score first."""
        x = crop(rgb, roi, PALM_SIZE).astype(np.float32) / 255.0
        boxes_out, logits = self._palm(x[None])
        raw = boxes_out[0]
        scores = _sigmoid(logits[0, :, 0])
        keep = scores >= self.min_palm_score
        if not keep.any():
            return []
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        c = raw[:, 0:2] / PALM_SIZE + anchors
        wh = raw[:, 2:4] / PALM_SIZE
        boxes = np.concatenate([c - wh / 2, c + wh / 2], axis=1)
        kps = raw[:, 4:18].reshape(-1, 7, 2) / PALM_SIZE + anchors[:, None, :]
        m = roi.crop_to_image(1)
        out = []
        for box, kp, s in weighted_nms(boxes, kps, scores, self.nms_iou):
            corners = np.array([[box[0], box[1]], [box[2], box[1]], [box[0], box[3]], [box[2], box[3]]]) @ m[:, :2].T + m[:, 2]
            # the crop may be rotated: keep a square of the box's side about its centre (the ROI only needs that)
            centre, side = corners.mean(0), (box[2] - box[0]) * roi.size
            out.append(Palm(np.concatenate([centre - side / 2, centre + side / 2]).astype(np.float32),
                            (kp @ m[:, :2].T + m[:, 2]).astype(np.float32), s))
        return out

    def landmarks(self, rgb: np.ndarray, roi: Roi) -> HandLandmarks:
        """The landmark model on one ROI, mapped back to image pixels."""
        x = crop(rgb, roi, HAND_SIZE).astype(np.float32) / 255.0
        out, presence, hand, world_out = self._lm(x[None])
        raw = out[0].reshape(N_HAND, 3).astype(np.float64)
        world = world_out[0].reshape(N_HAND, 3).astype(np.float64)
        m = roi.crop_to_image(HAND_SIZE)
        img = np.empty((N_HAND, 3))
        img[:, :2] = raw[:, :2] @ m[:, :2].T + m[:, 2]
        img[:, 2] = raw[:, 2] * roi.size / HAND_SIZE
        c, s = np.cos(roi.rotation), np.sin(roi.rotation)
        wx, wy = world[:, 0].copy(), world[:, 1].copy()
        world[:, 0], world[:, 1] = c * wx - s * wy, s * wx + c * wy
        # the handedness output, read as the probability of the person's right hand on an unmirrored
        # image: checked on the shared videos against BlazePose's side (tests/models/runners/test_hands.py)
        right = float(hand[0, 0])
        return HandLandmarks(image=img.astype(np.float32), world=world.astype(np.float32),
                             presence=float(presence[0, 0]), right=right, roi=roi)
