"""`v2m run --until tracklets` end to end, as a user runs it: a subprocess, exit codes, files on disk."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PYTHONPATH, ROOT, write_video

FAST = ["--set", "detect.imgsz=320", "--set", "detect.max_det=5", "--set", "tracklets.min_len=10"]


def v2m(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    p = subprocess.run([sys.executable, "-m", "video2mesh.flows.cli", *args], capture_output=True, text=True, cwd=ROOT, env=env, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"v2m {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def summary(out: Path, stem: str) -> dict:
    return json.loads((out / stem / "run.json").read_text())


def statuses(s: dict) -> dict[str, str]:
    return {n: r["status"] for n, r in s["stages"].items()}


def test_run_until_tracklets_then_cache_hits_then_param_change(tmp_path, synthetic_video, tiny_yolo):
    base = [str(synthetic_video), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"),
            "--weights", f"yolo={tiny_yolo}", "--until", "tracklets", "--engine", "local", *FAST]
    first = v2m("run", *base)
    s1 = summary(tmp_path / "out", synthetic_video.stem)
    assert statuses(s1) == {"probe": "computed", "detect": "computed", "tracks": "computed", "appearance": "computed",
                            "tracklets": "computed"}
    assert s1["n_frames"] == 40 and s1["stages"]["detect"]["ref"]["rows"] > 0
    assert str(tmp_path / "out" / synthetic_video.stem) in first.stdout

    v2m("run", *base)
    s2 = summary(tmp_path / "out", synthetic_video.stem)
    assert set(statuses(s2).values()) == {"cached"}, "nothing changed: every stage is a cache hit"
    assert {n: r["ref"]["key"] for n, r in s2["stages"].items()} == {n: r["ref"]["key"] for n, r in s1["stages"].items()}

    v2m("run", *base, "--set", "detect.conf=0.2")
    s3 = summary(tmp_path / "out", synthetic_video.stem)
    assert statuses(s3) == {"probe": "cached", "detect": "computed", "tracks": "computed", "appearance": "computed",
                            "tracklets": "computed"}

    v2m("run", *base, "--set", "tracklets.smooth_window=3")
    s4 = summary(tmp_path / "out", synthetic_video.stem)
    assert statuses(s4) == {"probe": "cached", "detect": "cached", "tracks": "cached", "appearance": "cached",
                            "tracklets": "computed"}


def test_sigkill_mid_stage_resumes_byte_identical(tmp_path, tiny_yolo):
    video = write_video(tmp_path / "long.mp4", n_frames=64, size=(320, 240))
    args = lambda cache: [str(video), "--out", str(tmp_path / "out"), "--cache", str(cache), "--weights", f"yolo={tiny_yolo}",  # noqa: E731
                          "--until", "tracklets", "--engine", "local", *FAST, "--set", "detect.chunk_frames=8",
                          "--set", "detect.batch=1"]
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    proc = subprocess.Popen([sys.executable, "-m", "video2mesh.flows.cli", "run", *args(tmp_path / "killed")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    detect_root = tmp_path / "killed" / "videos"
    while time.time() < deadline:
        parts = list(detect_root.glob("*/detect/*/part-*.parquet"))
        if len(parts) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    parts = sorted(detect_root.glob("*/detect/*/part-*.parquet"))
    assert 3 <= len(parts) < 8, f"the kill should land mid-stage, found {len(parts)} parts"
    assert not list(detect_root.glob("*/detect/*/manifest.json")), "a half-written artifact has no manifest"

    v2m("run", *args(tmp_path / "killed"))
    s = summary(tmp_path / "out", "long")
    assert s["stages"]["detect"]["status"] == "resumed"
    assert s["stages"]["detect"]["parts_computed"] == 8 - len(parts)

    v2m("run", *args(tmp_path / "clean"))
    for stage in ("detect", "tracks", "tracklets"):
        a = sorted((tmp_path / "killed" / "videos").glob(f"*/{stage}/*/*"))
        b = sorted((tmp_path / "clean" / "videos").glob(f"*/{stage}/*/*"))
        files = lambda xs: {p.name: p.read_bytes() for p in xs if p.name != "run.json"}  # noqa: E731
        assert files(a) == files(b), f"{stage}: resumed artifacts differ from an uninterrupted run"


def _zero_frame_video(path: Path) -> Path:
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48))
    w.release()
    return path


def test_bad_inputs(tmp_path, tiny_yolo):
    common = ["--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--weights", f"yolo={tiny_yolo}",
              "--until", "tracklets", "--engine", "local", "-q", *FAST]
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video\n" * 50)
    good = write_video(tmp_path / "good.mp4", n_frames=30, size=(160, 120))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[:2000])
    cases = {
        tmp_path / "missing.mp4": "no such file",
        notes: "not a readable video|no decodable frames",
        cut: "not a readable video|no decodable frames",
        _zero_frame_video(tmp_path / "zero.mp4"): "not a readable video|no decodable frames|empty",
    }
    import re

    for path, pattern in cases.items():
        p = v2m("run", str(path), *common, check=False)
        assert p.returncode == 2, (path, p.returncode, p.stderr)
        errors = [ln for ln in p.stderr.splitlines() if "error" in ln]
        assert len(errors) == 1 and re.search(pattern, errors[0]), p.stderr
        assert "Traceback" not in p.stderr
    assert not list((tmp_path / "cache").glob("videos/*/*/*/manifest.json")), "failed runs leave no artifacts"

    # One bad video among good ones: the good one is processed, the exit code says something failed.
    p = v2m("run", str(notes), str(good), *common, check=False)
    assert p.returncode == 1 and (tmp_path / "out" / "good" / "run.json").is_file()

    # No person (the tiny detector's scores are 0.95, so a 0.99 threshold finds nobody): empty, valid.
    v2m("run", str(good), *common, "--set", "detect.conf=0.99")
    s = summary(tmp_path / "out", "good")
    assert s["stages"]["detect"]["ref"]["rows"] == 0 and s["stages"]["tracklets"]["ref"]["rows"] == 0


def test_missing_weights_stop_before_any_work(tmp_path, synthetic_video):
    p = v2m("run", str(synthetic_video), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"),
            "--models-dir", str(tmp_path / "models"), "--until", "tracklets", "--engine", "local", "--method", "smpl",
            check=False)
    assert p.returncode == 3
    assert "yolo11m.pt" in p.stderr and str(tmp_path / "models") in p.stderr and "--weights" in p.stderr
    assert not (tmp_path / "cache" / "videos").exists(), "nothing was computed"

    # auto with neither path's files: one error that names both ways out
    p = v2m("run", str(synthetic_video), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"),
            "--models-dir", str(tmp_path / "models"), "--engine", "local", check=False)
    assert p.returncode == 3 and "no method can run" in p.stderr and "v2m models setup-default" in p.stderr
    assert not (tmp_path / "cache" / "videos").exists()


@pytest.mark.slow
def test_prefect_engine(tmp_path, synthetic_video, tiny_yolo):
    v2m("run", str(synthetic_video), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"),
        "--weights", f"yolo={tiny_yolo}", "--until", "tracklets", "--engine", "prefect", *FAST, timeout=300)
    s = summary(tmp_path / "out", synthetic_video.stem)
    assert statuses(s)["tracklets"] == "computed"
