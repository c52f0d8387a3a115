"""models/runners/nanodet.py: the GFL box decoding in closed form, and the real NanoDet graph (skipped where
V2M_NANODET_JSON / ~/.cache/video2mesh/models/nanodet.json is absent) against a crowd clip's GT boxes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from video2mesh.models.runners.nanodet import SIZE, NanoDetPersons, decode_level, default_json

CROWD3 = Path.home() / ".cache/video2mesh/cache/accuracy/9e0ff8b273d06c29"


def test_decode_level_one_hot_bins_give_exact_distances():
    """Cell (x 3, y 2) of the stride-16 level (26 per row); bins 1, 2, 3, 4 with all the mass -> the sides
    are 16, 32, 48, 64 px from the cell centre (56, 40); a cell below min_score is left out."""
    n = (SIZE // 16) ** 2
    scores, dist = np.zeros(n), np.full((n, 44), -50.0)
    i = 2 * (SIZE // 16) + 3
    scores[i] = 0.8
    for side, b in enumerate((1, 2, 3, 4)):
        dist[i, side * 11 + b] = 50.0
    out = decode_level(scores, dist, 16, 0.5)
    np.testing.assert_allclose(out, [[56 - 16, 40 - 32, 56 + 48, 40 + 64, 0.8]], atol=1e-6)
    assert len(decode_level(scores, dist, 16, 0.9)) == 0


@pytest.mark.skipif(not default_json().is_file(), reason="NanoDet model not set up (V2M_NANODET_JSON)")
@pytest.mark.skipif(not any(CROWD3.glob("*/gt.npz")), reason="rendered 3-person crowd clip not cached")
def test_real_nanodet_person_boxes_match_ground_truth():
    from tests.models.runners.test_movenet import _iou
    from video2mesh.benchmarks.accuracy.crowd import visible
    from video2mesh.benchmarks.accuracy.groundtruth import read_gt
    from video2mesh.benchmarks.hog_probe import read_frames

    clip = next(CROWD3.glob("*/gt.npz")).parent
    gt, frames = read_gt(clip / "gt.npz"), read_frames(clip / "video.mp4")
    net = NanoDetPersons()
    for f in (20, 100):
        boxes = net(frames[f], min_score=0.3)
        h, w = frames[f].shape[:2]
        for p in np.flatnonzero(visible(gt)[:, f]):
            g = gt["bbox"][p, f]
            if min(g[0], g[1]) <= 1 or g[2] >= w - 1 or g[3] >= h - 1:
                continue
            assert max((_iou(b, g) for b in boxes), default=0.0) >= 0.5, (f, p, g, boxes)
