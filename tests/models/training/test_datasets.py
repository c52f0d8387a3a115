"""Readers: VIBE database windows, CMU BVH forward kinematics, random-camera projections."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from video2mesh.models.training import datasets as D


def _fake_db(n_per_vid=(20, 7, 33), rng=None):
    rng = rng or np.random.default_rng(0)
    n = sum(n_per_vid)
    vid = np.concatenate([[f"v{i}"] * k for i, k in enumerate(n_per_vid)])
    j2d = np.zeros((n, 49, 3), np.float32)
    j2d[:, D.COCO17_FROM_J49_OP] = np.c_[rng.uniform(0, 500, (n * 17, 2)), np.ones(n * 17)].reshape(n, 17, 3)
    return {"vid_name": vid, "frame_id": np.concatenate([np.arange(k) for k in n_per_vid]),
            "joints2D": j2d, "joints3D": rng.normal(0, 0.3, (n, 49, 3)), "pose": rng.normal(0, 0.2, (n, 72)),
            "shape": rng.normal(0, 1, (n, 10)), "bbox": np.c_[np.full((n, 2), 250.0), np.full((n, 2), 500.0)],
            "features": rng.normal(0, 1, (n, 2048)).astype(np.float32), "valid": np.ones(n)}


def test_split_into_windows_stays_in_video_and_drops_tails():
    vid = np.array(["a"] * 20 + ["b"] * 7 + ["c"] * 33)
    w = D.split_into_windows(vid, seqlen=16, stride=16)
    assert w.tolist() == [[0, 15], [27, 42], [43, 58]]
    w1 = D.split_into_windows(vid, seqlen=16, stride=1)
    assert len(w1) == (20 - 15) + 0 + (33 - 15)
    assert all(len(set(vid[s:e + 1])) == 1 for s, e in w1)
    with pytest.raises(ValueError, match="contiguous"):
        D.split_into_windows(np.array(["a", "b", "a"]), seqlen=1)


def test_coco17_prefers_ground_truth_block():
    j = np.zeros((1, 49, 3))
    j[0, D.COCO17_FROM_J49_OP] = [1, 1, 1]
    j[0, D.COCO17_FROM_J49_GT[5]] = [7, 7, 1]                      # a GT left shoulder
    c = D.coco17_from_joints49(j)
    assert c[0, 5].tolist() == [7, 7, 1] and c[0, 6].tolist() == [1, 1, 1]


def test_vibe_windows_roundtrip_through_joblib(tmp_path):
    import joblib

    db = _fake_db()
    joblib.dump(db, tmp_path / "fake_test_db.pt")
    ds = D.VibeWindows(D.load_vibe_db(tmp_path / "fake_test_db.pt"))
    assert len(ds) == 3
    item = ds[1]
    assert item["features"].shape == (16, 2048) and item["kp2d"].shape == (16, 17, 3)
    assert item["homography"].shape == (16, 135) and item["j14"].shape == (16, 14, 3)
    # Keypoints map the bbox [cx +- w/2] to [-1, 1].
    row = 27
    px = db["joints2D"][row, D.COCO17_FROM_J49_OP, :2]
    assert np.allclose(item["kp2d"][0, :, :2].numpy(), (px - 250) / 250, atol=1e-5)
    assert torch.equal(item["j14"][0], torch.as_tensor(db["joints3D"][row, 25:39], dtype=torch.float32))
    with pytest.raises(ValueError, match="missing keys"):
        joblib.dump({"vid_name": db["vid_name"]}, tmp_path / "bad.pt")
        D.load_vibe_db(tmp_path / "bad.pt")


BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Arm
  {
    OFFSET 1 0 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 2 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.5
0 0 0 0 0 0 0 0 0
1 2 3 90 0 0 0 90 0
"""


