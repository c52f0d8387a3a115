"""Videos as users have them, end to end through `v2m run` (default engine, licence-free models only):
a file name with a space and an accent, variable frame rate, 4K, a phone video stored sideways with
a rotation in its metadata, and a cut-off download; then no person, and a stage that fails.

One run takes the good videos together (they share the cache and the Prefect start), with cheaper
detection and fit settings (CHEAPER: not what these tests are about); all are slow.
Needs ffmpeg and ../shared/data (the person clip); each skips with the reason otherwise.
"""
from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from tests.conftest import write_video
from tests.flows.test_bad_inputs import FFMPEG, _ffmpeg, assert_one_line_error, v2m_user

pytestmark = pytest.mark.slow

UNICODE = "Take 01 é.mp4"


@pytest.fixture(scope="module")
def videos(tmp_path_factory, shared_data) -> dict[str, Path]:
    """The shared person clip at 360x640 (take01.mp4) and the user variants of it."""
    if FFMPEG is None:
        pytest.skip("ffmpeg is not installed: it makes the variable-rate, 4K and rotated variants")
    d = tmp_path_factory.mktemp("user-videos")
    src = shared_data / "videos" / "mmhuman3d_single_person_demo.mp4"
    enc = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    v = {"take01": d / "take01.mp4"}
    _ffmpeg("-i", str(src), "-vf", "scale=360:640", *enc, str(v["take01"]))
    v["unicode"] = d / UNICODE
    shutil.copyfile(v["take01"], v["unicode"])
    v["vfr"] = d / "vfr.mp4"  # frames 20.. come 1.5x further apart
    _ffmpeg("-i", str(v["take01"]), "-vf", "setpts='if(lt(N,20),N/12/TB,(20+(N-20)*1.5)/12/TB)'", "-fps_mode", "vfr",
            *enc, str(v["vfr"]))
    v["4k"] = d / "4k.mp4"
    _ffmpeg("-i", str(v["take01"]), "-vf", "scale=2160:3840", "-frames:v", "26", *enc, str(v["4k"]))
    # A phone's portrait video: pixels stored landscape (turned 90 degrees), a rotation in the metadata.
    sideways = d / "sideways-pixels.mp4"
    _ffmpeg("-i", str(v["take01"]), "-vf", "transpose=1", *enc, str(sideways))
    v["rotated"] = d / "rotated.mp4"
    _ffmpeg("-i", str(sideways), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(v["rotated"]))
    v["cut"] = d / "cut.mp4"  # a download cut at 70%: index first (faststart), the last frames missing
    faststart = d / "faststart.mp4"
    _ffmpeg("-i", str(v["take01"]), "-c", "copy", "-movflags", "faststart", str(faststart))
    v["cut"].write_bytes(faststart.read_bytes()[: int(faststart.stat().st_size * 0.7)])
    return v


# What these tests are about is the input (names, frame timing, size, rotation, a cut file), so the costly
# steps that do not look at it run cheaper: the whole-frame detector alone (no tiles or tracking ROIs,
# docs/detection.md; it finds this clip's one person in every frame), a shorter fit (60 pose steps, no
# L-BFGS polish; it only has to give rows and overlays that upright and rotated share) and every 20th
# frame's OBJ (~1 MB each, written from the fit alone). Every stage still decodes every video, and the
# report still draws its overlay video. All run at their defaults end to end in test_fresh_machine.py.
CHEAPER = ["--set", "detect.tiles=0", "--set", "detect.track=false", "--set", "fit.iters_pose=60",
           "--set", "fit.polish_iters=0", "--set", "fit_export.obj_stride=20"]


@pytest.fixture(scope="module")
def good_run(videos, fresh_models, tmp_path_factory):
    d = tmp_path_factory.mktemp("good-run")
    names = ["take01", "unicode", "vfr", "4k", "rotated", "cut"]
    p = v2m_user(["run", *[str(videos[n]) for n in names], "--out", str(d / "out"), *CHEAPER], fresh_models,
                 d / "cache", timeout=1800)
    return p, d / "out"


