"""fit: the Anny body fitted over each tracklet to its BlazePose keypoints (licence-free path).

One shape (phenotype) per tracklet, per-frame bone rotations, global rotation and camera-space
translation; see models/fit/anny_fit.py for the energy. The camera is a pinhole with the principal
point at the image centre and focal length `focal_scale * max(W, H)` px (default 1.0: a 53 degree
field of view along the long side, typical of phones and action cameras; the true value is unknown).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import pyarrow as pa

from video2mesh.models.body.anny_body import AnnyBody
from video2mesh.models.fit.anny_fit import FitConfig, linear_skeleton, fit_track
from video2mesh.models.runners.blazepose import COCO_FROM_BLAZEPOSE, N_LANDMARKS
from video2mesh.pipeline.artifacts import Artifact, fixed, stack
from video2mesh.pipeline.assets import default_models_dir
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.stage import Chunk, Context, Stage

log = logging.getLogger(__name__)

N_BONES = 104   # bones of Anny's 'anny' rig

FIT = Artifact(
    "fit",
    version=1,
    schema=pa.schema([
        ("frame", pa.int64()),
        ("track_id", pa.int32()),
        ("body_model", pa.string()),       # "anny"
        ("rig", pa.string()),              # Anny rig whose bones `bone_rotations` lists ("anny")
        ("bone_rotations", fixed(N_BONES * 3)),  # per bone: rotation vs its rest pose, axis-angle,
                                                 # in the parent's frame (BVH-style local); root = 0
        ("global_orient", fixed(3)),       # axis-angle: rest model axes (z up, facing -y) -> camera axes
        ("transl", fixed(3)),              # camera-space position of the root bone's head, metres
        ("phenotype", fixed(6)),           # gender age muscle weight height proportions in [0, 1] (per track)
        ("keypoints", fixed(51)),          # COCO-17 reprojected: x px, y px, BlazePose score
        ("keypoints3d", fixed(51)),        # COCO-17 in camera space, metres
        ("residual_px", pa.float32()),     # score-weighted mean distance to BlazePose's keypoints
        ("confidence", pa.float32()),      # 1 / (1 + residual / (2% of the person's size))
        ("swapped", pa.bool_()),           # left/right labels of BlazePose were swapped in this frame
        ("focal_px", pa.float32()),
    ]),
    doc="Anny fitted per tracklet; the rig's bone names/parents come from video2mesh.models.body.anny_body.",
)


@dataclass(frozen=True)
class FitAnnyConfig:
    """Parameters of the Anny fitting stage (the energy's weights are FitConfig's defaults)."""

    rig: str = "anny"
    focal_scale: Annotated[float, Range(0, 100, lo_open=True)] = 1.0  # focal length = focal_scale * max(W, H) px (unknown camera)
    min_frames: Annotated[int, Range(1, None)] = 1
    iters_global: Annotated[int, Range(1, 100_000)] = FitConfig.iters_global
    iters_pose: Annotated[int, Range(2, 100_000)] = FitConfig.iters_pose
    iters_refine: Annotated[int, Range(1, 100_000)] = FitConfig.iters_refine
    w_3d: Annotated[float, Range(0, 1e6)] = FitConfig.w_3d
    w_prior: Annotated[float, Range(0, 1e6)] = FitConfig.w_prior
    w_smooth: Annotated[float, Range(0, 1e6)] = FitConfig.w_smooth


def load_body(ctx: Context | None = None, rig: str = "anny") -> AnnyBody:
    """The Anny model, its cache beside the weights in the models folder."""
    from video2mesh.stages.licence_free import anny_cache_dir

    models_dir = ctx.registry.models_dir if ctx is not None else default_models_dir()
    build = lambda: AnnyBody.load(anny_cache_dir(models_dir), rig=rig)  # noqa: E731
    return ctx.memo(f"anny-{rig}", build) if ctx is not None else build()


def bone_rotations(body: AnnyBody, theta: np.ndarray, skeleton, bones: list[int]) -> np.ndarray:
    """(T, J, 3) BVH-style local rotations (axis-angle) from the fit parameters; root = 0."""
    import roma
    import torch

    with torch.no_grad():
        h, _ = body.fk(torch.as_tensor(theta, dtype=body.dtype), skeleton, bones)
        par = torch.as_tensor(body.parents).clamp(min=0)
        local = h[:, par].transpose(-1, -2) @ h
        local[:, 0] = torch.eye(3, dtype=h.dtype)
        return roma.rotmat_to_rotvec(local).numpy()


def compute(ctx: Context, cfg: FitAnnyConfig, chunk: Chunk) -> pd.DataFrame:
    import roma
    import torch

    if cfg.rig != "anny":
        from video2mesh.pipeline.errors import ConfigError

        raise ConfigError(f"fit.rig={cfg.rig!r}: only the 'anny' rig is fitted for now (its bone list is in video2mesh.models.body.anny_body.FIT_BONES)")
    bp = ctx.input("blazepose", columns=["frame", "track_id", "keypoints", "world"])
    if bp.empty:
        return FIT.empty()
    w, h = ctx.video.width, ctx.video.height
    focal = float(cfg.focal_scale * max(w, h))
    body = load_body(ctx, cfg.rig)
    linear = ctx.memo("anny-linear", lambda: linear_skeleton(body))
    fcfg = FitConfig(iters_global=cfg.iters_global, iters_pose=cfg.iters_pose, iters_refine=cfg.iters_refine,
                     w_3d=cfg.w_3d, w_prior=cfg.w_prior, w_smooth=cfg.w_smooth)
    out = []
    for tid, g in bp.sort_values(["track_id", "frame"]).groupby("track_id", sort=True):
        if len(g) < cfg.min_frames:
            continue
        kp = stack(g["keypoints"], 51).reshape(-1, 17, 3)
        world = stack(g["world"], N_LANDMARKS * 3).reshape(-1, N_LANDMARKS, 3)[:, COCO_FROM_BLAZEPOSE]
        r = fit_track(body, kp, world, (w, h), focal, fcfg, linear=linear)
        rots = bone_rotations(body, r.theta, r.skeleton, r.bones)
        with torch.no_grad():
            rg = roma.rotvec_to_rotmat(torch.as_tensor(r.global_orient, dtype=body.dtype))
            root = rg @ r.skeleton.rest_rotations[0].T          # rest model -> camera
            orient = roma.rotmat_to_rotvec(root).numpy()
        size = np.array([max(float(np.linalg.norm(np.ptp(k[:, :2], axis=0))), 16.0) for k in kp])
        kp_out = np.concatenate([r.keypoints2d, kp[..., 2:]], -1)
        for i, f in enumerate(g["frame"].to_numpy()):
            out.append({
                "frame": int(f), "track_id": int(tid), "body_model": "anny", "rig": cfg.rig,
                "bone_rotations": rots[i].reshape(-1), "global_orient": orient[i], "transl": r.transl[i],
                "phenotype": r.phenotype, "keypoints": kp_out[i].reshape(-1), "keypoints3d": r.keypoints3d[i].reshape(-1),
                "residual_px": float(r.residual_px[i]), "confidence": float(1.0 / (1.0 + r.residual_px[i] / (0.02 * size[i]))),
                "swapped": bool(r.swapped[i]), "focal_px": focal,
            })
    ctx.advance(ctx.video.n_frames)
    if not out:
        return FIT.empty()
    df = pd.DataFrame(out)
    df["frame"] = df["frame"].astype(np.int64)
    df["track_id"] = df["track_id"].astype(np.int32)
    for c in ("residual_px", "confidence", "focal_px"):
        df[c] = df[c].astype(np.float32)
    return df


STAGE = Stage(name="fit", version=1, config=FitAnnyConfig, output=FIT, compute=compute,
              inputs=("probe", "tracklets", "blazepose"),
              doc="Anny body fitted per tracklet to BlazePose keypoints (licence-free path)")


# --- export -------------------------------------------------------------------------------------
# camera axes (x right, y down, z forward) -> y-up world facing the viewer; rest model axes (z up,
# facing -y) -> the same y-up world (rest body faces +z).
CAMERA_TO_YUP = np.diag([1.0, -1.0, -1.0])
MODEL_TO_YUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
EXPORT_FORMATS = ("bvh", "glb", "obj", "npz")


def export_fit(fit: pd.DataFrame, out_dir, fps: float, stem: str = "video", formats=EXPORT_FORMATS,
               body: AnnyBody | None = None) -> dict[int, dict[str, Path]]:
    """Write each track of a `fit` artifact as animator files `<stem>_track<id>_anny.*` into `out_dir`,
    for callers outside the pipeline (the pipeline's way is the `fit_export` stage + publish).

    The bytes come from stages.fit_export.track_files (see its module docstring for the formats);
    `.obj` frames go to `<stem>_track<id>_anny_obj/frame_<1-based frame>.obj`, without a frame limit.
    Returns {track_id: {format: path}} (for "obj" the folder).
    """
    from pathlib import Path

    from .fit_export import FitExportConfig, track_files

    out_dir = Path(out_dir)
    body = body or load_body(None)
    cfg = FitExportConfig(formats=tuple(formats), obj_max_frames=0)
    written: dict[int, dict[str, Path]] = {}
    for tid, g in fit.sort_values(["track_id", "frame"]).groupby("track_id"):
        base = f"{stem}_track{int(tid):03d}_anny"
        paths: dict[str, Path] = {}
        for _, kind, rel, data, _meta in track_files(g.reset_index(drop=True), body, fps, cfg, stem=base):
            dest = out_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            paths[kind] = dest.parent if kind == "obj" else dest
        written[int(tid)] = paths
    return written
