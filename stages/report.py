"""report: the smoothness and quality report of the SMPL path (report.json, PNG plots, report.html).

Every metric, plot and page is shared with `fit_report` through stages/_report_core.py (see its
docstring for the metrics); this module is the SMPL adapter: the `mesh` artifact's SMPL-24 joints3d,
SMPL `trans` as the root, the embedder's uncertainty.
Preview: `preview_frames` video frames with every track's SMPL mesh drawn over them by OpenCV
(painter's algorithm, no OpenGL; see video2mesh.models.writers.preview), PNGs shown in the HTML.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from video2mesh.models.metrics import motion as mm
from video2mesh.models.writers import preview
from video2mesh.pipeline.stage import Context, Stage

from ._overlay import smpl_drawer
from ._report_core import MotionReportConfig, MotionSource, preview_pick, preview_png, report_compute
from ._smpl import load_smpl_arrays, smpl_asset, smpl_layer, smpl_vertices
from .outputs import files_artifact, publish

REPORT = files_artifact("report", version=1, doc="report.json, report.html and PNG plots/previews of one video.")


@dataclass(frozen=True)
class ReportConfig(MotionReportConfig):
    """Thresholds of the SMPL report; `gender` must name the body model the mesh stage used."""

    gender: str = "neutral"


def mesh_motion(mesh: pd.DataFrame) -> pd.DataFrame:
    """Motion table of `mesh` rows: SMPL-24 joints3d, SMPL `trans` as the root, the embedder's uncertainty."""
    return mesh[["frame", "track_id", "joints3d", "trans", "uncertainty"]]


def render_previews(ctx: Context, cfg: ReportConfig, mesh: pd.DataFrame) -> list[tuple[int, bytes]]:
    """(frame, PNG) for `preview_frames` frames spread over the frames that have meshes."""
    pick = preview_pick(np.unique(mesh.frame.to_numpy(np.int64)), cfg.preview_frames)
    if not pick:
        return []
    arrays = load_smpl_arrays(ctx.weight(smpl_asset(cfg.gender)))
    layer = smpl_layer(arrays, cfg.gender)
    rows = mesh[mesh.frame.isin(pick)].sort_values(["frame", "track_id"])
    out = []
    for f, img in (fi for p in sorted(pick) for fi in ctx.frames(p, p + 1)):  # jumps only grab, never decode
        for _, r in rows[rows.frame == f].iterrows():
            v = smpl_vertices(layer, np.asarray(r.pose, np.float64)[None], np.asarray(r.betas_track, np.float64),
                              np.zeros((1, 3)))[0]
            pix = preview.project_weak_perspective(v, np.asarray(r.cam_orig), img.shape[1], img.shape[0])
            color = preview.track_color(int(r.track_id))
            img = preview.draw_mesh(img, pix, v, arrays["f"], color)
            img = preview.draw_skeleton(img, np.asarray(r.joints2d, np.float64).reshape(24, 2), color, f"#{int(r.track_id)}")
        out.append((f, preview_png(img, cfg.preview_width)))
    return out


def overlay_drawer(ctx: Context, cfg: ReportConfig, mesh: pd.DataFrame):
    """The overlay video's frame drawer of the SMPL source (stages._overlay.smpl_drawer)."""
    arrays = load_smpl_arrays(ctx.weight(smpl_asset(cfg.gender)))
    layer = smpl_layer(arrays, cfg.gender)
    return smpl_drawer(mesh, arrays["f"], lambda r: smpl_vertices(
        layer, np.asarray(r.pose, np.float64)[None], np.asarray(r.betas_track, np.float64), np.zeros((1, 3)))[0])


SMPL_SOURCE = MotionSource(
    input="mesh", columns=("frame", "track_id", "joints3d", "trans", "uncertainty", "pose", "betas_track", "cam_orig", "joints2d"),
    to_motion=mesh_motion, method="SMPL (learned model)", body_model=lambda cfg: f"SMPL {cfg.gender}",
    joints=mm.SMPL_24, uncertainty="the embedder's uncertainty", previews=render_previews, drawer=overlay_drawer,
    advice={"accel": "--set tracklets.smooth_window=9", "jitter": "--set tracklets.smooth_window=9",
            "root": "--set tracklets.smooth_window=9 (the root's depth comes from the box size)",
            "sliding": "--set tracklets.smooth_window=9", "gaps": "--set tracks.track_buffer=60 --set detect.conf=0.05",
            "low_score": "--set detect.conf=0.2 (drop weak boxes), or check the frames in the video",
            "short": "--set tracklets.max_gap=20 (join broken tracks)"})
compute = partial(report_compute, SMPL_SOURCE)


def report_outputs(runner, video_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Run (or reuse from the cache) everything up to `report` for one video and publish report.json,
    report.html, plots/ and preview/ into `<out_dir>/<video-stem>/`. Returns the written paths."""
    return publish_report(runner.run(video_path, until="report"), video_path, out_dir)


def publish_report(results: dict, video_path: str | Path, out_dir: str | Path,
                   folder: str | None = None) -> list[Path]:
    """Publish a finished `report` (`results`: StageResults by stage name) into `<out_dir>/<video-stem>/`.
    Runs nothing. Returns the written paths."""
    return publish(results["report"].ref, Path(out_dir) / (folder or Path(video_path).stem), manifest_name=None)


# v5: overlay id labels of neighbouring people no longer drawn over each other (_report_media.place_labels)
STAGE = Stage(name="report", version=5, config=ReportConfig, output=REPORT, compute=compute,
              inputs=("probe", "tracklets", "mesh"),
              assets=lambda cfg: (smpl_asset(cfg.gender),) if cfg.preview_frames or cfg.video_max_frames else (),
              publish=lambda runner, results, video, out, folder=None: publish_report(results, video, out, folder),
              doc="smoothness and quality report per video: JSON, PNG plots, self-contained HTML, preview")
