"""Motion proposals on a synthetic video whose truth is known by construction: a textured background seen
through a camera whose homography per frame is given (pan + a little rotation and zoom), and optionally a
textured, face-less rectangle moving across the frame in image coordinates."""
import cv2
import numpy as np
import pytest

from video2mesh.models.maths.motion_proposals import MotionConfig, MotionProposer, blob_boxes

W, H = 480, 270
BLOB = (40, 110)          # w, h px


def texture(seed: int, w: int, h: int) -> np.ndarray:
    """(h, w, 3) uint8 blotchy texture (LK needs corners, the difference needs contrast)."""
    rng = np.random.default_rng(seed)
    t = cv2.resize(rng.uniform(0, 255, (h // 8, w // 8, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(t + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


def camera(t: int, pan: bool) -> np.ndarray:
    """Homography world canvas -> frame t: translation by 4 px/frame, 0.1 deg/frame roll, 0.2 %/frame zoom."""
    if not pan:
        return np.array([[1, 0, -200], [0, 1, -100], [0, 0, 1]], np.float64)
    a, s = np.deg2rad(0.1 * t), 1 + 0.002 * t
    c = np.array([[1, 0, -W / 2], [0, 1, -H / 2], [0, 0, 1]])
    rz = np.array([[s * np.cos(a), -s * np.sin(a), 0], [s * np.sin(a), s * np.cos(a), 0], [0, 0, 1]])
    return np.linalg.inv(c) @ rz @ c @ np.array([[1, 0, -200 - 4 * t], [0, 1, -100 - 1 * t], [0, 0, 1]], np.float64)


def blob_box(t: int) -> np.ndarray:
    x, y = 120 + 3 * t, 100
    return np.array([x, y, x + BLOB[0], y + BLOB[1]], np.float64)


def frames(n: int, pan: bool, blob: bool) -> list[np.ndarray]:
    world, fg = texture(0, 1200, 700), texture(1, *BLOB)
    out = []
    for t in range(n):
        f = cv2.warpPerspective(world, camera(t, pan), (W, H), flags=cv2.INTER_LINEAR)
        if blob:
            x1, y1, x2, y2 = blob_box(t).astype(int)
            f[y1:y2, x1:x2] = fg
        out.append(f)
    return out


def cover(box: np.ndarray, ref: np.ndarray) -> float:
    """Share of ref inside box."""
    lo, hi = np.maximum(box[:2], ref[:2]), np.minimum(box[2:], ref[2:])
    return float(np.clip(hi - lo, 0, None).prod() / ((ref[2] - ref[0]) * (ref[3] - ref[1])))


@pytest.mark.parametrize("pan", [False, True])
def test_pure_camera_motion_proposes_nothing(pan):
    prop = MotionProposer(MotionConfig(gap=3, work_long=W), every=1)
    got = [prop(f, np.zeros((0, 4))) for f in frames(12, pan, blob=False)]
    assert sum(map(len, got)) == 0


@pytest.mark.parametrize("pan", [False, True])
def test_moving_blob_is_proposed_and_covered(pan):
    prop = MotionProposer(MotionConfig(gap=3, work_long=W), every=1)
    for t, f in enumerate(frames(12, pan, blob=True)):
        got = prop(f, np.zeros((0, 4)))
        if t < 3:
            assert len(got) == 0                   # no frame t - gap yet
            continue
        truth = blob_box(t)
        best = max((cover(b, truth) for b in got), default=0.0)
        assert best >= 0.95, (t, got, truth)
        # person-shaped: width >= aspect x height, and not the whole frame
        b = got[int(np.argmax([cover(b, truth) for b in got]))]
        assert b[2] - b[0] >= 0.4 * (b[3] - b[1]) - 1e-6
        assert (b[2] - b[0]) * (b[3] - b[1]) < 0.25 * W * H
        # on a pure pan nothing else moves: every proposal is about the blob
        assert all(cover(truth, g) > 0 for g in got), got


def test_known_person_is_not_proposed_again():
    prop = MotionProposer(MotionConfig(gap=3, work_long=W), every=1)
    for t, f in enumerate(frames(8, True, blob=True)):
        known = blob_box(t)[None] + [-15, -10, 15, 10]   # the blob also holds its ghost at t - gap (9 px left)
        assert len(prop(f, known)) == 0


def test_every_kth_frame_only():
    prop = MotionProposer(MotionConfig(gap=2, work_long=W), every=3)
    n = [len(prop(f, np.zeros((0, 4)))) for f in frames(10, False, blob=True)]
    assert [t for t, k in enumerate(n) if k] == [3, 6, 9]


def test_wide_blob_is_also_cut_into_person_strips():
    """Two walkers side by side merge into one blob: besides the whole blob, strips give each of them."""
    mask = np.zeros((200, 300), np.uint8)
    mask[40:160, 50:100] = 255                     # person A, 50 x 120
    mask[60:160, 100:150] = 255                    # person B touching A, 50 x 100
    got = blob_boxes(mask, np.zeros((0, 4)), MotionConfig(margin=0.0, aspect=0.0, split=0.5))
    assert any(np.allclose(b, [50, 40, 150, 160]) for b in got)
    assert any(np.allclose(b, [50, 40, 100, 160]) for b in got)
    assert any(np.allclose(b, [100, 60, 150, 160]) for b in got)


def test_registration_removes_the_pan():
    """After the background homography a pure pan + roll + zoom leaves < 0.5 % of pixels marked as moving
    (without it, the shifted texture differs nearly everywhere)."""
    from video2mesh.models.maths.motion_proposals import motion_mask

    g = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames(6, True, blob=False)]
    mask, ok = motion_mask(g[1], g[5], np.zeros((0, 4)), MotionConfig())
    assert ok and (mask > 0).mean() < 0.005
    raw = cv2.absdiff(cv2.GaussianBlur(g[1], (5, 5), 0), cv2.GaussianBlur(g[5], (5, 5), 0)) >= MotionConfig.diff
    assert raw.mean() > 0.3
