"""What a run needs, as plain data (JSON-able): Prefect parameters and deployments pass this around."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import config as cfgmod
from pipeline.assets import AssetRegistry
from pipeline.errors import ConfigError
from pipeline.runner import Runner
from pipeline.store import ArtifactStore

ENV_CACHE = "V2M_CACHE"


def default_cache_root() -> Path:
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "video2mesh" / "cache"


@dataclass(frozen=True)
class RunSpec:
    """Everything but the video: where to cache, which weights, which settings, which device."""

    out: str = "out"
    cache: str | None = None
    models_dir: str | None = None
    weights: dict[str, str] = field(default_factory=dict)     # asset name -> path override
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage name -> params
    device: str = "auto"
    until: str | None = None

    @property
    def cache_root(self) -> Path:
        return Path(self.cache).expanduser() if self.cache else default_cache_root()

    def resolved_device(self) -> str:
        if self.device != "auto":
            if self.device.startswith("cuda"):
                import torch

                if not torch.cuda.is_available():
                    raise ConfigError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")
            elif self.device != "cpu":
                raise ConfigError(f"--device must be cpu, cuda, cuda:N or auto, got {self.device!r}")
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


def build_runner(spec: RunSpec, progress=None) -> Runner:
    """A Runner for this spec: stage registry, typed configs (unknown keys rejected), assets, store."""
    import stages

    all_stages = stages.all_stages()
    unknown = sorted(set(spec.settings) - set(all_stages))
    if unknown:
        raise ConfigError(f"settings for unknown stage(s) {unknown}; stages: {', '.join(all_stages)}")
    configs = {name: cfgmod.from_mapping(all_stages[name].config, params, where=f"{name}.")
               for name, params in spec.settings.items()}
    registry = AssetRegistry(stages.all_assets(), models_dir=Path(spec.models_dir) if spec.models_dir else None,
                             overrides=spec.weights)
    root = spec.cache_root
    root.mkdir(parents=True, exist_ok=True)
    return Runner(all_stages, ArtifactStore(root), registry, configs, device=spec.resolved_device(), progress=progress)
