"""fit: the Anny body fitted over each tracklet to its BlazePose keypoints (licence-free path).

One shape (phenotype) per tracklet, per-frame bone rotations, global rotation and camera-space
translation; see models/fit/anny_fit.py for the energy. The camera is a pinhole with the principal
point at the image centre and focal length `focal_scale * max(W, H)` px (default 1.0: a 53 degree
field of view along the long side, typical of phones and action cameras). With `focal_from_video` (off
by default), a camera that turns without travelling gets the focal length its background homographies
imply instead (`camera_motion`; models.maths.camera_motion.focal_from_rotation: H ~ K R K^-1 holds only
at the true K); a still or travelling camera does not determine it, and the guess stays. Off because
a right focal length alone moves the depth of a body whose size is wrong further from the truth
(docs/accuracy.md, "Run clip"): it belongs with a known stature.

Temporal quality (models/fit/temporal.py): BlazePose's left/right labels are made continuous over
time, the landmarks robustly smoothed per `smoothing` preset (off | standard | strong) and weighted by
visibility x presence, and the fit gets the part-based acceleration prior of the preset. Long tracks
are fitted in windows of `window` frames (the stage's chunks, so a killed run resumes per window) with
`overlap` frames of context each side; a track longer than one window gets its shape from a first fit
of its first `window` frames, and every window fits the pose at that shape.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Annotated, Literal, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa

from video2mesh.models.body.anny_body import N_BONES, AnnyBody
from video2mesh.models.fit.anny_fit import FitConfig, linear_skeleton, fit_track
from video2mesh.models.fit.facing import Torso, facing_path
from video2mesh.models.fit.occlusion import borrowed_frames
from video2mesh.models.fit.temporal import SMOOTHING, Smoothing, prepare_track, rate_scaled, stride_prior
from video2mesh.models.maths.camera_motion import focal_from_rotation
from video2mesh.models.runners.blazepose import N_LANDMARKS
from video2mesh.pipeline.artifacts import Artifact, fixed, stack
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.errors import ConfigError
from video2mesh.pipeline.stage import Chunk, Context, Stage, frame_chunks

from .licence_free import load_body

log = logging.getLogger(__name__)

STATURE_MIN_M, STATURE_MAX_M = 0.5, 2.5   # what a person can be; Anny reaches ~0.65-2.2 m (a warning beyond)

FIT = Artifact(
    "fit",
    version=2,
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
        ("confidence", pa.float32()),      # 1 / (1 + residual / (2% of the person's size)); 0 where hidden (borrowed)
        ("swapped", pa.bool_()),           # left/right labels of BlazePose were swapped in this frame
        ("focal_px", pa.float32()),
        ("keypoints_input", fixed(51)),    # COCO-17 the fit saw: relabelled, smoothed x px, y px, weight
        ("flipped_input", pa.bool_()),     # BlazePose's left/right exchanged here for temporal continuity
    ]),
    doc="Anny fitted per tracklet; the rig's bone names/parents come from video2mesh.models.body.anny_body.",
)


@dataclass(frozen=True)
class FitAnnyConfig:
    """Parameters of the Anny fitting stage (the energy's weights are FitConfig's defaults)."""

    rig: str = "anny"
    focal_scale: Annotated[float, Range(0, 100, lo_open=True)] = 1.0  # focal length = focal_scale * max(W, H) px (unknown camera)
    focal_from_video: bool = False    # a camera turning without travelling: its focal length from camera_motion
    min_frames: Annotated[int, Range(1, None)] = 1
    iters_global: Annotated[int, Range(1, 100_000)] = FitConfig.iters_global
    iters_pose: Annotated[int, Range(2, 100_000)] = FitConfig.iters_pose
    iters_refine: Annotated[int, Range(1, 100_000)] = FitConfig.iters_refine
    w_3d: Annotated[float, Range(0, 1e6)] = FitConfig.w_3d
    w_prior: Annotated[float, Range(0, 1e6)] = FitConfig.w_prior
    w_smooth: Annotated[float, Range(0, 1e6)] = FitConfig.w_smooth
    smoothing: Literal["off", "standard", "strong"] = "standard"  # models/fit/temporal.SMOOTHING's presets
    flip_fix: bool = True             # make BlazePose's left/right labels continuous over time
    facing_fix: bool = True           # mirror BlazePose's front/back readings that turn the torso faster than people
                                      # turn (models/fit/facing.py; false = as before v11)
    # the world landmarks' smoothing window, seconds each side, at any frame rate (None = the preset's: for
    # `standard` 0.2 s from reference_fps up, its input window below; models/fit/temporal.SMOOTHING)
    world_window_s: Annotated[float, Range(0, 10)] | None = None
    sigma_3d: Annotated[float, Range(0, 10)] = 0.0  # robust scale of the world-landmark term, metres (0 = squares: 0.1
                                      # doubled PA-MPJPE on `v2m bench accuracy --fast`, see docs/temporal.md)
    window: Annotated[int, Range(16, 1_000_000)] = 256  # frames per fitted window (= the stage's resumable chunk)
    overlap: Annotated[int, Range(0, 100_000)] = 32  # context frames fitted on each side of a window, not kept
    lr_end: Annotated[float, Range(0, 1, lo_open=True)] = 0.02  # Adam's rate decays to this share per phase (1 = constant, as before v2)
    polish_iters: Annotated[int, Range(0, 100_000)] = 60  # final L-BFGS iterations (0 = Adam only, as before v3):
                                      # Adam stalls on the frame-coupled dynamics prior (docs/temporal.md)
    # The actor's stature (crown to sole, metres) when the user knows it: a constraint on the fitted body
    # (models/fit/stature.py), which also puts it at the right depth; None = unknown (BlazePose's average
    # adult). stature_by_person: {track id: metres} for a video of several people (overrides stature_m).
    stature_m: Annotated[float, Range(STATURE_MIN_M, STATURE_MAX_M)] | None = None
    stature_by_person: dict = field(default_factory=dict)
    # A person hidden behind another gets BlazePose's landmarks of the body in front (models/fit/occlusion.py):
    # tracks whose skeletons lie within same_body x the person's size in a frame are one body, kept by the
    # track the detector saw there; a track whose own box clearly does not hold that body is fitted there to
    # its own in-between (confidence 0), and its shape comes from the frames it sees. 0 = off (as before v5).
    # Measured in docs/crowd.md ("Hidden people's bodies").
    same_body: Annotated[float, Range(0, 1)] = 0.05
    # The frame rate at which w_smooth and the preset's acceleration prior have the values given. The fit's
    # temporal terms are per frame, so a slower video gets w_smooth x (fps / ref) and the acceleration prior
    # x (fps / ref)^3 (penalties integrated over time against per-frame evidence); a faster one keeps them
    # (models/fit/temporal.rate_scaled, docs/temporal.md "Frame rate"). 0 = per frame whatever the rate (as
    # before v6: a 12 fps video's prior was ~16x stronger, physically, than a 30 fps one's).
    reference_fps: Annotated[float, Range(0, 1000)] = 30.0
    # A video at 1.5 x reference_fps or faster also gets the rest of that physical acceleration prior over
    # round(fps / ref) frames (models/fit/temporal.stride_prior): as smooth per second as a reference-rate
    # fit, without a per-frame prior stiff enough to stall the optimiser. False = per frame only (v6).
    stride_prior: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "stature_by_person", _statures(self.stature_by_person))

    def stature(self, track_id: int) -> float | None:
        """The stature the user gave for this track (metres), or None."""
        return self.stature_by_person.get(int(track_id), self.stature_m)


def _statures(given) -> dict[int, float]:
    """stature_by_person checked and normalised to {int track id: float metres}; ConfigError otherwise."""
    if not isinstance(given, Mapping):
        raise ConfigError(f"fit.stature_by_person={given!r}: expected a mapping of track id to metres, "
                          "e.g. --set 'fit.stature_by_person={1: 1.82, 2: 1.65}'")
    out = {}
    for k, v in given.items():
        tid = int(k) if isinstance(k, int) or (isinstance(k, str) and k.strip().isdigit()) else None
        ok = not isinstance(v, bool) and isinstance(v, (int, float)) and STATURE_MIN_M <= v <= STATURE_MAX_M
        if tid is None or isinstance(k, bool) or not ok:
            raise ConfigError(f"fit.stature_by_person: {k!r}: {v!r} is not a track id (the NNN of track_NNN) "
                              f"and a stature in metres ({STATURE_MIN_M:g} to {STATURE_MAX_M:g})")
        out[tid] = float(v)
    return out


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


def _check(cfg: FitAnnyConfig) -> None:
    """One-line ConfigErrors for settings the type checks let through."""
    if cfg.rig != "anny":
        raise ConfigError(f"fit.rig={cfg.rig!r}: only the 'anny' rig is fitted for now (its bone list is in video2mesh.models.body.anny_body.FIT_BONES)")
    if cfg.smoothing not in SMOOTHING:
        raise ConfigError(f"fit.smoothing={cfg.smoothing!r}: use one of {', '.join(SMOOTHING)}")
    if cfg.window < 16 or cfg.overlap < 0:
        raise ConfigError(f"fit.window={cfg.window}, fit.overlap={cfg.overlap}: need window >= 16, overlap >= 0")


def _fit_config(cfg: FitAnnyConfig, fps: float) -> FitConfig:
    """The fit's energy for a video at `fps` frames/s (the temporal weights scaled to it: reference_fps); the
    settings were checked by compute (_check)."""
    w_smooth, w_accel = rate_scaled(cfg.w_smooth, SMOOTHING[cfg.smoothing].w_accel, fps, cfg.reference_fps)
    stride, w_stride = stride_prior(w_accel, fps, cfg.reference_fps) if cfg.stride_prior else (1, 0.0)
    return FitConfig(iters_global=cfg.iters_global, iters_pose=cfg.iters_pose, iters_refine=cfg.iters_refine,
                     w_3d=cfg.w_3d, w_prior=cfg.w_prior, w_smooth=w_smooth, sigma_3d=cfg.sigma_3d,
                     w_accel=w_accel, accel_stride=stride, w_accel_stride=w_stride, lr_end=cfg.lr_end,
                     polish_iters=cfg.polish_iters)


def _with_stature(fcfg: FitConfig, cfg: FitAnnyConfig, tid: int) -> FitConfig:
    """fcfg with the track's known stature, if the user gave one. The world landmarks' size then no
    longer counts (free_3d_scale): BlazePose gives an average adult's whatever the person's stature, and
    held against a body of the true size they would pull it smaller (docs/accuracy.md, "Known stature")."""
    stature = cfg.stature(tid)
    return fcfg if stature is None else dataclasses.replace(fcfg, stature_m=stature, free_3d_scale=True)


def _plan(ctx: Context, cfg: FitAnnyConfig) -> list[Chunk]:
    return frame_chunks(ctx.video.n_frames, max(cfg.window, 1))


_COLUMNS = ["frame", "track_id", "keypoints", "landmarks", "world"]


def _focal(ctx: Context, cfg: FitAnnyConfig) -> float:
    """The pinhole's focal length, px: from the video's rotation (module docstring), else the guess."""
    guess = float(cfg.focal_scale * max(ctx.video.width, ctx.video.height))
    if not cfg.focal_from_video:
        return guess

    def estimate() -> float:
        cam = ctx.input("camera_motion", columns=["frame", "h", "valid"]).sort_values("frame")
        if cam.empty:
            return guess
        frames = cam["frame"].to_numpy()
        h = np.tile(np.eye(3), (int(frames.max()) + 1, 1, 1))
        valid = np.zeros(len(h), bool)
        h[frames] = stack(cam["h"], 9, np.float64).reshape(-1, 3, 3)
        valid[frames] = cam["valid"].to_numpy(bool)
        f, _ = focal_from_rotation(h, valid, ctx.video.width, ctx.video.height)
        log.info("fit: focal length %s", f"{f:.0f} px from the camera's rotation" if f else f"{guess:.0f} px (guess: the video does not determine it)")
        return guess if f is None else f
    return ctx.memo("fit-focal", estimate)


def _track_input(g: pd.DataFrame, fps: float, cfg: FitAnnyConfig, facing: np.ndarray | None = None,
                 focal_px: float | None = None):
    """prepare_track on a track's rows g; facing: the frames of the track whose other reading to take (decided on the
    whole track: _track_facing), None = decided on g's own frames (with the travel evidence at focal_px)."""
    lm = stack(g["landmarks"], N_LANDMARKS * 5).reshape(-1, N_LANDMARKS, 5)
    world = stack(g["world"], N_LANDMARKS * 3).reshape(-1, N_LANDMARKS, 3)
    borrowed = g["borrowed"].to_numpy(bool) if "borrowed" in g else None
    frames = g["frame"].to_numpy()
    return prepare_track(frames, lm, world, fps, _preset(cfg, fps), cfg.flip_fix, borrowed, facing_fix=cfg.facing_fix,
                         facing=None if facing is None else np.isin(frames, facing), focal_px=focal_px)


