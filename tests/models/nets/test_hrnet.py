"""HRNet-W32: checkpoint layouts, key errors, crop geometry and MSRA decoding against closed forms."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from video2mesh.models.nets import hrnet
from video2mesh.models.nets.checkpoint import CheckpointMismatch
from tests._torch_threads import one_torch_thread


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    yield from one_torch_thread()


@pytest.fixture(scope="module")
def net() -> hrnet.PoseHRNet:
    """A randomly initialised network with non-trivial BatchNorm statistics."""
    torch.manual_seed(0)
    m = hrnet.PoseHRNet()
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.0)
    return m.eval()


def original_layout(state: dict) -> dict:
    """The original HRNet repository's keys: no `backbone.` prefix, head conv named final_layer."""
    return {k.removeprefix("backbone.").removeprefix("head."): v for k, v in state.items()}


def test_state_dict_keys_are_mmpose_layout(net):
    keys = net.state_dict().keys()
    # names from mmpose's HRNet backbone / HeatmapHead (1.x) for td-hm_hrnet-w32_8xb64-210e_coco-256x192
    for k in ("backbone.conv1.weight", "backbone.bn2.running_var", "backbone.layer1.0.downsample.0.weight",
              "backbone.transition1.0.0.weight", "backbone.transition1.1.0.0.weight",
              "backbone.transition3.3.0.1.bias", "backbone.stage2.0.branches.1.3.conv2.weight",
              "backbone.stage3.3.fuse_layers.2.0.1.0.weight", "backbone.stage4.0.fuse_layers.0.3.1.weight",
              "head.final_layer.weight", "head.final_layer.bias"):
        assert k in keys, k
    # stage 4's last module only fuses into the highest resolution
    assert not any(k.startswith("backbone.stage4.2.fuse_layers.1.") for k in keys)
    n_params = sum(p.numel() for p in net.parameters())
    assert abs(n_params / 1e6 - 28.5) < 0.1, n_params      # HRNet-W32 256x192: 28.5M in the paper


def test_all_layouts_load_to_the_same_network(net, tmp_path):
    state = net.state_dict()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = net(x)
    mm1 = tmp_path / "mmpose1.pth"      # released file: a training checkpoint with numpy in its meta
    torch.save({"meta": {"dataset_meta": {"sigmas": np.ones(17)}}, "state_dict": state}, mm1)
    mm0 = {"state_dict": {k.replace("head.", "keypoint_head."): v for k, v in state.items()}}
    orig = original_layout(state)
    for src in (mm1, mm0, orig, {"module." + k: v for k, v in orig.items()}):
        with torch.no_grad():
            out = hrnet.load_hrnet(src)(x)
        assert torch.equal(out, ref)


