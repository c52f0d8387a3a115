"""The report's core, shared by both methods' report stages (`report`: SMPL from `mesh`; `fit_report`:
Anny from `fit`): smoothness and quality per track, report.json, PNG plots, one self-contained report.html.

A helper module (no stage). Everything is computed from a neutral per-track *motion table*, so both
paths share every metric, plot and page. Motion table columns: frame int64, track_id int32, joints3d
(T, J*3) metres in camera axes (the source's joint set, video2mesh.models.metrics.motion.JointSet:
SMPL-24 or COCO-17), trans (T, 3) the root's camera-space translation in metres, uncertainty float
(higher = less sure; what it measures is the source's `uncertainty` text). A `MotionSource` names
the upstream artifact, the adapter to the motion table, the method and body model (written into
report.json and the page), and the preview renderer; `report_compute` bound to a source is a
stage's compute.

Metrics (definitions in video2mesh.models.metrics.motion), per track:
- acceleration (mm/frame^2) per body part over time, of joints relative to the body's reference
  point (the pelvis for SMPL; pose jitter), and of the root (the camera-space translation, whose
  depth is the least certain part of the estimate);
- jitter: RMS and energy share of the acceleration above `jitter_cutoff_hz` (at most fps / 4);
- foot sliding while in contact (heights along the up axis of the Y-up frame, i.e. assuming a level
  camera);
- share of interpolated frames and of detected frames with a detector score below `low_score`;
- the source's uncertainty (mean, median, 90th percentile, max).
"""
from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable

import cv2
import numpy as np
import pandas as pd

from video2mesh.models.metrics import motion as mm
from video2mesh.models.writers.animation import CAMERA_TO_YUP
from video2mesh.pipeline.artifacts import stack
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.errors import ConfigError
from video2mesh.pipeline.stage import Chunk, Context
from video2mesh.pipeline.viewer_lib import viewer_id

from ._report_media import report_media
from .outputs import file_rows

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class MotionReportConfig:
    """Thresholds of the report (any motion source)."""

    jitter_cutoff_hz: Annotated[float, Range(0, None, lo_open=True)] = 6.0  # human motion lies mostly below 6 Hz (the usual mocap filter cutoff)
    low_score: Annotated[float, Range(0, 1)] = 0.5
    contact_height_m: Annotated[float, Range(0, 10)] = 0.05
    contact_vspeed_mm: Annotated[float, Range(0, 10_000)] = 10.0  # mm/frame: 0.3 m/s at 30 fps
    preview_frames: Annotated[int, Range(0, 1000)] = 3  # 0 = no preview (and no body model needed)
    preview_width: Annotated[int, Range(16, 8192)] = 480
    video_max_frames: Annotated[int, Range(0, 1_000_000)] = 900  # overlay video: longer clips take every k-th frame (k = ceil(n / this)); 0 = no video
    video_width: Annotated[int, Range(16, 8192)] = 640  # px of the overlay video (height keeps the aspect)
    viewer_lib: str = field(default_factory=viewer_id)   # set-up 3D viewer bundle ('' = none); automatic, in the
                                                          # cache key so a report made before the set-up is redone

    def __post_init__(self) -> None:
        if self.jitter_cutoff_hz <= 0 or self.preview_frames < 0 or self.preview_width < 16:
            raise ConfigError("report: jitter_cutoff_hz must be > 0, preview_frames >= 0, preview_width >= 16")
        if self.video_max_frames < 0 or self.video_width < 16:
            raise ConfigError("report: video_max_frames must be >= 0 (0 = no overlay video), video_width >= 16")


@dataclass(frozen=True)
class MotionSource:
    """Where a report's motion comes from and how to read it (see the module docstring)."""

    input: str                                   # upstream artifact name
    columns: tuple[str, ...]                     # its columns the adapter and previews read
    to_motion: Callable[[pd.DataFrame], pd.DataFrame]   # input rows -> motion table
    method: str                                  # e.g. "SMPL (learned model)"
    body_model: Callable[[Any], str]             # cfg -> body model name
    joints: mm.JointSet
    uncertainty: str                             # what the motion table's uncertainty measures
    previews: Callable[[Context, Any, pd.DataFrame], list[tuple[int, bytes]]]
    extra_stats: tuple[str, ...] = ()            # further per-frame columns of the motion table to summarise
    drawer: Callable[[Context, Any, pd.DataFrame], Callable] | None = None   # overlay frame drawer (stages._report_media)
    advice: dict[str, str] = field(default_factory=dict)   # verdict reason kind -> `--set ...` to try (stages._report_bands)
    uncertainty_check: float | None = None       # mean uncertainty above this: "check"; per frame: marked low confidence