FACING_CHUNK = 4096     # frames of `blazepose` read at a time for a track's facing


def _track_facing(ctx: Context, cfg: FitAnnyConfig, tid: int, first: int, last: int) -> np.ndarray:
    """Frames of track `tid` (sorted) whose BlazePose reading the fit replaces by its other one (front and back,
    models/fit/facing.py), decided once on the whole track, so that every window agrees: decided per window, a long
    misread segment could be put right in one window and not in the next, and the body would spin round at the
    boundary. The track is read FACING_CHUNK frames at a time into ~35 bytes a frame (facing.Torso)."""
    def build():
        frames, parts = [], []
        for lo in range(first, last + 1, FACING_CHUNK):
            bp = ctx.input_frames("blazepose", lo, min(lo + FACING_CHUNK, last + 1), columns=_COLUMNS)
            if bp.empty:
                continue
            g = _with_borrowed(ctx, cfg, bp)
            g = g[g["track_id"] == tid].sort_values("frame")
            if g.empty:
                continue
            lm = stack(g["landmarks"], N_LANDMARKS * 5).reshape(-1, N_LANDMARKS, 5)
            conf = lm[..., 3] * lm[..., 4]
            conf[g["borrowed"].to_numpy(bool)] = 0.0           # another person's body says nothing of this one's side
            parts.append(Torso.of(stack(g["world"], N_LANDMARKS * 3).reshape(-1, N_LANDMARKS, 3), conf, lm))
            frames.append(g["frame"].to_numpy())
        if not frames:
            return np.zeros(0, np.int64)
        f = np.concatenate(frames)
        return f[facing_path(f, Torso.join(parts), ctx.video.fps, focal_px=_focal(ctx, cfg))]
    return ctx.memo(f"fit-facing-{tid}", build)


