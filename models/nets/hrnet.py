"""HRNet-W32 top-down 2D pose (COCO-17, input 256x192, heatmaps 64x48) in plain torch.

The module's state_dict keys are those of mmpose's `td-hm_hrnet-w32_8xb64-210e_coco-256x192`
checkpoints (`backbone.*`, `head.final_layer.*`); `load_hrnet` also reads mmpose 0.x files
(`keypoint_head.final_layer.*`) and the original HRNet repository's `pose_hrnet_w32_256x192.pth`
(no prefix, `final_layer.*`). Pre- and post-processing follow mmpose's test pipeline:
GetBBoxCenterScale (padding 1.25) + TopdownAffine (3:4 aspect) in, MSRA heatmap decoding
(argmax + quarter-pixel shift) and optional flip test out.
"""
from __future__ import annotations

import os
from typing import Sequence

import cv2
import numpy as np
import torch
from torch import nn

from .checkpoint import CheckpointMismatch, load_exact, read_checkpoint, unwrap

INPUT_SIZE = (192, 256)            # (w, h) of the network input
HEATMAP_SIZE = (48, 64)            # (w, h) of its output
MEAN_RGB = (123.675, 116.28, 103.53)
STD_RGB = (58.395, 57.12, 57.375)
COCO_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
                  "left_knee", "right_knee", "left_ankle", "right_ankle")
COCO_FLIP_INDICES = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
W32_CHANNELS = ((32, 64), (32, 64, 128), (32, 64, 128, 256))   # branches of stages 2, 3, 4
W32_MODULES = (1, 4, 3)                                          # HR modules per stage


# ---- network -----------------------------------------------------------------------------------
def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + x)


