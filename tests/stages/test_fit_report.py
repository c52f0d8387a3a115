"""fit_report stage: the shared report on the licence-free path's `fit`, numbers against closed forms.

Motion (COCO-17 keypoints3d, camera metres): a static skeleton plus
- constant velocity v of every keypoint and of the root: zero acceleration and jitter everywhere, and
  feet always in contact sliding |v_xz| mm/frame;
- a sinusoid x(f) = A sin(w f) of the left wrist only (relative to the hip midpoint) and of the root's
  depth (amplitude B): second difference -4 A sin^2(w/2) sin(w f), so the wrist's acceleration is
  4 A sin^2(w/2) |sin(w f)| m/frame^2 (arm_left = the mean of elbow and wrist = half of it).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import cv2
import numpy as np
import pandas as pd
import pytest

from video2mesh.models.metrics import motion as mm
from video2mesh.pipeline.assets import AssetRegistry, default_models_dir
from video2mesh.pipeline.runner import Runner
from video2mesh.pipeline.store import ArtifactStore
from video2mesh.stages import fit_report, probe
from video2mesh.stages._report_core import MotionReportConfig, track_metrics

from tests.browser import canvas_pixels, chromium, inspect_page
from video2mesh.pipeline.viewer_lib import HOW, viewer_bundle

from .fakes import FAKE_TRACKLETS, FPS, TRACKS, write_video
from .fit_fakes import fake_fit_stage, fit_frame, rig_params, world_stages
from .licence_free_helpers import anny_body

A, B, W = 0.05, 0.1, 2 * np.pi / 10        # metres, metres, rad/frame (2.5 Hz at 25 fps: below the jitter cutoff)
V = np.array([0.01, 0.0, 0.02])             # m/frame, camera axes (horizontal: x and z)


def skeleton() -> np.ndarray:
    """A static COCO-17 skeleton (17, 3), camera axes (y down), around 4 m depth."""
    rng = np.random.default_rng(0)
    kp = rng.uniform(-0.3, 0.3, (17, 3)) + [0.0, 0.0, 4.0]
    kp[15, 1] = kp[16, 1] = 0.9                 # ankles lowest (largest y)
    return kp


def constant_velocity(tid, frames):
    f = frames.astype(np.float64)[:, None]
    kp = skeleton()[None] + f[:, :, None] * V
    return kp, np.array([0.0, 0.0, 4.0]) + f * V


def sinusoid(tid, frames):
    f = frames.astype(np.float64)
    kp = np.repeat(skeleton()[None], len(f), 0)
    kp[:, 9, 0] += A * np.sin(W * f)
    transl = np.stack([0 * f, 0 * f, 4.0 + B * np.sin(W * f)], 1)
    return kp, transl


def closed_form_mm(amp, frames):
    f = frames[1:-1].astype(np.float64)
    return 4 * amp * np.sin(W / 2) ** 2 * np.abs(np.sin(W * f)) * 1000


def metrics(motion_fn, frames, conf=None):
    fit = fit_frame({0: frames}, keypoints3d=motion_fn, confidence=conf)   # in memory: float64 keypoints
    trk = pd.DataFrame({"frame": frames, "score": 0.9, "interpolated": False})
    return track_metrics(fit_report.fit_motion(fit), trk, FPS, MotionReportConfig(), mm.COCO_17, ("residual_px",))


def test_constant_velocity_has_zero_acceleration_and_slides_at_v():
    frames = np.arange(12)
    s, _ = metrics(constant_velocity, frames)
    for part, st in s["accel_mm"].items():
        assert st["max"] == pytest.approx(0.0, abs=1e-9), part
    assert all(v == pytest.approx(0.0, abs=1e-9) for v in s["jitter_mm"].values())
    assert set(s["foot"]) == {"ankle_left", "ankle_right"}
    for foot in s["foot"].values():
        assert foot["contact_share"] == 1.0
        assert foot["sliding_mm"] == pytest.approx(np.hypot(V[0], V[2]) * 1000, abs=1e-4)   # JSON keeps 4 decimals


def test_sinusoid_acceleration_equals_the_closed_form():
    frames = np.arange(12)                       # 10 accelerations = exactly one period: no leakage
    conf = lambda tid, fr: np.linspace(0.5, 1.0, len(fr))   # noqa: E731
    s, series = metrics(sinusoid, frames, conf)
    wrist = closed_form_mm(A, frames)
    np.testing.assert_allclose(series["accel_arm_left"], wrist / 2, atol=1e-9)
    np.testing.assert_allclose(series["accel_root"], closed_form_mm(B, frames), atol=1e-9)
    assert s["accel_mm"]["arm_left"]["mean"] == pytest.approx(wrist.mean() / 2, rel=1e-9)
    assert s["accel_mm"]["root"]["max"] == pytest.approx(closed_form_mm(B, frames).max(), rel=1e-9)
    for part in ("torso", "head", "arm_right", "leg_left", "leg_right"):
        assert s["accel_mm"][part]["max"] == pytest.approx(0.0, abs=1e-9)
    assert s["jitter_ratio"]["arm_left"] == pytest.approx(0.0, abs=1e-9)     # 2.5 Hz < 6 Hz cutoff
    # uncertainty = 1 - confidence; residual_px summarised as it is
    assert s["uncertainty"]["max"] == pytest.approx(0.5, rel=1e-6) and s["uncertainty"]["median"] == pytest.approx(0.25, rel=1e-6)
    assert s["residual_px"]["max"] == pytest.approx(2.0, rel=1e-6)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    body = anny_body()
    tmp = tmp_path_factory.mktemp("fit_report")
    video = write_video(tmp / "clip.mp4")
    tracks = {tid: np.arange(a, b) for tid, (a, b) in TRACKS.items()}

    def rig_and_motion(tid, frames):
        return rig_params(body, tid, frames)

    fit = fit_frame(tracks, rig=rig_and_motion, keypoints3d=lambda tid, fr: sinusoid(tid, fr) if tid == 0 else constant_velocity(tid, fr))
    extra, configs = world_stages("camera")
    runner = Runner(stages={"probe": probe.STAGE, "tracklets": FAKE_TRACKLETS, "fit": fake_fit_stage(fit),
                            "fit_report": fit_report.STAGE, **extra},
                    store=ArtifactStore(tmp / "cache"), registry=AssetRegistry([], models_dir=default_models_dir()),
                    configs={"fit_report": MotionReportConfig(preview_frames=2), **configs})
    paths = fit_report.fit_report_outputs(runner, video, tmp / "out")
    return tmp / "out" / "clip", paths


def test_report_json_names_the_method_and_holds_the_closed_form(published):
    folder, _ = published
    doc = json.loads((folder / "report.json").read_text())
    assert doc["method"] == "Anny fit (licence-free)" and doc["body_model"] == "anny"
    assert doc["joints"] == "COCO-17 keypoints" and "confidence" in doc["uncertainty"]
    assert [t["track_id"] for t in doc["tracks"]] == sorted(TRACKS)
    t0, t1 = doc["tracks"]
    frames = np.arange(*TRACKS[0])
    # keypoints3d are stored as float32 in the artifact: ~1e-6 m rounding at 4 m depth
    assert t0["accel_mm"]["arm_left"]["max"] == pytest.approx(closed_form_mm(A, frames).max() / 2, abs=0.01)
    np.testing.assert_allclose(t0["series"]["accel_mm"]["root"], closed_form_mm(B, frames), atol=0.01)
    assert all(st["max"] < 0.01 for st in t1["accel_mm"].values())
    # the fake tracklets: one interpolated and one low-score frame per track
    assert t0["interpolated_share"] == pytest.approx(1 / len(frames))
    assert t0["low_score_share"] == pytest.approx(1 / len(frames))


def test_html_names_the_method_and_shows_every_track_and_preview(published):
    folder, paths = published
    page = (folder / "report.html").read_text()
    assert "Anny fit (licence-free)" in page and "SMPL" not in page
    # images inlined; the video and the viewer's library are files beside the page
    assert sorted(set(re.findall(r'src="(?!data:)([^"]*)"', page))) == ["overlay.mp4", "viewer/three-viewer.js"][:1 + (viewer_bundle() is not None)]
    for ref in re.findall(r'src="(?!data:)([^"]*)"', page):
        assert (folder / ref).is_file()
    for tid in TRACKS:
        assert f'id="track-{tid}"' in page and f'id="verdict-{tid}"' in page
    assert {p.name for p in (folder / "plots").iterdir()} == {"overview.png", "track_000.png", "track_001.png"}
    assert {p.name for p in (folder / "thumbs").iterdir()} == {"track_000.png", "track_001.png"}
    previews = sorted((folder / "preview").iterdir())
    assert len(previews) == 2
    import cv2
    img = cv2.imread(str(previews[0]))
    # grey frames with a white digit; the drawn Anny meshes add coloured pixels
    assert (cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[:, :, 1] > 60).mean() > 0.01


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")), reason="chromium not installed")
def test_html_renders_headless_in_chromium(published, tmp_path):
    folder, _ = published
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (folder / "report.html").as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=90).stdout
    n_images = len(re.findall(r"<img ", dom))
    assert n_images == 2 + 1 + 2 + 2 and f'data-images-decoded="{n_images}"' in dom   # previews, overview, track plots, thumbnails
    for tid in TRACKS:
        assert f"Track {tid}</h2>" in dom
    assert "Anny fit (licence-free)" in dom


def test_report_json_has_a_verdict_per_track(published):
    folder, _ = published
    doc = json.loads((folder / "report.json").read_text())
    for t in doc["tracks"]:
        assert t["verdict"]["verdict"] in ("usable", "check", "redo")
        # the fakes: 12 and 7 frames at 25 fps, under 2 s: both say so
        assert any("short track" in r["why"] and r["try"].startswith("--set") for r in t["verdict"]["reasons"])


@pytest.mark.skipif(chromium() is None, reason="chromium not installed")
def test_report_plays_and_draws_in_headless_chromium_offline(published):
    """Network blocked: the video plays (H.264 decodes), no console errors, the 3D canvas is not blank."""
    folder, _ = published
    res = inspect_page(folder / "report.html")
    assert res["console_errors"] == [] and res["pageErrors"] is None
    assert res["network"] == []
    assert res["error"] is None and res["readyState"] >= 2 and res["played"] is True
    assert res["duration"] == pytest.approx(12 / FPS, abs=0.05) and res["currentTime"] > 0.2
    if viewer_bundle() is None:
        pytest.skip(f"3D viewer not set up: {HOW}")
    assert res["viewer"] == "ok"
    assert abs(int(res["viewerFrame"]) - res["currentTime"] * FPS) <= 2     # the 3D view follows the video's clock
    px = canvas_pixels(res)
    assert px.shape[0] > 200 and px.shape[1] > 200
    hsv = cv2.cvtColor(px, cv2.COLOR_BGR2HSV)
    assert (hsv[..., 1] > 80).mean() > 0.002          # the tracks' coloured skeletons (floor and sky are grey)
    assert px.std() > 5                                # not a blank canvas
