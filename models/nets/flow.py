"""Dense optical flow between frame pairs: torchvision RAFT, OpenCV DIS, or any ptlflow model.

Every estimator takes batches of frame pairs already resized to the working resolution and returns
flow at that resolution, in working-resolution pixels: flow[b, y, x] = (dx, dy) moves pixel (x, y)
of `prev[b]` to its position in `next[b]`.

    est = DISFlow("medium")
    flow = est(prev, nxt)          # prev, nxt: (B, h, w, 3) uint8 RGB -> (B, h, w, 2) float32

OpenCV is used here as maths (DIS, resizing), like torch; nothing in this module reads files except
`load_raft`, which is handed a path by the caller.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch

RAFT_MIN_SIDE = 128       # torchvision's correlation pyramid needs feature maps >= 16 at 1/8 scale
RAFT_MULTIPLE = 8


class FlowEstimator(Protocol):
    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """(B, h, w, 3) uint8 RGB pairs -> (B, h, w, 2) float32 flow in pixels of that size."""
        ...


def work_size(width: int, height: int, long_side: int, multiple: int = RAFT_MULTIPLE, min_side: int = 0) -> tuple[int, int]:
    """(w, h) of the working resolution: the frame scaled so its long side is at most `long_side`
    (never upscaled), each side rounded to a multiple of `multiple` (RAFT's 1/8 feature grid) and
    raised to at least `min_side` (RAFT: 128). Sides are scaled independently when rounding, so
    callers map coordinates per axis."""
    scale = min(1.0, long_side / max(width, height))

    def snap(v: float) -> int:
        return max(multiple, min_side, int(round(v * scale / multiple)) * multiple)

    return snap(width), snap(height)


def resize_rgb(frame_bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) BGR uint8 -> (h, w, 3) RGB uint8 at `size` = (w, h) (area filter when shrinking)."""
    h0, w0 = frame_bgr.shape[:2]
    if (w0, h0) != tuple(size):
        interp = cv2.INTER_AREA if size[0] < w0 else cv2.INTER_LINEAR
        frame_bgr = cv2.resize(frame_bgr, size, interpolation=interp)
    return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)


def sample_flow(flow: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Bilinear flow at sub-pixel points (pixel centres at integers).

    Args:
        flow: (h, w, 2) float32.
        pts: (..., 2) x, y in the flow's pixel grid.

    Returns:
        (..., 2) float32; NaN where a point lies outside [0, w-1] x [0, h-1].
    """
    h, w = flow.shape[:2]
    p = pts.reshape(-1, 2).astype(np.float64)
    inside = (p[:, 0] >= 0) & (p[:, 0] <= w - 1) & (p[:, 1] >= 0) & (p[:, 1] <= h - 1)
    x = np.clip(p[:, 0], 0, w - 1)
    y = np.clip(p[:, 1], 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), max(w - 2, 0))
    y0 = np.minimum(np.floor(y).astype(np.int64), max(h - 2, 0))
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    out = ((1 - fy) * ((1 - fx) * flow[y0, x0] + fx * flow[y0, x1])
           + fy * ((1 - fx) * flow[y1, x0] + fx * flow[y1, x1])).astype(np.float32)
    out[~inside] = np.nan
    return out.reshape(*pts.shape[:-1], 2)


# -- OpenCV DIS ----------------------------------------------------------------------------------
_DIS_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


class DISFlow:
    """OpenCV's Dense Inverse Search flow on grey images: no weights, CPU only."""

    def __init__(self, preset: str = "medium"):
        if preset not in _DIS_PRESETS:
            raise ValueError(f"DIS preset {preset!r} is not one of {', '.join(_DIS_PRESETS)}")
        self.dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        out = np.empty(prev.shape[:3] + (2,), np.float32)
        for b in range(prev.shape[0]):
            g0 = cv2.cvtColor(prev[b], cv2.COLOR_RGB2GRAY)
            g1 = cv2.cvtColor(nxt[b], cv2.COLOR_RGB2GRAY)
            out[b] = self.dis.calc(g0, g1, None)
        return out


# -- torchvision RAFT ----------------------------------------------------------------------------
def build_raft(variant: str) -> torch.nn.Module:
    """An untrained torchvision RAFT ('raft_large' or 'raft_small'); weights are loaded separately."""
    from torchvision.models import optical_flow as of

    if variant not in ("raft_large", "raft_small"):
        raise ValueError(f"RAFT variant {variant!r} is not 'raft_large' or 'raft_small'")
    return getattr(of, variant)(weights=None, progress=False)


def load_raft(variant: str, path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """RAFT with the state dict of torchvision's official weight file (or any file in its key layout)."""
    model = build_raft(variant)
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):  # a wrapped checkpoint
        state = state["state_dict"]
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path} is not a torchvision {variant} state dict: {str(e)[:300]}") from e
    return model.eval().to(device)


