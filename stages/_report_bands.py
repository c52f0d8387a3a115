"""Reference bands of natural motion (CMU mocap) for the report's metrics, and the per-track verdict.

Bands: the report's own metric code (`report.track_metrics`) run on CMU motion capture resampled to
the clip's frame rate, over 2-second windows; a band is the 5th..95th percentile of the windows'
values. Shipped as `report_bands.json`, computed from the CMU clips in ../shared/data/mocap by

    python -m video2mesh.stages._report_bands ../shared/data/mocap/131_02.bvh ../shared/data/mocap/scaled_131_01.bvh

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
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from video2mesh.models.metrics import motion as mm
from video2mesh.models.writers.animation import CAMERA_TO_YUP

BANDS_FILE = Path(__file__).with_name("report_bands.json")
FPS_LIST = (10, 12, 15, 24, 25, 30, 50, 60)
WINDOW_S = 2.0
CHECK, REDO = 1.5, 4.0
CMU_UNIT_M = 0.056444   # CMU's length unit in metres (as models.training.datasets.CMU_UNIT_M)
# CMU BVH joint names (the bvh11 export) for each joint set; "HEAD" = halfway up the head bone.
CMU_JOINTS = {
    mm.COCO_17.name: ("HEAD", "HEAD", "HEAD", "HEAD", "HEAD", "LeftShoulder", "RightShoulder", "LeftElbow",
                      "RightElbow", "LeftWrist", "RightWrist", "LeftHip", "RightHip", "LeftKnee", "RightKnee",
                      "LeftAnkle", "RightAnkle"),
    mm.SMPL_24.name: ("Hips", "LeftHip", "RightHip", "lowerback", "LeftKnee", "RightKnee", "Chest", "LeftAnkle",
                      "RightAnkle", "Chest2", "LeftToe", "RightToe", "Neck", "LeftCollar", "RightCollar", "HEAD",
                      "LeftShoulder", "RightShoulder", "LeftElbow", "RightElbow", "LeftWrist", "RightWrist", "lhand", "rhand"),
}


def mocap_joints(path: str | Path, names: tuple[str, ...]) -> tuple[np.ndarray, float]:
    """(F, J, 3) metres Y-up of the named CMU joints, and the file's fps. Units: metres when the body
    is under 3 units tall, else CMU's unit."""
    from video2mesh.models.training.datasets import read_bvh

    b = read_bvh(path)
    pos = b.positions
    head = 0.5 * (pos[:, b.names.index("Head")] + b.end_sites["Head"])
    j = np.stack([head if n == "HEAD" else pos[:, b.names.index(n)] for n in names], 1)
    unit = 1.0 if np.ptp(j[0, :, 1]) < 3 else CMU_UNIT_M
    return j * unit, 1.0 / b.frame_time_s


def resample(x: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """(F, ...) sampled at fps_in -> linear interpolation at fps_out over the same time span."""
    t_in = np.arange(len(x)) / fps_in
    t_out = np.arange(0, t_in[-1] + 1e-9, 1.0 / fps_out)
    flat = x.reshape(len(x), -1)
    return np.stack([np.interp(t_out, t_in, flat[:, k]) for k in range(flat.shape[1])], 1).reshape(len(t_out), *x.shape[1:])


def window_metrics(joints_yup: np.ndarray, fps: float, joints: mm.JointSet, cfg) -> list[dict[str, Any]]:
    """track_metrics summaries of consecutive WINDOW_S windows of (F, J, 3) Y-up metres."""
    from .report import track_metrics

    cam = joints_yup @ CAMERA_TO_YUP            # Y-up -> camera axes (CAMERA_TO_YUP is its own inverse)
    root = cam[:, list(joints.reference)].mean(1)
    n = int(round(WINDOW_S * fps))
    out = []
    for s in range(0, len(cam) - n + 1, n):
        mot = pd.DataFrame({"frame": np.arange(n), "track_id": 0, "joints3d": list(cam[s:s + n].reshape(n, -1)),
                            "trans": list(root[s:s + n]), "uncertainty": np.zeros(n)})
        trk = pd.DataFrame({"frame": np.arange(n), "score": 1.0, "interpolated": False})
        out.append(track_metrics(mot, trk, fps, cfg, joints)[0])
    return out


def _band(values: list[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if x is not None], np.float64)
    return {"p5": round(float(np.percentile(v, 5)), 4), "p50": round(float(np.median(v)), 4),
            "p95": round(float(np.percentile(v, 95)), 4)}


def compute_bands(paths: list[str], fps_list=FPS_LIST) -> dict[str, Any]:
    """Bands per joint set and fps (see the module docstring) of the given CMU BVH files."""
    from .report import MotionReportConfig

    cfg = MotionReportConfig()
    doc: dict[str, Any] = {"source": "CMU Graphics Lab motion capture database: " + ", ".join(Path(p).name for p in paths),
                           "command": "python -m video2mesh.stages._report_bands " + " ".join(Path(p).name for p in paths)
                           + "  (the files in ../shared/data/mocap)",
                           "window_s": WINDOW_S, "joint_sets": {}}
    for jname, names in CMU_JOINTS.items():
        joints = mm.COCO_17 if jname == mm.COCO_17.name else mm.SMPL_24
        clips = [mocap_joints(p, names) for p in paths]
        per_fps = {}
        for fps in fps_list:
            wins = [w for j, f in clips for w in window_metrics(resample(j, f, fps), fps, joints, cfg)]
            parts = list(wins[0]["accel_mm"])
            per_fps[str(fps)] = {
                "n_windows": len(wins),
                "accel_mm": {p: _band([w["accel_mm"][p]["mean"] for w in wins]) for p in parts},
                "jitter_mm": {p: _band([w["jitter_mm"][p] for w in wins]) for p in parts},
                "sliding_mm": _band([f["sliding_mm"] for w in wins for f in w["foot"].values()]),
            }
        doc["joint_sets"][jname] = per_fps
    return doc


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


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m video2mesh.stages._report_bands CMU.bvh... (writes stages/report_bands.json)")
    BANDS_FILE.write_text(json.dumps(compute_bands(sys.argv[1:]), indent=1) + "\n")
    print(f"wrote {BANDS_FILE}")
