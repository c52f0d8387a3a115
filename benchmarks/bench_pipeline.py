"""Stage timings on a generated clip: the real runner, real architectures, random weights.

Full: 1280x720, 300 frames, two figures (the issue's reference clip). Quick: 320x240, 48 frames.
Only the stages whose random-weight checkpoints can be generated here are timed; each area adds
its own model-level cases in its bench module.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from . import Case


def _pipeline_case(stage: str, quick: bool, device: str, workdir: Path) -> Case:
    def setup():
        import stages
        from pipeline.assets import AssetRegistry
        from pipeline.runner import Runner
        from pipeline.store import ArtifactStore
        from pipeline.synthetic import write_video
        from stages.detect import DetectConfig, write_random_checkpoint

        size, n = ((320, 240), 48) if quick else ((1280, 720), 300)
        video = workdir / f"clip_{size[0]}x{size[1]}_{n}.mp4"
        if not video.exists():
            write_video(video, n_frames=n, size=size, fps=30)
        yolo = workdir / "yolo11n_random.pt"
        if not yolo.exists():
            write_random_checkpoint(yolo)
        reg = AssetRegistry(stages.all_assets(), models_dir=workdir, overrides={"yolo": yolo})
        runner = Runner(stages.all_stages(), ArtifactStore(workdir / "cache"), reg,
                        {"detect": DetectConfig(imgsz=640, batch=8, max_det=10)}, device=device)
        runner.run(video, until=stage)  # upstream stages are cached from here on

        def step() -> int:
            # Remove only this stage's output: the run recomputes it and reuses everything upstream.
            for d in (workdir / "cache" / "videos").glob(f"*/{stage}"):
                shutil.rmtree(d)
            res = runner.run(video, until=stage)
            assert res[stage].status == "computed" and all(r.status == "cached" for n, r in res.items() if n != stage)
            return n

        return step

    return Case(stage, f"stage on clip {'320x240x48' if quick else '1280x720x300'}", setup, unit="frames",
                repeat=1, warmup=0)


def cases(quick: bool, device: str) -> list[Case]:
    workdir = Path(tempfile.mkdtemp(prefix="v2m-bench-"))
    return [_pipeline_case(s, quick, device, workdir) for s in ("probe", "detect", "tracks", "tracklets")]
