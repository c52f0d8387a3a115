"""What a user gets for a bad input or setting, run as a user runs it: `v2m run FILE` in a subprocess,
the default (Prefect) engine, a models folder with only the licence-free files.

Each case asserts the exit code, one `v2m: error:` line that names the file once, nothing else on
the terminal (no traceback, no banner) and no output folder. Inputs that fail the two-frame check
exit before Prefect starts (a few seconds each); the cases that need stages to run are marked slow.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import ROOT, user_env, write_video

FFMPEG = shutil.which("ffmpeg")


def v2m_user(args: list[str], models: Path, cache: Path, timeout: float = 900,
             hook: Path | None = None) -> subprocess.CompletedProcess:
    """`v2m ARGS` as a new user runs it (`hook`: a folder put first on PYTHONPATH, e.g. a sitecustomize)."""
    env = user_env(models, cache)
    if hook is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(hook), env["PYTHONPATH"]])
    return subprocess.run([sys.executable, "-m", "video2mesh.flows.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


def assert_one_line_error(p: subprocess.CompletedProcess, code: int, name: str | None, *needles: str) -> str:
    """Exit `code`; stderr is the method line (if any) and one error line naming `name` once; returns it."""
    text = p.stdout + p.stderr
    assert p.returncode == code, f"exit {p.returncode}, expected {code}:\n{text}"
    assert "Traceback" not in text and "Warning" not in text and "INFO" not in text, text
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("v2m: error: ")]
    assert len(errors) == 1 and all(ln in errors or ln.startswith("method: ") for ln in lines), text
    assert not p.stdout.strip(), text
    line = errors[0]
    if name is not None:
        assert line.count(name) == 1, f"the file is named once: {line}"
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-v", "error", "-y", *args], check=True, capture_output=True, timeout=120)


def make_input(kind: str, folder: Path, clip: Path) -> Path:
    """The bad input `kind` in `folder` (`clip`: a small valid video to cut or copy)."""
    if kind == "missing":
        return folder / "missing.mp4"
    if kind == "folder":
        (folder / "a folder.mp4").mkdir()
        return folder / "a folder.mp4"
    if kind == "empty":
        (folder / "empty.mp4").write_bytes(b"")
        return folder / "empty.mp4"
    if kind == "random":
        (folder / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 65536, dtype=np.uint8).tobytes())
        return folder / "random.mp4"
    if kind == "text":
        (folder / "notes.mp4").write_text("not a video\n" * 100)
        return folder / "notes.mp4"
    if kind == "truncated":
        data = clip.read_bytes()
        (folder / "cut.mp4").write_bytes(data[: len(data) // 2])  # OpenCV's mp4v writes its index (moov) last
        return folder / "cut.mp4"
    if kind == "jpeg":
        ok, frame = cv2.VideoCapture(str(clip)).read()
        cv2.imwrite(str(folder / "photo.jpg"), frame)
        return folder / "photo.jpg"
    if kind == "zero-frame":
        cv2.VideoWriter(str(folder / "zero.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48)).release()
        return folder / "zero.mp4"
    if kind == "audio-only":
        if FFMPEG is None:
            pytest.skip("ffmpeg is not installed: no way to make an audio-only mp4 here")
        _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(folder / "voice.mp4"))
        return folder / "voice.mp4"
    raise ValueError(kind)


CASES = {  # kind: what the one line must say
    "missing": "no such file",
    "folder": "is a folder",
    "empty": "is empty",
    "random": "not a readable video",
    "text": "not a readable video",
    "audio-only": "not a readable video",
    "truncated": "not a readable video",
    "jpeg": "single frame",
    "zero-frame": "not a readable video",
}


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", n_frames=8, size=(96, 64))


@pytest.mark.parametrize("kind", list(CASES))
def test_bad_file(kind, tmp_path, clip, fresh_models):
    video = make_input(kind, tmp_path, clip)
    out = tmp_path / "out"
    p = v2m_user(["run", str(video), "--out", str(out)], fresh_models, tmp_path / "cache")
    assert_one_line_error(p, 2, video.name, CASES[kind])
    assert not out.exists(), "no output folder for a failed input"


SETTINGS = {  # --set ...: what the one line must say
    "fit.iters_pose=-5": "fit.iters_pose=-5 is out of range: allowed 2 <= iters_pose <= 100000",
    "detect.conf=1.5": "detect.conf=1.5 is out of range: allowed 0 <= conf <= 1",
    "tracklets.min_len=abc": "tracklets.min_len: expected an integer",
    "fit.no_such_key=1": "unknown config key(s) fit.no_such_key",
    "nostage.x=1": "unknown stage(s) ['nostage']",
    "fit_report.jitter_cutoff_hz=0": "allowed 0 < jitter_cutoff_hz",
}


@pytest.mark.parametrize("setting, engine", [(s, "prefect") for s in SETTINGS] + [("fit.iters_pose=-5", "local")])
def test_bad_setting_before_any_work(setting, engine, tmp_path, clip, fresh_models):
    """Checked before any work: the same line from either engine (one case for the local one: same code path)."""
    p = v2m_user(["run", str(clip), "--out", str(tmp_path / "out"), "--set", setting, "--engine", engine],
                 fresh_models, tmp_path / "cache")
    assert_one_line_error(p, 2, None, SETTINGS[setting])
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "cache" / "videos").exists(), "nothing was computed"


def test_bad_options(tmp_path, clip, fresh_models):
    for args, needle in ((["--until", "nostage"], "--until 'nostage': no such stage"),
                         (["--device", "tpu"], "--device must be cpu, cuda, cuda:N or auto"),
                         (["--config", str(tmp_path / "none.yaml")], "none.yaml does not exist")):
        p = v2m_user(["run", str(clip), "--out", str(tmp_path / "out"), *args], fresh_models, tmp_path / "cache")
        assert_one_line_error(p, 2, None, needle)
        assert not (tmp_path / "out").exists()
