"""The command line's plumbing: sub-commands that hand over to other parsers, listings."""
from __future__ import annotations

import json

from video2mesh.flows.cli import main


def test_training_commands_hand_their_options_to_the_training_parser(capsys):
    for cmd, option in (("train-embedder", "--bvh"), ("train", "--preset"), ("eval", "--checkpoint")):
        try:
            main([cmd, "--help"])
        except SystemExit as e:
            assert e.code == 0
        out = capsys.readouterr().out
        assert f"v2m {cmd}" in out and option in out


def test_models_list_says_which_method_is_ready(tmp_path, capsys):
    assert main(["models", "list", "--models-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "method smpl          needs" in out and "smpl_neutral" in out
    assert "method licence-free" in out and "v2m models setup-default" in out
    assert "yolo" in out and "MISSING" in out


def test_stages_lists_every_stage_with_parameters(capsys):
    assert main(["stages", "-v"]) == 0
    out = capsys.readouterr().out
    for name in ("probe", "detect", "tracks", "appearance", "tracklets", "pose2d", "features", "homography", "mesh",
                 "export", "report", "blazepose", "fit", "fit_export", "fit_report"):
        assert f"\n{name} " in "\n" + out
    assert "detect.backend = 'yolo'" in out and "homography.backend = 'dis'" in out


def test_bench_crowd_rejects_a_bad_people_list_in_one_line(capsys):
    for bad in ("2,x", "0"):
        assert main(["bench", "crowd", "--people", bad]) == 2
        err = capsys.readouterr().err
        assert "--people" in err and "Traceback" not in err


def test_bench_crowd_with_no_clips_and_no_videos_writes_an_empty_document(tmp_path):
    # `--video ''` means no real videos, as `--people ''` means no rendered clips (it was read as the folder ".")
    out = tmp_path / "crowd.json"
    assert main(["bench", "crowd", "--people", "", "--video", "", "--root", str(tmp_path / "root"),
                 "--cache", str(tmp_path / "cache"), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["rendered"] == [] and doc["real"] == []


def test_bench_crowd_mix_errors_are_one_line(capsys):
    for args in (["--mix", "crowds"], ["--mix", "walks", "--mocap", "x.bvh"]):
        assert main(["bench", "crowd", "--people", "2", "--video", "", *args]) == 2
        err = capsys.readouterr().err
        assert "--mix" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bench_crowd_poses_with_the_smpl_method_is_a_one_line_error(capsys):
    assert main(["bench", "crowd", "--poses", "--method", "smpl", "--people", "2"]) == 2
    err = capsys.readouterr().err
    assert "--poses" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
