"""Every way in, on a machine as a new user has it: only the licence-free models (`v2m models
setup-default`), no SMPL-path file at all, a fresh cache. Each entry point picks the method `v2m run`
picks (flows/methods.py `choose`) and checks only that method's weights."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, user_env
from tests.flows.test_bad_inputs import v2m_user

LICENCE_FREE_LINE = "method: licence-free"


def test_watch_starts_on_a_fresh_machine(tmp_path, fresh_models):
    """The reported bug: `v2m watch` demanded yolo, resnet50_spin, ... (exit 3) where `v2m run` works."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    p = v2m_user(["watch", str(inbox), "--out", str(tmp_path / "out"), "--once"], fresh_models, tmp_path / "cache")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stderr.splitlines()[0].startswith(LICENCE_FREE_LINE), p.stderr
    assert "missing" not in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_models_list_says_licence_free_is_ready(tmp_path, fresh_models):
    p = v2m_user(["models", "list"], fresh_models, tmp_path / "cache")
    assert p.returncode == 0, p.stdout + p.stderr
    assert any(ln.startswith("method licence-free") and ln.rstrip().endswith("ready") for ln in p.stdout.splitlines()), \
        p.stdout


def test_run_until_a_licence_free_stage_on_a_fresh_machine(tmp_path, fresh_models):
    """`v2m run --until camera_motion` (a stage only the licence-free path has) picked no method: `auto`
    checked the SMPL path's stages up to it first and stopped on "not a stage of the smpl method"."""
    from tests.conftest import write_video

    video = tmp_path / "v.mp4"
    write_video(video, n_frames=4, size=(64, 48))
    p = v2m_user(["run", str(video), "--until", "camera_motion", "--out", str(tmp_path / "out")], fresh_models,
                 tmp_path / "cache")
    assert p.stderr.splitlines()[0].startswith(LICENCE_FREE_LINE) and "--until camera_motion" in p.stderr, p.stderr
    # the path then runs: this blank clip has nobody in it, which is the pipeline's own input error (exit 2)
    assert p.returncode == 2 and "no person found" in p.stderr and "Traceback" not in p.stderr, p.stdout + p.stderr


def test_nothing_set_up_says_what_to_do(tmp_path):
    """No models at all: every entry point exits 3 with one line naming `v2m models setup-default`."""
    (tmp_path / "inbox").mkdir()
    video = tmp_path / "v.mp4"
    from tests.conftest import write_video

    write_video(video, n_frames=4, size=(64, 48))
    for args in (["run", str(video)], ["watch", str(tmp_path / "inbox"), "--once"], ["export", str(video)],
                 ["report", str(video)]):
        p = v2m_user([*args, "--out", str(tmp_path / "out")], tmp_path / "no-models", tmp_path / "cache")
        assert p.returncode == 3, (args, p.stdout + p.stderr)
        assert "v2m models setup-default" in p.stderr and "Traceback" not in p.stderr
        assert len([ln for ln in p.stderr.splitlines() if ln.strip()]) == 1, p.stderr


@pytest.mark.slow
def test_watch_export_report_on_a_fresh_machine(tmp_path, fresh_models, shared_data):
    """The Must-show: `v2m watch INBOX --out OUT --once` files a shared video under done/ with its outputs;
    then `v2m export` and `v2m report` of the same video publish from the cache (the same method)."""
    inbox, out, cache = tmp_path / "inbox", tmp_path / "out", tmp_path / "cache"
    inbox.mkdir()
    name = "mmhuman3d_single_person_demo.mp4"
    shutil.copyfile(shared_data / "videos" / name, inbox / name)
    p = v2m_user(["watch", str(inbox), "--out", str(out), "--once", "--stable-seconds", "0.5"], fresh_models, cache,
                 timeout=1200)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and "XNNPACK" not in p.stderr and "Warning" not in p.stderr, p.stderr
    assert (inbox / "done" / name).is_file() and not (inbox / "failed").exists()
    sidecar = json.loads((inbox / "done" / f"{name}.v2m.json").read_text())
    folder = Path(sidecar["out_dir"])
    assert folder == out / Path(name).stem
    run = json.loads((folder / "run.json").read_text())
    assert run["method"] == "licence-free" and run["stages"]["fit"]["ref"]["rows"] > 0
    assert (folder / "report.html").is_file() and list(folder.glob("track_*_anny.glb"))

    video = inbox / "done" / name
    for cmd, expect in (("export", "manifest.json"), ("report", "report.html")):
        q = v2m_user([cmd, str(video), "--out", str(tmp_path / cmd)], fresh_models, cache, timeout=600)
        assert q.returncode == 0, q.stdout + q.stderr
        assert q.stderr.startswith(LICENCE_FREE_LINE), q.stderr
        published = tmp_path / cmd / Path(name).stem
        assert (published / expect).read_bytes() == (folder / expect).read_bytes(), f"{cmd}: same file as the run's"
        assert all(s["status"] == "cached" for s in json.loads((published / "run.json").read_text())["stages"].values())

    # every format, asked as on either method (`export.*` carries onto the licence-free path's fit_export)
    formats = ["npz", "bvh", "glb", "usd", "obj"] + (["fbx"] if shutil.which("blender") else [])
    q = v2m_user(["run", str(video), "--out", str(tmp_path / "all"), "--set", f"export.formats=[{','.join(formats)}]",
                  "--set", "export.reference_pose=t"], fresh_models, cache, timeout=900)
    assert q.returncode == 0, q.stdout + q.stderr
    manifest = json.loads((tmp_path / "all" / Path(name).stem / "manifest.json").read_text())
    kinds = {e["kind"] for e in manifest["files"]}
    assert kinds == set(formats), kinds
    for e in manifest["files"]:
        assert e["units"] and e["axes"] and e["fps"] == 12.0 and e["rig"] == "anny", e
        assert ("reference_pose" in e) == (e["kind"] in ("bvh", "glb", "usd", "fbx")), e


