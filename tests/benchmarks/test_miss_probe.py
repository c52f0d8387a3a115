"""benchmarks/miss_probe.py's pieces that need no model: the crowd bench's frame lists, painting a person out,
and who stands nearer the camera."""
from __future__ import annotations

import numpy as np

from video2mesh.benchmarks.miss_probe import GREY, frame_list, nearer_people, paint_out


def test_frame_list_reads_the_crowd_bench_ranges():
    assert frame_list("-") == []
    assert frame_list("3-5,9,12-13") == [3, 4, 5, 9, 12, 13]


def _standing(x: float) -> np.ndarray:
    """COCO-17 joints (17, 2) px of an upright person centred at x, 100 px tall (head at 10, ankles at 110)."""
    j = np.zeros((17, 2))
    j[:5] = [x, 15]
    j[[5, 7, 9]] = [x - 12, 30], [x - 14, 50], [x - 14, 65]
    j[[6, 8, 10]] = [x + 12, 30], [x + 14, 50], [x + 14, 65]
    j[[11, 13, 15]] = [x - 8, 65], [x - 8, 88], [x - 8, 110]
    j[[12, 14, 16]] = [x + 8, 65], [x + 8, 88], [x + 8, 110]
    return j


def test_paint_out_greys_the_body_and_nothing_far_from_it():
    rgb = np.zeros((120, 200, 3), np.uint8)
    out = paint_out(rgb, _standing(60), 100.0)
    assert (out[45, 60] == GREY).all() and (out[100, 52] == GREY).all() and (out[15, 60] == GREY).all()
    assert not out[:, 120:].any() and not out[0:3].any()       # the other half of the frame and above the head
    assert not rgb.any()                                        # the input is left as it was


def test_nearer_people_are_in_front_and_touch_the_box():
    gt = {"joints_cam": np.zeros((3, 1, 17, 3)), "present": np.ones((3, 1), bool),
          "bbox": np.array([[[0, 0, 50, 100]], [[30, 0, 80, 100]], [[300, 0, 350, 100]]], np.float32)}
    gt["joints_cam"][:, 0, [11, 12], 2] = np.array([[5.0], [4.0], [3.0]])      # person 0 farthest
    assert nearer_people(gt, 0, 0, gt["bbox"][0, 0]) == [1]                      # 2 is nearer but elsewhere
    assert nearer_people(gt, 1, 0, gt["bbox"][1, 0]) == []                       # 0 overlaps but is behind
