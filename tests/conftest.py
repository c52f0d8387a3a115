"""Session-wide test environment: everything offline, every tool's home inside a temp folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("V2M_SHARED_DATA") or ROOT.parent / "shared" / "data")


def pytest_configure(config):
    base = Path(os.environ.get("V2M_TEST_HOME") or (ROOT / ".cache" / "test-home"))
    base.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(base / "ultralytics"))
    os.environ.setdefault("PREFECT_HOME", str(base / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests that need it skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"real test material not found at {SHARED} (a user's checkout has no ../shared)")
    return SHARED


@pytest.fixture(scope="session")
def synthetic_smpl_dir(tmp_path_factory) -> Path:
    """A folder with SMPL_NEUTRAL/MALE/FEMALE.pkl in the official layout (licence-free synthetic body)."""
    from models import synthetic_smpl

    d = tmp_path_factory.mktemp("smpl")
    for i, g in enumerate(("NEUTRAL", "MALE", "FEMALE")):
        synthetic_smpl.write(d, g, seed=i)
    return d


def write_video(path: Path, n_frames: int = 40, size: tuple[int, int] = (320, 240), fps: float = 25.0, people: int = 2, seed: int = 0) -> Path:
    """A synthetic mp4 (mp4v) of `people` moving person-like figures on a textured background."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    w, h = size
    bg = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write mp4v here")
    for t in range(n_frames):
        img = bg.copy()
        for p in range(people):
            cx = int(w * (0.25 + 0.5 * p) + 20 * np.sin(0.1 * t + p))
            cy = int(h * 0.55)
            s = h // 6
            color = (60 + 80 * p, 40, 200 - 80 * p)
            cv2.circle(img, (cx, cy - 2 * s), s // 2, color, -1)                           # head
            cv2.rectangle(img, (cx - s // 2, cy - int(1.5 * s)), (cx + s // 2, cy + s // 2), color, -1)  # torso
            cv2.line(img, (cx - s // 4, cy + s // 2), (cx - s // 2, cy + 2 * s), color, 6)  # legs
            cv2.line(img, (cx + s // 4, cy + s // 2), (cx + s // 2, cy + 2 * s), color, 6)
        writer.write(img)
    writer.release()
    return path


def write_tiny_yolo(path: Path) -> Path:
    """A YOLO11n checkpoint from the architecture yaml with random weights whose person-class bias
    is raised so that it outputs boxes (random weights detect nothing otherwise)."""
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO("yolo11n.yaml")
    head = model.model.model[-1]
    with torch.no_grad():
        for seq in head.cv3:
            seq[-1].bias.fill_(-10.0)
            seq[-1].bias[0] = 3.0
    model.save(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_yolo(tmp_path_factory) -> Path:
    return write_tiny_yolo(tmp_path_factory.mktemp("yolo") / "tiny_yolo.pt")


@pytest.fixture(scope="session")
def synthetic_video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "two_people.mp4")
