"""`v2m run` from a video to SMPL parameters, exported files and the report, with every weight file of
the SMPL path present (random weights in the official layouts), as a user runs it: a subprocess.

The weights are random, so the numbers mean nothing; what is checked is that every stage runs on the
previous one's real output, that the shared schemas hold, that the published files are complete and
consistent with the mesh artifact, and that a second run (and `v2m export` / `v2m report`) computes
nothing.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from video2mesh.pipeline.artifacts import stack
from video2mesh.pipeline.hashing import sha256_file
from video2mesh.pipeline.store import ArtifactStore
from video2mesh.stages._random_weights import write_random_weights
from video2mesh.stages.mesh import MESH
from tests.conftest import write_video

from .test_run import statuses, summary, v2m

SMPL_PATH = ["probe", "detect", "tracks", "appearance", "tracklets", "features", "pose2d", "homography", "mesh", "export", "report"]
# Small everywhere: 12 frames of 160x120, detector at 160 px, one crop per box (no flip), flow at the
# video's own size, few OBJ frames, one small preview; the mesh model on the CPU.
FAST = ["--set", "detect.imgsz=160", "--set", "detect.max_det=2", "--set", "tracklets.min_len=5",
        "--set", "pose2d.flip_test=false", "--set", "pose2d.batch_size=8", "--set", "features.batch_size=8",
        "--set", "homography.work_long_side=160", "--set", "export.obj_stride=6",
        "--set", "report.preview_frames=1", "--set", "report.preview_width=160", "--device", "cpu", "-q",
        "--method", "smpl"]
NPZ_KEYS = {"poses", "trans", "betas", "gender", "mocap_framerate", "frame", "poses_camera", "trans_camera",
            "joints", "cam_crop", "cam_orig", "uncertainty", "axes", "units"}


def _published(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "run.json"}


@pytest.mark.slow
def test_video_to_smpl_exports_and_report(tmp_path):
    video = write_video(tmp_path / "clip.mp4", n_frames=12, size=(160, 120))
    names = ("yolo", "hrnet_w32_coco", "resnet50_spin", "vibe", "embedder", "smpl_neutral", "v2m_model")
    weights = [a for name, path in write_random_weights(tmp_path / "weights", names).items()
               for a in ("--weights", f"{name}={path}")]
    cache = tmp_path / "cache"
    common = ["--cache", str(cache), *weights, *FAST]
    out = tmp_path / "out"
    v2m("run", str(video), "--out", str(out), "--engine", "local", *common, timeout=600)

    s = summary(out, "clip")
    assert s["method"] == "smpl"
    assert statuses(s) == {n: "computed" for n in SMPL_PATH}
    assert s["published"]["export"] > 0 and s["published"]["report"] > 0

    # The mesh artifact: the shared schema, one row per tracklet row, finite SMPL parameters.
    store = ArtifactStore(cache)
    ref = {n: s["stages"][n]["ref"] for n in SMPL_PATH}
    parts = sorted(Path(ref["mesh"]["path"]).glob("part-*.parquet"))
    assert parts and all(pq.read_schema(p).equals(MESH.schema, check_metadata=False) for p in parts)
    mesh = store.read_df(ref["mesh"]["path"]).sort_values(["track_id", "frame"]).reset_index(drop=True)
    tracklets = store.read_df(ref["tracklets"]["path"]).sort_values(["track_id", "frame"]).reset_index(drop=True)
    assert len(tracklets) > 0, "the random detector found no one: nothing downstream was exercised"
    assert mesh[["frame", "track_id"]].values.tolist() == tracklets[["frame", "track_id"]].values.tolist()
    for col, width in (("pose", 72), ("betas", 10), ("betas_track", 10), ("cam_crop", 3), ("cam_orig", 4),
                       ("trans", 3), ("joints3d", 72), ("joints2d", 48)):
        assert np.isfinite(stack(mesh[col], width)).all(), col
    assert np.isfinite(mesh.uncertainty).all(), "every frame has a 2D pose, so every frame has an uncertainty"

    # Exported files, per track, consistent with the mesh rows they came from.
    folder = out / "clip"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {e["path"] for e in manifest["files"]} == {p for p in _published(folder)
                                                       if not p.startswith(("report.", "plots/", "preview/", "thumbs/", "viewer/"))
                                                       and p not in ("manifest.json", "overlay.mp4", ".v2m-video")}   # the report's and the folder marker
    import trimesh

    for tid, rows in mesh.groupby("track_id"):
        stem = folder / f"track_{tid:03d}"
        with np.load(f"{stem}.npz") as z:
            assert set(z.files) == NPZ_KEYS
            assert z["poses"].shape == (len(rows), 72) and z["betas"].shape == (10,)
            np.testing.assert_array_equal(z["frame"], rows.frame.to_numpy())
            np.testing.assert_allclose(z["poses_camera"], stack(rows.pose, 72), rtol=1e-6)
        objs = sorted(folder.glob(f"track_{tid:03d}_obj/frame_*.obj"))
        assert len(objs) == len(range(0, len(rows), 6))
        text = objs[0].read_text()     # every SMPL vertex with a normal (trimesh drops unreferenced ones)
        assert text.count("\nv ") == 6890 and text.count("\nvn ") == 6890
        assert len(trimesh.load(objs[0], process=False, force="mesh").faces) == text.count("\nf ")
        bvh = (stem.with_suffix(".bvh")).read_text()
        assert bvh.startswith("HIERARCHY") and f"Frames: {len(rows)}" in bvh
        assert trimesh.load(stem.with_suffix(".glb")).geometry, "the glb holds the mesh"
    report = json.loads((folder / "report.json").read_text())
    assert [t["track_id"] for t in report["tracks"]] == sorted(mesh.track_id.unique().tolist())
    assert (folder / "report.html").stat().st_size > 0 and list(folder.glob("preview/frame_*.png"))

    # Nothing changed: a second run computes nothing and publishes the same bytes.
    first = _published(folder)
    v2m("run", str(video), "--out", str(out), "--engine", "local", *common, timeout=600)
    assert set(statuses(summary(out, "clip")).values()) == {"cached"}
    assert _published(folder) == first

    # `v2m export` and `v2m report` into a fresh folder: only those stages' files, all from the cache.
    out2 = tmp_path / "out2"
    v2m("export", str(video), "--out", str(out2), *common)
    assert statuses(summary(out2, "clip")) == {n: "cached" for n in SMPL_PATH if n != "report"}
    assert not (out2 / "clip" / "report.html").exists()
    v2m("report", str(video), "--out", str(out2), *common)
    assert statuses(summary(out2, "clip")) == {n: "cached" for n in SMPL_PATH if n != "export"}
    assert _published(out2 / "clip") == first

    # Our full model (u_t from the embedder, d_t from the homographies, dynamics head) on the same
    # upstream artifacts: only mesh is computed, and the head's extra poses are there.
    v2m("run", str(video), "--out", str(out2), "--engine", "local", "--until", "mesh", "--set", "mesh.model=v2m", *common)
    s = summary(out2, "clip")
    assert statuses(s) == {**{n: "cached" for n in SMPL_PATH[:SMPL_PATH.index("mesh")]}, "mesh": "computed"}
    full = store.read_df(s["stages"]["mesh"]["ref"]["path"])
    assert len(full) == len(mesh)
    for col in ("pose", "pose_prev", "pose_next", "betas"):
        assert np.isfinite(stack(full[col], 72 if col.startswith("pose") else 10)).all(), col


def test_publish_outputs_writes_the_finished_artifacts_without_running_anything(tmp_path, synthetic_smpl_dir):
    """`v2m run` publishes from the StageResults it already has: the same files as
    export_outputs/report_outputs (which run the stages themselves), and no stage runs again."""
    from video2mesh.flows.video_to_mesh import publish_outputs
    from video2mesh.stages import export, report
    from tests.stages.fakes import make_runner
    from tests.stages.fakes import write_video as tiny_video

    video = tiny_video(tmp_path / "clip.mp4", n=6)
    runner = make_runner(tmp_path, synthetic_smpl_dir, {"export": export.STAGE, "report": report.STAGE},
                         configs={"report": report.ReportConfig(preview_frames=0), "export": export.ExportConfig(formats=("npz", "bvh"))})
    results = runner.run(video, until=["export", "report"])
    assert {"export", "report"} <= set(results)

    class NoRun:                                        # publishing must not touch the runner's stages
        store, config = runner.store, runner.config

        def run(self, *a, **k):
            raise AssertionError("publish_outputs ran a stage")

    counts = publish_outputs(NoRun(), results, str(video), tmp_path / "a" / "clip")  # the folder (pipeline/names.py)
    export.export_outputs(runner, video, tmp_path / "b")
    report.report_outputs(runner, video, tmp_path / "b")
    a, b = _published(tmp_path / "a" / "clip"), _published(tmp_path / "b" / "clip")
    assert a == b and len(a) == counts["export"] + counts["report"]
    assert "manifest.json" in a and "report.html" in a
