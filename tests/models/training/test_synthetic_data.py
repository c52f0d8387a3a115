"""The synthetic VIBE-layout set: keypoints, boxes and homographies agree with the generating camera."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from video2mesh.models.training import datasets as D
from video2mesh.models.training import synthetic_data as S


@pytest.fixture(scope="module")
def db(synthetic_body):
    return S.make_db(synthetic_body, S.SyntheticConfig(n_videos=2, n_frames=40, kp_noise_px=0.0, seed=3))


def test_layout_matches_vibe_database(db):
    n = 80
    assert db["joints2D"].shape == (n, 49, 3) and db["joints3D"].shape == (n, 49, 3)
    assert db["pose"].shape == (n, 72) and db["shape"].shape == (n, 10) and db["features"].shape == (n, 2048)
    assert len(np.unique(db["vid_name"])) == 2 and db["homography"].shape == (n, 9)


def test_keypoints_are_the_projected_mesh_joints(db, synthetic_body):
    with torch.no_grad():
        out = synthetic_body(torch.as_tensor(db["shape"]), torch.as_tensor(db["pose"]))
    cam, box = db["cam"], db["bbox"]
    crop = cam[:, None, :1] * (out.coco17.numpy()[..., :2] + cam[:, None, 1:])
    px = box[:, None, :2] + 0.5 * box[:, None, 2:3] * crop
    kp = D.coco17_from_joints49(db["joints2D"])
    vis = kp[..., 2] > 0
    assert vis.mean() > 0.85
    assert np.allclose(kp[vis][:, :2], px[vis], atol=1e-2)
    assert np.allclose(db["joints3D"][:, 25:39], out.h36m14.numpy(), atol=1e-6)
    # The window reader maps them back to the crop coordinates the camera produced.
    item = D.VibeWindows(db)[0]
    assert np.allclose(item["kp2d"][..., :2].numpy()[vis[:16]], crop[:16][vis[:16]], atol=1e-4)


def test_homography_maps_previous_box_onto_current(db):
    h = db["homography"].reshape(-1, 3, 3).astype(np.float64)
    box = db["bbox"].astype(np.float64)
    for t in (5, 17, 30):
        c0 = np.r_[box[t - 1, :2] + [0.5 * box[t - 1, 2], 0], 1]        # a point on the previous box edge
        c1 = h[t] @ c0
        assert np.allclose(c1[:2] / c1[2], box[t, :2] + [0.5 * box[t, 2], 0], atol=1e-2)


def test_motion_is_smooth_and_features_carry_pose(db):
    pose = db["pose"][:40].reshape(40, 24, 3)
    d1 = np.abs(np.diff(pose[:, 1:], axis=0))
    d2 = np.abs(np.diff(pose[:, 1:], 2, axis=0))
    # Bound of 3 sinusoids of amplitude <= 0.2 rad at <= 2 Hz, 30 fps: 3 * 0.2 * 2 pi 2 / 30 = 0.25 rad/frame.
    assert d1.max() < 0.25
    assert d2.mean() < 0.45 * d1.mean()                                 # 2 pi f / fps <= 0.42 for every term
    f = db["features"]
    # Features of nearby frames are closer than those of the other video.
    near = np.linalg.norm(f[1] - f[0])
    far = np.linalg.norm(f[40] - f[0])
    assert near < far


def test_pose3d_pool_is_upright_coco13(synthetic_body):
    p = S.pose3d_pool(synthetic_body, 70, seed=1)
    assert p.shape == (70, 13, 3)
    assert (p[:, 0, 1] > p[:, 11:13, 1].max(1)).all()                   # nose above ankles: y up
