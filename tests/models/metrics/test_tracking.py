"""Tracking metrics against hand counts (closed form) and against py-motmetrics (a second implementation)."""
import numpy as np
import pytest

from video2mesh.models.metrics.tracking import evaluate, iou_matrix


def _box(x, y=0.0, w=10.0, h=20.0):
    return [x, y, x + w, y + h]


def _tracks(spec):
    """{id: {frame: box}} -> {id: (frames, boxes)}."""
    return {k: (np.array(sorted(v)), np.array([v[f] for f in sorted(v)], float)) for k, v in spec.items()}


def test_iou_by_hand():
    # 10x20 boxes shifted by 5 px: intersection 5x20 = 100, union 300
    np.testing.assert_allclose(iou_matrix([_box(0)], [_box(5), _box(100)]), [[1 / 3, 0.0]])


def test_cover_is_intersection_over_the_smaller_box():
    # a 10x20 box inside a 40x20 box: IoU 0.25 (no match at 0.5), cover 1 (a match)
    gt = _tracks({0: {0: _box(0)}})
    hyp = _tracks({1: {0: _box(-15, w=40)}})
    np.testing.assert_allclose(iou_matrix(gt[0][1], hyp[1][1]), [[0.25]])
    assert evaluate(gt, hyp).tp == 0 and evaluate(gt, hyp, overlap="cover").tp == 1


def test_swap_fragment_and_false_positive_by_hand():
    # person 0 on frames 0..9; track 7 covers 0..3, nothing on 4..5, track 8 on 6..9 -> 1 switch, 1 fragment
    # person 1 on frames 0..9, track 9 throughout; a stray track 5 box on frame 2 (far away) -> 1 FP
    gt = _tracks({0: {f: _box(0) for f in range(10)}, 1: {f: _box(50) for f in range(10)}})
    hyp = _tracks({7: {f: _box(1) for f in range(4)}, 8: {f: _box(1) for f in range(6, 10)},
                   9: {f: _box(50) for f in range(10)}, 5: {2: _box(200)}})
    s = evaluate(gt, hyp)
    assert (s.gt, s.tp, s.fn, s.fp, s.id_switches, s.fragmentations) == (20, 18, 2, 1, 1, 1)
    assert s.mota == pytest.approx(1 - (2 + 1 + 1) / 20)
    # IDF1: best one-to-one assignment 0<->7 (4 frames, ties 8) + 1<->9 (10): IDTP 14, 2*14 / (20 + 19)
    assert s.idtp == 14 and s.idf1 == pytest.approx(28 / 39)
    assert s.switches_per_1000 == pytest.approx(50.0)


def test_iou_threshold_is_inclusive_at_half():
    # 30x20 boxes shifted by 10 px: IoU = 20 / 40 = 0.5 exactly -> a match; by 11 px: 19 / 41 -> none
    gt = _tracks({0: {0: _box(0, w=30)}})
    assert evaluate(gt, _tracks({1: {0: _box(10, w=30)}})).tp == 1
    assert evaluate(gt, _tracks({1: {0: _box(11, w=30)}})).tp == 0


def test_dont_care_removes_the_miss_and_the_matching_track_box():
    gt = _tracks({0: {0: _box(0), 1: _box(0)}})
    hyp = _tracks({1: {0: _box(0), 1: _box(0)}})
    s = evaluate({0: (gt[0][0][:1], gt[0][1][:1])}, hyp, ignore={0: (gt[0][0][1:], gt[0][1][1:])})
    assert (s.gt, s.tp, s.fp, s.fn) == (1, 1, 0, 0)


