"""Two processes run the same video on one cache root at the same time (scale-out's contract)."""
from __future__ import annotations

import json
import sys
import subprocess

import pytest

from tests.conftest import ROOT, write_video
from tests.flows.procs import env
from tests.flows.test_run import FAST


@pytest.mark.slow
def test_two_concurrent_runs_compute_each_stage_once(tmp_path, tiny_yolo):
    video = write_video(tmp_path / "same.mp4", n_frames=24, size=(160, 120))
    cache = tmp_path / "cache"
    procs = []
    try:
        for i in range(2):
            args = ["run", str(video), "--out", str(tmp_path / f"out{i}"), "--cache", str(cache), "--weights",
                    f"yolo={tiny_yolo}", "--until", "tracklets", "--engine", "local", "-q", *FAST,
                    "--set", "detect.imgsz=160", "--set", "detect.chunk_frames=8", "--set", "detect.batch=1"]
            procs.append(subprocess.Popen([sys.executable, "-m", "video2mesh.flows.cli", *args], cwd=ROOT, env=env(),
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          start_new_session=True))
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    runs = [json.loads((tmp_path / f"out{i}" / "same" / "run.json").read_text())["stages"] for i in range(2)]
    for stage in ("probe", "detect", "tracks", "appearance", "tracklets"):
        assert sorted(r[stage]["status"] for r in runs) == ["cached", "computed"], \
            f"{stage}: exactly one process computes it, the other reuses it"
        assert runs[0][stage]["ref"] == runs[1][stage]["ref"], f"{stage}: both runs point at the same artifact"
        folders = list(cache.glob(f"videos/*/{stage}/*"))
        assert len(folders) == 1 and (folders[0] / "manifest.json").is_file()
        manifest = json.loads((folders[0] / "manifest.json").read_text())
        assert sorted(p.name for p in folders[0].glob("part-*.parquet")) == [p["file"] for p in manifest["parts"]]
        assert not list(folders[0].glob(".*tmp*")), "no temporary files left behind"
    assert runs[0]["detect"]["parts_total"] == 3
