"""The report's media: the whole-clip overlay video (H.264, streamed), per-track thumbnails, ID timeline.

A motion source supplies a *frame drawer* for the overlay: `draw(frame, bgr) -> [(track_id, box)]`
draws every track's mesh and skeleton of that video frame in place and returns each drawn track's
pixel box (x1, y1, x2, y2). This module streams the video through it (one frame in memory at a
time; every `stride`-th frame, stride = ceil(n_frames / video_max_frames) so the video always spans
the whole clip), adds track ids and low-confidence marks, scales to `video_width` and encodes H.264
(video2mesh.models.writers.video). Thumbnails are crops of each track's middle frame, as drawn.
"""
from __future__ import annotations

import html
import math
import tempfile
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pandas as pd

from video2mesh.models.writers import preview
from video2mesh.models.writers.video import H264Writer, even_size, h264_encoder

FrameDrawer = Callable[[int, np.ndarray], list[tuple[int, tuple[float, float, float, float]]]]
LOW_COLOR = (40, 40, 230)   # BGR red


def video_stride(n_frames: int, max_frames: int) -> int:
    """Every how many frames the overlay video takes one (1 when the clip fits in `max_frames`)."""
    return max(1, math.ceil(n_frames / max_frames)) if max_frames > 0 else 1


def low_confidence(motion: pd.DataFrame, tracklets: pd.DataFrame, low_score: float, max_uncertainty: float) -> set[tuple[int, int]]:
    """(frame, track_id) pairs to mark: interpolated boxes, detector score < low_score, or the
    source's uncertainty > max_uncertainty."""
    t = tracklets[(tracklets.interpolated) | (tracklets.score < low_score)]
    low = set(zip(t.frame.astype(int), t.track_id.astype(int)))
    u = motion[motion.uncertainty.to_numpy(np.float64) > max_uncertainty]
    return low | set(zip(u.frame.astype(int), u.track_id.astype(int)))


def _label_text(tid: int, low: bool, scale: float) -> tuple[str, float, int, int, int]:
    """(text, font scale, thickness, width, height) of a track's label."""
    th = max(1, int(round(2 * scale)))
    text = f"#{tid}" + (" low conf" if low else "")
    fs = 0.8 * scale
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, th)
    return text, fs, th, w, h


def place_labels(anchors: list[tuple[int, int]], sizes: list[tuple[int, int]], width: int, height: int
                 ) -> list[tuple[int, int]]:
    """Top-left corners of label rectangles (w, h) that do not overlap and stay inside a width x height frame.
    Each label wants the spot just above its box's top-left corner (`anchors`, after clamping into the frame);
    labels are placed left to right, and one that would cover an already placed label moves up a row (down
    when there is no room above), so people standing side by side keep readable ids."""
    out: list[tuple[int, int]] = []
    placed: list[tuple[int, int, int, int]] = []
    for i in sorted(range(len(anchors)), key=lambda k: (anchors[k][0], anchors[k][1])):
        (ax, ay), (w, h) = anchors[i], sizes[i]
        x = min(max(ax, 0), max(width - w, 0))
        y0 = min(max(ay, 0), max(height - h, 0))
        hits = lambda y: [r for r in placed if x < r[0] + r[2] and r[0] < x + w and y < r[1] + r[3] and r[1] < y + h]  # noqa: E731
        y, step = y0, -1
        while hits(y):
            y = min(r[1] for r in hits(y)) - h if step < 0 else max(r[1] + r[3] for r in hits(y))
            if y < 0 and step < 0:            # no room above: try below the first spot instead
                y, step = y0, 1
            elif y + h > height and step > 0:
                y = y0                          # nowhere free in this column: overlap rather than leave the frame
                break
        placed.append((x, y, w, h))
        out.append((i, (x, y)))
    return [xy for _, xy in sorted(out)]


def _labels(img: np.ndarray, boxes, low: set[int], scale: float) -> None:
    """Every track's id label (a black plate above its box, coloured text; red "low conf" and a dashed red box
    where the frame's estimate is less trustworthy), the plates never covering one another."""
    texts = [_label_text(tid, tid in low, scale) for tid, _ in boxes]
    anchors = [(int(round(b[0])), int(round(b[1])) - 6 - t[4] - 4) for (_, b), t in zip(boxes, texts)]
    spots = place_labels(anchors, [(t[3] + 6, t[4] + 8) for t in texts], img.shape[1], img.shape[0])
    for (tid, box), (text, fs, th, w, h), (x, y) in zip(boxes, texts, spots):
        color = LOW_COLOR if tid in low else preview.track_color(tid)
        cv2.rectangle(img, (x, y), (x + w + 6, y + h + 8), (0, 0, 0), -1)
        cv2.putText(img, text, (x + 3, y + h + 4), cv2.FONT_HERSHEY_SIMPLEX, fs, color, th, cv2.LINE_AA)
        if tid in low:   # dashed red box: the frame's estimate is less trustworthy
            _dashed_box(img, box, th, scale)


