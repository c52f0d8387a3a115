"""Detection recall benchmark: its occlusion share and recall/precision on hand-made cases."""
from __future__ import annotations

import numpy as np
import pytest

from video2mesh.benchmarks.detect_recall import score, unoccluded


def test_unoccluded_share_of_a_box_half_behind_a_nearer_one():
    boxes = np.array([[[0, 0, 100, 200]], [[50, 0, 150, 200]], [[500, 0, 600, 100]]], np.float32)  # (P=3, T=1, 4)
    depth = np.array([[5.0], [3.0], [1.0]])          # person 1 nearer than 0; person 2 nearest but elsewhere
    shown = unoccluded(boxes, depth, np.ones((3, 1), bool))
    assert shown[:, 0] == pytest.approx([0.5, 1.0, 1.0])


def test_recall_and_precision_count_person_frames_and_boxes():
    gt = np.array([[[0, 0, 50, 150], [10, 0, 60, 150]], [[200, 0, 260, 160], [200, 0, 260, 160]]], np.float32)
    present = np.ones((2, 2), bool)
    dets = [np.array([[0, 0, 50, 150, 1], [400, 0, 450, 150, 1]], np.float32),   # one hit, one false box
            np.array([[205, 5, 255, 155, 1]], np.float32)]                        # person 1 hit, person 0 missed
    r = score(dets, gt, present, min_px=100)
    assert r["recall"] == pytest.approx(2 / 4) and r["precision"] == pytest.approx(2 / 3)
    assert r["recall_per_person"] == pytest.approx([0.5, 0.5])
    # person 0 (150 px tall) is below min_px=155: not scored, and a box on it is neither hit nor false
    r = score(dets, gt, present, min_px=155)
    assert r["recall"] == pytest.approx(1 / 2) and r["precision"] == pytest.approx(1 / 2)
