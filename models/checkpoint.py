"""Self-describing checkpoints: what the file holds (kind), the config that rebuilds the module,
its state_dict and the library versions that wrote it.

    save(path, "pose_embedder", cfg, module)            # cfg: a dataclass
    ckpt = load(path, kind="pose_embedder")             # dict: kind, config, state_dict, versions
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

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


def config_from(cls: type, values: dict, path: str | Path = "") -> Any:
    """Rebuild a config dataclass; unknown keys are an error (a renamed field must not vanish)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{path}: checkpoint config has unknown keys {unknown} for {cls.__name__}")
    return cls(**values)
