"""Loading released weight files by key name and shape, with errors that name the offending keys."""
from __future__ import annotations

import logging
import os
import pickle
from typing import Any, Iterable, Mapping

import torch
from torch import nn

log = logging.getLogger(__name__)


class CheckpointMismatch(ValueError):
    """A weight file's keys or shapes do not fit the network; the message lists them."""


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The pickled dict of a `.pth`/`.pt`/`.pth.tar` file, on the CPU.

    Tries torch's safe loader first. Released mmpose checkpoints carry numpy objects in their
    `meta`, which the safe loader refuses; those are then unpickled fully (with a warning), so
    only load files from the sources the asset registry names.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        log.warning("%s holds non-tensor objects; unpickling it fully (only use files from the official source)", path)
        obj = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(obj, dict):
        raise CheckpointMismatch(f"{path}: expected a dict of tensors (a state_dict or a checkpoint), got {type(obj).__name__}")
    return obj


def unwrap(obj: Mapping[str, Any], containers: Iterable[str] = ("state_dict", "model")) -> dict[str, torch.Tensor]:
    """The state_dict inside a training checkpoint (`{'state_dict': ...}`, `{'model': ...}`) with any
    DataParallel `module.` prefix removed; a bare state_dict is returned as is."""
    for c in containers:
        if c in obj and isinstance(obj[c], Mapping):
            obj = obj[c]
            break
    out = {}
    for k, v in obj.items():
        if isinstance(v, torch.Tensor):
            out[k[len("module."):] if k.startswith("module.") else k] = v
    return out


def load_exact(model: nn.Module, state: Mapping[str, torch.Tensor], what: str,
               ignore_prefixes: tuple[str, ...] = ()) -> None:
    """Copy `state` into `model`, requiring every key to be present with the same shape.

    Keys starting with one of `ignore_prefixes` (heads we do not use) are dropped first. Raises
    CheckpointMismatch listing missing, unexpected and misshapen keys (at most 10 of each shown).
    """
    state = {k: v for k, v in state.items() if not k.startswith(ignore_prefixes)}
    own = model.state_dict()
    # BatchNorm's step counter is absent from old checkpoints and unused at inference.
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    misshapen = [f"{k} {tuple(state[k].shape)} (expected {tuple(own[k].shape)})"
                 for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or misshapen:
        parts = [f"{name} ({len(keys)}): {', '.join(keys[:10])}{' ...' if len(keys) > 10 else ''}"
                 for name, keys in (("missing", missing), ("unexpected", unexpected), ("misshapen", misshapen)) if keys]
        raise CheckpointMismatch(f"weights do not fit {what}: " + "; ".join(parts))
    model.load_state_dict(state, strict=False)
