"""Checkpoints, ours and released ones.

Ours describe themselves: what the file holds (kind), the config that rebuilds the module, its
state_dict and the library versions that wrote it.

    save(path, "pose_embedder", cfg, module)            # cfg: a dataclass
    ckpt = load(path, kind="pose_embedder")             # dict: kind, config, state_dict, versions

Released files (mmpose, SPIN, VIBE, torchvision) are loaded by key name and shape, with errors that
name the offending keys (`read_checkpoint`, `unwrap`, `load_exact`).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import pickle
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import nn

log = logging.getLogger(__name__)

FORMAT = "video2mesh.checkpoint"
FORMAT_VERSION = 1


def versions() -> dict[str, str]:
    import numpy

    return {"format": str(FORMAT_VERSION), "torch": str(torch.__version__), "numpy": str(numpy.__version__)}


def save(path: str | Path, kind: str, config: Any, module: torch.nn.Module, meta: dict | None = None) -> Path:
    """Write {format, kind, config, state_dict, versions, meta} atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "kind": kind,
        "config": dataclasses.asdict(config),
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "versions": versions(),
        "meta": dict(meta or {}),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load(path: str | Path, kind: str) -> dict:
    """Read a checkpoint written by `save`; raises ValueError if it is not one, or of another kind."""
    path = Path(path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a video2mesh checkpoint (no '{FORMAT}' format tag)")
    if ckpt.get("kind") != kind:
        raise ValueError(f"{path} holds a {ckpt.get('kind')!r} checkpoint, expected {kind!r}")
    return ckpt


def rebuild(module_cls: type, config_cls: type, path: str | Path, kind: str) -> torch.nn.Module:
    """The module a `save`d checkpoint describes: its config rebuilt, its weights loaded, eval mode."""
    ckpt = load(path, kind)
    model = module_cls(config_from(config_cls, ckpt["config"], path))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def config_from(cls: type, values: dict, path: str | Path = "") -> Any:
    """Rebuild a config dataclass; unknown keys are an error (a renamed field must not vanish)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{path}: checkpoint config has unknown keys {unknown} for {cls.__name__}")
    return cls(**values)

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
