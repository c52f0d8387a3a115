"""models/runners/movenet.py: the letterbox's geometry, and on the real MoveNet MultiPose graph (skipped where
its files are absent: V2M_MOVENET_JSON or ~/.cache/video2mesh/models/movenet-multipose.json) person boxes
against a rendered crowd clip's ground-truth boxes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from video2mesh.models.runners.movenet import MoveNetMultiPose, default_json, letterbox

CROWD3 = Path.home() / ".cache/video2mesh/cache/accuracy/9e0ff8b273d06c29"   # 3 people, static camera (hog_probe CLIPS)


def test_letterbox_keeps_aspect_and_pads_to_32():
    rgb = np.full((360, 640, 3), 200, np.uint8)
    img, s = letterbox(rgb, 256)
    assert img.shape == (160, 256, 3) and s == pytest.approx(0.4)
    assert (img[:144] == 200).all() and (img[144:] == 0).all()     # 360 * 0.4 = 144 rows of image, then black
    with pytest.raises(ValueError, match="multiple of 32"):
        letterbox(rgb, 250)


def _iou(a, b):
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:4], b[2:4])
    inter = np.clip(hi - lo, 0, None).prod()
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.skipif(not default_json().is_file(), reason="MoveNet model not set up (V2M_MOVENET_JSON)")
@pytest.mark.skipif(not any(CROWD3.glob("*/gt.npz")), reason="rendered 3-person crowd clip not cached")
@pytest.mark.parametrize("size", [256, 512])
def test_real_movenet_boxes_match_ground_truth(size):
    from video2mesh.benchmarks.accuracy.crowd import visible
    from video2mesh.benchmarks.accuracy.groundtruth import read_gt
    from video2mesh.benchmarks.hog_probe import read_frames

    clip = next(CROWD3.glob("*/gt.npz")).parent
    gt, frames = read_gt(clip / "gt.npz"), read_frames(clip / "video.mp4")
    net = MoveNetMultiPose()
    for f in (20, 100):
        boxes, kps = net(frames[f], size, min_score=0.2)
        assert kps.shape == (len(boxes), 17, 3)
        vis = visible(gt)[:, f]
        for p in np.flatnonzero(vis):
            g = gt["bbox"][p, f]
            h, w = frames[f].shape[:2]
            if min(g[0], g[1]) <= 1 or g[2] >= w - 1 or g[3] >= h - 1:   # cut by the frame edge: not "clearly visible"
                continue
            best = max((_iou(b, g) for b in boxes), default=0.0)
            assert best >= 0.5, (f, p, g, boxes)
        # every box lies on someone: a box matching no present person would be a false positive
        present = gt["bbox"][gt["present"][:, f], f]
        assert all(max(_iou(b, g) for g in present) >= 0.3 for b in boxes)