def test_bvh_forward_kinematics_on_a_hand_built_file(tmp_path):
    (tmp_path / "t.bvh").write_text(BVH)
    b = D.read_bvh(tmp_path / "t.bvh")
    assert b.names == ("Hips", "Arm") and b.frame_time_s == 0.5
    assert np.allclose(b.positions[0], [[0, 0, 0], [1, 0, 0]]) and np.allclose(b.end_sites["Arm"][0], [1, 2, 0])
    # Frame 1: root at (1,2,3) turned 90 deg about z: the arm offset (1,0,0) -> (0,1,0).
    assert np.allclose(b.positions[1, 1], [1, 3, 3])
    rz = Rotation.from_euler("z", 90, degrees=True)
    rx = Rotation.from_euler("x", 90, degrees=True)
    end = np.array([1, 3, 3]) + (rz * rx).apply([0, 2, 0])
    assert np.allclose(b.end_sites["Arm"][1], end)


def test_cmu_bvh_gives_rigid_coco13_in_metres(shared_data):
    scaled = D.bvh_to_coco13(D.read_bvh(shared_data / "mocap" / "scaled_131_01.bvh"))
    orig = D.bvh_to_coco13(D.read_bvh(shared_data / "mocap" / "131_02.bvh"), unit_m=D.CMU_UNIT_M)
    for c in (scaled, orig):
        assert c.shape[1:] == (13, 3)
        shin = np.linalg.norm(c[:, 9] - c[:, 11], axis=-1)          # left knee - left ankle
        assert shin.std() < 1e-9 and 0.3 < shin.mean() < 0.5        # rigid bone, human length in metres
        assert (c[:, 0, 1] > c[:, 7:9, 1].max(1) + 0.3).all()       # head above the hips (y up)
        assert (c[:, 7:9, 1].min(1) > c[:, 11:13, 1].max(1)).all()  # hips above the ankles
    # The two takes are the same subject: same bone lengths once units agree.
    fore = [np.linalg.norm(c[0, 3] - c[0, 5]) for c in (scaled, orig)]
    assert fore[0] == pytest.approx(fore[1], rel=1e-4)


def test_random_views_match_closed_form_projection():
    rng = np.random.default_rng(0)
    pose = rng.normal(0, 0.3, (4, 13, 3))
    r = D.random_camera_rotations(1000, np.random.default_rng(1))
    assert np.allclose(np.linalg.det(r), 1) and np.allclose(r @ r.transpose(0, 2, 1), np.eye(3), atol=1e-12)
    roll, elev, az = Rotation.from_matrix(r).as_euler("ZXY", degrees=True).T
    assert np.abs(az).max() <= 180 and np.abs(elev).max() <= 30 + 1e-9 and np.abs(roll).max() <= 30 + 1e-9
    v = D.project_random_views(pose, rng, n_views=3)
    assert v.shape == (3, 4, 13, 2) and np.isfinite(v).all()
    # With degenerate ranges the projection is the plain pinhole one at the drawn depth.
    zero = pose - 0.5 * (pose[:, 7:8] + pose[:, 8:9])
    rng2 = np.random.default_rng(2)
    d = D.project_random_views(pose, rng2, n_views=1, depth_m=(5.0, 5.0))
    r2 = D.random_camera_rotations(4, np.random.default_rng(2))
    cam = np.einsum("nij,nkj->nki", r2, zero)
    assert np.allclose(d[0], np.stack([cam[..., 0], -cam[..., 1]], -1) / (cam[..., 2:] + 5), atol=1e-6)


@pytest.mark.parametrize("name, frames", [("scaled_131_01.bvh", (0, 311, 994)),
                                          # Bandai: cm, 30 fps, the walk on Hips' own position channels
                                          ("bandai/dataset-2_walk_normal_001.bvh", (0, 100, 272))])
def test_bvh_reader_agrees_with_bvhio(shared_data, name, frames):
    bvhio = pytest.importorskip("bvhio")
    path = shared_data / "mocap" / name
    ours = D.read_bvh(path)
    root = bvhio.readAsHierarchy(str(path))
    joints = {j.Name: j for j, _, _ in root.layout()}
    for f in frames:
        root.loadPose(f)
        ref = np.array([tuple(joints[n].PositionWorld) for n in ours.names])
        assert np.abs(ours.positions[f] - ref).max() < 1e-4, f
