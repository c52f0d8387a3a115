"""Parity with mmpose: the same random HRNet-W32 weights, saved in mmpose's layout, give the same
keypoints through mmpose's `inference_topdown` and through video2mesh.models.nets.hrnet (max difference < 0.5 px).

Needs the optional extra (`pip install .[mmpose]`, which brings mmcv and mmengine); skipped without it.
Run for issue 3 with mmpose 1.3.2, mmengine 0.10.7 and mmcv-lite 2.1.0 installed with `pip --target`
outside the project venv and put on PYTHONPATH: max difference 0.0 px with and without flip test,
scores within 4e-6.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from video2mesh.models.nets import hrnet
from tests._torch_threads import one_torch_thread

mmpose = pytest.importorskip("mmpose", reason="mmpose is not installed (optional extra: pip install .[mmpose])")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    yield from one_torch_thread()


def mmpose_config():
    """td-hm_hrnet-w32_8xb64-210e_coco-256x192 without its training parts (values from that config)."""
    from mmengine.config import Config

    codec = dict(type="MSRAHeatmap", input_size=(192, 256), heatmap_size=(48, 64), sigma=2)
    stage = lambda n_mod, chans, block="BASIC": dict(  # noqa: E731
        num_modules=n_mod, num_branches=len(chans), block=block, num_blocks=(4,) * len(chans), num_channels=chans)
    return Config(dict(
        default_scope="mmpose",
        model=dict(
            type="TopdownPoseEstimator",
            data_preprocessor=dict(type="PoseDataPreprocessor", mean=list(hrnet.MEAN_RGB), std=list(hrnet.STD_RGB),
                                   bgr_to_rgb=True),
            backbone=dict(type="HRNet", in_channels=3, extra=dict(
                stage1=stage(1, (64,), "BOTTLENECK"), stage2=stage(1, (32, 64)),
                stage3=stage(4, (32, 64, 128)), stage4=stage(3, (32, 64, 128, 256)))),
            head=dict(type="HeatmapHead", in_channels=32, out_channels=17, deconv_out_channels=None,
                      loss=dict(type="KeypointMSELoss", use_target_weight=True), decoder=codec),
            test_cfg=dict(flip_test=True, flip_mode="heatmap", shift_heatmap=True)),
        train_dataloader=dict(dataset=dict(type="CocoDataset")),     # COCO metainfo (flip pairs)
        test_dataloader=dict(dataset=dict(type="CocoDataset", pipeline=[
            dict(type="LoadImage"), dict(type="GetBBoxCenterScale"),
            dict(type="TopdownAffine", input_size=codec["input_size"]), dict(type="PackPoseInputs")])),
    ))


def test_same_keypoints_as_mmpose_inference_topdown(tmp_path):
    from mmpose.apis import inference_topdown, init_model

    torch.manual_seed(0)
    net = hrnet.PoseHRNet()
    for mod in net.modules():        # non-trivial BatchNorm statistics, so they must load right too
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    net.eval()
    ckpt = tmp_path / "hrnet_w32_random.pth"
    torch.save({"meta": {}, "state_dict": net.state_dict()}, ckpt)

    rng = np.random.default_rng(0)
    bgr = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (5, 5), 0)
    boxes = np.array([[40.0, 30.0, 120.0, 220.0], [150.0, 10.0, 300.0, 120.0], [250.0, 100.0, 340.0, 260.0]])

    model = init_model(mmpose_config(), str(ckpt), device="cpu")
    results = inference_topdown(model, bgr, boxes, bbox_format="xyxy")
    theirs = np.stack([np.concatenate([r.pred_instances.keypoints[0], r.pred_instances.keypoint_scores[0][:, None]], -1)
                       for r in results])

    ours = hrnet.estimate_keypoints(hrnet.load_hrnet(ckpt), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), boxes,
                                    flip_test=True)
    assert ours.shape == theirs.shape == (3, 17, 3)
    assert np.abs(ours[..., :2] - theirs[..., :2]).max() < 0.5
    np.testing.assert_allclose(ours[..., 2], theirs[..., 2], rtol=1e-3, atol=1e-6)
