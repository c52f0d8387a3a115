"""Shared set-up for the licence-free path's tests: the BlazePose files, Anny, a stand-in tracker."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from video2mesh.pipeline.artifacts import Artifact
from video2mesh.pipeline.assets import AssetRegistry, default_models_dir
from video2mesh.pipeline.stage import Chunk, Context, Stage


def models_dir() -> Path:
    return default_models_dir()


def _pip_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
        return True
    except OSError:
        return False


def blazepose_registry() -> AssetRegistry:
    """Registry with both .tflite files present: runs the set-up once if pip can reach PyPI, else skips."""
    from video2mesh.stages.licence_free import ASSETS
    from video2mesh.stages.licence_free import setup_default_models

    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed")
    reg = AssetRegistry(ASSETS, models_dir=models_dir())
    if not all(reg.status(a.name).present for a in ASSETS):
        if os.environ.get("V2M_NO_SETUP") or not _pip_reachable():
            pytest.skip(f"BlazePose .tflite files absent from {reg.models_dir} and PyPI unreachable; "
                        "run `v2m models setup-default` where pip works")
        setup_default_models(reg.models_dir, build_body_model=False, person_detector=False)
    return reg


def anny_body():
    """The Anny model (builds its cache in the models folder on first use: ~80 s, offline)."""
    pytest.importorskip("anny", reason="the anny package is not installed")
    from video2mesh.stages.licence_free import load_body

    return load_body(None)


# --- a stand-in for the lead's `tracklets` stage (same schema) ---------------------------------
TRACKLETS = Artifact("tracklets", 1, pa.schema([
    ("frame", pa.int64()), ("track_id", pa.int32()),
    ("x1", pa.float32()), ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32()),
    ("score", pa.float32()), ("cx", pa.float32()), ("cy", pa.float32()), ("side", pa.float32()),
    ("interpolated", pa.bool_()),
]))


@dataclass(frozen=True)
class FakeTrackConfig:
    max_frames: int = 8
    max_people: int = 2


def body_box(det) -> np.ndarray:
    """A person box from BlazePose's alignment points (hip centre, body radius r): 1 x 2 r."""
    p0, p1 = det.keypoints[0], det.keypoints[1]
    r = float(np.hypot(*(p1 - p0)))
    return np.array([p0[0] - 0.5 * r, p0[1] - r, p0[0] + 0.5 * r, p0[1] + r], np.float32)


def _fake_tracklets(ctx: Context, cfg: FakeTrackConfig, chunk: Chunk) -> pd.DataFrame:
    """Full-frame BlazePose detections linked frame to frame by nearest hip centre; a missed
    detection keeps the previous box (interpolated), as the real tracker would."""
    from video2mesh.models.runners.blazepose import BlazePose

    net = BlazePose(ctx.weight("blazepose_detector"), ctx.weight("blazepose_landmark"))
    tracks: dict[int, np.ndarray] = {}
    rows = []
    for f, rgb in ctx.frames(0, min(cfg.max_frames, ctx.video.n_frames), rgb=True):
        dets = [body_box(d) for d in net.detect(rgb)][: cfg.max_people]
        seen = set()
        for box in dets:
            c = (box[:2] + box[2:]) / 2
            best = min(((np.linalg.norm(c - (b[:2] + b[2:]) / 2), t) for t, b in tracks.items() if t not in seen), default=None)
            tid = best[1] if best is not None and best[0] < (box[2] - box[0]) else len(tracks)
            tracks[tid] = box
            seen.add(tid)
            rows.append((f, tid, box, 1.0, False))
        for tid, box in tracks.items():
            if tid not in seen:
                rows.append((f, tid, box, 0.0, True))
    out = pd.DataFrame([{
        "frame": f, "track_id": t, "x1": b[0], "y1": b[1], "x2": b[2], "y2": b[3], "score": s,
        "cx": (b[0] + b[2]) / 2, "cy": (b[1] + b[3]) / 2, "side": max(b[2] - b[0], b[3] - b[1]), "interpolated": i,
    } for f, t, b, s, i in rows])
    for c in ("x1", "y1", "x2", "y2", "score", "cx", "cy", "side"):
        out[c] = out[c].astype(np.float32)
    out["frame"] = out["frame"].astype(np.int64)
    out["track_id"] = out["track_id"].astype(np.int32)
    return out


FAKE_TRACKLETS = Stage(name="tracklets", version=1, config=FakeTrackConfig, output=TRACKLETS,
                       compute=_fake_tracklets, inputs=("probe",),
                       assets=lambda cfg: ("blazepose_detector", "blazepose_landmark"))


def run_path(video: Path, store_dir: Path, registry: AssetRegistry, until: str, max_frames: int = 8, max_people: int = 2,
             fit_cfg=None):
    """Run probe -> fake tracklets -> blazepose (-> camera_motion -> fit, or -> hands) on a video; returns (runner, results)."""
    from video2mesh.pipeline.runner import Runner
    from video2mesh.pipeline.store import ArtifactStore
    from video2mesh.stages import blazepose, camera_motion, fit_anny, hands, probe

    stages = {"probe": probe.STAGE, "tracklets": FAKE_TRACKLETS, "blazepose": blazepose.STAGE, "fit": fit_anny.STAGE,
              "camera_motion": camera_motion.STAGE, "hands": hands.STAGE}
    configs = {"tracklets": FakeTrackConfig(max_frames=max_frames, max_people=max_people)}
    if fit_cfg is not None:
        configs["fit"] = fit_cfg
    runner = Runner(stages=stages, store=ArtifactStore(store_dir), registry=registry, configs=configs)
    return runner, runner.run(video, until=until)
