"""What a run needs, as plain data (JSON-able): Prefect parameters and deployments pass this around."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from video2mesh.pipeline import config as cfgmod
from video2mesh.pipeline.assets import AssetRegistry
from video2mesh.pipeline.errors import ConfigError
from video2mesh.pipeline.paths import user_dir

if TYPE_CHECKING:
    from video2mesh.pipeline.runner import Runner

ENV_CACHE = "V2M_CACHE"


def default_cache_root() -> Path:
    return user_dir("cache", ENV_CACHE)


def tool_env(root: Path) -> dict[str, str]:
    """Environment for the tools we drive: offline, quiet, their homes inside `root`."""
    return {
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "false",
        "YOLO_VERBOSE": "False",          # no settings banner or per-call logs on our output
        "YOLO_CONFIG_DIR": str(root / "ultralytics"),
        "PREFECT_HOME": str(root / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        # The first start of the embedded server on a new home takes ~20 s on 2 cores.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "MPLBACKEND": "Agg",
        "TF_CPP_MIN_LOG_LEVEL": "2",       # LiteRT (BlazePose): no XNNPACK banner on our output
        "OPENCV_FFMPEG_LOGLEVEL": "-8",    # FFmpeg inside OpenCV: no "moov atom not found" (our error says it)
        "OPENCV_LOG_LEVEL": "ERROR",
    }


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
    method: str = "auto"                                        # auto, smpl or licence-free (flows/methods.py)

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


def shared_deliverable_settings(method, settings: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`settings` with another method's stage settings for the same deliverable carried onto this method's.

    `--set export.formats=[...]` then means the animation files of whichever method runs (the licence-free
    path's export stage is `fit_export`; the SMPL path's `fit_report` settings go to `report`): each key this
    method's stage also has is carried over; the user's settings of this method's own stage win.
    """
    from video2mesh import stages
    from video2mesh.stages._methods import METHODS

    out = dict(settings)
    for deliverable, own in method.outputs.items():
        fields = {f.name for f in dataclasses.fields(stages.all_stages()[own].config)}
        for other in METHODS.values():
            alias = other.outputs.get(deliverable)
            if alias and alias != own and alias in settings:
                carried = {k: v for k, v in settings[alias].items() if k in fields}
                out[own] = {**carried, **out.get(own, {})}
    return out


def build_runner(spec: RunSpec, progress=None) -> Runner:
    """A Runner for this spec: stage registry, typed configs (unknown keys rejected), assets, store."""
    from video2mesh import stages
    from video2mesh.pipeline.runner import Runner  # here: importing it loads OpenCV, which reads its
    from video2mesh.pipeline.store import ArtifactStore  # log level from the environment tool_env sets

    all_stages = stages.all_stages()
    unknown = sorted(set(spec.settings) - set(all_stages))  # checked before a method adds its own
    if unknown:
        raise ConfigError(f"settings for unknown stage(s) {unknown}; stages: {', '.join(all_stages)}")
    settings = spec.settings
    if spec.method != "auto":
        from .methods import METHODS

        if spec.method not in METHODS:
            raise ConfigError(f"method must be auto, {' or '.join(METHODS)}; got {spec.method!r}")
        settings = cfgmod.merge(METHODS[spec.method].settings, shared_deliverable_settings(METHODS[spec.method], settings))
    configs = {name: cfgmod.from_mapping(all_stages[name].config, params, where=f"{name}.")
               for name, params in settings.items()}
    registry = AssetRegistry(stages.all_assets(), models_dir=Path(spec.models_dir) if spec.models_dir else None,
                             overrides=spec.weights)
    root = spec.cache_root
    root.mkdir(parents=True, exist_ok=True)
    return Runner(all_stages, ArtifactStore(root), registry, configs, device=spec.resolved_device(), progress=progress)


def resolve_method(spec: RunSpec) -> tuple[RunSpec, str]:
    """The spec with a concrete method (`auto` decided by which files are present) and why."""
    from .methods import choose

    method, reason = choose(spec.method, lambda m: build_runner(dataclasses.replace(spec, method=m.name)), spec.until)
    return dataclasses.replace(spec, method=method.name), reason