def test_a_person_inside_another_persons_box_takes_no_box_from_them():
    # near person 0: a 100x200 box on frames 0..9, track 1 on it; far person 1: a 30x100 box inside it, track 2
    # on it (offset 3 px) from frame 3. With cover both track boxes contain person 1's box.
    near, far = np.array([0, 0, 100, 200.0]), np.array([40, 50, 70, 150.0])
    f = np.arange(10)
    gt0 = {0: (f, np.tile(near, (10, 1)))}
    hyp = {1: (f, np.tile(near, (10, 1))), 2: (f[3:], np.tile(far + 3, (7, 1)))}
    # person 1 hidden (don't-care) on 3..9: dropping track 1's box as "the don't-care person's" would hand
    # person 0 to track 2 (a switch); one assignment over both people drops track 2's. By hand: 10 TP, 0 FP.
    s = evaluate(gt0, hyp, ignore={1: (f[3:], np.tile(far, (7, 1)))}, overlap="cover")
    assert (s.id_switches, s.tp, s.fp, s.fn, s.hyp) == (0, 10, 0, 0, 10)
    # person 1 visible on 3..9: each keeps its own track (the box closer in size wins the tie at cover 1)
    matched: dict = {}
    s = evaluate({**gt0, 1: (f[3:], np.tile(far, (7, 1)))}, hyp, overlap="cover", matched=matched)
    assert (s.id_switches, s.tp, s.fp) == (0, 17, 0) and matched == {(0, 1): 10, (1, 2): 7}


def _random_scene(rng, n_people=4, n_frames=60):
    """People walking across with noisy track boxes, dropped frames, swapped ids and stray boxes."""
    gt, hyp = {}, {}
    next_id = 100
    for p in range(n_people):
        start, stop = sorted(rng.integers(0, n_frames, 2))
        x0, vx = rng.uniform(0, 300), rng.uniform(-3, 3)
        gt[p] = {f: _box(x0 + vx * f, 10 * p) for f in range(start, stop + 1)}
        tid = next_id
        for f in range(start, stop + 1):
            if rng.random() < 0.1:
                continue                                   # a miss
            if rng.random() < 0.05:
                next_id += 1
                tid = next_id                              # a new id from here on (switch)
            hyp.setdefault(tid, {})[f] = list(np.add(gt[p][f], rng.normal(0, 2.0, 4)))
        next_id += 1
    for k in range(8):                                     # stray boxes
        hyp.setdefault(900 + k % 3, {})[int(rng.integers(0, n_frames))] = _box(rng.uniform(0, 300), rng.uniform(0, 40))
    return _tracks(gt), _tracks(hyp)


def _distance(a, b):
    """motmetrics' convention: 1 - IoU, NaN (no match possible) where IoU < 0.5; written out per pair."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    iou = inter / union
    return 1.0 - iou if iou >= 0.5 else np.nan


@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_motmetrics(seed):
    mm = pytest.importorskip("motmetrics")
    gt, hyp = _random_scene(np.random.default_rng(seed))
    acc = mm.MOTAccumulator(auto_id=False)
    frames = sorted({int(f) for d in (gt, hyp) for fr, _ in d.values() for f in fr})
    for f in frames:
        o = [(k, b[fr == f][0]) for k, (fr, b) in gt.items() if (fr == f).any()]
        h = [(k, b[fr == f][0]) for k, (fr, b) in hyp.items() if (fr == f).any()]
        d = np.array([[_distance(a, b) for _, b in h] for _, a in o]).reshape(len(o), len(h))
        acc.update([k for k, _ in o], [k for k, _ in h], d, frameid=f)
    ref = mm.metrics.create().compute(acc, metrics=["num_objects", "num_false_positives", "num_misses",
                                                    "num_switches", "num_fragmentations", "mota", "idf1"])
    s = evaluate(gt, hyp)
    r = ref.iloc[0]
    assert (s.gt, s.fp, s.fn, s.id_switches, s.fragmentations) == (
        r.num_objects, r.num_false_positives, r.num_misses, r.num_switches, r.num_fragmentations)
    assert s.mota == pytest.approx(r.mota) and s.idf1 == pytest.approx(r.idf1)


def test_matched_pairs_are_reported():
    gt = _tracks({0: {f: _box(0) for f in range(10)}})
    hyp = _tracks({7: {f: _box(1) for f in range(4)}, 8: {f: _box(1) for f in range(6, 10)}})
    matched = {}
    evaluate(gt, hyp, matched=matched)
    assert matched == {(0, 7): 4, (0, 8): 4}