class Bottleneck(nn.Module):
    def __init__(self, cin: int, planes: int):
        super().__init__()
        cout = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = _conv_bn(cin, cout, 1, relu=False) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class HRModule(nn.Module):
    """Parallel branches of 4 BasicBlocks, then every output resolution sums all branches."""

    def __init__(self, channels: Sequence[int], multiscale_output: bool = True):
        super().__init__()
        n = len(channels)
        self.branches = nn.ModuleList(nn.Sequential(*[BasicBlock(c) for _ in range(4)]) for c in channels)
        self.fuse_layers = nn.ModuleList()
        for i in range(n if multiscale_output else 1):
            row = nn.ModuleList()
            for j in range(n):
                if j > i:    # lower resolution: 1x1 conv, then nearest upsampling
                    row.append(nn.Sequential(nn.Conv2d(channels[j], channels[i], 1, bias=False),
                                             nn.BatchNorm2d(channels[i]),
                                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")))
                elif j == i:
                    row.append(None)
                else:        # higher resolution: (i - j) strided 3x3 convs, ReLU between them
                    steps = [_conv_bn(channels[j], channels[j], 3, 2) for _ in range(i - j - 1)]
                    row.append(nn.Sequential(*steps, _conv_bn(channels[j], channels[i], 3, 2, relu=False)))
            self.fuse_layers.append(row)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [b(x) for b, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = None    # summed in branch order, as mmpose does, so results agree bit for bit
            for j, f in enumerate(row):
                t = xs[j] if j == i else f(xs[j])
                y = t if y is None else y + t
            out.append(torch.relu(y))
        return out


def _transition(prev: Sequence[int], cur: Sequence[int]) -> nn.ModuleList:
    """New branches come from the lowest-resolution one by strided 3x3 convs; kept ones pass through."""
    layers = nn.ModuleList()
    for i, c in enumerate(cur):
        if i < len(prev):
            layers.append(_conv_bn(prev[i], c, 3) if prev[i] != c else None)
        else:
            n = i + 1 - len(prev)
            layers.append(nn.Sequential(*[_conv_bn(prev[-1], c if k == n - 1 else prev[-1], 3, 2) for k in range(n)]))
    return layers


class HRNetBackbone(nn.Module):
    """HRNet-W32: (B, 3, H, W) -> (B, 32, H/4, W/4), the highest-resolution branch."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.layer1 = nn.Sequential(Bottleneck(64, 64), *[Bottleneck(256, 64) for _ in range(3)])
        prev: Sequence[int] = (256,)
        for s, (chans, n_mod) in enumerate(zip(W32_CHANNELS, W32_MODULES), start=2):
            setattr(self, f"transition{s - 1}", _transition(prev, chans))
            last = s == 4
            setattr(self, f"stage{s}", nn.Sequential(*[HRModule(chans, multiscale_output=not (last and m == n_mod - 1))
                                                         for m in range(n_mod)]))
            prev = chans

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        ys = [self.layer1(x)]
        for s in (2, 3, 4):
            trans = getattr(self, f"transition{s - 1}")
            # a new branch grows from the lowest-resolution one; W32 has no transitions on kept branches
            xs = [ys[i] if t is None else t(ys[i] if i < len(ys) else ys[-1]) for i, t in enumerate(trans)]
            ys = getattr(self, f"stage{s}")(xs)
        return ys[0]


class HeatmapHead(nn.Module):
    def __init__(self, in_channels: int = 32, n_keypoints: int = 17):
        super().__init__()
        self.final_layer = nn.Conv2d(in_channels, n_keypoints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(x)


class PoseHRNet(nn.Module):
    """(B, 3, 256, 192) normalised RGB crops -> (B, 17, 64, 48) COCO heatmaps."""

    def __init__(self):
        super().__init__()
        self.backbone = HRNetBackbone()
        self.head = HeatmapHead()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def to_mmpose_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a state_dict from any of the three released layouts to this module's (mmpose 1.x) keys."""
    if any(k.startswith("backbone.") for k in state):    # mmpose; 0.x names the head keypoint_head
        return {("head." + k[len("keypoint_head."):] if k.startswith("keypoint_head.") else k): v
                for k, v in state.items()}
    return {("head." + k if k.startswith("final_layer.") else "backbone." + k): v for k, v in state.items()}


def load_hrnet(path_or_state: str | os.PathLike | dict, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32) -> PoseHRNet:
    """A PoseHRNet in eval mode with the weights of a released checkpoint (file or dict).

    Raises CheckpointMismatch naming missing, unexpected or misshapen keys.
    """
    obj = path_or_state if isinstance(path_or_state, dict) else read_checkpoint(path_or_state)
    net = PoseHRNet()
    load_exact(net, to_mmpose_keys(unwrap(obj)), "HRNet-W32 COCO-17 (256x192)")
    return net.to(device=device, dtype=dtype).eval()


# ---- crops in, keypoints out -------------------------------------------------------------------
def box_center_scale(boxes_xyxy: np.ndarray, padding: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) boxes -> centres (N, 2) and sizes (N, 2) padded by `padding`, then grown to 3:4 (w:h)."""
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    center = (b[:, :2] + b[:, 2:]) * 0.5
    wh = (b[:, 2:] - b[:, :2]) * padding
    aspect = INPUT_SIZE[0] / INPUT_SIZE[1]
    w, h = wh[:, :1], wh[:, 1:]
    scale = np.where(w > h * aspect, np.hstack([w, w / aspect]), np.hstack([h * aspect, h]))
    return center, scale


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`a` rotated 90 degrees anticlockwise about `b` (the third point that pins down an affine map)."""
    d = a - b
    return b + np.array([-d[1], d[0]], dtype=a.dtype)


def warp_matrix(center: np.ndarray, scale: np.ndarray, size: tuple[int, int] = INPUT_SIZE) -> np.ndarray:
    """(2, 3) affine map from image pixels to a `size` (w, h) crop of the box (centre, scale).

    Built from three float32 point pairs like mmpose's get_warp_matrix (rotation 0), so crops
    agree with mmpose's to the last bit; in closed form it is x' = (x - cx) * w / scale_w + w / 2.
    """
    w, h = size
    src = np.zeros((3, 2), np.float32)
    src[0] = center
    src[1] = np.asarray(center, np.float64) + [0.0, -0.5 * float(scale[0])]
    src[2] = _third_point(src[0], src[1])
    dst = np.zeros((3, 2), np.float32)
    dst[0] = [w * 0.5, h * 0.5]
    dst[1] = [w * 0.5, h * 0.5 - w * 0.5]
    dst[2] = _third_point(dst[0], dst[1])
    return cv2.getAffineTransform(src, dst)


def crop(image: np.ndarray, boxes_xyxy: np.ndarray, padding: float = 1.25) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops (N, 256, 192, C) of one (H, W, C) image for N boxes, with their centres and scales (N, 2)."""
    center, scale = box_center_scale(boxes_xyxy, padding)
    crops = [cv2.warpAffine(image, warp_matrix(c, s), INPUT_SIZE, flags=cv2.INTER_LINEAR) for c, s in zip(center, scale)]
    crops = np.stack(crops) if crops else np.zeros((0, INPUT_SIZE[1], INPUT_SIZE[0]) + image.shape[2:], image.dtype)
    return crops, center, scale


@torch.no_grad()
def predict_heatmaps(net: nn.Module, crops_rgb: np.ndarray, flip_test: bool = True, batch_size: int = 32,
                     device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> np.ndarray:
    """(N, 256, 192, 3) uint8 RGB crops -> (N, 17, 64, 48) float32 heatmaps.

    Flip test averages with the heatmaps of the mirrored crop, mirrored back with left/right
    swapped and shifted one pixel right (mmpose's `shift_heatmap`, which undoes the half-pixel
    misalignment of flipping an even-width map).
    """
    mean = torch.tensor(MEAN_RGB, device=device, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(STD_RGB, device=device, dtype=torch.float32).view(1, 3, 1, 1)
    out = []
    for s in range(0, len(crops_rgb), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(crops_rgb[s:s + batch_size])).to(device)
        x = ((x.permute(0, 3, 1, 2).float() - mean) / std).to(dtype)     # (B, 3, 256, 192)
        if flip_test:
            both = net(torch.cat([x, x.flip(-1)]))
            h, hf = both[: len(x)], both[len(x):].flip(-1)[:, list(COCO_FLIP_INDICES)]
            hf[..., 1:] = hf[..., :-1].clone()
            h = (h + hf) * 0.5
        else:
            h = net(x)
        out.append(h.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 17, HEATMAP_SIZE[1], HEATMAP_SIZE[0]), np.float32)


def decode_heatmaps(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MSRA decoding: (N, K, H, W) -> locations (N, K, 2) in heatmap pixels and scores (N, K).

    Argmax, then a quarter-pixel step towards the higher neighbour on each axis (mmpose's
    refine_keypoints, border conditions included). Maps whose maximum is <= 0 give location -1.
    """
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    idx = flat.argmax(-1)
    vals = np.take_along_axis(flat, idx[..., None], -1)[..., 0]
    y, x = np.divmod(idx, w)
    locs = np.stack([x, y], -1).astype(np.float32)
    locs[vals <= 0] = -1
    x, y = locs[..., 0].astype(int), locs[..., 1].astype(int)
    ni, ki = np.indices((n, k))

    def at(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return heatmaps[ni, ki, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]

    dx = np.where((1 < x) & (x < w - 1) & (0 < y) & (y < h), at(y, x + 1) - at(y, x - 1), 0.0)
    dy = np.where((1 < y) & (y < h - 1) & (0 < x) & (x < w), at(y + 1, x) - at(y - 1, x), 0.0)
    locs += np.stack([np.sign(dx), np.sign(dy)], -1).astype(np.float32) * 0.25
    return locs, vals.astype(np.float32)


def heatmap_to_image(locs_hm: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(N, K, 2) heatmap pixels -> image pixels, the inverse of the crop (heatmap px i = input px 4i)."""
    stride = np.array(INPUT_SIZE, np.float64) / np.array(HEATMAP_SIZE, np.float64)
    locs_in = locs_hm * stride                                             # input-crop pixels
    return locs_in / np.array(INPUT_SIZE) * scale[:, None] + center[:, None] - 0.5 * scale[:, None]


def estimate_keypoints(net: nn.Module, image_rgb: np.ndarray, boxes_xyxy: np.ndarray, padding: float = 1.25,
                       flip_test: bool = True, batch_size: int = 32, device: str | torch.device = "cpu",
                       dtype: torch.dtype = torch.float32) -> np.ndarray:
    """Keypoints (N, 17, 3) = (x px, y px, score) for N person boxes (N, 4) of one RGB image."""
    crops, center, scale = crop(image_rgb, boxes_xyxy, padding)
    locs, vals = decode_heatmaps(predict_heatmaps(net, crops, flip_test, batch_size, device, dtype))
    return np.concatenate([heatmap_to_image(locs, center, scale), vals[..., None]], -1).astype(np.float32)


__all__ = ["PoseHRNet", "load_hrnet", "to_mmpose_keys", "box_center_scale", "warp_matrix", "crop",
           "predict_heatmaps", "decode_heatmaps", "heatmap_to_image", "estimate_keypoints",
           "CheckpointMismatch", "COCO_KEYPOINTS", "COCO_FLIP_INDICES"]
