"""Person search (tiles, NMS, ROIs between frames): geometry against closed forms and OpenCV/torchvision,
and the real BlazePose networks on a composed image with people at several scales."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from video2mesh.models.runners.blazepose import DETECTOR_SIZE, crop
from video2mesh.models.runners.person_search import (PersonSearch, SearchConfig, body_box, inside_share, landmark_box, nms,
                                                      same_person_once, tile_rois)


@pytest.mark.parametrize("w,h,fracs", [(1280, 720, (1.0, 0.5)), (640, 360, (0.6,)), (360, 640, (1.0,))])
def test_tiles_cover_the_frame_and_touch_its_borders(w, h, fracs):
    rois = tile_rois(w, h, fracs, overlap=0.25)
    for frac in fracs:
        side = frac * min(w, h)
        tiles = [r for r in rois if np.isclose(r.size, side)]
        x1 = np.array([r.cx - side / 2 for r in tiles])
        y1 = np.array([r.cy - side / 2 for r in tiles])
        assert x1.min() == pytest.approx(0) and (x1 + side).max() == pytest.approx(w)
        assert y1.min() == pytest.approx(0) and (y1 + side).max() == pytest.approx(h)
        xs, ys = np.unique(x1.round(6)), np.unique(y1.round(6))
        # neighbours overlap by at least the asked share of a side, so no gap
        assert np.all(np.diff(xs) <= side * 0.75 + 1e-6) and np.all(np.diff(ys) <= side * 0.75 + 1e-6)
        assert len(tiles) == len(xs) * len(ys)
    assert tile_rois(w, h, (max(w, h) / min(w, h) + 0.01,), 0.25) == []  # bigger than the frame: nothing


def test_a_box_in_tile_coordinates_maps_back_exactly():
    """A white rectangle drawn in the image, cropped through a tile (OpenCV warp), found in the crop and
    mapped back with the tile's affine map: the image rectangle again (to the crop's pixel size)."""
    w, h = 1280, 720
    img = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = 700, 200, 820, 330
    img[y1:y2, x1:x2] = 255
    tile = next(r for r in tile_rois(w, h, (0.5,), 0.25) if r.cx - r.size / 2 <= x1 and x2 <= r.cx + r.size / 2
                and r.cy - r.size / 2 <= y1 and y2 <= r.cy + r.size / 2)
    c = crop(img, tile, DETECTOR_SIZE)[..., 0] > 127
    vs, us = np.nonzero(c)
    box_crop = np.array([[us.min(), vs.min()], [us.max() + 1, vs.max() + 1]], float)
    m = tile.crop_to_image(DETECTOR_SIZE)
    back = box_crop @ m[:, :2].T + m[:, 2]
    px = tile.size / DETECTOR_SIZE
    assert np.allclose(back, [[x1, y1], [x2, y2]], atol=px)
    # closed form of an upright tile: x = left + u * side / 224
    assert np.allclose(m, [[px, 0, tile.cx - tile.size / 2], [0, px, tile.cy - tile.size / 2]])


def test_nms_matches_torchvision():
    torch = pytest.importorskip("torch")
    ops = pytest.importorskip("torchvision.ops")
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (300, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(20, 200, (300, 2))], 1)
    scores = rng.uniform(0, 1, 300)
    for iou in (0.3, 0.5, 0.7):
        ref = ops.nms(torch.tensor(boxes), torch.tensor(scores), iou).numpy()
        assert np.array_equal(nms(boxes, scores, iou), ref)


def test_nms_drops_nested_boxes_by_cover():
    """Nested-box suppression against a plain double loop over pairs (a second implementation)."""
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 300, (80, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 150, (80, 2))], 1)
    scores = rng.uniform(0, 1, 80)

    def reference(iou, cover):
        kept = []
        for i in np.argsort(-scores, kind="stable"):
            def overlaps(j):
                w = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
                h = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
                a = [(b[2] - b[0]) * (b[3] - b[1]) for b in (boxes[i], boxes[j])]
                return w * h / (a[0] + a[1] - w * h) > iou or w * h / min(a) > cover
            if not any(overlaps(j) for j in kept):
                kept.append(int(i))
        return kept

    for iou, cover in ((0.5, 0.9), (0.3, 0.7), (0.7, 1.0)):
        assert nms(boxes, scores, iou, cover).tolist() == reference(iou, cover)
    # a small box inside a big one: IoU 0.25 (kept by IoU alone), cover 1 (dropped as nested)
    nested = np.array([[0, 0, 100, 100], [25, 25, 75, 75]], float)
    assert nms(nested, np.array([0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert nms(nested, np.array([0.9, 0.8]), 0.5, 0.9).tolist() == [0]


def test_inside_share_counts_only_bigger_boxes():
    legs = np.array([10, 50, 30, 100.0])                 # 20 x 50
    body = np.array([0, 0, 40, 90.0])                    # covers legs' y 50..90 fully in x: 40/50 of it
    assert inside_share(legs, [body]) == pytest.approx(0.8)
    assert inside_share(body, [legs]) == 0.0             # a smaller box never swallows a bigger one
    assert inside_share(legs, []) == 0.0


def test_same_person_once_merges_near_landmark_sets_only():
    pts = np.random.default_rng(0).uniform(0, 200, (33, 2))
    box = np.array([0, 0, 100, 200.0])                   # half-size 100 px
    item = lambda shift, score: (box + [shift, 0, shift, 0], score, None, pts + [shift, 0])  # noqa: E731
    # 40 px apart < 0.5 x 100: one person, the better score stays; 60 px apart: two people
    assert [f[1] for f in same_person_once([item(0, 0.9), item(40, 0.95)], 0.5)] == [0.95]
    assert [f[1] for f in same_person_once([item(0, 0.9), item(60, 0.95)], 0.5)] == [0.95, 0.9]
    no_landmarks = (box, 0.99, None, None)                # detector boxes pass through untouched
    assert len(same_person_once([item(0, 0.9), no_landmarks], 0.5)) == 2


def test_body_box_of_an_upright_body():
    # hip at (100, 200), circle point r = 80 straight up: body 160 tall, 80 wide
    assert np.allclose(body_box(np.array([100.0, 200.0]), np.array([100.0, 120.0])), [60, 120, 140, 280])


def _people_at_scales(shared_data, net, heights=(130, 200, 520)) -> tuple[np.ndarray, np.ndarray]:
    """A 1280 x 720 RGB frame with the single-person demo's person (found by the detector on its own
    frame) pasted at several heights (px) on grey, and the pasted boxes (K, 4)."""
    cap = cv2.VideoCapture(str(shared_data / "videos" / "mmhuman3d_single_person_demo.mp4"))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    d = net.detect(rgb)[0]
    x1, y1, x2, y2 = np.clip(body_box(d.keypoints[0], d.keypoints[1]), 0, [rgb.shape[1], rgb.shape[0]] * 2).astype(int)
    person = rgb[y1:y2, x1:x2]
    canvas = np.full((720, 1280, 3), 110, np.uint8)
    boxes = []
    for h, (cx, top) in zip(heights, ((150, 400), (450, 300), (900, 100))):
        s = h / person.shape[0]
        p = cv2.resize(person, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        x = cx - p.shape[1] // 2
        canvas[top:top + p.shape[0], x:x + p.shape[1]] = p
        boxes.append([x, top, x + p.shape[1], top + p.shape[0]])
    return canvas, np.array(boxes, float)


def _found(dets: np.ndarray, boxes: np.ndarray) -> list[bool]:
    """Per pasted box: a detection covers >= half of it and is not > 3x its area."""
    from video2mesh.benchmarks.accuracy.score import box_iou

    if not len(dets):
        return [False] * len(boxes)
    cover = box_iou(boxes, dets[:, :4], over_min=True)
    ratio = ((dets[:, 2] - dets[:, 0]) * (dets[:, 3] - dets[:, 1]))[None] / (
        (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[:, None]
    return list(((cover >= 0.5) & (ratio < 3)).any(1))


def test_tiles_find_small_people_the_whole_frame_misses(shared_data):
    from tests.stages.licence_free_helpers import blazepose_registry
    from video2mesh.models.runners.blazepose import BlazePose
    from video2mesh.stages.detect import DetectConfig, search_config

    reg = blazepose_registry()
    net = BlazePose(reg.resolve("blazepose_detector"), reg.resolve("blazepose_landmark"))
    frame, boxes = _people_at_scales(shared_data, net)
    before = PersonSearch(net, SearchConfig())(frame)
    after = PersonSearch(net, search_config(DetectConfig(backend="blazepose")))(frame)
    assert _found(before, boxes) == [False, False, True]   # the old backend: only the 520 px person
    assert _found(after, boxes) == [True, True, True]
    assert len(after) == 3                                   # one box per person after the merge


def test_landmark_box_is_the_extent_grown_by_pad_times_its_size():
    lm = np.array([[100.0, 50.0], [140.0, 250.0], [120.0, 150.0]])      # extent 40 x 200: size 200
    np.testing.assert_allclose(landmark_box(lm, 0.05), [90, 40, 150, 260])  # 0.05 x 200 = 10 px each side
    np.testing.assert_allclose(landmark_box(lm, 0.0), [100, 50, 140, 250])



def test_same_person_once_keeps_the_smaller_of_two_results_on_one_person_when_asked():
    lm = np.stack([np.linspace(100, 140, 33), np.linspace(50, 250, 33)], 1)
    tight = (np.array([95, 45, 145, 255.0]), 0.99, None, lm)
    drifted = (np.array([80, 20, 170, 260.0]), 1.0, None, lm + 2.0)   # same landmarks but one, box out on a neighbour
    assert same_person_once([drifted, tight], 0.3)[0] is drifted          # by score (the default)
    assert same_person_once([drifted, tight], 0.3, smallest=True) == [tight]


def test_same_person_once_hands_the_follower_that_moved_least_to_the_kept_result():
    lm = np.stack([np.linspace(100, 140, 33), np.linspace(50, 250, 33)], 1)
    own = (np.array([80, 20, 170, 260.0]), 1.0, None, lm, 4, 0.05, -1)       # A's follower, on A, moved 0.05
    slid = (np.array([95, 45, 145, 255.0]), 1.0, None, lm + 2.0, 7, 0.2, -1)  # B's follower slid onto A
    [kept] = same_person_once([own, slid], 0.3, smallest=True)
    np.testing.assert_allclose(kept[0], slid[0])          # the smaller box stays (as before)
    assert kept[4:] == (4, 0.05, -1)                      # with A's follower: its id goes on feeding A's track


class _Walker:
    """A stand-in landmark model: one person whose 33 landmarks move by `steps[t]` px along x at frame t
    (body 200 px tall: half size 100 px), found by the detector on frame 0 only."""

    def __init__(self, steps):
        self.steps, self.t = steps, 0
        self.pts = np.stack([np.linspace(100, 140, 33), np.linspace(50, 250, 33)], 1)

    def detect(self, rgb, roi=None):
        from video2mesh.models.runners.blazepose import Detection

        if roi is not None or self.t > 0:
            return []
        return [Detection(np.array([90, 40, 150, 260.0]), np.array([[120, 150], [120, 50], [0, 0], [0, 0]], float), 0.9)]

    def landmarks(self, rgb, roi):
        from video2mesh.models.runners.blazepose import Landmarks

        image = np.zeros((39, 3))
        image[:33, :2] = self.pts + [self.steps[self.t], 0]
        image[33, :2], image[34, :2] = [120 + self.steps[self.t], 150], [120 + self.steps[self.t], 50]
        z = np.zeros(39)
        return Landmarks(image, z + 1, z + 1, np.zeros((39, 3)), 1.0, roi)


def test_a_follower_jumping_more_than_jump_half_bodies_in_a_frame_starts_a_new_one():
    walker = _Walker(np.cumsum([0, 5, 5, 45, 5]))       # 0.05 half-body per frame, then 0.45 (a slide onto someone)
    search = PersonSearch(walker, SearchConfig(track=True, same_pose=0.3, box_pad=0.04, jump=0.25))
    followers, drifted = [], []
    for t in range(5):
        walker.t = t
        assert len(search(np.zeros((300, 300, 3), np.uint8))) == 1
        followers.append(int(search.followers[0]))
        drifted.append(int(search.drifted[0]))
    assert followers == [0, 0, 0, 1, 1]                  # frame 0: the verify run on the detector's ROI starts 0
    assert drifted == [-1, -1, -1, 0, -1]                # the jump is marked as sliding off follower 0
    no_jump = PersonSearch(_Walker(np.cumsum([0, 5, 5, 45, 5])), SearchConfig(track=True, box_pad=0.04))
    ids = []
    for t in range(5):
        no_jump.model.t = t
        no_jump(np.zeros((300, 300, 3), np.uint8))
        ids.append(int(no_jump.followers[0]))
    assert ids == [0] * 5                                 # jump off (inf): one follower throughout


class _Blind:
    """A stand-in model whose detector finds nobody (a person walking away: no face) and whose landmark model
    says "person" (flag 1, landmarks spread over the ROI's middle) for every ROI it is shown, recording them."""

    def __init__(self):
        self.rois = []

    def detect(self, rgb, roi=None):
        return []

    def landmarks(self, rgb, roi):
        from video2mesh.models.runners.blazepose import Landmarks

        self.rois.append(roi)
        image = np.zeros((39, 3))
        image[:33, 0] = roi.cx + np.linspace(-0.15, 0.15, 33) * roi.size
        image[:33, 1] = roi.cy + np.linspace(-0.35, 0.35, 33) * roi.size
        image[33, :2], image[34, :2] = [roi.cx, roi.cy], [roi.cx, roi.cy - 0.4 * roi.size]
        z = np.zeros(39)
        return Landmarks(image, z + 1, z + 1, np.zeros((39, 3)), 1.0, roi)


@pytest.mark.parametrize("pan", [False, True])
def test_motion_candidates_reach_the_landmark_model_and_are_followed(pan):
    """A face-less textured block moving over a (panning) background: with motion_every the search asks the
    landmark model about an ROI holding the block (truth by construction: tests/models/maths), then follows
    that person; off (the default), the landmark model is never asked and nothing is found."""
    from tests.models.maths.test_motion_proposals import blob_box, frames

    video = frames(10, pan, blob=True)
    off = _Blind()
    search = PersonSearch(off, SearchConfig(track=True, box_pad=0.04))
    assert search.motion is None and all(len(search(f)) == 0 for f in video) and not off.rois
    on = _Blind()
    search = PersonSearch(on, SearchConfig(track=True, box_pad=0.04, motion_every=2, motion_gap=3))
    found = [search(f) for f in video]
    assert [len(b) for b in found[:4]] == [0, 0, 0, 0]       # frames 0-3: no frame t - 3 on a proposing frame yet
    first = on.rois[0]
    truth = blob_box(4)
    half = first.size / 2
    assert first.cx - half <= truth[0] and truth[2] <= first.cx + half          # the block lies inside the ROI
    assert first.cy - half <= truth[1] and truth[3] <= first.cy + half
    assert all(len(b) == 1 for b in found[4:])               # found on frame 4, then followed (one box, not one a frame)
    assert len(set(search.followers.tolist())) == 1


class _WholeBody:
    """A stand-in whole-body detector (MoveNet's call signature) finding one person at a fixed box; records calls."""

    def __init__(self, box):
        self.box, self.calls = np.array([[*box, 0.9]], np.float32), []

    def __call__(self, rgb, size, min_score):
        self.calls.append((size, min_score))
        return self.box, np.zeros((1, 17, 3), np.float32)


def test_movenet_boxes_reach_the_landmark_model_and_are_followed():
    """With movenet_every=3 the whole-body detector runs on frames 0, 3, 6 only (at the configured size and
    score); its box is shown to the landmark model as `roi_from_box` (centre, 1.25 x the longer side) and
    the person found is then followed: one box, one follower, on every frame. Off, it is never called."""
    from video2mesh.models.runners.blazepose import roi_from_box

    rgb = np.zeros((360, 640, 3), np.uint8)
    net, off = _WholeBody((300, 100, 340, 260)), _Blind()
    search = PersonSearch(off, SearchConfig(track=True, box_pad=0.04), movenet=net)
    assert all(len(search(rgb)) == 0 for _ in range(4)) and not net.calls and not off.rois
    on = _Blind()
    search = PersonSearch(on, SearchConfig(track=True, box_pad=0.04, movenet_every=3, movenet_size=384, movenet_score=0.3),
                          movenet=net)
    found = [search(rgb) for _ in range(7)]
    assert net.calls == [(384, 0.3)] * 3
    first, ref = on.rois[0], roi_from_box(300, 100, 340, 260)
    assert (first.cx, first.cy, first.size) == pytest.approx((320, 180, 160 * 1.25)) == (ref.cx, ref.cy, ref.size)
    assert all(len(b) == 1 for b in found) and len(set(search.followers.tolist())) == 1
    with pytest.raises(ValueError, match="movenet"):
        PersonSearch(on, SearchConfig(movenet_every=1))
