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


def test_pose_scores_are_each_tracks_keypoints_against_its_own_persons_joints():
    import pandas as pd

    from video2mesh.benchmarks.accuracy.crowd import score_poses

    rng = np.random.default_rng(1)
    t = 3
    box = np.zeros((2, t, 4), np.float32)
    box[0], box[1, :2], box[1, 2] = [100, 0, 200, 300], [300, 0, 400, 300], [110, 10, 190, 290]   # 1 behind 0 on frame 2
    uv = np.zeros((2, t, 17, 2), np.float32)
    for p in range(2):
        for f in range(t):
            b = box[p, f]
            uv[p, f] = np.c_[rng.uniform(b[0] + 5, b[2] - 5, 17), rng.uniform(b[1] + 5, b[3] - 5, 17)]
    cam = rng.normal(0, 0.3, (2, t, 17, 3)).astype(np.float32)
    cam[0, ..., 2] += 3.0
    cam[1, ..., 2] += 5.0
    gt = {"joints_2d": uv, "visible": np.ones((2, t, 17), bool), "bbox": box, "present": np.ones((2, t), bool),
          "joints_cam": cam}
    assert visible(gt).tolist() == [[True] * 3, [True, True, False]]
    # track 7 follows person 1, track 4 person 0 (by their detected boxes; ids need not match people)
    tracklets = pd.DataFrame([(f, tid, *box[p, f], False) for tid, p in ((7, 1), (4, 0)) for f in range(t)],
                             columns=["frame", "track_id", "x1", "y1", "x2", "y2", "interpolated"])
    kp3_1 = cam[1].copy()
    kp3_1[:, 5] += [0.17, 0, 0]                               # one joint of 17 off by 170 mm: mean 10 mm
    rows = []
    for f in range(t):
        rows.append((7, f, np.c_[uv[1, f], np.ones(17)].ravel(), kp3_1[f].ravel()))
        rows.append((4, f, np.c_[uv[0, f] + [3, 4], np.ones(17)].ravel(), (cam[0, f] + [0.1, 0.2, 0.3]).ravel()))
    fit = pd.DataFrame(rows, columns=["track_id", "frame", "keypoints", "keypoints3d"])
    s = score_poses(gt, tracklets, fit)
    assert s["track_person"] == {4: 0, 7: 1}
    assert (s["visible"]["n"], s["hidden"]["n"], s["all"]["n"]) == (5, 1, 6)
    assert s["hidden"]["px_median"] == pytest.approx(0, abs=1e-4) and s["hidden"]["mm_median"] == pytest.approx(10, abs=1e-3)
    # visible: person 0 three frames at 5 px / 0 mm (a shift is no pose error), person 1 two at 0 px / 10 mm
    assert s["visible"]["px_median"] == pytest.approx(5, abs=1e-4) and s["visible"]["mm_median"] == pytest.approx(0, abs=1e-3)
    assert s["all"]["px_median"] == pytest.approx(2.5, abs=1e-4)


def test_named_mixes_are_five_distinct_shared_clips_and_parse_as_the_user_wrote_them(tmp_path, monkeypatch):
    from pathlib import Path

    from video2mesh.benchmarks.accuracy import bench
    from video2mesh.benchmarks.accuracy.crowd import MIXES, label, mix_names, walkers
    from video2mesh.pipeline.errors import ConfigError

    assert mix_names(None) == ["walks"] and mix_names("all") == list(MIXES)
    assert mix_names(" wave, group ") == ["wave", "group"]
    for bad in ("crowds", "walks,,x", ","):
        with pytest.raises(ConfigError, match="--mix"):
            mix_names(bad)
    assert all(len(set(m)) == 5 for m in MIXES.values()) and len({tuple(m) for m in MIXES.values()}) == len(MIXES)
    # the files a mix names are found by name under the mocap folder, in the mix's order
    for m in {w for mix in MIXES.values() for w in mix}:
        (tmp_path / "bandai").mkdir(exist_ok=True)
        (tmp_path / "bandai" / f"{m}.bvh").write_text("HIERARCHY\n")
    monkeypatch.setattr(bench, "default_mocap", lambda: [tmp_path])
    assert [p.stem for p in walkers(None, "group")] == list(MIXES["group"])
    assert all(Path(p).parent == tmp_path / "bandai" for p in walkers(None, "arms"))
    row = {"clip": "00_dataset-2_run_elderly_001+dataset-2_raise-up-both-hands_normal_001_static", "mix": "group"}
    assert label(row) == "group: run_elderly+raise-up-both-hands_n" and len(label(row)) == 40
    assert label({**row, "mix": "given"}).startswith("run_elderly+raise")


def test_who_is_missed_and_whether_the_detector_had_them():
    import pandas as pd

    from video2mesh.benchmarks.accuracy.crowd import format_misses, frame_ranges, person_misses

    assert frame_ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8" and frame_ranges([]) == "-" and frame_ranges([3]) == "3"
    gt = _gt()                                            # person 0 visible 0-3, person 1 visible 0-1 (hidden 2-3)
    off = gt["bbox"][0, 3] + [150, 0, 150, 0]             # a box beside person 0 on frame 3: IoU 0
    hyp = {5: (np.arange(4), np.r_[gt["bbox"][0, :3], off[None]]), 6: (np.array([0]), gt["bbox"][1, :1])}
    det = pd.DataFrame([(3, *gt["bbox"][0, 3]), (1, *gt["bbox"][1, 1] + [200, 0, 200, 0])],
                       columns=["frame", "x1", "y1", "x2", "y2"])
    m = person_misses(gt, hyp, det)
    assert m[0] == {"visible": "0-3", "visible_n": 4, "missed": "3", "missed_n": 1, "missed_detected": 1}   # tracking lost it
    assert m[1] == {"visible": "0-1", "visible_n": 2, "missed": "1", "missed_n": 1, "missed_detected": 0}   # detect did
    assert person_misses(gt, hyp)[1]["missed_detected"] is None
    line = format_misses([{"clip": "00_dataset-2_walk_normal_001+x", "mix": "walks", "names": ["walk_normal"], "misses": m}])
    assert line.splitlines() == ["walks: walk_normal+x  walk_normal: visible 0-3 (4 f); missed 1: 3 (detect had a box on 1)",
                                 "walks: walk_normal+x  person 1: visible 0-1 (2 f); missed 1: 1 (detect had a box on 0)"]
