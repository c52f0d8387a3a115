"""Export and report costs on synthetic motion (synthetic SMPL-layout body, CPU maths only)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from video2mesh.benchmarks import Case


def _track(n: int) -> pd.DataFrame:
    """`mesh` rows of one smooth synthetic track of n frames (joints3d: a stand-in stick trajectory)."""
    t = np.arange(n) / 30.0
    rng = np.random.default_rng(0)
    pose = np.concatenate([np.tile([np.pi, 0, 0], (n, 1)), 0.3 * np.sin(t[:, None] + rng.uniform(0, 6, 69))], 1)
    joints = rng.normal(0, 0.3, (24, 3)) + 0.01 * np.sin(5 * t)[:, None, None]
    return pd.DataFrame({
        "frame": np.arange(n), "track_id": 0, "pose": list(pose), "betas_track": [np.zeros(10)] * n,
        "trans": list(np.stack([0.2 * t, 0 * t, 4 + 0 * t], 1)), "cam_crop": [np.zeros(3)] * n,
        "cam_orig": [np.array([0.3, 0.5, 0, 0])] * n, "uncertainty": np.full(n, 0.1),
        "joints3d": list(joints.reshape(n, -1)), "score": 0.9, "interpolated": False,
    })


def _model() -> dict:
    from video2mesh.models.body import synthetic_smpl
    from video2mesh.stages._smpl import load_smpl_arrays

    return load_smpl_arrays(synthetic_smpl.write(Path(tempfile.mkdtemp()), "NEUTRAL"))


def cases(quick: bool, device: str) -> list[Case]:
    from video2mesh.stages import export, report

    n = 60 if quick else 600

    def files(formats: tuple[str, ...], frames: int):
        def setup():
            arrays, df = _model(), _track(frames)
            cfg = export.ExportConfig(formats=formats, obj_max_frames=0)
            layer = export.smpl_layer(arrays)
            return lambda: (export.export_track(df, arrays, 30.0, cfg, layer), frames)[1]
        return setup

    def metrics():
        df = _track(n)
        cfg = report.ReportConfig()

        def step():
            summary, series = report.track_metrics(df, df[["frame", "score", "interpolated"]], 30.0, cfg)
            report.track_plot(summary, series)
            return n
        return step

    def preview_frame():
        from video2mesh.models.writers import preview

        arrays = _model()
        layer = export.smpl_layer(arrays)
        img = np.zeros((720, 1280, 3), np.uint8)

        def step():
            v = export.smpl_vertices(layer, np.array([[np.pi, 0, 0] + [0.0] * 69]), np.zeros(10), np.zeros((1, 3)))[0]
            pix = preview.project_weak_perspective(v, [0.3, 0.5, 0, 0], 1280, 720)
            preview.draw_mesh(img, pix, v, arrays["f"], (0, 0, 255))
            return 1
        return step

    return [
        Case("export", f"npz+bvh+glb {n} frames", files(("npz", "bvh", "glb"), n), repeat=2),
        Case("export", f"obj {n // 10} frames", files(("obj",), n // 10), repeat=2),
        Case("report", f"metrics+plot {n} frames", metrics, repeat=2),
        Case("report", "preview 1 mesh 1280x720", preview_frame, repeat=3),
    ]
