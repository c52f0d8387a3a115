"""Hand runner (models/runners/hands.py): ROI geometry against closed forms; the networks on a real frame."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from video2mesh.models.runners.hands import (HAND_SIZE, POSE_HAND, POSE_ROI_SCALE, palm_anchors, roi_from_pose,
                                             transformed_roi, upright_rotation)

VIDEO = Path(os.environ.get("V2M_SHARED_DATA", Path(__file__).resolve().parents[3] / "../shared/data")) / "videos/mmhuman3d_multi_person_demo.mp4"


def _up_in_image(roi) -> np.ndarray:
    """The crop's up direction (v decreasing) mapped into the image by the ROI's affine."""
    m = roi.crop_to_image(HAND_SIZE)
    return m[:, :2] @ np.array([0.0, -1.0])


@pytest.mark.parametrize("seed", range(5))
def test_pose_roi_is_holistics_rule(seed):
    """Centre (2 I + P) / 3 moved 0.1 x side towards the fingers, side 2.7 x 2 |M - W|, up = W -> M."""
    w, p, i = np.random.default_rng(seed).uniform(0, 500, (3, 2))
    roi = roi_from_pose(w, p, i)
    m = (2 * i + p) / 3
    side = 2 * np.linalg.norm(m - w)
    up = (m - w) / np.linalg.norm(m - w)
    assert roi.size == pytest.approx(POSE_ROI_SCALE * side)
    assert np.allclose([roi.cx, roi.cy], m + 0.1 * side * up)
    got = _up_in_image(roi)
    assert np.allclose(got / np.linalg.norm(got), up, atol=1e-9)


def test_rotation_closed_forms():
    """Fingers up in the image (y down) = 0, pointing right = +pi/2, down = pi, left = -pi/2."""
    w = np.array([100.0, 100.0])
    for d, want in (((0, -1), 0.0), ((1, 0), np.pi / 2), ((-1, 0), -np.pi / 2)):
        assert upright_rotation(w, w + np.array(d)) == pytest.approx(want)
    assert abs(upright_rotation(w, w + np.array([0.0, 1.0]))) == pytest.approx(np.pi)
    # a shift along the ROI's own y axis turns with the ROI
    r = transformed_roi(0.0, 0.0, 10.0, np.pi / 2, 1.0, -0.5)
    assert (r.cx, r.cy) == pytest.approx((5.0, 0.0))


def test_palm_anchor_grid():
    a = palm_anchors()
    assert a.shape == (2016, 2)
    assert np.allclose(a[0], [0.5 / 24, 0.5 / 24]) and np.allclose(a[1152], [0.5 / 12, 0.5 / 12])
    assert np.allclose(a[-1], [11.5 / 12, 11.5 / 12])


def test_networks_on_a_real_frame():
    """Frame 30 of the shared multi-person clip: the ROIs from BlazePose find a right hand (presence,
    handedness), its wrist landmark lies by BlazePose's wrist, and the palm detector finds the same
    hand, whose ROI gives the same landmarks."""
    if not VIDEO.is_file():
        pytest.skip(f"shared video absent: {VIDEO}")
    import cv2

    from tests.stages.licence_free_helpers import blazepose_registry
    from video2mesh.models.runners.blazepose import BlazePose
    from video2mesh.models.runners.hands import Hands

    reg = blazepose_registry()
    bp = BlazePose(reg.path("blazepose_detector"), reg.path("blazepose_landmark"))
    net = Hands(reg.path("hand_palm_detector"), reg.path("hand_landmark"))
    cap = cv2.VideoCapture(str(VIDEO))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 30)
    ok, bgr = cap.read()
    assert ok
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    found = []
    for det in bp.detect(rgb):
        lm = bp.landmarks(rgb, det.roi())
        for side, (wi, pi, ii) in POSE_HAND.items():
            roi = roi_from_pose(lm.image[wi], lm.image[pi], lm.image[ii])
            h = net.landmarks(rgb, roi)
            if h.presence > 0.5:
                found.append((side, h, lm.image[wi, :2], roi))
    assert found, "no hand found from the body's ROIs"
    for side, h, wrist, roi in found:
        assert (h.right > 0.5) == (side == "right")
        assert np.linalg.norm(h.image[0, :2] - wrist) < 0.25 * roi.size
        hand_len = np.linalg.norm(h.world[0] - h.world[9])            # wrist -> middle knuckle, metres
        assert 0.05 < hand_len < 0.15
        palms = net.palms(rgb, type(roi)(roi.cx, roi.cy, roi.size * 1.5, 0.0))
        assert palms and np.linalg.norm(palms[0].box.reshape(2, 2).mean(0) - h.image[[0, 5, 9, 13, 17], :2].mean(0)) < 0.25 * roi.size
        h2 = net.landmarks(rgb, palms[0].roi())
        # the clip's hands are ~40 px and blurred: the two ROIs agree on the hand, only roughly on its joints
        assert h2.presence > 0.5 and np.median(np.linalg.norm(h2.image[:, :2] - h.image[:, :2], axis=1)) < 0.2 * roi.size


def test_landmark_roi_closed_form():
    """Landmarks on an upright square hand (wrist at the bottom, middle knuckle straight above): the ROI
    is upright, centred on the box's centre moved up 0.1 x side, side 2 x the box's long side; the same
    hand turned by 90 degrees gives the same ROI turned."""
    from video2mesh.models.runners.hands import roi_from_landmarks

    pts = np.zeros((21, 3))
    pts[:, 0] = np.linspace(80, 120, 21)          # 40 px wide
    pts[:, 1] = np.linspace(200, 140, 21)         # 60 px tall
    pts[0, :2], pts[9, :2] = (100, 200), (100, 150)
    pts[1, 0], pts[20, 0] = 80, 120                # the box: x 80..120, y 140..200
    roi = roi_from_landmarks(pts)
    assert roi.rotation == pytest.approx(0.0) and roi.size == pytest.approx(120.0)
    assert (roi.cx, roi.cy) == pytest.approx((100.0, 170.0 - 6.0))
    turned = pts.copy()                            # rotate about (100, 200) so the fingers point right
    turned[:, 0], turned[:, 1] = 100 + (200 - pts[:, 1]), 200 + (pts[:, 0] - 100)
    r2 = roi_from_landmarks(turned)
    assert r2.rotation == pytest.approx(np.pi / 2) and r2.size == pytest.approx(120.0)
    assert (r2.cx, r2.cy) == pytest.approx((100 + 30.0 + 6.0, 200.0))
