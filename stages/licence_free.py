"""The licence-free default path: BlazePose keypoints -> Anny fit, set up from package registries only.

- `setup_default_models()` (CLI: `v2m models setup-default`, Makefile `setup`): `pip download`s the
  mediapipe wheel (PyPI, no install: mediapipe itself would downgrade numpy and break pandas/pyarrow),
  extracts the two BlazePose .tflite files into the models folder, checks their sha256 against the
  asset registry, and builds Anny's model cache (~80 s once, ~800 MB) beside them.
- `licence_free_available(registry)`: whether this path can run now, and why not.
- `STAGES`: the stage names of this path, in order; `OUTPUT_STAGES`: its file-table stages
  (`fit_export`, `fit_report`), published by stages.fit_export.fit_export_outputs and
  stages.fit_report.fit_report_outputs.
Nothing here touches the network unless `setup_default_models` is called.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from video2mesh.pipeline.assets import AssetRegistry, default_models_dir
from video2mesh.pipeline.errors import AssetMissing
from video2mesh.pipeline.hashing import sha256_file

from .blazepose import ASSETS, MEDIAPIPE_VERSION, WHEEL_MEMBERS

log = logging.getLogger(__name__)

STAGES = ("probe", "tracklets", "blazepose", "fit", "camera_motion", "world")
OUTPUT_STAGES = ("fit_export", "fit_report")
BODY_MODEL = "anny"
ASSET_NAMES = tuple(a.name for a in ASSETS)


def anny_cache_dir(models_dir: str | os.PathLike | None = None) -> Path:
    """Anny's build cache: `<models folder>/anny_cache` (never inside the repository)."""
    from video2mesh.models.body.anny_body import default_cache_dir

    return default_cache_dir(Path(models_dir) if models_dir else default_models_dir())


def _anny_importable() -> tuple[bool, str]:
    try:
        import ai_edge_litert  # noqa: F401
    except ImportError:
        return False, "the Python package ai-edge-litert is not installed (pip install ai-edge-litert)"
    try:
        import anny  # noqa: F401
    except ImportError:
        return False, "the Python package anny is not installed (pip install anny)"
    return True, ""


def licence_free_available(registry: AssetRegistry) -> tuple[bool, str]:
    """(True, summary) when the BlazePose files are present and the packages import, else (False, why)."""
    ok, why = _anny_importable()
    if not ok:
        return False, why
    missing = [n for n in ASSET_NAMES if not registry.status(n).present]
    if missing:
        return False, (f"missing {', '.join(missing)} in {registry.models_dir}; "
                       "run `v2m models setup-default` once (downloads the mediapipe wheel from PyPI)")
    return True, f"licence-free path: BlazePose (MediaPipe {MEDIAPIPE_VERSION}, Apache-2.0) + Anny body model (Apache-2.0 / CC0)"


def extract_from_wheel(wheel: str | os.PathLike, models_dir: str | os.PathLike) -> dict[str, Path]:
    """Copy the two .tflite members of a mediapipe wheel into `models_dir`; verify their sha256."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    with zipfile.ZipFile(wheel) as z:
        for asset in ASSETS:
            dest = models_dir / asset.filename
            tmp = dest.with_name(dest.name + ".part")
            try:
                tmp.write_bytes(z.read(WHEEL_MEMBERS[asset.name]))
            except KeyError:
                raise AssetMissing(f"{wheel} has no {WHEEL_MEMBERS[asset.name]}; is it mediapipe=={MEDIAPIPE_VERSION}?") from None
            got = sha256_file(tmp)
            if asset.sha256 and got != asset.sha256:
                tmp.unlink(missing_ok=True)
                raise AssetMissing(f"{asset.name}: extracted file has sha256 {got}, expected {asset.sha256}; nothing was saved")
            os.replace(tmp, dest)
            out[asset.name] = dest
    return out


def setup_default_models(models_dir: str | os.PathLike | None = None, build_body_model: bool = True,
                         wheel: str | os.PathLike | None = None, timeout_s: float = 600.0) -> dict[str, Path]:
    """Put everything the licence-free path needs into the models folder (idempotent).

    Downloads `mediapipe==0.10.21` (manylinux x86-64, CPython 3.11 wheel; the .tflite files are the
    same in every platform's wheel) with `pip download --no-deps` unless `wheel` is given, extracts
    the two models, and (optionally) builds Anny's cache. Returns {asset name: path}.
    """
    models_dir = Path(models_dir) if models_dir else default_models_dir()
    registry = AssetRegistry(ASSETS, models_dir=models_dir)
    present = all(registry.status(a.name).present and sha256_file(registry.path(a.name)) == a.sha256 for a in ASSETS)
    if present:
        paths = {a.name: registry.path(a.name) for a in ASSETS}
    elif wheel is not None:
        paths = extract_from_wheel(wheel, models_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="v2m-mediapipe-") as tmp:
            cmd = [sys.executable, "-m", "pip", "download", f"mediapipe=={MEDIAPIPE_VERSION}", "--no-deps",
                   "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                   "-d", tmp, "-q"]
            log.info("fetching the mediapipe wheel from the package index: %s", " ".join(cmd))
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
            wheels = list(Path(tmp).glob("mediapipe-*.whl"))
            if r.returncode != 0 or not wheels:
                raise AssetMissing(
                    f"pip could not download mediapipe=={MEDIAPIPE_VERSION}: {r.stderr.strip()[-500:]}\n"
                    f"On a machine with access to PyPI run `pip download mediapipe=={MEDIAPIPE_VERSION} --no-deps "
                    f"--only-binary=:all: -d DIR`, then `v2m models setup-default --wheel DIR/<the .whl>` here.")
            paths = extract_from_wheel(wheels[0], models_dir)
    if build_body_model:
        from video2mesh.models.body.anny_body import AnnyBody

        log.info("building the Anny body model cache in %s (first time ~80 s)", anny_cache_dir(models_dir))
        AnnyBody.load(anny_cache_dir(models_dir))
    return paths
