"""Reference bands of natural motion (CMU mocap) for the report's metrics, and the per-track verdict.

Bands: the report's own metric code (`_report_core.track_metrics`) run on CMU motion capture resampled to
the clip's frame rate, over 2-second windows; a band is the 5th..95th percentile of the windows'
values. Shipped as `report_bands.json`, computed from the CMU clips in ../shared/data/mocap by
(video2mesh.benchmarks.report_bands; it runs the stages' metric code, so it lives above them)

    python -m video2mesh.benchmarks.report_bands ../shared/data/mocap/131_02.bvh ../shared/data/mocap/scaled_131_01.bvh

(CMU Graphics Lab motion capture database, subject 131 "start walk stop", 120 fps; CMU only). Two
walking takes: the bands say what smooth, real walking looks like, not what every motion may do (a
dance legitimately accelerates more). For fps not in the file the nearest is used, accelerations
scaled by (fps_band / fps)^2 (mm/frame^2 scale with the square of the frame time).

Verdict per track, the worst of: each part's mean acceleration and jitter and each foot's sliding vs
its band's p95 (check above 1.5x, redo above 4x); interpolated share (check > 20%, redo > 50%);
low-score share (check > 30%); length (check under 2 s); the source's uncertainty (check above its
`uncertainty_check`). Each reason names the number, the band and a `--set` to try.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BANDS_FILE = Path(__file__).with_name("report_bands.json")
CHECK, REDO = 1.5, 4.0


def load_bands(joint_set: str, fps: float, path: Path = BANDS_FILE) -> dict[str, Any] | None:
    """Bands for a joint set at `fps` (nearest tabulated fps, accelerations rescaled), or None."""
    try:
        doc = json.loads(path.read_text())
        table = doc["joint_sets"][joint_set]
    except (OSError, KeyError, ValueError):
        return None
    key = min(table, key=lambda k: abs(float(k) - fps))
    b = json.loads(json.dumps(table[key]))
    scale = (float(key) / fps) ** 2
    for group in ("accel_mm", "jitter_mm"):
        for band in b[group].values():
            for k in band:
                band[k] = band[k] * scale
    for k in b["sliding_mm"]:
        b["sliding_mm"][k] = b["sliding_mm"][k] * float(key) / fps   # mm/frame scales with the frame time
    b.update(fps=fps, fps_band=float(key), source=doc["source"], window_s=doc["window_s"])
    return b


def _level(ratio: float) -> str:
    return "redo" if ratio > REDO else "check" if ratio > CHECK else "usable"


def verdict(s: dict[str, Any], bands: dict[str, Any] | None, fps: float, advice: dict[str, str],
            uncertainty_check: float | None = None) -> dict[str, Any]:
    """{"verdict": usable|check|redo, "reasons": [{"level", "why", "try"}]} of one track summary."""
    reasons = []

    def add(level: str, why: str, kind: str) -> None:
        if level != "usable":
            reasons.append({"level": level, "why": why, "try": advice.get(kind, "")})

    if bands:
        for group, label, kind in (("accel_mm", "acceleration", "accel"), ("jitter_mm", "jitter", "jitter")):
            for part, band in bands[group].items():
                v = s[group][part]["mean"] if group == "accel_mm" else s[group][part]
                if v is not None and band["p95"] > 0:
                    add(_level(v / band["p95"]), f"{part} {label} {v:.1f} mm/frame² vs mocap p95 {band['p95']:.1f}",
                        "root" if part == "root" else kind)
        for foot, f in s["foot"].items():
            v, p95 = f["sliding_mm"], bands["sliding_mm"]["p95"]
            if v is not None and p95 > 0:
                add(_level(v / p95), f"{foot} slides {v:.1f} mm/frame in contact vs mocap p95 {p95:.1f}", "sliding")
    ish = s["interpolated_share"]
    add("redo" if ish > 0.5 else "check" if ish > 0.2 else "usable", f"{100 * ish:.0f}% of frames interpolated", "gaps")
    if s["low_score_share"] > 0.3:
        add("check", f"{100 * s['low_score_share']:.0f}% of frames with a low detector score", "low_score")
    if s["n_frames"] < 2 * fps:
        add("check", f"short track ({s['n_frames']} frames, {s['n_frames'] / fps:.1f} s)", "short")
    u = s["uncertainty"]["mean"]
    if uncertainty_check is not None and u is not None and u > uncertainty_check:
        add("check", f"mean uncertainty {u:.2f} > {uncertainty_check:g}", "uncertainty")
    order = {"usable": 0, "check": 1, "redo": 2}
    worst = max((r["level"] for r in reasons), key=order.get, default="usable")
    reasons.sort(key=lambda r: -order[r["level"]])
    return {"verdict": worst, "reasons": reasons}
