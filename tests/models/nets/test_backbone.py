"""ResNet-50 features: checkpoint layouts, key errors, crop + normalisation, batch invariance."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from video2mesh.models.nets import backbone
from video2mesh.models.nets.checkpoint import CheckpointMismatch
from video2mesh.stages.features import spin_layout as spin_checkpoint  # SPIN's {'model': HMR state_dict, ...}
from tests._torch_threads import one_torch_thread


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    yield from one_torch_thread()


@pytest.fixture(scope="module")
def resnet_state() -> dict:
    torch.manual_seed(0)
    net = torchvision.models.resnet50(weights=None)
    for mod in net.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    return net.state_dict()


def test_spin_and_torchvision_layouts_give_the_torchvision_pooled_feature(resnet_state, tmp_path):
    ref = torchvision.models.resnet50(weights=None)
    ref.load_state_dict(resnet_state)
    ref.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        body = torch.nn.Sequential(*list(ref.children())[:-1])      # everything up to the average pool
        expected = body(x).flatten(1)
    path = tmp_path / "model_checkpoint.pt"
    torch.save(spin_checkpoint(resnet_state), path)
    for src in (path, resnet_state):
        with torch.no_grad():
            got = backbone.load_resnet50(src)(x)
        assert got.shape == (2, 2048)
        assert torch.equal(got, expected)


def test_missing_and_misshapen_keys_are_named(resnet_state):
    ckpt = spin_checkpoint(resnet_state)
    del ckpt["model"]["layer3.2.bn2.running_mean"]
    ckpt["model"]["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    with pytest.raises(CheckpointMismatch) as e:
        backbone.load_resnet50(ckpt)
    msg = str(e.value)
    assert "missing (1): layer3.2.bn2.running_mean" in msg
    assert "conv1.weight (64, 3, 3, 3) (expected (64, 3, 7, 7))" in msg
    assert "unexpected" not in msg                                   # the regressor keys are ignored


def test_crop_and_normalisation_match_closed_form():
    """On a frame whose channels are linear in x and y, bilinear sampling is exact, so each crop
    pixel is known in closed form: pixel (u, v) of a crop of side s centred on c sees image point
    c + ((u, v) - 112) * s / 224."""
    h, w = 240, 256
    yy, xx = np.mgrid[0:h, 0:w]
    frame = np.stack([xx, yy, 255 - xx], -1).astype(np.uint8)       # R = x, G = y, B = 255 - x
    center, side = np.array([130.3, 118.7]), 180.0 * 1.1
    crops = backbone.crop_square(frame, center[None], np.array([side]))
    got = backbone.normalise(crops).numpy()[0]                       # (3, 224, 224)

    v, u = np.mgrid[0:224, 0:224].astype(np.float64)
    x = center[0] + (u - 112) * side / 224
    y = center[1] + (v - 112) * side / 224
    rgb = np.stack([x, y, 255 - x]) / 255.0
    expected = (rgb - np.array(backbone.MEAN_RGB)[:, None, None]) / np.array(backbone.STD_RGB)[:, None, None]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    assert inside.mean() > 0.9
    # OpenCV rounds to whole grey levels and samples on a 1/32-pixel grid: <= ~0.6 level
    tol = 0.6 / 255 / min(backbone.STD_RGB)
    assert np.abs(got - expected)[:, inside].max() < tol
    assert np.all(crops[0][~inside] == 0)                            # outside the frame: black


def test_batch_size_does_not_change_features(resnet_state):
    """32 crops at batch 32 vs the first four at batch 1 and all at batch 12 (a short last batch).
    Tolerance 1e-5 of the largest feature: BN is in eval mode, so only the order of floating-point
    sums may differ. Small crops keep it fast (batching does not depend on the crop size), and
    batch-1 calls are few because each costs thread start-up on a busy 2-core machine."""
    net = backbone.load_resnet50(resnet_state)
    crops = np.random.default_rng(0).integers(0, 255, (32, 32, 32, 3), dtype=np.uint8)
    all_ = backbone.extract_features(net, crops, batch_size=32)
    one = backbone.extract_features(net, crops[:4], batch_size=1)
    twelve = backbone.extract_features(net, crops, batch_size=12)
    assert all_.shape == (32, 2048) and np.abs(all_).max() > 0
    tol = 1e-5 * np.abs(all_).max()
    assert np.abs(one - all_[:4]).max() <= tol
    assert np.abs(twelve - all_).max() <= tol
