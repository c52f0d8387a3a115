"""Stage timings on a generated clip: the real runner, real architectures, random weights.

Every stage of the SMPL path, probe to report. Full: 1280x720, 300 frames, two figures (the issue's
reference clip), default settings. Quick: 320x240, 16 frames, with the settings that keep each case to
seconds on a CPU (at most 2 boxes a frame, no flip test, short tracklets allowed, every 4th OBJ frame, one preview). Weight
files are random, in the official layouts (stages/_random_weights.py), so the costs are those of the
real networks; the outputs mean nothing.
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from . import Case

STAGES = ("probe", "detect", "tracks", "tracklets", "features", "pose2d", "homography", "mesh", "export", "report")
QUICK_SETTINGS = {
    "detect": {"imgsz": 640, "batch": 8, "max_det": 2},   # random weights box everything: keep the two figures' worth
    "tracklets": {"min_len": 8},                # the quick clip has 16 frames; the default asks for 25
    "pose2d": {"flip_test": False},
    "export": {"obj_stride": 4},
    "report": {"preview_frames": 1, "preview_width": 320},
}


def _pipeline_case(stage: str, quick: bool, device: str, workdir: Path) -> Case:
    size, n = ((320, 240), 16) if quick else ((1280, 720), 300)

    def setup():
        from video2mesh import stages
        from video2mesh.pipeline import config as cfgmod
        from video2mesh.pipeline.assets import AssetRegistry
        from video2mesh.pipeline.runner import Runner
        from video2mesh.pipeline.store import ArtifactStore
        from video2mesh.pipeline.synthetic import write_video
        from video2mesh.stages._random_weights import write_random_weights

        video = workdir / f"clip_{size[0]}x{size[1]}_{n}.mp4"
        if not video.exists():
            write_video(video, n_frames=n, size=size, fps=30)
        weights = write_random_weights(workdir / "weights")          # once for all cases (skips existing files)
        settings = QUICK_SETTINGS if quick else {"detect": {"imgsz": 640, "batch": 8, "max_det": 10}}
        all_stages = stages.all_stages()
        configs = {k: cfgmod.from_mapping(all_stages[k].config, v, where=f"{k}.") for k, v in settings.items()}
        reg = AssetRegistry(stages.all_assets(), models_dir=workdir, overrides=weights)
        runner = Runner(all_stages, ArtifactStore(workdir / "cache"), reg, configs, device=device)
        runner.run(video, until=stage)  # upstream stages are cached from here on

        def step() -> int:
            # Remove only this stage's output: the run recomputes it and reuses everything upstream.
            for d in (workdir / "cache" / "videos").glob(f"*/{stage}"):
                shutil.rmtree(d)
            res = runner.run(video, until=stage)
            assert res[stage].status == "computed" and all(r.status == "cached" for n, r in res.items() if n != stage)
            return n

        return step

    return Case(stage, f"stage on clip {size[0]}x{size[1]}x{n}", setup, unit="frames", repeat=1, warmup=0)


def cases(quick: bool, device: str) -> list[Case]:
    workdir = Path(tempfile.mkdtemp(prefix="v2m-bench-"))
    atexit.register(shutil.rmtree, workdir, True)     # ~450 MB of random weights plus the clip's cache
    return [_pipeline_case(s, quick, device, workdir) for s in STAGES]