@pytest.mark.slow
def test_serve_and_deployment_on_a_fresh_machine(tmp_path, fresh_models):
    """`v2m serve` + `prefect deployment run video-to-mesh/served`, licence-free models only (up to tracklets:
    the method is chosen on that slice, as `v2m run --until tracklets` chooses it)."""
    from tests.conftest import write_video
    from tests.flows.procs import free_port, group, spawn
    from tests.flows.test_deployment import _api, _wait

    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    home = tmp_path / "prefect-home"
    env = user_env(fresh_models, tmp_path / "cache", PREFECT_HOME=str(home), PREFECT_API_URL=api)
    log = tmp_path / "serve.log"
    serve = spawn(["video2mesh.flows.cli", "serve", "--name", "served", "--port", str(port), "--prefect-home", str(home),
                   "--until", "tracklets", "--out", str(tmp_path / "out")], log, **env)
    with group(serve):
        _wait(lambda: _api(f"{api}/deployments/name/video-to-mesh/served"), "the deployment", 300, [(serve, log)])
        video = write_video(tmp_path / "clip one.mp4", n_frames=30, size=(160, 120))
        r = subprocess.run([sys.executable, "-m", "prefect", "deployment", "run", "video-to-mesh/served", "--param",
                            f"video={video}", "--watch", "--watch-interval", "1", "--watch-timeout", "300"],
                           cwd=ROOT, env={**env}, capture_output=True, text=True, timeout=360)
        assert r.returncode == 0 and "Completed" in r.stdout + r.stderr, r.stdout + r.stderr + log.read_text()[-3000:]
        run = json.loads((tmp_path / "out" / "clip one" / "run.json").read_text())
        assert run["method"] == "licence-free" and set(run["stages"]) == {"probe", "detect", "tracks", "appearance", "tracklets"}
        assert log.read_text().count(LICENCE_FREE_LINE) >= 1


def _older_models_folder(tmp_path: Path, fresh_models: Path, missing: tuple[str, ...]):
    """(models folder holding every licence-free file but `missing`, a 4-frame video), and the check that
    `v2m run` stops before any work with one stderr line naming `names` and `v2m models setup-default`."""
    from tests.conftest import LICENCE_FREE_FILES, write_video

    old = tmp_path / "old-models"
    old.mkdir()
    for n in LICENCE_FREE_FILES:
        if n not in missing:
            (old / n).symlink_to((fresh_models / n).resolve())
    video = tmp_path / "v.mp4"
    write_video(video, n_frames=4, size=(64, 48))

    def stops_naming(names: str) -> None:
        p = v2m_user(["run", str(video), "--out", str(tmp_path / "out")], old, tmp_path / "cache")
        assert p.returncode == 3, p.stdout + p.stderr
        assert names in p.stderr and "v2m models setup-default" in p.stderr
        assert len([ln for ln in p.stderr.splitlines() if ln.strip()]) == 1 and "Traceback" not in p.stderr, p.stderr
        assert not (tmp_path / "cache" / "videos").exists()

    return old, video, stops_naming


def test_missing_hand_files_say_what_to_do(tmp_path, fresh_models):
    """A models folder set up before hands existed (BlazePose + Anny, no hand files): `v2m run` stops
    before any work with one line naming the hand files and `v2m models setup-default`; with
    hands.enabled=false nothing asks for them."""
    old, video, stops_naming = _older_models_folder(tmp_path, fresh_models, ("palm_detection_full.tflite",
                                                                             "hand_landmark_full.tflite"))
    stops_naming("hand_palm_detector, hand_landmark")
    p = v2m_user(["models", "list"], old, tmp_path / "cache")
    assert "method licence-free  needs hand_palm_detector, hand_landmark" in p.stdout, p.stdout
    # hands off: no hand file is asked for (the 4-frame clip has nobody in it: exit 2, not 3)
    p = v2m_user(["run", str(video), "--out", str(tmp_path / "out"), "--set", "hands.enabled=false"], old, tmp_path / "cache")
    assert p.returncode == 2 and "hand_landmark" not in p.stderr, p.stdout + p.stderr


def test_missing_person_detector_files_say_what_to_do(tmp_path, fresh_models):
    """A models folder set up before the licence-free path used MoveNet (everything else present): `v2m run`
    stops before any work with one line naming MoveNet's files and `v2m models setup-default`; with
    detect.movenet_every=0 nothing asks for them."""
    old, video, stops_naming = _older_models_folder(tmp_path, fresh_models, ("movenet-multipose.json",
                                                                             "movenet-multipose.bin"))
    stops_naming("movenet_multipose_graph, movenet_multipose_weights")
    p = v2m_user(["run", str(video), "--out", str(tmp_path / "out"), "--set", "detect.movenet_every=0"], old,
                 tmp_path / "cache")
    assert p.returncode == 2 and "movenet" not in p.stderr, p.stdout + p.stderr
