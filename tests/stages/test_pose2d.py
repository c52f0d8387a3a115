"""pose2d stage: runs through the real runner on a synthetic video with stand-in tracklets."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from video2mesh.models.nets import hrnet
from video2mesh.pipeline.artifacts import stack
from video2mesh.pipeline.errors import AssetMissing
from video2mesh.stages import pose2d

from tests._torch_threads import one_torch_thread

from ._tracklet_video import read_frames_rgb, runner, tracklet_rows, write_video


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    yield from one_torch_thread()


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    d = tmp_path_factory.mktemp("pose2d")
    weights = pose2d.write_random_checkpoint(d / "hrnet.pth")           # mmpose 1.x layout
    torch.manual_seed(0)
    net = hrnet.PoseHRNet().eval()                                        # the same weights, built here
    return write_video(d / "clip.mp4"), weights, net


def test_keypoints_per_box_match_the_model_on_each_frame(material, tmp_path):
    video, weights, net = material
    cfg = pose2d.Pose2DConfig(chunk_frames=2, batch_size=3, flip_test=False)   # 3 chunks, batches across frames
    r = runner(tmp_path, pose2d.STAGE, {"hrnet_w32_coco": weights}, cfg)
    res = r.run(video, until="pose2d")["pose2d"]
    assert res.parts_total == 3
    out = r.store.read_df(res.ref.path)
    rows = tracklet_rows().sort_values(["frame", "track_id"]).reset_index(drop=True)
    assert out[["frame", "track_id"]].values.tolist() == rows[["frame", "track_id"]].values.tolist()

    frames = read_frames_rgb(video)
    expected = np.concatenate([
        hrnet.estimate_keypoints(net, frames[f], g[["x1", "y1", "x2", "y2"]].to_numpy(np.float64), flip_test=False)
        for f, g in rows.groupby("frame")])
    got = stack(out.keypoints, 51).reshape(-1, 17, 3)
    np.testing.assert_allclose(got, expected, atol=1e-3, rtol=1e-4)


def test_missing_weights_stop_the_run_with_instructions(material, tmp_path):
    video, _, _ = material
    r = runner(tmp_path, pose2d.STAGE, {})
    with pytest.raises(AssetMissing) as e:
        r.run(video, until="pose2d")
    assert "hrnet_w32_coco" in str(e.value) and "download.openmmlab.com" in str(e.value)
    assert not (tmp_path / "store" / "videos").exists()                     # nothing ran, not even probe


def test_a_foreign_checkpoint_is_reported_with_its_keys(material, tmp_path):
    video, _, _ = material
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": {"backbone.conv1.weight": torch.zeros(64, 3, 7, 7)}}, bad)
    r = runner(tmp_path, pose2d.STAGE, {"hrnet_w32_coco": bad})
    with pytest.raises(AssetMissing, match=r"misshapen \(1\): backbone.conv1.weight \(64, 3, 7, 7\)"):
        r.run(video, until="pose2d")
