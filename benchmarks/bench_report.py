"""The whole licence-free report (`fit_report`) of a synthetic clip: time and size of what it writes.

A 300-frame 1280x720 30 fps clip (60 with --quick), two Anny tracks over every frame with moving
limbs, through the real stage: metrics, plots, previews, the overlay video (Anny silhouettes and
skeletons on every frame, H.264), thumbnails, timeline and 3D viewer data, the page. Each step
recomputes the report on a fresh cache (Anny's model load included, as in a run). The row's extra
numbers: total MB written, the video's MB, report.html's MB, whether the viewer library was copied.
Needs Anny's cache (`v2m models setup-default`); left out without it.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import Case

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _NoConfig:
    pass


def _video(path: Path, n: int, w: int = 1280, h: int = 720) -> Path:
    import cv2

    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    ramp = np.tile(np.linspace(40, 200, w, dtype=np.uint8)[None, :, None], (h, 1, 3))
    for i in range(n):
        vw.write(np.roll(ramp, 4 * i, axis=1))
    vw.release()
    return path


def _rows(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tracklets, fit) rows of two tracks over n frames: swinging bones, walking sideways."""
    from video2mesh.models.body.anny_body import N_BONES

    rng = np.random.default_rng(0)
    skel = rng.uniform(-0.25, 0.25, (17, 3)) + [0.0, 0.0, 0.0]
    skel[15:, 1] = 0.85
    trk, fit = [], []
    for tid in (0, 1):
        f = np.arange(n)
        amp = rng.uniform(0, 0.3, (N_BONES, 3))
        transl = np.stack([-0.6 + 1.2 * tid + 0.005 * f, 0.0 * f, 4.0 + 0.0 * f], 1)
        for i in f:
            rot = (amp * np.sin(2 * np.pi * i / 30 + tid)).reshape(-1)
            fit.append({"frame": int(i), "track_id": tid, "body_model": "anny", "rig": "anny", "bone_rotations": rot,
                        "global_orient": np.array([np.pi, 0.0, 0.0]), "transl": transl[i], "phenotype": np.full(6, 0.5),
                        "keypoints": np.full(51, 10.0), "keypoints3d": (skel + transl[i]).reshape(-1),
                        "residual_px": 2.0, "confidence": 0.9, "swapped": False, "focal_px": 1000.0})
            trk.append({"frame": int(i), "track_id": tid, "x1": 300.0 + 600 * tid, "y1": 100.0, "x2": 600.0 + 600 * tid,
                        "y2": 700.0, "score": 0.9, "cx": 450.0 + 600 * tid, "cy": 400.0, "side": 600.0, "interpolated": False})
    fit_df, trk_df = pd.DataFrame(fit), pd.DataFrame(trk)
    for df in (fit_df, trk_df):
        df["frame"] = df["frame"].astype(np.int64)
        df["track_id"] = df["track_id"].astype(np.int32)
    return trk_df, fit_df


def _report_setup(n: int):
    from video2mesh.pipeline.assets import AssetRegistry, default_models_dir
    from video2mesh.pipeline.runner import Runner
    from video2mesh.pipeline.stage import Stage
    from video2mesh.pipeline.store import ArtifactStore
    from video2mesh.stages import fit_report, probe
    from video2mesh.stages.fit_anny import FIT
    from video2mesh.stages.outputs import iter_files
    from video2mesh.stages.tracklets import TRACKLETS

    tmp = Path(tempfile.mkdtemp(prefix="bench_report_"))
    video = _video(tmp / "clip.mp4", n)
    trk, fit = _rows(n)
    stages = {"probe": probe.STAGE, "fit_report": fit_report.STAGE,
              "tracklets": Stage("tracklets", 1, _NoConfig, TRACKLETS, lambda ctx, cfg, ch: trk, inputs=("probe",)),
              "fit": Stage("fit", 1, _NoConfig, FIT, lambda ctx, cfg, ch: fit, inputs=("probe",))}
    runs = iter(range(10**6))

    def step():
        runner = Runner(stages=stages, store=ArtifactStore(tmp / f"cache{next(runs)}"),
                        registry=AssetRegistry([], models_dir=default_models_dir()))
        ref = runner.run(video, until="fit_report")["fit_report"].ref
        sizes = {r["path"]: r["size_bytes"] for r in iter_files(ref, with_data=False)}
        mb = lambda b: round(b / 2**20, 2)   # noqa: E731
        return n, {"total_MB": mb(sum(sizes.values())), "video_MB": mb(sizes.get("overlay.mp4", 0)),
                   "html_MB": mb(sizes["report.html"]), "viewer_lib": "viewer/three-viewer.js" in sizes}
    weakref.finalize(step, shutil.rmtree, tmp, True)     # the clip and caches go with the case
    return step


def cases(quick: bool, device: str) -> list[Case]:
    from video2mesh.stages.licence_free import anny_cache_dir

    if not any(anny_cache_dir().glob("*")):
        log.warning("bench_report: Anny's cache missing; run `v2m models setup-default`")
        return []
    n = 60 if quick else 300
    return [Case("fit_report", f"whole page {n} frames 1280x720 2 tracks", lambda: _report_setup(n),
                 repeat=1, warmup=0)]