def _stats(x: np.ndarray) -> dict[str, float | None]:
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"mean": None, "median": None, "p90": None, "max": None}
    return {"mean": float(x.mean()), "median": float(np.median(x)), "p90": float(np.percentile(x, 90)), "max": float(x.max())}


def _series(x: np.ndarray, decimals: int) -> list[float | None]:
    """Rounded values for JSON; NaN (e.g. no uncertainty: mesh.uncertainty=false) becomes null."""
    return [None if not math.isfinite(v) else v for v in np.round(np.asarray(x, np.float64), decimals).tolist()]


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


def track_metrics(mesh: pd.DataFrame, tracklets: pd.DataFrame, fps: float, cfg: MotionReportConfig,
                  joints: mm.JointSet = mm.SMPL_24, extra_stats: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Summary dict (JSON-able) and per-frame series of one track's motion-table rows (sorted by frame;
    `mesh` rows are a motion table of SMPL-24 joints)."""
    frames = mesh.frame.to_numpy(np.int64)
    nj = joints.n_joints
    j = stack(mesh.joints3d, nj * 3, np.float64).reshape(-1, nj, 3)
    rel = j - j[:, list(joints.reference)].mean(1, keepdims=True)       # reference-relative (T, J, 3)
    root = stack(mesh.trans, 3, np.float64)[:, None]                    # (T, 1, 3)
    acc = mm.acceleration_mm(rel)                                       # (T-2, J)
    acc_parts = mm.part_means(acc, joints.parts) if len(acc) else {p: np.zeros(0) for p in joints.parts}
    acc_root = mm.acceleration_mm(root)[:, 0] if len(frames) > 2 else np.zeros(0)
    cutoff = mm.effective_cutoff_hz(cfg.jitter_cutoff_hz, fps)
    jit = mm.jitter(rel, fps, cutoff)
    jit_root = mm.jitter(root, fps, cutoff)
    feet_ids = list(joints.feet.values())
    feet = (rel[:, feet_ids] + root) @ CAMERA_TO_YUP.T                  # Y up
    # a motion table with its own contacts (the licence-free path's `world` stage) is measured on them
    given = stack(mesh.contact, 2, bool) if "contact" in mesh and len(feet_ids) == 2 else None
    slide = mm.foot_sliding(feet, cfg.contact_height_m, cfg.contact_vspeed_mm, contact=given)
    tr = tracklets.set_index("frame").reindex(frames)
    interp = tr.interpolated.fillna(False).to_numpy(bool)
    score = tr.score.fillna(0).to_numpy(np.float64)
    unc = mesh.uncertainty.to_numpy(np.float64)
    summary = {
        "track_id": int(mesh.track_id.iloc[0]),
        "n_frames": int(len(frames)), "frame_first": int(frames[0]), "frame_last": int(frames[-1]),
        "frame_gaps": int(np.sum(np.diff(frames) != 1)),
        "accel_mm": {p: _stats(v) for p, v in {**acc_parts, "root": acc_root}.items()},
        "jitter_mm": {**{p: _num(float(jit.rms_mm[list(ids)].mean())) for p, ids in joints.parts.items()},
                      "root": _num(float(jit_root.rms_mm[0]))},
        "jitter_ratio": {**{p: _num(float(jit.ratio[list(ids)].mean())) for p, ids in joints.parts.items()},
                         "root": _num(float(jit_root.ratio[0]))},
        "foot": {name: {"contact_share": _num(float(slide.contact_share[i])), "sliding_mm": _num(float(slide.sliding_mm[i]))}
                 for i, name in enumerate(joints.feet)},
        "interpolated_share": float(interp.mean()),
        "low_score_share": float(((score < cfg.low_score) & ~interp).mean()),
        "uncertainty": _stats(unc),
        **{c: _stats(mesh[c].to_numpy(np.float64)) for c in extra_stats},
        "series": {  # per frame, for plots elsewhere; accelerations start at frame_first + 1
            "frame": frames.tolist(),
            "accel_mm": {p: _series(v, 3) for p, v in {**acc_parts, "root": acc_root}.items()},
            "uncertainty": _series(unc, 4),
        },
    }
    series = {"frames": frames, "accel_frames": frames[1:-1], **{f"accel_{p}": v for p, v in acc_parts.items()},
              "accel_root": acc_root, "uncertainty": unc, "score": score, "interpolated": interp,
              "contact": slide.contact, "foot_height": feet[:, :, 1] - np.percentile(feet[:, :, 1], 5, axis=0)
              if len(feet) else np.zeros((0, len(feet_ids)))}
    return summary, series


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, metadata={"Software": None})
    return buf.getvalue()


def track_plot(summary: dict[str, Any], s: dict[str, np.ndarray], uncertainty_label: str = "embedder uncertainty") -> bytes:
    """PNG: acceleration per part, uncertainty and detector score, foot heights with contacts."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(3, 1, figsize=(8, 7), sharex=True, constrained_layout=True)
    for p in summary["accel_mm"]:                                     # the parts, then "root"
        ax[0].plot(s["accel_frames"], s[f"accel_{p}"], label=p, lw=1)
    ax[0].set_ylabel("accel (mm/frame²)")
    ax[0].legend(fontsize=7, ncol=4)
    ax[0].set_title(f"track {summary['track_id']}")
    ax[1].plot(s["frames"], s["uncertainty"], label=uncertainty_label, color="tab:purple")
    ax[1].plot(s["frames"], s["score"], label="detector score", color="tab:gray", lw=1)
    ax[1].fill_between(s["frames"], 0, 1, where=s["interpolated"], color="tab:red", alpha=0.2, label="interpolated")
    ax[1].legend(fontsize=7)
    for i, name in enumerate(summary["foot"]):
        line, = ax[2].plot(s["frames"], s["foot_height"][:, i] * 1000, lw=1, label=name)
        c = s["contact"][:, i]
        ax[2].scatter(s["frames"][c], s["foot_height"][c, i] * 1000, s=6, color=line.get_color())
    ax[2].set_ylabel("foot height (mm)")
    ax[2].set_xlabel("frame")
    ax[2].legend(fontsize=7, ncol=4)
    data = _png(fig)
    plt.close(fig)
    return data