def _published(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_good_videos_all_run(good_run, videos):
    p, out = good_run
    assert p.returncode == 0, p.stdout + p.stderr
    text = p.stdout + p.stderr
    assert "Traceback" not in text and "Warning" not in text and "XNNPACK" not in text, text
    for name in ("take01", "Take 01 é", "vfr", "4k", "rotated", "cut"):
        run = json.loads((out / name / "run.json").read_text())
        assert (out / name / "report.html").is_file() and list((out / name).glob("track_*_anny.glb")), name
        assert run["stages"]["fit"]["ref"]["rows"] > 0, f"{name}: a person was fitted"
    sizes = {n: json.loads((out / n / "run.json").read_text())["size"] for n in ("take01", "4k", "rotated")}
    assert sizes == {"take01": [360, 640], "4k": [2160, 3840], "rotated": [360, 640]}, "sizes as displayed (upright)"
    cut = json.loads((out / "cut" / "run.json").read_text())
    assert 0 < cut["n_frames"] < 40, "a cut file runs on the frames it has"


def test_unicode_name_gives_the_same_outputs(good_run):
    """`Take 01 é.mp4` and `take01.mp4` (same bytes): the same published files, byte for byte, except the
    file name inside manifest.json and run.json."""
    _, out = good_run
    a, b = _published(out / "take01"), _published(out / "Take 01 é")
    assert sorted(a) == sorted(b)
    for rel in a:
        if rel in ("manifest.json", "run.json"):
            ja, jb = json.loads(a[rel]), json.loads(b[rel])
            for j in (ja, jb):
                j.pop("video", None)
                j.pop("published", None)
            if rel == "run.json":  # the second ran from the first's cache: same artifacts, other statuses/times
                assert ja.keys() == jb.keys() and ja["settings"] == jb["settings"]
                assert {n: r["ref"] for n, r in ja["stages"].items()} == {n: r["ref"] for n, r in jb["stages"].items()}
            else:
                assert ja == jb
        else:
            assert a[rel] == b[rel], f"{rel} differs"


def _keypoints(out: Path, name: str) -> pd.DataFrame:
    from video2mesh.pipeline.store import ArtifactStore

    run = json.loads((out / name / "run.json").read_text())
    df = ArtifactStore(Path(run["cache_root"])).read_df(run["stages"]["blazepose"]["ref"]["path"])
    return df.sort_values(["track_id", "frame"]).reset_index(drop=True)


def test_rotated_phone_video_is_upright_and_overlays_line_up(good_run):
    """The sideways-stored video decodes upright: its 2D keypoints and its report's preview frames (the
    fitted body drawn over the video) match the upright original's, up to re-encoding noise."""
    _, out = good_run
    up, rot = _keypoints(out, "take01"), _keypoints(out, "rotated")
    assert up["frame"].tolist() == rot["frame"].tolist()
    a, b = (np.stack([np.asarray(v, dtype=float) for v in df["keypoints"]]).reshape(len(df), 17, 3)[..., :2]
            for df in (up, rot))  # COCO-17 (x px, y px)
    assert np.nanmedian(np.abs(a - b)) < 6.0, "keypoints in the same upright pixel frame (a sideways decode is ~100 px off)"
    for png in sorted((out / "take01" / "preview").glob("*.png")):
        pa, pb = cv2.imread(str(png)), cv2.imread(str(out / "rotated" / "preview" / png.name))
        assert pa.shape == pb.shape and np.abs(pa.astype(int) - pb.astype(int)).mean() < 8, png.name


def test_no_person_is_an_input_error(tmp_path, fresh_models):
    video = write_video(tmp_path / "empty room.mp4", n_frames=30, size=(160, 120), people=0)
    p = v2m_user(["run", str(video), "--out", str(tmp_path / "out")], fresh_models, tmp_path / "cache")
    assert_one_line_error(p, 2, video.name, "no person found")
    assert not (tmp_path / "out").exists()


def test_stage_failure_names_stage_file_and_log(tmp_path, fresh_models):
    """A stage that raises (here `tracks`, broken by a sitecustomize hook): exit 4, one line with the
    stage, the file and the log file; the traceback is in that log file, not on the terminal."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent("""
        import dataclasses
        import video2mesh.stages.tracks as tracks

        def boom(ctx, cfg, chunk):
            raise RuntimeError("injected failure")

        tracks.STAGE = dataclasses.replace(tracks.STAGE, compute=boom)
    """))
    video = write_video(tmp_path / "clip.mp4", n_frames=12, size=(96, 64))
    for engine in ("prefect", "local"):
        p = v2m_user(["run", str(video), "--out", str(tmp_path / "out"), "--engine", engine], fresh_models,
                     tmp_path / "cache", hook=hook)
        line = assert_one_line_error(p, 4, video.name, "stage 'tracks' failed", "RuntimeError: injected failure")
        log = Path(line.rsplit("the traceback is in ", 1)[1])
        assert log.is_file() and log.parent == tmp_path / "cache" / "logs", line
        assert "Traceback" in log.read_text() and "injected failure" in log.read_text()
        assert not (tmp_path / "out").exists()
