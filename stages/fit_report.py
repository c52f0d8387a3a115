"""fit_report: the smoothness and quality report of the licence-free path (Anny fitted to BlazePose).

Same metrics, plots and page as `report` (every line of them is shared through
stages/_report_core.py); only the adapter from the `fit` artifact to the motion table differs:
- joints: the fit's COCO-17 keypoints (`keypoints3d`, metres) in the `world` stage's output frame (the
  world by default, camera space with `--set world.frame=camera`), body parts of
  video2mesh.models.metrics.motion.COCO_17, relative to the hip midpoint; feet = the two ankles;
- root: `transl` (position of Anny's root bone) in that frame; foot contacts: the `world` stage's;
- uncertainty: 1 - the fit's confidence = r / (r + 0.02 s), r the frame's score-weighted reprojection
  residual to BlazePose's keypoints (px), s the person's keypoint extent (px): 0 for a perfect fit,
  0.5 when the residual is 2% of the person's size. `residual_px` itself is summarised too.
Preview: the fitted Anny mesh drawn over `preview_frames` frames (pinhole camera of the fit: focal
`focal_px`, principal point at the image centre; world-frame meshes go back through the `world`
stage's camera cam_R / cam_t, which reproduces the fit exactly), OpenCV only (video2mesh.models.writers.preview).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from video2mesh.models.metrics import motion as mm
from video2mesh.models.writers import preview
from video2mesh.pipeline.artifacts import stack
from video2mesh.pipeline.stage import Context, Stage

from ._overlay import fit_drawer, project_pinhole, to_camera
from ._report_core import MotionReportConfig, MotionSource, preview_pick, preview_png, report_compute
from .licence_free import load_body
from .outputs import files_artifact, publish

FIT_REPORT = files_artifact("fit_report", version=1,
                            doc="report.json, report.html and PNG plots/previews of one video (licence-free path).")
UNCERTAINTY = "1 - fit confidence (reprojection residual r px vs 2% of the person's size s: r / (r + 0.02 s))"


def fit_motion(fit: pd.DataFrame) -> pd.DataFrame:
    """Motion table of `fit` or `world` rows (see the module docstring); `world` rows add the contacts."""
    out = pd.DataFrame({
        "frame": fit.frame.to_numpy(np.int64), "track_id": fit.track_id.to_numpy(np.int32),
        "joints3d": list(stack(fit.keypoints3d, 51, np.float64)), "trans": list(stack(fit.transl, 3, np.float64)),
        "uncertainty": 1.0 - fit.confidence.to_numpy(np.float64), "residual_px": fit.residual_px.to_numpy(np.float64),
    })
    if "contact_left" in fit:
        out["contact"] = list(np.stack([fit.contact_left.to_numpy(bool), fit.contact_right.to_numpy(bool)], 1))
    return out


def render_fit_previews(ctx: Context, cfg: MotionReportConfig, fit: pd.DataFrame) -> list[tuple[int, bytes]]:
    """(frame, PNG) for `preview_frames` frames spread over the fitted frames: every track's Anny mesh."""
    import cv2
    import torch

    from video2mesh.models.body.anny_body import N_BONES, pose_rig

    pick = preview_pick(np.unique(fit.frame.to_numpy(np.int64)), cfg.preview_frames)
    if not pick:
        return []
    body = load_body(ctx)
    rows = fit[fit.frame.isin(pick)].sort_values(["frame", "track_id"])
    out = []
    for f, img in (fi for p in sorted(pick) for fi in ctx.frames(p, p + 1)):
        for _, r in rows[rows.frame == f].iterrows():
            with torch.no_grad():
                sk = body.skeleton(torch.as_tensor(np.asarray(r.phenotype, np.float64)[None], dtype=body.dtype))
            v = pose_rig(body, sk, np.asarray(r.bone_rotations, np.float64).reshape(1, N_BONES, 3),
                         np.asarray(r.global_orient, np.float64)[None], np.asarray(r.transl, np.float64)[None])["vertices"][0]
            if "cam_R" in r:
                v = to_camera(v, r.cam_R, r.cam_t)
            pix = project_pinhole(v, float(r.focal_px), img.shape[1], img.shape[0])
            color = preview.track_color(int(r.track_id))
            img = preview.draw_mesh(img, pix, v, body.faces, color)
            top = pix[np.argmin(pix[:, 1])]
            cv2.putText(img, f"#{int(r.track_id)}", (int(top[0]) - 10, max(int(top[1]) - 6, 10)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1, cv2.LINE_AA)
        out.append((f, preview_png(img, cfg.preview_width)))
    return out


def overlay_drawer(ctx: Context, cfg: MotionReportConfig, fit: pd.DataFrame):
    """The overlay video's frame drawer: every track's Anny silhouette and skeleton (stages._overlay)."""
    return fit_drawer(load_body(ctx), fit)


FIT_SOURCE = MotionSource(
    input="world", columns=("frame", "track_id", "keypoints3d", "transl", "confidence", "residual_px", "bone_rotations",
                            "global_orient", "phenotype", "focal_px", "cam_R", "cam_t", "contact_left", "contact_right"),
    to_motion=fit_motion, method="Anny fit (licence-free)", body_model=lambda cfg: "anny",
    joints=mm.COCO_17, uncertainty=UNCERTAINTY, previews=render_fit_previews, extra_stats=("residual_px",),
    drawer=overlay_drawer, uncertainty_check=0.5,
    advice={"accel": "--set fit.w_smooth=1.0", "jitter": "--set fit.w_smooth=1.0",
            "root": "--set fit.w_smooth=1.0 (the root's depth is the least certain)",
            "sliding": "--set fit.w_smooth=1.0", "gaps": "--set tracks.track_buffer=60 --set tracklets.max_gap=20",
            "low_score": "--set blazepose.min_pose_score=0.3, or check the frames in the video",
            "short": "--set tracklets.max_gap=20 (join broken tracks)",
            "uncertainty": "--set fit.iters_pose=400 --set fit.w_3d=1.0"})


def fit_report_outputs(runner, video_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Run (or reuse from the cache) everything up to `fit_report` for one video and publish report.json,
    report.html, plots/ and preview/ into `<out_dir>/<video-stem>/`. Returns the written paths."""
    return publish_fit_report(runner.run(video_path, until="fit_report"), video_path, out_dir)


def publish_fit_report(results: dict, video_path: str | Path, out_dir: str | Path,
                       folder: str | None = None) -> list[Path]:
    """Publish a finished `fit_report` (`results`: StageResults by stage name) into
    `<out_dir>/<video-stem>/`. Runs nothing. Returns the written paths."""
    return publish(results["fit_report"].ref, Path(out_dir) / (folder or Path(video_path).stem), manifest_name=None)


# v3: reads `world` (world frame by default), contacts from it, previews reprojected through its camera
# v5: overlay id labels of neighbouring people no longer drawn over each other (_report_media.place_labels)
STAGE = Stage(name="fit_report", version=5, config=MotionReportConfig, output=FIT_REPORT,
              compute=partial(report_compute, FIT_SOURCE), inputs=("probe", "tracklets", "world"),
              publish=lambda runner, results, video, out, folder=None: publish_fit_report(results, video, out, folder),
              doc="smoothness and quality report of the licence-free path (Anny fit): JSON, PNG plots, HTML, preview")
