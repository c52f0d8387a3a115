"""Run-loop helpers shared by the training loops: per-step seeds, device, AMP, atomic state, CSV logs."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import torch

from video2mesh.models.nets.embedder import COCO13


def step_seed(seed: int, step: int) -> int:
    """One integer per (run seed, step): the only source of randomness of that step."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


def pick_device(name: str) -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))


def autocast(device: torch.device, enabled: bool):
    use = enabled and device.type == "cuda"
    dtype = torch.bfloat16 if use and torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=use)


def save_state(path: Path, **state) -> None:
    """Atomic torch.save (temp file + rename): a killed run never leaves half a checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


class CsvLog:
    def __init__(self, path: Path, fields: list[str], append: bool) -> None:
        self.path, self.fields = path, fields
        if not append or not path.exists():
            with open(path, "w", newline="") as f:
                csv.writer(f).writerow(fields)

    def write(self, row: dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([f"{row[k]:.6g}" if isinstance(row[k], float) else row[k] for k in self.fields])


def coco13_to_17(kp13: torch.Tensor) -> torch.Tensor:
    """(..., 13, C) -> (..., 17, C) with the 4 unused face points zero (normalize_coco13 ignores them)."""
    out = kp13.new_zeros(*kp13.shape[:-2], 17, kp13.shape[-1])
    out[..., list(COCO13), :] = kp13
    return out