def overview_plot(summaries: list[dict[str, Any]]) -> bytes:
    """PNG: mean acceleration per body part, one bar group per track."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = list(summaries[0]["accel_mm"]) if summaries else ["root"]
    fig, ax = plt.subplots(figsize=(8, 3), constrained_layout=True)
    w = 0.8 / max(len(summaries), 1)
    for i, s in enumerate(summaries):
        vals = [s["accel_mm"][p]["mean"] or 0.0 for p in parts]
        ax.bar(np.arange(len(parts)) + i * w, vals, w, label=f"track {s['track_id']}")
    ax.set_xticks(np.arange(len(parts)) + 0.4 - w / 2, parts)
    ax.set_ylabel("mean accel (mm/frame²)")
    ax.legend(fontsize=7)
    data = _png(fig)
    plt.close(fig)
    return data


def preview_pick(frames: np.ndarray, n: int) -> set[int]:
    """`n` frames spread evenly over the (sorted, unique) `frames`."""
    if n == 0 or len(frames) == 0:
        return set()
    return set(frames[np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)].tolist())


def preview_png(img: np.ndarray, width: int) -> bytes:
    """PNG bytes of a BGR image resized to `width`."""
    scale = width / img.shape[1]
    img = cv2.resize(img, (width, max(int(round(img.shape[0] * scale)), 1)), interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", img)
    return png.tobytes()


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _fmt(x: Any) -> str:
    return "–" if x is None else f"{x:.2f}" if isinstance(x, float) else html.escape(str(x))


def report_html(video: str, fps: float, summaries: list[dict[str, Any]], plots: dict[int, bytes],
                overview: bytes | None, previews: list[tuple[int, bytes]], cfg: MotionReportConfig,
                method: str = "SMPL (learned model)", body_model: str = "SMPL", joints: mm.JointSet = mm.SMPL_24,
                uncertainty: str = "the embedder's uncertainty", extra: str = "") -> str:
    """One self-contained HTML page (images inlined as base64): overview table, then one section per track."""
    parts = list(joints.parts) + ["root"]
    head = "".join(f"<th>{p}</th>" for p in ["track", "frames", "interp.", "low score", "uncert. mean",
                                            "jitter mean", "foot slide"] + [f"accel {p}" for p in parts])
    body = []
    for s in summaries:
        slide = [v["sliding_mm"] for v in s["foot"].values() if v["sliding_mm"] is not None]
        jit = [v for k, v in s["jitter_mm"].items() if k != "root" and v is not None]
        cells = [f'<a href="#track-{s["track_id"]}">{s["track_id"]}</a>', f'{s["frame_first"]}–{s["frame_last"]}',
                 f'{100 * s["interpolated_share"]:.0f}%', f'{100 * s["low_score_share"]:.0f}%',
                 _fmt(s["uncertainty"]["mean"]), _fmt(float(np.mean(jit)) if jit else None),
                 _fmt(float(np.mean(slide)) if slide else None)] + [_fmt(s["accel_mm"][p]["mean"]) for p in parts]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    sections = []
    for s in summaries:
        tid = s["track_id"]
        sections.append(f'<section class="track" id="track-{tid}"><h2>Track {tid}</h2>'
                        f'<p>frames {s["frame_first"]}–{s["frame_last"]} ({s["n_frames"]}), gaps {s["frame_gaps"]}</p>'
                        f'{_img(plots[tid], f"track {tid} plots")}'
                        f'<details><summary>numbers</summary><pre>{html.escape(json.dumps({k: v for k, v in s.items() if k != "series"}, indent=1))}</pre></details></section>')
    prev = "".join(f"<figure>{_img(png, f'frame {f + 1}')}<figcaption>frame {f + 1}</figcaption></figure>" for f, png in previews)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>video2mesh report: {html.escape(video)}</title>
<style>body{{font-family:sans-serif;margin:1.5em;max-width:1100px}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}} figure{{display:inline-block;margin:4px}}
img{{max-width:100%}} section{{margin-top:2em}}</style></head>
<body><script>window.addEventListener('error', e => {{ document.body.dataset.errors = (document.body.dataset.errors || '') + (e.message || 'resource failed') + '; '; }}, true);</script>
<h1>video2mesh report: {html.escape(video)}</h1>
<p class="method">Motion by <b>{html.escape(method)}</b>, body model <b>{html.escape(body_model)}</b>
({html.escape(joints.name)}); uncertainty: {html.escape(uncertainty)}.</p>
{extra}
<h2>Numbers</h2>
<p>{len(summaries)} track(s), {fps:.3g} fps. Accelerations in mm/frame² of joints relative to the {html.escape(joints.reference_name)}
(root: camera-space translation); jitter = RMS of acceleration above {mm.effective_cutoff_hz(cfg.jitter_cutoff_hz, fps):g} Hz; foot sliding = horizontal mm/frame while in
contact (height &lt; {cfg.contact_height_m * 100:g} cm above the track's 5th-percentile ground, vertical speed &lt;
{cfg.contact_vspeed_mm:g} mm/frame); low score = detected frames with score &lt; {cfg.low_score:g}.</p>
<table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>
{_img(overview, "overview") if overview else ""}
<h2>Preview</h2><div class="preview">{prev or "<p>no preview</p>"}</div>
{"".join(sections)}
<script>document.body.dataset.imagesDecoded = Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length;</script>
</body></html>
"""


