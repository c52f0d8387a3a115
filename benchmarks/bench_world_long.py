"""Long tracks after `fit`: the `world` stage and the Anny export's time and peak memory against length.

The input is a synthetic `fit` track (synthetic_fit: a standing person swaying, a static camera): what
the world stage costs hardly depends on what the motion shows, as long as the feet are in contact and
the leg IK runs (`contact`, `ik_frames`: the fractions of frames with a contact foot, with legs moved).
`world` cases time stages.world.world_track; `export` cases time stages.fit_export.track_files (npz +
bvh + glb, bytes in memory, as the stage holds them; no OBJ, which long tracks skip by default). Peak
RSS includes the input rows (built in setup, ~3 KB a frame); `input_mb` says how much the process held
before the step. Quick mode: 2,000 and 8,000 frames; else up to 32,000 (18 minutes at 30 fps). `obj`
cases make an OBJ sequence as the stage's chunks do (`obj_chunk_frames`: each chunk's files become a
table, then are let go), against one chunk.
"""
from __future__ import annotations

import numpy as np

from . import Case


def synthetic_fit(body, n: int, fps: float = 30.0):
    """(fit rows of one track, camera_motion rows) of n frames, as the `world` stage reads them: a person
    upright 4 m in front of a static camera, legs still, arms, spine and head moving, the root swaying
    +-6 cm sideways (so the feet would slide: contacts and planting, the leg IK on most frames)."""
    import pandas as pd
    import torch
    from scipy.spatial.transform import Rotation

    from video2mesh.models.body.anny_body import N_BONES
    from video2mesh.models.fit.anny_fit import MODEL_TO_CAMERA

    rng = np.random.default_rng(0)
    t = np.arange(n)
    legs = [i for i, b in enumerate(body.bone_names) if b.startswith(("pelvis", "upperleg", "lowerleg", "foot", "toe"))]
    amp = rng.normal(0, 0.15, (N_BONES, 3))
    amp[[0, *legs]] = 0.0
    rots = (amp[None] * np.sin(t / 15.0)[:, None, None]).astype(np.float32)
    phen = np.full(6, 0.5, np.float32)
    with torch.no_grad():
        sk = body.skeleton(torch.as_tensor(phen[None], dtype=body.dtype))
    up = Rotation.from_matrix(MODEL_TO_CAMERA @ sk.rest_rotations[0].double().numpy().T).as_rotvec()
    orient = np.tile(up, (n, 1)).astype(np.float32)
    transl = np.stack([0.06 * np.sin(t / fps), 0.0 * t, 4.0 + 0.0 * t], 1).astype(np.float32)
    g = pd.DataFrame({
        "frame": t, "track_id": np.zeros(n, np.int32), "body_model": "anny", "rig": "anny",
        "bone_rotations": list(rots.reshape(n, -1)), "global_orient": list(orient), "transl": list(transl),
        "phenotype": [phen] * n, "keypoints": [np.zeros(51, np.float32)] * n,
        "keypoints3d": [np.zeros(51, np.float32)] * n, "residual_px": np.ones(n, np.float32),
        "confidence": np.ones(n, np.float32), "swapped": np.zeros(n, bool), "focal_px": np.full(n, 1000.0, np.float32)})
    cam = pd.DataFrame({"frame": t, "h": [np.eye(3).ravel()] * n, "valid": np.ones(n, bool)})
    return g, cam


def world_case(n: int, export: bool):
    """setup() of world_track (export False) or of the npz/bvh/glb export (True) on n frames."""
    def build():
        import psutil

        from video2mesh.stages import fit_export
        from video2mesh.stages.licence_free import load_body
        from video2mesh.stages.world import WorldStageConfig, world_track

        body = load_body(None)
        g, cam = synthetic_fit(body, n)
        rows = world_track(g, cam, body, (1920, 1080), 30.0, WorldStageConfig()) if export else None
        if export:
            del g
        cfg = fit_export.FitExportConfig(formats=("npz", "bvh", "glb"))
        input_mb = round(psutil.Process().memory_info().rss / 2**20)

        def step():
            if export:
                files = fit_export.track_files(rows, body, 30.0, cfg)
                return n, {"input_mb": input_mb, "files_mb": round(sum(len(f[3]) for f in files) / 2**20, 1)}
            out = world_track(g, cam, body, (1920, 1080), 30.0, WorldStageConfig())
            contact = float(np.mean(out.contact_left | out.contact_right))
            ik = np.abs(np.stack(out.bone_rotations.to_numpy()) - np.stack(g.bone_rotations.to_numpy())).max(1) > 1e-4
            return n, {"input_mb": input_mb, "contact": round(contact, 2), "ik_frames": round(float(ik.mean()), 2)}
        return step
    return build


def obj_case(n: int, chunk: int):
    """setup() of an n-frame OBJ sequence made in chunks of `chunk` frames, as the export stage does."""
    def build():
        from video2mesh.stages import _export_core as core
        from video2mesh.stages import fit_export
        from video2mesh.stages.licence_free import load_body
        from video2mesh.stages.world import WorldStageConfig, world_track

        body = load_body(None)
        g, cam = synthetic_fit(body, n)
        track = fit_export.anny_track(world_track(g, cam, body, (1920, 1080), 30.0, WorldStageConfig()), body)
        cfg = fit_export.FitExportConfig(formats=("obj",), obj_max_frames=0, obj_chunk_frames=chunk)

        def step():   # as the stage's chunks: each chunk's files become a Parquet table, then are let go
            size = 0
            for s in range(0, n, chunk):
                files = core.iter_track_files(track, 30.0, cfg, "t", animated=False, obj=(s, s + chunk))
                size += fit_export.FIT_EXPORT.to_table(core.file_rows(files)).nbytes
            return n, {"files_mb": round(size / 2**20)}
        return step
    return build


def cases(quick: bool, device: str) -> list[Case]:
    lengths = (2000, 8000) if quick else (2000, 8000, 32000)

    out = [Case("world_long", f"world_track, {n} frames", world_case(n, False), repeat=1, warmup=0) for n in lengths]
    out += [Case("world_long", f"fit_export npz+bvh+glb, {n} frames", world_case(n, True), repeat=1, warmup=0)
            for n in lengths[:2]]
    # last: memory the process freed is not always given back, so a later case's RSS would start higher
    obj_n = 300 if quick else 600
    out += [Case("world_long", f"fit_export obj, {obj_n} frames, chunks of {c}", obj_case(obj_n, c), repeat=1, warmup=0)
            for c in (64, obj_n)]
    return out
