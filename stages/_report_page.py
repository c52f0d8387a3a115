"""HTML fragments of the report page: verdicts, metrics beside their mocap bands, video, timeline, thumbnails.

The overlay video is a file next to report.html (`overlay.mp4`, a relative reference), not base64:
a clip's video is megabytes, a data: URL would make the page that much bigger (+33%) and must be
read whole before playing, while a file streams and seeks. Images stay inlined (small).
"""
from __future__ import annotations

import base64
import html
from typing import Any

VERDICT_COLOURS = {"usable": "#2a7d2a", "check": "#b7791f", "redo": "#c0392b"}
VIDEO_PATH = "overlay.mp4"


def _f(x: Any) -> str:
    return "–" if x is None else f"{x:.1f}"


def _cell(value: float | None, band: dict[str, float] | None) -> str:
    """'value' with its band 'p5–p95' beneath; coloured when above p95 x 1.5."""
    if band is None:
        return f"<td>{_f(value)}</td>"
    hot = value is not None and band["p95"] > 0 and value > 1.5 * band["p95"]
    style = ' style="background:#fde2e0"' if hot else ""
    return f'<td{style}>{_f(value)}<br><small>{band["p5"]:.1f}–{band["p95"]:.1f}</small></td>'


def bands_table(summaries: list[dict[str, Any]], bands: dict[str, Any] | None) -> str:
    """Per track: mean acceleration and jitter per part and foot sliding, each with its mocap band."""
    if not summaries:
        return ""
    parts = list(summaries[0]["accel_mm"])
    head = "".join(f"<th>accel {p}</th>" for p in parts) + "".join(f"<th>jitter {p}</th>" for p in parts) + "<th>foot slide</th>"
    rows = []
    for s in summaries:
        cells = [_cell(s["accel_mm"][p]["mean"], bands["accel_mm"].get(p) if bands else None) for p in parts]
        cells += [_cell(s["jitter_mm"][p], bands["jitter_mm"].get(p) if bands else None) for p in parts]
        slides = [f["sliding_mm"] for f in s["foot"].values() if f["sliding_mm"] is not None]
        cells.append(_cell(max(slides) if slides else None, bands["sliding_mm"] if bands else None))
        rows.append(f'<tr><td><a href="#track-{s["track_id"]}">{s["track_id"]}</a></td>{"".join(cells)}</tr>')
    if bands:
        src = (f'Bands (small numbers): 5th–95th percentile of natural motion, {html.escape(bands["source"])}, resampled to '
               f'{bands["fps"]:.3g} fps (table at {bands["fps_band"]:g} fps), the same metric code over {bands["window_s"]:g} s windows. '
               "Walking only: faster motions legitimately exceed them.")
    else:
        src = "No reference bands for this joint set."
    return (f'<h2>Metrics against natural motion</h2><p class="note">{src} Units: mm/frame² (acceleration, jitter), '
            f'mm/frame (foot slide, the worse foot).</p><table class="bands"><thead><tr><th>track</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def verdict_cards(summaries: list[dict[str, Any]], thumbs: dict[int, bytes]) -> str:
    """One card per track: thumbnail, verdict, reasons and what to try."""
    cards = []
    for s in summaries:
        tid, v = s["track_id"], s.get("verdict", {"verdict": "usable", "reasons": []})
        img = (f'<img class="thumb" alt="track {tid}" src="data:image/png;base64,{base64.b64encode(thumbs[tid]).decode()}">'
               if tid in thumbs else "")
        items = "".join(f'<li><b>{r["level"]}</b>: {html.escape(r["why"])}'
                        + (f' — try <code>{html.escape(r["try"])}</code>' if r["try"] else "") + "</li>" for r in v["reasons"][:6])
        more = f"<li>… {len(v['reasons']) - 6} more in report.json</li>" if len(v["reasons"]) > 6 else ""
        cards.append(f'<div class="card" id="verdict-{tid}">{img}<div><h3>track {tid}: <span class="verdict" '
                     f'style="color:{VERDICT_COLOURS[v["verdict"]]}">{v["verdict"]}</span></h3>'
                     f'<p>frames {s["frame_first"] + 1}–{s["frame_last"] + 1} ({s["n_frames"]})</p>'
                     f'<ul>{items or "<li>every metric within its band</li>"}{more}</ul></div></div>')
    return '<h2>Verdict per track</h2><div class="cards">' + "".join(cards) + "</div>"


def video_section(meta: dict[str, Any] | None) -> str:
    """The overlay video, or why there is none."""
    if meta and "reason" not in meta:
        stride = f", every {meta['stride']}th frame" if meta["stride"] > 1 else ""
        return (f'<div class="clip"><h2>Whole clip</h2><video id="overlay" src="{VIDEO_PATH}" controls muted playsinline '
                f'preload="auto"></video><p class="note">Every track\'s mesh silhouette and skeleton, track ids, '
                f'low-confidence frames in red dashed boxes ({meta["frames"]} frames{stride}, H.264 by '
                f'{html.escape(meta["encoder"])}).</p></div>')
    return f'<div class="clip"><h2>Whole clip</h2><p class="note">No overlay video: {html.escape((meta or {}).get("reason", "not rendered"))}.</p></div>'


def timeline_section(timeline: str, legend: str) -> str:
    return f'<h2>ID timeline</h2><p class="note">{legend}</p>{timeline}'


CSS = (".cards{display:flex;flex-wrap:wrap;gap:10px}.card{display:flex;gap:8px;border:1px solid #ccc;padding:6px;"
       "max-width:520px}.card h3{margin:0}.card ul{margin:4px 0;padding-left:18px;font-size:13px}.thumb{width:120px;"
       "height:auto}.note{font-size:13px;color:#444}.bands small{color:#777}.media{display:flex;gap:12px;align-items:flex-start}"
       ".clip{flex:0 0 auto;max-width:45%}.clip video{max-width:100%;max-height:480px;display:block}#view3d{flex:1 1 auto;"
       "min-width:0}#view3d h2,.clip h2{margin-top:0}.media{margin-top:1.5em}")
