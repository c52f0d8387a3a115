"""One body seen by several tracks (models/fit/occlusion.py): which frames are borrowed, and their in-between."""
import numpy as np

from video2mesh.models.fit.occlusion import borrowed_frames, fill_borrowed, same_body_distance
from video2mesh.models.fit.temporal import BORROWED_WEIGHT, SMOOTHING, prepare_track


def _skeleton(x0: float, y0: float = 100.0, h: float = 160.0) -> np.ndarray:
    """(17, 3) a stick figure 40 px wide and h px tall with its top-left at (x0, y0), every score 0.9."""
    rng = np.random.default_rng(0)
    xy = np.c_[x0 + 40 * rng.random(17), y0 + h * np.linspace(0, 1, 17)]
    return np.c_[xy, np.full(17, 0.9)]


def _box(kp: np.ndarray, dx: float = 0.0) -> np.ndarray:
    return np.r_[kp[:, :2].min(0) + [dx, 0], kp[:, :2].max(0) + [dx, 0]]


def test_a_track_whose_box_is_elsewhere_borrows_the_body_another_track_was_detected_on():
    body = _skeleton(100)
    near = body + [[1.0, 1.0, 0]]                                 # the same body, 1.4 px off: one body
    kp = np.stack([body, near])
    boxes = np.stack([_box(body), _box(body, dx=200)])            # the second track's own box is 200 px away
    assert same_body_distance(body, near) < 0.01
    np.testing.assert_array_equal(borrowed_frames(np.array([7, 7]), kp, boxes, np.array([True, False]), 0.05),
                                  [False, True])
    # detected beats the box: the same with the detector's row second
    np.testing.assert_array_equal(borrowed_frames(np.array([7, 7]), kp[::-1], boxes[::-1], np.array([False, True]), 0.05),
                                  [True, False])
    assert not borrowed_frames(np.array([7, 7]), kp, boxes, np.array([True, False]), 0.0).any()   # off
    assert not borrowed_frames(np.array([7, 8]), kp, boxes, np.array([True, False]), 0.05).any()  # other frames


def test_two_people_apart_or_a_blend_both_boxes_hold_are_not_borrowed():
    a, b = _skeleton(100), _skeleton(160)                         # side by side, 60 px apart
    kp, boxes = np.stack([a, b]), np.stack([_box(a), _box(b)])
    assert not borrowed_frames(np.array([0, 0]), kp, boxes, np.array([True, True]), 0.05).any()
    # one skeleton for two people overlapping closely, both boxes around it: no stranger, nothing borrowed
    kp = np.stack([a, a])
    boxes = np.stack([_box(a), _box(a, dx=8)])
    assert not borrowed_frames(np.array([0, 0]), kp, boxes, np.array([True, False]), 0.05).any()


def test_three_tracks_on_one_body_leave_it_to_one():
    body = _skeleton(100)
    kp = np.stack([body, body + [[2.0, 0, 0]], body + [[4.0, 0, 0]], _skeleton(400)])   # 0-1-2 linked in a chain
    boxes = np.stack([_box(body, 300), _box(body), _box(body, -300), _box(kp[3])])
    out = borrowed_frames(np.zeros(4, int), kp, boxes, np.array([False, False, False, True]), 0.015)
    np.testing.assert_array_equal(out, [True, False, True, False])     # track 1's box holds it; 3 is someone else


def test_fill_borrowed_is_the_straight_line_between_own_frames_held_at_the_ends():
    frames = np.array([0, 1, 2, 3, 5, 6])
    values = np.array([[0.0], [10], [99], [99], [50], [99]])
    borrowed = np.array([False, False, True, True, False, True])
    np.testing.assert_allclose(fill_borrowed(frames, values, borrowed)[:, 0], [0, 10, 20, 30, 50, 50])
    np.testing.assert_allclose(fill_borrowed(frames, values, np.ones(6, bool)), values)    # nothing of its own


def test_prepare_track_gives_borrowed_frames_the_in_between_at_a_lower_weight():
    t = 9
    lm = np.zeros((t, 33, 5))
    lm[..., 0] = np.arange(t)[:, None] * 10.0                     # x moves 10 px a frame
    lm[..., 1] = np.arange(33)[None] * 5.0
    lm[..., 3:] = 1.0
    world = np.zeros((t, 33, 3))
    borrowed = np.zeros(t, bool)
    borrowed[3:6] = True
    lm[3:6, :, 0] += 500.0                                        # someone else's body, 500 px away
    out = prepare_track(np.arange(t), lm, world, 30.0, SMOOTHING["off"], flip_fix=False, borrowed=borrowed)
    np.testing.assert_allclose(out.keypoints[:, :, 0], np.arange(t)[:, None] * 10.0 + np.zeros((1, 17)))
    assert (out.keypoints[3:6, :, 2] == BORROWED_WEIGHT).all() and (out.keypoints[~borrowed, :, 2] == 1).all()
