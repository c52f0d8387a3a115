"""report stage: JSON numbers equal direct metric calls; HTML self-contained; Chromium shows every track."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from video2mesh.models.metrics import motion as mm
from video2mesh.stages import _report_core, report

from .fakes import FPS, TRACKS, make_runner, write_video


@pytest.fixture(scope="module")
def published(tmp_path_factory, synthetic_smpl_dir):
    tmp = tmp_path_factory.mktemp("report")
    video = write_video(tmp / "clip.mp4")
    runner = make_runner(tmp, synthetic_smpl_dir, {"report": report.STAGE})
    paths = report.report_outputs(runner, video, tmp / "out")
    return tmp / "out" / "clip", paths, runner, video


def test_report_json_numbers_match_the_metrics_on_the_mesh_table(published):
    folder, _, runner, video = published
    doc = json.loads((folder / "report.json").read_text())
    assert [t["track_id"] for t in doc["tracks"]] == sorted(TRACKS)
    assert doc["fps"] == pytest.approx(FPS)
    mesh = runner.store.read_df(runner.run(video, until="mesh")["mesh"].ref.path)
    rows = mesh[mesh.track_id == 0].sort_values("frame")
    j = np.stack(rows.joints3d.to_numpy()).reshape(-1, 24, 3).astype(np.float64)
    acc = mm.acceleration_mm(j - j[:, :1])
    t0 = doc["tracks"][0]
    assert t0["accel_mm"]["arm_left"]["mean"] == pytest.approx(acc[:, [13, 16, 18, 20, 22]].mean(), rel=1e-6)
    trans = np.stack(rows.trans.to_numpy()).astype(np.float64)
    root = np.linalg.norm(trans[:-2] - 2 * trans[1:-1] + trans[2:], axis=1) * 1000
    assert t0["accel_mm"]["root"]["max"] == pytest.approx(root.max(), rel=1e-5)
    assert t0["series"]["frame"] == list(range(*TRACKS[0]))
    np.testing.assert_allclose(t0["series"]["accel_mm"]["root"], root, atol=1e-3)
    # fakes: one interpolated frame and one low-score detected frame per track
    for t in doc["tracks"]:
        n = TRACKS[t["track_id"]][1] - TRACKS[t["track_id"]][0]
        assert t["interpolated_share"] == pytest.approx(1 / n)
        assert t["low_score_share"] == pytest.approx(1 / n)
        assert t["uncertainty"]["max"] == pytest.approx(0.1 + 0.01 * (n - 1), rel=1e-5)


def test_html_is_self_contained_and_lists_every_track(published):
    folder, paths, *_ = published
    page = (folder / "report.html").read_text()
    assert not re.search(r'src="(?!data:)', page), "every image must be inlined"
    for tid in TRACKS:
        assert f'id="track-{tid}"' in page
    assert {p.name for p in (folder / "plots").iterdir()} == {"overview.png", "track_000.png", "track_001.png"}
    previews = sorted((folder / "preview").iterdir())
    assert len(previews) == 3


def test_preview_draws_the_mesh_over_the_frame(published):
    import cv2
    folder, *_ = published
    img = cv2.imread(str(sorted((folder / "preview").iterdir())[0]))
    assert img.shape[1] == 480
    # The fake video frames are flat grey with a white digit; a drawn body adds coloured pixels.
    sat = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[:, :, 1]
    assert (sat > 60).mean() > 0.01


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")), reason="chromium not installed")
def test_html_renders_headless_in_chromium(published, tmp_path):
    folder, *_ = published
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    url = (folder / "report.html").as_uri()
    common = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
              f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(common + ["--dump-dom", url], capture_output=True, text=True, timeout=90).stdout
    n_images = len(re.findall(r"<img ", dom))
    assert f'data-images-decoded="{n_images}"' in dom, "some inlined image did not decode"
    for tid in TRACKS:
        assert f"Track {tid}</h2>" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(common + [f"--screenshot={shot}", "--window-size=1100,1400", url], capture_output=True, timeout=90)
    import cv2
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[:2] == (1400, 1100)
    # Chromium's grey error page has no colour; the report's plots and previews do.
    assert (cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[:, :, 1] > 80).mean() > 0.005


@pytest.mark.parametrize("n", [1, 2, 3])
def test_short_tracks_give_valid_json_without_made_up_numbers(n):
    import pandas as pd

    mesh = pd.DataFrame({"frame": np.arange(n), "track_id": 0, "joints3d": [np.zeros(72)] * n,
                         "trans": [np.zeros(3)] * n, "uncertainty": np.full(n, 0.2)})
    trk = pd.DataFrame({"frame": np.arange(n), "score": 0.9, "interpolated": False})
    summary, series = _report_core.track_metrics(mesh, trk, FPS, report.ReportConfig())
    json.dumps(summary, allow_nan=False)
    assert summary["accel_mm"]["head"]["mean"] == (None if n < 3 else 0.0)
    _report_core.track_plot(summary, series)


def test_report_names_the_smpl_method_and_body_model(published):
    folder, *_ = published
    doc = json.loads((folder / "report.json").read_text())
    assert doc["method"] == "SMPL (learned model)" and doc["body_model"] == "SMPL neutral"
    assert doc["joints"] == "SMPL-24 joints"
    page = (folder / "report.html").read_text()
    assert "SMPL (learned model)" in page and "Anny" not in page


def test_no_uncertainty_gives_valid_json():
    """mesh.uncertainty=false (no embedder) leaves `uncertainty` NaN: null in report.json, not a crash
    (found running the whole SMPL path with `--set mesh.uncertainty=false`)."""
    import pandas as pd

    n = 5
    mesh = pd.DataFrame({"frame": np.arange(n), "track_id": 0, "joints3d": [np.zeros(72)] * n,
                         "trans": [np.zeros(3)] * n, "uncertainty": np.full(n, np.nan)})
    trk = pd.DataFrame({"frame": np.arange(n), "score": 0.9, "interpolated": False})
    summary, series = _report_core.track_metrics(mesh, trk, FPS, report.ReportConfig())
    doc = json.loads(json.dumps(summary, allow_nan=False))
    assert doc["series"]["uncertainty"] == [None] * n and doc["uncertainty"]["mean"] is None
    assert doc["series"]["accel_mm"]["root"] == [0.0] * (n - 2)
    _report_core.track_plot(summary, series)