def _dashed_box(img: np.ndarray, box, th: int, scale: float) -> None:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    for a, b in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        n = max(int(np.hypot(b[0] - a[0], b[1] - a[1]) // (12 * scale)), 1)
        for k in range(0, n, 2):
            p = (int(a[0] + (b[0] - a[0]) * k / n), int(a[1] + (b[1] - a[1]) * k / n))
            q = (int(a[0] + (b[0] - a[0]) * (k + 1) / n), int(a[1] + (b[1] - a[1]) * (k + 1) / n))
            cv2.line(img, p, q, LOW_COLOR, th)


def thumb_frames(motion: pd.DataFrame) -> dict[int, int]:
    """track_id -> the frame its thumbnail shows (the middle of its frames)."""
    return {int(t): int(np.sort(g.frame.to_numpy())[len(g) // 2]) for t, g in motion.groupby("track_id")}


def render_overlay(frames, draw: FrameDrawer, n_frames: int, fps: float, low: set[tuple[int, int]],
                   thumbs_at: dict[int, int], width: int, max_frames: int, thumb_px: int = 160) -> tuple[bytes | None, dict, dict[int, bytes]]:
    """Stream `frames` ((index, BGR) iterator over the clip) through `draw` into an H.264 mp4.

    Returns (mp4 bytes or None when max_frames == 0 or no encoder, meta {stride, fps, frames, width,
    height, encoder} or {reason}, {track_id: thumbnail PNG}).
    """
    stride = video_stride(n_frames, max_frames)
    encoder = h264_encoder() if max_frames > 0 else None
    reason = "" if encoder else ("video_max_frames = 0" if max_frames <= 0 else "no H.264 encoder: pip install av")
    thumbs: dict[int, bytes] = {}
    writer, tmp = None, tempfile.TemporaryDirectory()
    want = set(thumbs_at.values())
    try:
        for f, img in frames:
            if f % stride and f not in want:
                continue
            boxes = draw(f, img)
            scale = max(img.shape[1] / max(width, 1), 1.0)
            _labels(img, boxes, {tid for tid, _ in boxes if (f, tid) in low}, scale)
            for tid, box in boxes:
                if thumbs_at.get(tid) == f:
                    thumbs[tid] = _thumb(img, box, thumb_px)
            if f % stride or not encoder:
                continue
            if writer is None:
                w, h = even_size(width, int(round(img.shape[0] * width / img.shape[1])))
                writer = H264Writer(Path(tmp.name) / "overlay.mp4", w, h, fps / stride)
            writer.write(cv2.resize(img, writer.size, interpolation=cv2.INTER_AREA))
        if writer is None:
            return None, {"reason": reason or "no frames"}, thumbs
        writer.close()
        data = (Path(tmp.name) / "overlay.mp4").read_bytes()
        return data, {"stride": stride, "fps": fps / stride, "frames": writer.frames, "width": writer.size[0],
                      "height": writer.size[1], "encoder": writer.encoder}, thumbs
    finally:
        tmp.cleanup()


def _thumb(img: np.ndarray, box, px: int) -> bytes:
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * 1.15
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    a, b = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
    crop = img[b:int(min(cy + side / 2, img.shape[0])), a:int(min(cx + side / 2, img.shape[1]))]
    if crop.size == 0:
        crop = img
    s = px / max(crop.shape[:2])
    crop = cv2.resize(crop, (max(int(crop.shape[1] * s), 1), max(int(crop.shape[0] * s), 1)), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".png", crop)[1].tobytes()


def spans(frames: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive values of sorted `frames` as [(first, last)]."""
    if len(frames) == 0:
        return []
    cut = np.flatnonzero(np.diff(frames) != 1)
    starts = np.r_[frames[0], frames[cut + 1]]
    ends = np.r_[frames[cut], frames[-1]]
    return [(int(a), int(b)) for a, b in zip(starts, ends)]


def timeline_svg(tracklets: pd.DataFrame, motion_frames: dict[int, np.ndarray], n_frames: int, fps: float,
                 low: set[tuple[int, int]], width: int = 1000) -> str:
    """An SVG: one row per track; bars where it has motion, red hatch where interpolated, red ticks
    where low confidence, empty gaps. Frame numbers 1-based as in the file names."""
    row, left = 22, 70
    sx = (width - left - 10) / max(n_frames, 1)
    ids = sorted(motion_frames)
    h = row * len(ids) + 30
    out = [f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" viewBox="0 0 {width} {h}">',
           '<defs><pattern id="hatch" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
           '<rect width="2" height="4" fill="#d33"/></pattern></defs>']
    for i, tid in enumerate(ids):
        y = 5 + i * row
        b, g, r = preview.track_color(tid)
        out.append(f'<text x="4" y="{y + 14}" font-size="12">track {tid}</text>')
        for a, z in spans(np.sort(motion_frames[tid])):
            out.append(f'<rect x="{left + a * sx:.1f}" y="{y}" width="{max((z - a + 1) * sx, 1):.1f}" height="16" '
                       f'fill="rgb({r},{g},{b})"><title>track {tid}: frames {a + 1}–{z + 1}</title></rect>')
        interp = np.sort(tracklets[(tracklets.track_id == tid) & tracklets.interpolated].frame.to_numpy())
        for a, z in spans(interp):
            out.append(f'<rect class="interp" x="{left + a * sx:.1f}" y="{y}" width="{max((z - a + 1) * sx, 1):.1f}" '
                       f'height="16" fill="url(#hatch)"><title>interpolated {a + 1}–{z + 1}</title></rect>')
        for f in sorted(f for f, t in low if t == tid):
            out.append(f'<rect x="{left + f * sx:.1f}" y="{y + 16}" width="{max(sx, 1):.1f}" height="3" fill="#d33"/>')
    ticks = np.linspace(0, max(n_frames - 1, 0), 6).round().astype(int)
    yb = 5 + len(ids) * row + 14
    anchor = ["start"] + ["middle"] * (len(ticks) - 2) + ["end"]
    out += [f'<text x="{left + (t + (a == "end")) * sx:.1f}" y="{yb}" font-size="10" text-anchor="{a}">{t + 1} ({t / fps:.1f}s)</text>'
            for t, a in zip(ticks, anchor)]
    out.append(f'<line id="timeline-cursor" x1="{left}" x2="{left}" y1="0" y2="{h - 12}" stroke="#000" '
               f'data-left="{left}" data-sx="{sx:.6f}"/></svg>')
    return "\n".join(out)


def legend() -> str:
    return html.escape("bars: frames with motion; red hatch: interpolated (no detection); red ticks: low confidence")


def report_media(ctx, cfg, source, raw: pd.DataFrame, motion: pd.DataFrame, tracklets: pd.DataFrame,
                 summaries: list[dict]) -> tuple[list[tuple], str, dict]:
    """Everything the page shows beyond the metrics, for `report_compute`: verdicts (added to the
    summaries), the overlay video, thumbnails, ID timeline and 3D viewer. Returns (file rows as
    (track_id, kind, path, bytes, meta), HTML, facts for report.json)."""
    from video2mesh.pipeline.viewer_lib import viewer_bundle

    from . import _report_page as page
    from ._report_bands import load_bands, verdict
    from ._viewer import BUNDLE_PATH, viewer_data, viewer_section

    fps, n = ctx.video.fps, ctx.video.n_frames
    bands = load_bands(source.joints.name, fps)
    for s in summaries:
        s["verdict"] = verdict(s, bands, fps, source.advice, source.uncertainty_check)
    ucheck = source.uncertainty_check if source.uncertainty_check is not None else float("inf")
    low = low_confidence(motion, tracklets, cfg.low_score, ucheck)
    files: list[tuple] = []
    meta, thumbs = None, {}
    if source.drawer is not None and len(motion):
        draw = source.drawer(ctx, cfg, raw)
        data, meta, thumbs = render_overlay(ctx.frames(0, n), draw, n, fps, low, thumb_frames(motion),
                                            cfg.video_width, cfg.video_max_frames)
        if data:
            files.append((-1, "mp4", page.VIDEO_PATH, data, {k: v for k, v in meta.items()}))
        files += [(tid, "png", f"thumbs/track_{tid:03d}.png", png, {}) for tid, png in thumbs.items()]
    mframes = {int(t): g.frame.to_numpy(np.int64) for t, g in motion.groupby("track_id")}
    stride = video_stride(n, cfg.video_max_frames)
    bundle = viewer_bundle() if cfg.viewer_lib else None
    if bundle:
        files.append((-1, "js", BUNDLE_PATH, bundle[0], {"three": bundle[1]["three"]}))
    parts = [f"<style>{page.CSS}</style>", page.verdict_cards(summaries, thumbs),
             '<div class="media">', page.video_section(meta),
             viewer_section(viewer_data(motion, source.joints, fps, n, stride), bundle is not None), "</div>",
             page.timeline_section(timeline_svg(tracklets, mframes, n, fps, low), legend()),
             page.bands_table(summaries, bands)]
    info = {"overlay_video": {"path": page.VIDEO_PATH, **meta} if meta and "reason" not in meta else meta,
            "viewer": {"path": BUNDLE_PATH, **bundle[1]} if bundle else None,
            "reference_bands": {k: bands[k] for k in ("source", "fps_band", "window_s")} if bands else None}
    return files, "\n".join(parts), info