class RaftFlow:
    """torchvision RAFT on batches of pairs; inputs are scaled to [-1, 1] as torchvision's transforms do."""

    def __init__(self, model: torch.nn.Module, iterations: int = 12, device: str | torch.device = "cpu"):
        self.model = model.eval().to(device)
        self.iterations = iterations
        self.device = torch.device(device)

    @torch.inference_mode()
    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        h, w = prev.shape[1:3]
        if h % RAFT_MULTIPLE or w % RAFT_MULTIPLE or min(h, w) < RAFT_MIN_SIDE:
            raise ValueError(f"RAFT needs sides that are multiples of {RAFT_MULTIPLE} and >= {RAFT_MIN_SIDE}; got {w}x{h}")

        def prep(a: np.ndarray) -> torch.Tensor:
            t = torch.from_numpy(np.ascontiguousarray(a)).to(self.device).permute(0, 3, 1, 2).float()  # (B, 3, h, w)
            return t / 127.5 - 1.0

        flows = self.model(prep(prev), prep(nxt), num_flow_updates=self.iterations)
        return flows[-1].permute(0, 2, 3, 1).float().cpu().numpy()            # (B, h, w, 2)


# -- ptlflow (optional extra) --------------------------------------------------------------------
class PtlflowFlow:
    """Any ptlflow model by name (`pip install video2mesh[ptlflow]`).

    `ckpt` is a ptlflow checkpoint name (ptlflow may download it into its own cache) or a local file.
    """

    def __init__(self, model_name: str, ckpt: str, device: str | torch.device = "cpu"):
        try:
            import ptlflow
            from ptlflow.utils.io_adapter import IOAdapter
        except ImportError as e:
            raise ImportError(
                "the 'ptlflow' flow backend needs the optional package ptlflow: "
                "`pip install video2mesh[ptlflow]` (or choose --set homography.backend=dis)"
            ) from e
        self._IOAdapter = IOAdapter
        self.model = ptlflow.get_model(model_name, ckpt_path=ckpt).eval().to(device)
        self.device = torch.device(device)
        self._adapter = None
        self._size: tuple[int, int] | None = None

    @torch.inference_mode()
    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        h, w = prev.shape[1:3]
        if self._size != (h, w):
            self._adapter = self._IOAdapter(self.model, (h, w), cuda=self.device.type == "cuda")
            self._size = (h, w)
        out = np.empty(prev.shape[:3] + (2,), np.float32)
        for b in range(prev.shape[0]):
            # ptlflow's adapter takes BGR uint8 images as OpenCV reads them
            pair = [np.ascontiguousarray(prev[b, ..., ::-1]), np.ascontiguousarray(nxt[b, ..., ::-1])]
            pred = self._adapter.unpad_and_unscale(self.model(self._adapter.prepare_inputs(pair)))
            out[b] = pred["flows"][0, 0].permute(1, 2, 0).float().cpu().numpy()
        return out
