"""features stage: runs through the real runner; float16 storage error measured against float32."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from video2mesh.models.nets import backbone
from video2mesh.pipeline.artifacts import stack
from video2mesh.stages import features

from tests._torch_threads import one_torch_thread

from ._tracklet_video import read_frames_rgb, runner, tracklet_rows, write_video


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    yield from one_torch_thread()


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    d = tmp_path_factory.mktemp("features")
    torch.manual_seed(0)
    weights = d / "resnet50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), weights)   # torchvision's layout
    return write_video(d / "clip.mp4"), weights


def test_features_per_box_match_the_model_and_float16_error_is_small(material, tmp_path):
    video, weights = material
    cfg = features.FeaturesConfig(chunk_frames=2, batch_size=3)
    r = runner(tmp_path, features.STAGE, {"resnet50_spin": weights}, cfg)
    res = r.run(video, until="features")["features"]
    out = r.store.read_df(res.ref.path)
    rows = tracklet_rows().sort_values(["frame", "track_id"]).reset_index(drop=True)
    assert out[["frame", "track_id"]].values.tolist() == rows[["frame", "track_id"]].values.tolist()
    got = stack(out.feature, 2048, dtype=np.float16)
    assert r.store.read_table(res.ref.path).schema.field("feature").type.value_type == "halffloat"

    net = backbone.load_resnet50(weights)
    frames = read_frames_rgb(video)
    crops = np.concatenate([
        backbone.crop_square(frames[f], g[["cx", "cy"]].to_numpy(np.float64), g.side.to_numpy(np.float64) * 1.1)
        for f, g in rows.groupby("frame")])
    expected = backbone.extract_features(net, crops, batch_size=len(crops))           # float32
    # float16 keeps 11 significant bits: relative error <= 2**-11 = 4.9e-4 above its normal range (6.1e-5)
    normal = np.abs(expected) >= 6.1e-5
    rel = np.abs(got.astype(np.float32) - expected)[normal] / np.abs(expected)[normal]
    assert normal.mean() > 0.5
    assert rel.max() < 1e-3, f"max relative error of float16 storage {rel.max():.2e}"
    assert np.abs(got.astype(np.float32) - expected)[~normal].max(initial=0) < 1e-7