def test_missing_misshapen_and_unexpected_keys_are_named(net):
    state = dict(net.state_dict())
    del state["backbone.stage3.1.branches.0.0.conv1.weight"]
    state["head.final_layer.weight"] = torch.zeros(16, 32, 1, 1)
    state["backbone.stage5.0.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatch) as e:
        hrnet.load_hrnet({"state_dict": state})
    msg = str(e.value)
    assert "missing (1): backbone.stage3.1.branches.0.0.conv1.weight" in msg
    assert "head.final_layer.weight (16, 32, 1, 1) (expected (17, 32, 1, 1))" in msg
    assert "unexpected (1): backbone.stage5.0.weight" in msg


def test_crop_geometry_closed_form():
    boxes = np.array([[10.0, 20.0, 110.0, 220.0], [0.0, 0.0, 300.0, 100.0]])
    center, scale = hrnet.box_center_scale(boxes, padding=1.25)
    np.testing.assert_allclose(center, [[60, 120], [150, 50]])
    # tall box: height 250 sets the size; wide box: width 375 does; both 3:4
    np.testing.assert_allclose(scale, [[187.5, 250.0], [375.0, 500.0]])
    for c, s in zip(center, scale):
        a = 192 / s[0]
        expected = np.array([[a, 0, 96 - a * c[0]], [0, a, 128 - a * c[1]]])
        np.testing.assert_allclose(hrnet.warp_matrix(c, s), expected, atol=1e-4)


def render_joints(hm_xy: np.ndarray, center: np.ndarray, scale: np.ndarray, size=(320, 240)) -> np.ndarray:
    """(K, H, W) float32 image planes, one Gaussian per joint, placed where the crop sees `hm_xy`
    (heatmap pixels) and sized so that the crop shows sigma = 2 heatmap pixels."""
    px_per_hm = scale[0] / 48
    joints = (hm_xy * 4) / np.array([192, 256]) * scale + center - 0.5 * scale        # closed-form inverse
    yy, xx = np.mgrid[0:size[1], 0:size[0]].astype(np.float64)
    sigma = 2 * px_per_hm
    planes = np.exp(-((xx[None] - joints[:, 0, None, None]) ** 2 + (yy[None] - joints[:, 1, None, None]) ** 2)
                    / (2 * sigma ** 2))
    return planes.astype(np.float32), joints


def crop_to_heatmaps(planes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """A stand-in for the network: crop each plane, sample it where heatmap pixel i sits (input pixel 4i)."""
    crops = [hrnet.crop(p, box[None])[0][0] for p in planes]        # each (256, 192)
    return np.stack(crops)[None, :, ::4, ::4]                       # (1, K, 64, 48)


@pytest.mark.parametrize("seed", [0, 1])
def test_gaussian_joints_recovered_through_crop_decode_inverse(seed):
    rng = np.random.default_rng(seed)
    box = np.array([100.0, 40.0, 180.0, 200.0])                     # 80 x 160 px person
    center, scale = (a[0] for a in hrnet.box_center_scale(box[None]))
    # joints at integer heatmap pixels plus a quarter pixel each way: MSRA decoding is exact there
    hm_xy = np.stack([rng.integers(4, 44, 17), rng.integers(4, 60, 17)], 1) + rng.choice([-0.25, 0.25], (17, 2))
    planes, joints = render_joints(hm_xy, center, scale)
    locs, vals = hrnet.decode_heatmaps(crop_to_heatmaps(planes, box))
    got = hrnet.heatmap_to_image(locs, center[None], scale[None])[0]
    np.testing.assert_allclose(got, joints, atol=0.01)
    assert np.all(vals > 0.8)

    # anywhere else the quarter-pixel rule is off by at most a quarter heatmap pixel per axis
    hm_xy = np.stack([rng.uniform(4, 44, 17), rng.uniform(4, 60, 17)], 1)
    planes, joints = render_joints(hm_xy, center, scale)
    locs, _ = hrnet.decode_heatmaps(crop_to_heatmaps(planes, box))
    got = hrnet.heatmap_to_image(locs, center[None], scale[None])[0]
    px_per_hm = scale[0] / 48
    assert np.abs(got - joints).max() <= 0.25 * px_per_hm + 0.01
    assert px_per_hm * 0.25 < 1.0                                   # i.e. sub-pixel for this box size


def test_decode_follows_mmpose_border_and_sign_rules():
    h = np.zeros((1, 3, 8, 6), np.float32)
    h[0, 0, 3, 1] = 1.0                 # x = 1: mmpose leaves x unrefined (1 < x fails), y gets no shift (tie)
    h[0, 0, 3, 2] = 0.5
    h[0, 1, 4, 3], h[0, 1, 5, 3], h[0, 1, 4, 4] = 1.0, 0.6, 0.2   # refine +x and +y
    h[0, 2] = -1.0                       # no positive response: location -1
    locs, vals = hrnet.decode_heatmaps(h)
    np.testing.assert_allclose(locs[0], [[1, 3], [3.25, 4.25], [-1, -1]])
    np.testing.assert_allclose(vals[0], [1.0, 1.0, -1.0])


def test_flip_test_averages_the_mirrored_pass(net):
    """Flip test = mean of the plain heatmaps and those of the mirrored crop, mirrored back, left/right
    channels swapped and shifted one pixel right (mmpose flip_heatmaps, shift_heatmap=True); the
    reference is built here from two plain passes with numpy."""
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (1, 256, 192, 3), dtype=np.uint8)
    both = np.concatenate([crops, crops[:, :, ::-1]])
    heat = hrnet.predict_heatmaps(net, both, flip_test=False)
    heat_flip = hrnet.predict_heatmaps(net, both, flip_test=True)
    manual = (heat[0] + np.roll(heat[1][:, :, ::-1][list(hrnet.COCO_FLIP_INDICES)], 1, axis=-1)) * 0.5
    manual[..., 0] = (heat[0][..., 0] + heat[1][list(hrnet.COCO_FLIP_INDICES)][..., ::-1][..., 0]) * 0.5
    np.testing.assert_allclose(heat_flip[0], manual, rtol=1e-4, atol=1e-4 * np.abs(manual).max())
