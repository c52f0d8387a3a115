"""ResNet-50 image features: (N, 224, 224, 3) RGB person crops -> (N, 2048) after global average pool.

The network is SPIN's HMR backbone (Bottleneck [3, 4, 6, 3], stride in the 3x3 conv), which is
torchvision's resnet50 without its classifier. `load_resnet50` reads SPIN's / VIBE's released
HMR checkpoint (`{'model': state_dict}` with the regressor keys fc1, fc2, decpose, decshape,
deccam, init_* ignored) and torchvision's resnet50 state_dict (`fc.*` ignored). The crop follows
VIBE's demo: a square box (side x 1.1) warped to 224x224, RGB, scaled to [0, 1], ImageNet mean/std.
"""
from __future__ import annotations

import os

import cv2
import numpy as np
import torch
from torch import nn

from .checkpoint import CheckpointMismatch, load_exact, read_checkpoint, unwrap

CROP_SIZE = 224
FEATURE_DIM = 2048
MEAN_RGB = (0.485, 0.456, 0.406)
STD_RGB = (0.229, 0.224, 0.225)
# SPIN's iterative SMPL regressor and torchvision's classifier: present in the files, unused here.
HEAD_PREFIXES = ("fc1.", "fc2.", "decpose.", "decshape.", "deccam.", "init_pose", "init_shape", "init_cam", "fc.")


def resnet50_features() -> nn.Module:
    """torchvision's resnet50 with the classifier replaced by identity: (B, 3, 224, 224) -> (B, 2048)."""
    import torchvision   # here, not at module level: it loads torch._dynamo (~1.5 s), which every CLI start paid

    net = torchvision.models.resnet50(weights=None)
    net.fc = nn.Identity()
    return net


def load_resnet50(path_or_state: str | os.PathLike | dict, device: str | torch.device = "cpu",
                  dtype: torch.dtype = torch.float32) -> nn.Module:
    """The feature network in eval mode with the weights of a SPIN/VIBE HMR or torchvision file (or dict).

    Raises CheckpointMismatch naming missing, unexpected or misshapen keys.
    """
    obj = path_or_state if isinstance(path_or_state, dict) else read_checkpoint(path_or_state)
    net = resnet50_features()
    load_exact(net, unwrap(obj, containers=("model", "state_dict")), "ResNet-50 (HMR backbone)", HEAD_PREFIXES)
    return net.to(device=device, dtype=dtype).eval()


def square_warp_matrix(center: np.ndarray, side_px: float, size: int = CROP_SIZE) -> np.ndarray:
    """(2, 3) affine map from image pixels to a `size` x `size` crop of the square (centre, side).

    Three float32 point pairs (centre, centre + half side down, centre + half side right) as in
    VIBE's gen_trans_from_patch_cv; in closed form x' = (x - cx) * size / side + size / 2.
    """
    c = np.asarray(center, np.float64)
    half = 0.5 * float(side_px)
    src = np.float32([c, c + [0.0, half], c + [half, 0.0]])
    dst = np.float32([[size * 0.5, size * 0.5], [size * 0.5, size], [size, size * 0.5]])
    return cv2.getAffineTransform(src, dst)


def crop_square(image: np.ndarray, centers: np.ndarray, sides_px: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """(N, size, size, C) crops of one (H, W, C) image, bilinear, black outside the image."""
    crops = [cv2.warpAffine(image, square_warp_matrix(c, s, size), (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT)
             for c, s in zip(np.asarray(centers).reshape(-1, 2), np.asarray(sides_px).reshape(-1))]
    return np.stack(crops) if crops else np.zeros((0, size, size) + image.shape[2:], image.dtype)


def normalise(crops_rgb: np.ndarray | torch.Tensor, device: str | torch.device = "cpu",
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W): x / 255, minus ImageNet mean, over ImageNet std."""
    x = torch.as_tensor(np.ascontiguousarray(crops_rgb)).to(device).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(MEAN_RGB, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD_RGB, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).to(dtype)


@torch.no_grad()
def extract_features(net: nn.Module, crops_rgb: np.ndarray, batch_size: int = 32,
                     device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> np.ndarray:
    """(N, 224, 224, 3) uint8 RGB crops -> (N, 2048) float32 features, `batch_size` crops at a time."""
    out = [net(normalise(crops_rgb[s:s + batch_size], device, dtype)).float().cpu().numpy()
           for s in range(0, len(crops_rgb), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM), np.float32)


__all__ = ["resnet50_features", "load_resnet50", "square_warp_matrix", "crop_square", "normalise",
           "extract_features", "CheckpointMismatch", "CROP_SIZE", "FEATURE_DIM"]