def report_compute(source: MotionSource, ctx: Context, cfg: MotionReportConfig, chunk: Chunk) -> pd.DataFrame:
    """The report of any motion source (bind `source` with functools.partial to get a stage's compute)."""
    raw = ctx.input(source.input, columns=list(source.columns)).sort_values(["track_id", "frame"])
    motion = source.to_motion(raw)
    tracklets = ctx.input("tracklets", columns=["frame", "track_id", "score", "interpolated"])
    fps = ctx.video.fps
    body_model = source.body_model(cfg)
    summaries, plots = [], {}
    for tid, rows in motion.groupby("track_id", sort=True):
        summary, series = track_metrics(rows.reset_index(drop=True), tracklets[tracklets.track_id == tid], fps, cfg,
                                        source.joints, source.extra_stats)
        summaries.append(summary)
        plots[int(tid)] = track_plot(summary, series, source.uncertainty)
        ctx.advance(len(rows))
    overview = overview_plot(summaries) if summaries else None
    previews = source.previews(ctx, cfg, raw)
    media_files, extra, media_info = report_media(ctx, cfg, source, raw, motion, tracklets, summaries)
    video = Path(ctx.video.path).name
    doc = {"video": video, "video_sha256": ctx.video.digest, "fps": fps, "n_frames": ctx.video.n_frames,
           "method": source.method, "body_model": body_model, "joints": source.joints.name,
           "joints_reference": source.joints.reference_name, "uncertainty": source.uncertainty,
           "units": {"accel": "mm/frame^2", "jitter": "mm/frame^2", "sliding": "mm/frame", "height": "m"},
           "definitions": mm.__doc__.strip(), "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
           **media_info, "tracks": summaries}
    page = report_html(video, fps, summaries, plots, overview, previews, cfg, source.method, body_model,
                       source.joints, source.uncertainty, extra)
    files = [(-1, "json", "report.json", json.dumps(doc, indent=1, allow_nan=False).encode(), {}),
             (-1, "html", "report.html", page.encode(), {})]
    files += [(tid, "png", f"plots/track_{tid:03d}.png", png, {}) for tid, png in plots.items()]
    if overview:
        files.append((-1, "png", "plots/overview.png", overview, {}))
    files += [(-1, "png", f"preview/frame_{f + 1:06d}.png", png, {"frame": int(f)}) for f, png in previews]
    return file_rows(files + media_files)
