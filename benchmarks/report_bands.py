"""Computes stages/report_bands.json: the report's reference bands of natural motion from CMU mocap.

    python -m video2mesh.benchmarks.report_bands ../shared/data/mocap/131_02.bvh ../shared/data/mocap/scaled_131_01.bvh

Each clip (CMU Graphics Lab motion capture database; CMU only) is resampled to each frame rate of
FPS_LIST, cut into WINDOW_S windows, and run through the report's own metric code
(stages._report_core.track_metrics) as if it were a track; a band is the 5th/50th/95th percentile of the
windows' values. stages._report_bands reads the file and says how the numbers are used.
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
from video2mesh.stages._report_bands import BANDS_FILE

FPS_LIST = (10, 12, 15, 24, 25, 30, 50, 60)
WINDOW_S = 2.0
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
    from video2mesh.stages._report_core import track_metrics

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
    from video2mesh.stages._report_core import MotionReportConfig

    cfg = MotionReportConfig()
    doc: dict[str, Any] = {"source": "CMU Graphics Lab motion capture database: " + ", ".join(Path(p).name for p in paths),
                           "command": "python -m video2mesh.benchmarks.report_bands " + " ".join(Path(p).name for p in paths)
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


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m video2mesh.benchmarks.report_bands CMU.bvh... (writes stages/report_bands.json)")
    BANDS_FILE.write_text(json.dumps(compute_bands(sys.argv[1:]), indent=1) + "\n")
    print(f"wrote {BANDS_FILE}")
