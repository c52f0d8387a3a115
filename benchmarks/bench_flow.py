"""Flow pairs/s per backend and working size, and DLT homographies/s (batched).

RAFT runs with random weights (cost does not depend on them). quick=True shrinks RAFT to its
smallest legal size (224x128) and few flow updates so a case takes seconds on 2 CPU cores; the
case names say so. Full mode runs the stage's default size (long side 512) and 12 updates.
"""
from __future__ import annotations

import numpy as np
import torch

from video2mesh.benchmarks import Case
from video2mesh.models.nets import flow as flowlib
from video2mesh.models.maths.geometry import apply_homography_np, dlt_homography, dlt_homography_np


def _frames(w: int, h: int, pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(pairs, h, w, 3) uint8 frame pairs: smooth texture and a 2 px shifted copy."""
    import cv2

    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 255, (h, w + 2, 3), dtype=np.uint8), (0, 0), 2.0)
    a = np.repeat(img[None, :, :w], pairs, 0)
    b = np.repeat(img[None, :, 2:], pairs, 0)
    return a, b


def _flow_case(name: str, make, w: int, h: int, pairs: int, repeat: int) -> Case:
    def setup():
        est = make()
        a, b = _frames(w, h, pairs)

        def step() -> int:
            est(a, b)
            return pairs

        return step

    return Case("flow", f"{name} {w}x{h}", setup, unit="pairs", repeat=repeat, warmup=1)


def _raft(variant: str, iters: int, device: str):
    def make():
        torch.manual_seed(0)
        return flowlib.RaftFlow(flowlib.build_raft(variant), iterations=iters, device=device)

    return make


def _dlt_case(name: str, impl: str, batch: int, points: int, device: str) -> Case:
    def setup():
        rng = np.random.default_rng(0)
        H = np.eye(3) + rng.normal(0, 1, (batch, 3, 3)) * np.array([[0.05, 0.05, 5], [0.05, 0.05, 5], [1e-5, 1e-5, 0]])
        src = rng.uniform(0, 512, (batch, points, 2))
        dst = apply_homography_np(H, src) + rng.normal(0, 0.3, src.shape)
        if impl == "numpy":
            return lambda: (dlt_homography_np(src, dst), batch)[1]
        s, d = torch.from_numpy(src).to(device), torch.from_numpy(dst).to(device)

        def step() -> int:
            H_, _ = dlt_homography(s, d)
            if H_.is_cuda:
                torch.cuda.synchronize()
            return batch

        return step

    return Case("homography", name, setup, unit="homographies", repeat=3, warmup=1)


def cases(quick: bool, device: str) -> list[Case]:
    out: list[Case] = []
    dis_size = (512, 288)                     # the stage's default working size for 16:9 video
    for preset in ("ultrafast", "medium"):
        out.append(_flow_case(f"dis {preset}", lambda p=preset: flowlib.DISFlow(p), *dis_size, pairs=2, repeat=3))
    if quick:
        rw, rh, pairs = 224, 128, 1
        out.append(_flow_case("raft_small iters=4 (quick)", _raft("raft_small", 4, device), rw, rh, pairs, repeat=1))
        out.append(_flow_case("raft_large iters=2 (quick)", _raft("raft_large", 2, device), rw, rh, pairs, repeat=1))
    else:
        pairs = 8 if device.startswith("cuda") else 1
        for variant in ("raft_small", "raft_large"):
            for (rw, rh) in ((512, 288), (1024, 576)):
                out.append(_flow_case(f"{variant} iters=12 batch={pairs}", _raft(variant, 12, device), rw, rh, pairs, repeat=3))
    batch = 256 if quick else 2048
    out.append(_dlt_case(f"dlt torch {batch} x 289 pts", "torch", batch, 289, device))
    out.append(_dlt_case(f"dlt numpy {batch} x 289 pts", "numpy", batch, 289, "cpu"))
    return out