def _preset(cfg: FitAnnyConfig, fps: float) -> Smoothing:
    """The smoothing preset of a video at `fps`: fit.world_window_s if given, else the preset's own world
    window from reference_fps up and its input window below (models/fit/temporal.Smoothing)."""
    preset = SMOOTHING[cfg.smoothing]
    if cfg.world_window_s is not None:
        return dataclasses.replace(preset, world_half_window_s=cfg.world_window_s)
    if cfg.reference_fps <= 0 or fps < cfg.reference_fps:
        return dataclasses.replace(preset, world_half_window_s=None)
    return preset


def _with_borrowed(ctx: Context, cfg: FitAnnyConfig, bp: pd.DataFrame) -> pd.DataFrame:
    """`bp` (every track's rows of some frames) with a `borrowed` column: the row's landmarks are another
    track's body in that frame (models/fit/occlusion.borrowed_frames, with tracklets' boxes)."""
    bp = bp.reset_index(drop=True)
    if cfg.same_body <= 0 or bp.empty or bp["track_id"].nunique() < 2:
        return bp.assign(borrowed=False)
    lo, hi = int(bp["frame"].min()), int(bp["frame"].max()) + 1
    tl = ctx.input_frames("tracklets", lo, hi, columns=["frame", "track_id", "x1", "y1", "x2", "y2", "interpolated"])
    rows = bp[["frame", "track_id"]].merge(tl, on=["frame", "track_id"], how="left")
    boxes = rows[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
    detected = ~rows["interpolated"].fillna(True).to_numpy(bool)
    kp = stack(bp["keypoints"], 51).reshape(-1, 17, 3)
    boxes = np.where(np.isfinite(boxes), boxes, 0.0)
    return bp.assign(borrowed=borrowed_frames(bp["frame"].to_numpy(), kp, boxes, detected, cfg.same_body))


def _track_shape(ctx: Context, cfg: FitAnnyConfig, tid: int, first: int,
                 facing: np.ndarray | None = None) -> np.ndarray:
    """(6,) phenotype of a track longer than one window: the joint fit of its first `window` frames (those where
    it sees its own person)."""
    def build():
        g = _with_borrowed(ctx, cfg, ctx.input_frames("blazepose", first, first + cfg.window, columns=_COLUMNS))
        g = g[g["track_id"] == tid].sort_values("frame")
        if (~g["borrowed"]).sum() >= 2:
            g = g[~g["borrowed"]]                          # the shape from the frames the track sees (_fit_rows)
        fps = ctx.video.fps
        ti = _track_input(g, fps, cfg, facing, _focal(ctx, cfg))
        body = load_body(ctx, cfg.rig)
        r = fit_track(body, ti.keypoints, ti.world, (ctx.video.width, ctx.video.height), _focal(ctx, cfg),
                      _with_stature(_fit_config(cfg, fps), cfg, tid),
                      linear=ctx.memo("anny-linear", lambda: linear_skeleton(body)))
        return r.phenotype
    return ctx.memo(f"fit-shape-{tid}-{first}", build)


def compute(ctx: Context, cfg: FitAnnyConfig, chunk: Chunk) -> pd.DataFrame:
    _check(cfg)                                   # before touching the video: a bad setting is a one-line error
    fcfg = _fit_config(cfg, ctx.video.fps)
    lo, hi = max(chunk.start - cfg.overlap, 0), chunk.stop + cfg.overlap
    bp = ctx.input_frames("blazepose", lo, hi, columns=_COLUMNS)
    if not bp.empty:
        bp = _with_borrowed(ctx, cfg, bp)
    if bp.empty or chunk.stop <= chunk.start:
        ctx.advance(chunk.stop - chunk.start)
        return FIT.empty()
    spans = ctx.memo("fit-track-spans", lambda: ctx.input("blazepose", columns=["frame", "track_id"])
                     .groupby("track_id")["frame"].agg(["min", "max", "count"]))
    out = []
    for tid, g in bp.sort_values(["track_id", "frame"]).groupby("track_id", sort=True):
        span = spans.loc[tid]
        frames = g["frame"].to_numpy()
        if span["count"] < cfg.min_frames or not ((frames >= chunk.start) & (frames < chunk.stop)).any():
            continue
        whole = span["min"] >= lo and span["max"] < hi       # the window holds the whole track
        # a track longer than the window: its facing decided on all of it, its shape from its first window
        facing = None if whole or not cfg.facing_fix else _track_facing(ctx, cfg, int(tid), int(span["min"]),
                                                                           int(span["max"]))
        phen = None if whole else _track_shape(ctx, cfg, int(tid), int(span["min"]), facing)
        out += _fit_rows(ctx, cfg, fcfg, int(tid), g, chunk, phen, facing)
    ctx.advance(chunk.stop - chunk.start)
    if not out:
        return FIT.empty()
    df = pd.DataFrame(out)
    df["frame"] = df["frame"].astype(np.int64)
    df["track_id"] = df["track_id"].astype(np.int32)
    for c in ("residual_px", "confidence", "focal_px"):
        df[c] = df[c].astype(np.float32)
    return df


def _fit_rows(ctx: Context, cfg: FitAnnyConfig, fcfg: FitConfig, tid: int, g: pd.DataFrame, chunk: Chunk,
              phenotype: np.ndarray | None, facing: np.ndarray | None = None) -> list[dict]:
    """Fit one track's frames of a window and return the rows of the window's own frames [start, stop)."""
    import roma
    import torch

    w, h = ctx.video.width, ctx.video.height
    focal = _focal(ctx, cfg)
    body = load_body(ctx, cfg.rig)
    linear = ctx.memo("anny-linear", lambda: linear_skeleton(body))
    ti = _track_input(g, ctx.video.fps, cfg, facing, focal)
    kp = ti.keypoints
    seen = ~g["borrowed"].to_numpy(bool) if "borrowed" in g else np.ones(len(g), bool)
    if phenotype is None and not seen.all() and seen.sum() >= 2:
        # the body's shape from the frames where the track sees its own person: guesses carried through hidden
        # frames let the shape run away (docs/crowd.md, "Hidden people's bodies")
        own = _track_input(g[seen], ctx.video.fps, cfg, facing, focal)
        phenotype = fit_track(body, own.keypoints, own.world, (w, h), focal, _with_stature(fcfg, cfg, tid),
                              linear=linear).phenotype
    r = fit_track(body, kp, ti.world, (w, h), focal, _with_stature(fcfg, cfg, tid), linear=linear, phenotype=phenotype)
    rots = bone_rotations(body, r.theta, r.skeleton, r.bones)
    with torch.no_grad():
        rg = roma.rotvec_to_rotmat(torch.as_tensor(r.global_orient, dtype=body.dtype))
        root = rg @ r.skeleton.rest_rotations[0].T          # rest model -> camera
        orient = roma.rotmat_to_rotvec(root).numpy()
    size = np.array([max(float(np.linalg.norm(np.ptp(k[:, :2], axis=0))), 16.0) for k in kp])
    borrowed = g["borrowed"].to_numpy(bool) if "borrowed" in g else np.zeros(len(g), bool)
    kp_out = np.concatenate([r.keypoints2d, kp[..., 2:]], -1)
    rows = []
    for i, f in enumerate(g["frame"].to_numpy()):
        if not chunk.start <= f < chunk.stop:
            continue
        rows.append({
            "frame": int(f), "track_id": tid, "body_model": "anny", "rig": cfg.rig,
            "bone_rotations": rots[i].reshape(-1), "global_orient": orient[i], "transl": r.transl[i],
            "phenotype": r.phenotype, "keypoints": kp_out[i].reshape(-1), "keypoints3d": r.keypoints3d[i].reshape(-1),
            "residual_px": float(r.residual_px[i]), "confidence": 0.0 if borrowed[i] else float(1.0 / (1.0 + r.residual_px[i] / (0.02 * size[i]))),
            "swapped": bool(r.swapped[i]), "focal_px": focal,
            "keypoints_input": kp[i].reshape(-1), "flipped_input": bool(ti.flipped[i]),
        })
    return rows


# v5: fit.same_body: a track's frames whose BlazePose landmarks are another track's body (a person hidden behind
# another) are fitted to the in-between of its own frames, with confidence 0; its shape from the frames it sees
# v6: reference_fps: the temporal weights scaled down to a video slower than 30 fps (identical output at 30+ fps)
# v7: stride_prior: a video of 45 fps or more gets the rest of the physical acceleration prior over 2+ frames
# (identical output below 45 fps)
# v8: withdrawn before release (a cheaper left/right exchange above 30 fps crossed the arms: docs/temporal.md)
# v9: left/right labels made continuous for the legs and the upper body each on its own (prepare_track);
# fit.world_window_s (the world landmarks' own smoothing window, off by default)
# v10: `standard` smooths the world landmarks over +-0.2 s (the 2D keypoints over +-0.1 s) from 30 fps up
# v11: fit.facing_fix: front and back made continuous before the labels (a back view BlazePose reads as a front
# view, left/right exchanged and depth mirrored, put back where the torso would turn faster than people turn;
# decided on the whole track); the global rotation vectors start continuous (a back view is not pulled round)
STAGE = Stage(name="fit", version=11, config=FitAnnyConfig, output=FIT, compute=compute,
              inputs=("probe", "tracklets", "blazepose", "camera_motion"), plan=_plan,
              doc="Anny body fitted per tracklet to BlazePose keypoints (licence-free path)")
