"""bench crowd's ground-truth handling: who counts as visible, and perfect tracks score perfectly."""
import numpy as np
import pytest

from video2mesh.benchmarks.accuracy.crowd import gt_detections, score_clip, visible


def _gt():
    """Two people, 4 frames, 3 joints each. Person 1 stands behind person 0 (deeper) on frames 2-3, where its
    joints fall inside person 0's box: hidden there."""
    t = 4
    box = np.zeros((2, t, 4), np.float32)
    box[0] = [100, 0, 200, 300]
    box[1, :2] = [300, 0, 400, 300]
    box[1, 2:] = [120, 10, 190, 290]
    uv = np.zeros((2, t, 3, 2), np.float32)
    uv[0] = [[150, 50], [150, 150], [150, 250]]
    uv[1, :2] = [[350, 50], [350, 150], [350, 250]]
    uv[1, 2:] = [[155, 50], [155, 150], [155, 250]]
    cam = np.zeros((2, t, 3, 3), np.float32)
    cam[0, ..., 2], cam[1, ..., 2] = 3.0, 5.0
    return {"joints_2d": uv, "visible": np.ones((2, t, 3), bool), "bbox": box, "present": np.ones((2, t), bool),
            "joints_cam": cam}


def test_a_person_behind_another_is_hidden():
    np.testing.assert_array_equal(visible(_gt()), [[1, 1, 1, 1], [1, 1, 0, 0]])


def test_tracks_equal_to_the_visible_boxes_score_perfectly_and_hidden_frames_are_dont_care():
    gt = _gt()
    det = gt_detections(gt, visible(gt))
    assert list(det.frame) == [0, 0, 1, 1, 2, 3]
    # track 5 = person 0 throughout; track 6 = person 1 on all frames, also where it is hidden (don't care)
    hyp = {5: (np.arange(4), gt["bbox"][0]), 6: (np.arange(4), gt["bbox"][1])}
    r = score_clip(gt, hyp)
    assert (r["gt"], r["tp"], r["fp"], r["fn"], r["id_switches"], r["fragmentations"]) == (6, 6, 0, 0, 0, 0)
    assert r["idf1"] == pytest.approx(1.0) and r["max_tracks_per_person"] == 1
