"""world: the licence-free fit moved into one world frame per track (or kept in camera space).

Per track (video2mesh.models.fit.world): the camera's rotation from the `camera_motion` homographies
(H = K R K^-1 with the fit's pinhole K), foot contacts, the root's world trajectory by body odometry
blended with the camera-space root where the camera is still, the floor plane and gravity from the
contact feet, and planting: the root moved (smoothly) so contact feet neither slide nor leave the
floor, and a two-bone leg IK (models.fit.leg_ik) for what the root cannot do (both feet planted) and
to lock a contact foot's rotation; a second pass re-reads the homographies as the floor's (normal from
the first pass) so that a travelling camera's parallax is not taken for a turn; a third (camera_travel,
off by default) reads the camera's metric translation from them where they show parallax;
the IK changes the leg bones' rotations and so `bone_rotations`, `keypoints3d` and `feet3d`.
World frame: Y up, floor y = 0, the person's root above the origin at the track's first frame,
facing +Z, metres. `frame = "camera"` keeps the fit's camera-space motion (identity camera).

The artifact has every column of `fit`, with `transl`, `global_orient`, `keypoints3d` (and the new
`feet3d`) expressed in the output frame's *camera-convention* axes, (x, -y, -z) of the Y-up output frame
(exactly the fit's camera axes when frame_space = "camera"), so that everything reading `fit` columns
(fit_export's files, fit_report's metrics) works unchanged and writes Y-up output-frame files.
`cam_R`, `cam_t`: the camera per frame, output frame (Y up) -> GL camera axes (x right, y up, looking
along -Z; stages.export.AXES): x_cam = cam_R x + cam_t reproduces the fit's camera-space body exactly
(but for the legs' planting IK, by construction of the camera from the body).
`floor`: plane (a, b, c, d), a x + b y + c z + d = 0 in the Y-up output frame (world: 0 1 0 0; camera:
in the track's first frame's GL camera axes).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.spatial.transform import Rotation

from video2mesh.models.body.anny_body import N_BONES, POSE_SLICE, AnnyBody, pose_rig
from video2mesh.models.body.anny_keypoints import FOOT_VERTICES
from video2mesh.models.fit.leg_ik import SIDES, leg_ik
from video2mesh.models.fit.world import (WorldConfig, camera_rotations, camera_travel, level_drift, path_scale,
                                         solve_world, world_to_camera_gl)
from video2mesh.models.maths.camera_motion import intrinsics
from video2mesh.pipeline.artifacts import Artifact, fixed, stack
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.errors import ConfigError
from video2mesh.pipeline.stage import Chunk, Context, Stage

from .licence_free import load_body

log = logging.getLogger(__name__)

FLIP = np.diag([1.0, -1.0, -1.0])     # OpenCV camera axes <-> GL / Y-up axes (its own inverse)

WORLD = Artifact(
    "world",
    version=1,
    # the `fit` artifact's columns (stages/fit_anny.FIT; a stage does not import another stage, a test
    # checks they stay equal), then the world's own
    schema=pa.schema([
        ("frame", pa.int64()), ("track_id", pa.int32()), ("body_model", pa.string()), ("rig", pa.string()),
        ("bone_rotations", fixed(N_BONES * 3)), ("global_orient", fixed(3)), ("transl", fixed(3)),
        ("phenotype", fixed(6)), ("keypoints", fixed(51)), ("keypoints3d", fixed(51)), ("residual_px", pa.float32()),
        ("confidence", pa.float32()), ("swapped", pa.bool_()), ("focal_px", pa.float32()),
        ("frame_space", pa.string()),     # "world" or "camera"
        ("feet3d", fixed(18)),            # left big toe, small toe, heel, right ... (models.body.anny_keypoints)
        ("cam_R", fixed(9)),              # row-major, output frame (Y up) -> GL camera axes
        ("cam_t", fixed(3)),              # metres
        ("contact_left", pa.bool_()),
        ("contact_right", pa.bool_()),
        ("floor", fixed(4)),              # a b c d of the floor plane in the output frame (per track)
        ("camera_still", pa.float32()),   # 1: camera not turning (its root evidence is trusted), 0: turning
    ]),
    doc="The fit in one output frame (world: Y up, floor y = 0, start at the origin facing +Z), camera per frame, contacts, floor.",
)


FIT_COLUMNS = tuple(WORLD.schema.names[:14])   # the `fit` columns carried (transformed where they are 3D)


@dataclass(frozen=True)
class WorldStageConfig(WorldConfig):
    """frame: "world" (default) or "camera" (the fit's camera space, as before this stage). The solve's
    settings are WorldConfig's (models/fit/world.py, their meaning there), re-declared with their ranges."""

    contact_on_m: Annotated[float, Range(0, 10)] = WorldConfig.contact_on_m
    contact_off_m: Annotated[float, Range(0, 10)] = WorldConfig.contact_off_m
    air_on_m: Annotated[float, Range(0, 10)] = WorldConfig.air_on_m
    air_off_m: Annotated[float, Range(0, 10)] = WorldConfig.air_off_m
    speed_on_mps: Annotated[float, Range(0, 100)] = WorldConfig.speed_on_mps
    speed_off_mps: Annotated[float, Range(0, 100)] = WorldConfig.speed_off_mps
    sigma_odo_m: Annotated[float, Range(0, 10, lo_open=True)] = WorldConfig.sigma_odo_m    # divides: > 0
    sigma_cam_m: Annotated[float, Range(0, 10, lo_open=True)] = WorldConfig.sigma_cam_m
    accel_mps2: Annotated[float, Range(0, 1000, lo_open=True)] = WorldConfig.accel_mps2
    static_deg_s: Annotated[float, Range(0, 360, lo_open=True)] = WorldConfig.static_deg_s
    max_rotation_err: Annotated[float, Range(0, 10)] = WorldConfig.max_rotation_err
    still_rotation_err: Annotated[float, Range(0, 10, lo_open=True)] = WorldConfig.still_rotation_err
    floor_prior_m: Annotated[float, Range(0, 10)] = WorldConfig.floor_prior_m
    iterations: Annotated[int, Range(1, 100)] = WorldConfig.iterations
    max_flight_s: Annotated[float, Range(0, 10)] = WorldConfig.max_flight_s
    plant_smooth_frames: Annotated[float, Range(0, 1000)] = WorldConfig.plant_smooth_frames
    lock_fade_frames: Annotated[int, Range(0, 1000)] = WorldConfig.lock_fade_frames
    lock_max_deg: Annotated[float, Range(0, 180)] = WorldConfig.lock_max_deg
    parallax_err: Annotated[float, Range(0, 10, lo_open=True)] = WorldConfig.parallax_err   # divides: > 0
    reference_fps: Annotated[float, Range(0, 1000)] = WorldConfig.reference_fps
    level_sigma_s: Annotated[float, Range(0, 100_000)] = WorldConfig.level_sigma_s
    frame: Literal["world", "camera"] = "world"

    def __post_init__(self) -> None:
        if self.frame not in ("world", "camera"):
            raise ConfigError(f"world.frame must be 'world' or 'camera', got {self.frame!r}")


def rig_points(body: AnnyBody, sk, rots: np.ndarray, orient: np.ndarray, transl: np.ndarray, bones: list[int],
               slice_frames: int = POSE_SLICE) -> dict[str, np.ndarray]:
    """pose_rig's world `rotations` (T, K, 3, 3) and `heads` (T, K, 3) of the bones `bones` only, plus `feet`
    (T, 6, 3), the foot vertices FOOT_VERTICES by Anny's LBS, and `coco` (T, 17, 3), Anny's COCO regressor
    (as the fit's keypoints3d), all in the axes of orient / transl (camera), metres. Posed `slice_frames`
    frames at a time, so that memory is bounded by the slice and what is returned."""
    h = sk.heads.detach().cpu().numpy().astype(np.float64)
    v = sk.rest_vertices.detach().cpu().numpy().astype(np.float64)[FOOT_VERTICES]
    wi = body.model.vertex_bone_indices.cpu().numpy()[FOOT_VERTICES]
    ww = body.model.vertex_bone_weights.detach().cpu().numpy().astype(np.float64)[FOOT_VERTICES]
    a = sk.kp_a.detach().cpu().numpy().astype(np.float64)                  # (17, J, 4): keypoint = sum_j T_j a_kj
    n = len(rots)
    out = {"rotations": np.zeros((n, len(bones), 3, 3)), "heads": np.zeros((n, len(bones), 3)),
           "feet": np.zeros((n, len(FOOT_VERTICES), 3)), "coco": np.zeros((n, a.shape[0], 3))}
    for s in range(0, n, slice_frames):
        sl = slice(s, min(s + slice_frames, n))
        rig = pose_rig(body, sk, rots[sl], orient[sl], transl[sl], vertices=False)
        g, p = rig["rotations"], rig["heads"]                              # (S, J, 3, 3), (S, J, 3)
        out["rotations"][sl], out["heads"][sl] = g[:, bones], p[:, bones]
        for k in range(wi.shape[1]):
            j = wi[:, k]
            out["feet"][sl] += ww[None, :, k, None] * (np.einsum("tvrc,vc->tvr", g[:, j], v - h[j]) + p[:, j])
        out["coco"][sl] = (np.einsum("tjrc,kjc->tkr", g, a[..., :3])
                           + np.einsum("tjr,kj->tkr", p - np.einsum("tjrc,jc->tjr", g, h), a[..., 3]))
    return out


def planted_legs(body: AnnyBody, sk, rots: np.ndarray, orient: np.ndarray, transl: np.ndarray, shift: np.ndarray,
                 turn: np.ndarray | None, slice_frames: int = POSE_SLICE) -> np.ndarray:
    """models.fit.leg_ik over a whole track, `slice_frames` frames at a time (it is per frame; the rig it
    needs is posed per slice)."""
    out = np.empty_like(rots)
    for s in range(0, len(rots), slice_frames):
        sl = slice(s, min(s + slice_frames, len(rots)))
        rig = pose_rig(body, sk, rots[sl], orient[sl], transl[sl], vertices=False)
        out[sl] = leg_ik(list(body.bone_names), rots[sl], rig["rotations"], rig["heads"], shift[sl],
                         None if turn is None else turn[sl])
    return out


def track_homographies(frames: np.ndarray, cam: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3, 3) homographies into each of a track's frames from the previous one, and validity (T,)
    (false at the first frame, at gaps in the track and where camera_motion had none)."""
    c = cam.set_index("frame").reindex(frames)
    ok = c.valid.fillna(False).to_numpy(bool).copy()
    ok[1:] &= np.diff(frames) == 1
    ok[0] = False
    h = np.tile(np.eye(3), (len(frames), 1, 1))
    have = c.h.notna().to_numpy()
    if have.any():
        h[have] = stack(c.h[have], 9, np.float64).reshape(-1, 3, 3)
    return h, ok


def transform_track(g: pd.DataFrame, a: np.ndarray, b: np.ndarray, feet_cam: np.ndarray) -> dict[str, list]:
    """Columns moved by x_out = F (A x_cam + b) (camera-convention axes of the output frame)."""
    n = len(g)
    m = FLIP @ a                                                            # (T, 3, 3)
    fb = b @ FLIP.T
    orient = Rotation.from_rotvec(stack(g.global_orient, 3, np.float64)).as_matrix()
    kp = stack(g.keypoints3d, 51, np.float64).reshape(n, 17, 3)
    return {
        "global_orient": list(Rotation.from_matrix(m @ orient).as_rotvec().astype(np.float32)),
        "transl": list((np.einsum("tij,tj->ti", m, stack(g.transl, 3, np.float64)) + fb).astype(np.float32)),
        "keypoints3d": list((np.einsum("tij,tkj->tki", m, kp) + fb[:, None]).reshape(n, -1).astype(np.float32)),
        "feet3d": list((np.einsum("tij,tkj->tki", m, feet_cam) + fb[:, None]).reshape(n, -1).astype(np.float32)),
    }


def world_track(g: pd.DataFrame, cam: pd.DataFrame, body: AnnyBody, image_wh: tuple[int, int], fps: float,
                cfg: WorldStageConfig) -> pd.DataFrame:
    """One track's `fit` rows (sorted by frame) -> its `world` rows."""
    import torch

    n = len(g)
    frames = g.frame.to_numpy(np.int64)
    rots = stack(g.bone_rotations, N_BONES * 3, np.float64).reshape(n, N_BONES, 3)
    orient = stack(g.global_orient, 3, np.float64)
    transl = stack(g.transl, 3, np.float64)
    with torch.no_grad():
        sk = body.skeleton(torch.as_tensor(stack(g.phenotype, 6, np.float64)[:1], dtype=body.dtype))
    i_feet = [list(body.bone_names).index(f"foot.{side}") for side in SIDES]
    rig = rig_points(body, sk, rots, orient, transl, i_feet)
    h, ok = track_homographies(frames, cam)
    k = intrinsics(float(g.focal_px.iloc[0]), *image_wh)
    wcfg = WorldConfig(**{f.name: getattr(cfg, f.name) for f in fields(WorldConfig)})
    orient_m = Rotation.from_rotvec(orient).as_matrix()
    c, still = camera_rotations(h, ok, k, fps, wcfg)
    c = level_drift(c, orient_m, fps, cfg.level_sigma_s)
    args = (transl, orient_m, rig["feet"])
    feet_kw = {"ankle_cam": rig["heads"], "foot_rot_cam": rig["rotations"]}
    w = solve_world(*args, c, still, fps, wcfg, **feet_kw)
    if cfg.floor_homography and ok.any():   # the 1st pass's floor makes the homographies' rotations exact
        c, _ = camera_rotations(h, ok, k, fps, wcfg, floor_ref=w.up_ref)
        c = level_drift(c, orient_m, fps, cfg.level_sigma_s)
        w = solve_world(*args, c, still, fps, wcfg, **feet_kw)
    if cfg.camera_travel and ok.any():      # a travelling camera's translation, the floor at its height
        centre, wt = camera_travel(h, ok, k, c, w.up_ref, w.b[:, 1], fps, wcfg)
        if wt.max() > 0:                    # no parallax anywhere: nothing travels, the solve stands
            scale = 1.0
            if cfg.travel_odometry_scale:   # the camera's path at the odometry's length (see WorldConfig)
                ev = np.einsum("tji,tj->ti", c, transl) + centre
                scale = path_scale(ev, w.root_ref, wt > 0.5, w.up_ref, max(int(round(fps / 2)), 1))
            w = solve_world(*args, c, still, fps, wcfg, cam_centre=centre, centre_weight=wt, travel_scale=scale,
                            **feet_kw)
    out = g.reset_index(drop=True).copy()
    if cfg.frame == "world":
        a, b, floor = w.A, w.b, np.array([0.0, 1.0, 0.0, 0.0])
        if cfg.plant and cfg.leg_ik and (np.abs(w.foot_shift).max() > 0 or w.foot_turn is not None):
            # the legs finish the planting (and lock contact feet)
            rots = planted_legs(body, sk, rots, orient, transl, w.foot_shift, w.foot_turn)
            rig = rig_points(body, sk, rots, orient, transl, i_feet)
            out["bone_rotations"] = list(rots.reshape(n, -1).astype(np.float32))
            out["keypoints3d"] = list(rig["coco"].reshape(n, -1).astype(np.float32))
            # a leg that could not reach (target too far) must not leave a foot under the floor
            low = (np.einsum("tij,tkj->tki", a, rig["feet"]) + b[:, None])[..., 1].min(1)
            b = b + np.maximum(-low, 0.0)[:, None] * [0.0, 1.0, 0.0]
    else:   # the identity camera: x_out = F (F x_cam) = x_cam; the floor in the first frame's GL axes
        a, b = np.tile(FLIP, (n, 1, 1)), np.zeros((n, 3))
        floor = np.concatenate([FLIP @ w.A[0].T @ [0.0, 1.0, 0.0], [w.b[0, 1]]])
    cam_r, cam_t = world_to_camera_gl(a, b)
    for col, vals in transform_track(out, a, b, rig["feet"]).items():
        out[col] = vals
    out["frame_space"] = cfg.frame
    out["cam_R"] = list(cam_r.reshape(n, 9).astype(np.float32))
    out["cam_t"] = list(cam_t.astype(np.float32))
    out["contact_left"], out["contact_right"] = w.contact[:, 0], w.contact[:, 1]
    out["floor"] = [floor.astype(np.float32)] * n
    out["camera_still"] = still.astype(np.float32)
    return out


def compute(ctx: Context, cfg: WorldStageConfig, chunk: Chunk) -> pd.DataFrame:
    fit = ctx.input("fit")
    if fit.empty:
        return WORLD.empty()
    cam = ctx.input("camera_motion", columns=["frame", "h", "valid"])
    body = load_body(ctx)
    out = []
    for tid, g in fit.sort_values(["track_id", "frame"]).groupby("track_id", sort=True):
        out.append(world_track(g.reset_index(drop=True), cam, body, (ctx.video.width, ctx.video.height),
                               ctx.video.fps, cfg))
        log.info("world: track %d, %d frames, frame_space=%s", int(tid), len(g), cfg.frame)
    ctx.advance(ctx.video.n_frames)
    return pd.concat(out, ignore_index=True)[WORLD.schema.names]


# v3: reference_fps: above 30 fps, foot speeds over round(fps / 30) frames, their median, the lock's fade and
# the planting's smoothing over as many seconds as at 30 fps (identical output at 30 fps and below)
# v4: where world speeds are untrusted (a turning camera), both feet moving forward alike and slowly relative to
# the root are the root moving back (a standing person's hips), not two swinging feet: both stay planted
# v5: level_drift: the chained camera rotations' slow tilt drift pulled onto the body's vertical (tracks over 30 s)
STAGE = Stage(name="world", version=5, config=WorldStageConfig, output=WORLD, compute=compute,
              inputs=("probe", "fit", "camera_motion"),
              doc="the fit in a world frame (camera rotation, odometry, floor, contacts, planting) or kept in camera space")
