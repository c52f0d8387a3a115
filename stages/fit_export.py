"""fit_export: per track of the licence-free `fit`, animator files (.npz, .bvh, .glb, .obj) as a file table.

The Anny counterpart of stages/export.py: a declaration over the same export core
(stages/_export_core.py: formats, options, file names, manifest); this module is the Anny adapter
(`anny_track`). Layout once published
(`fit_export_outputs`) under `<out>/<video-stem>/`:
    track_000_anny.npz  track_000_anny.bvh  track_000_anny.glb  track_000_anny_obj/frame_000001.obj ...
    manifest.json
Frame numbers in names are 1-based video frames (video frame 0 -> frame_000001). Axes of every file:
the `world` stage's output frame: by default the world (WORLD_AXES: Y up, floor y = 0, the person
starting at the origin facing +Z, metres; the camera per frame in the npz's cam_R / cam_t); with
`--set world.frame=camera` Y up, metres, camera at the origin looking along -Z (_export_core.AXES). One shape per person: the
fit's per-track phenotype. The skeleton is Anny's 104-bone 'anny' rig (bone names and parents from
the model); root motion is the root bone's position.
The finger and wrist bones take the `fingers` stage's rotations (hand landmarks; none with
`--set hands.enabled=false`, and then the files are as before hands: `with_fingers`).

- `.bvh`: rest offsets from the person's shape, root position channels, per-bone Euler rotations
  (`bvh_rotation_order`, degrees) relative to the parent; every bone's rest frame is world-aligned.
- `.glb`: the skinned Anny mesh (13,718 vertices, top-4 of Anny's LBS weights) with the same
  skeleton and animation (video2mesh.models.writers.gltf.skinned_glb); asset extras name the body model.
- `_obj/frame_*.obj`: the posed mesh per frame (Anny's own LBS, all weights).
- `.npz`: the rig parameters as fitted (bone_rotations (N, 104, 3) local axis-angle in the rest model
  axes, global_orient (N, 3), transl (N, 3) camera axes, phenotype (6,)), the rig (bone_names, parents,
  rest_offsets_model), frame (N,) 0-based video frames, fps, joints (N, 104, 3) Y-up bone heads,
  keypoints3d (N, 17, 3) COCO Y-up, feet3d (N, 6, 3) the foot points of models.body.anny_keypoints
  (feet_names) Y-up, residual_px (N,), confidence (N,), body_model, axes strings; from the `world`
  stage: frame_space ("world" | "camera"), cam_R (N, 3, 3) / cam_t (N, 3) output frame -> GL camera
  (x_cam = cam_R x + cam_t), contact (N, 2) bool left/right foot, floor (4,) plane a x + b y + c z + d = 0,
  cam_K (3, 3) the fit's pinhole in pixels and image_size (2,) width, height (camera_note says how to project).
The .glb/.usd/.fbx carry the same camera, animated ('video_camera', /Camera): looking through it shows the
body where the video shows the person.

`track_files` computes the bytes (no file is written); `export_fit` writes them to a folder for
callers outside the pipeline.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
import typing
from typing import Literal

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from video2mesh.models.body.anny_body import MODEL_TO_YUP, N_BONES, PHENOTYPES, POSE_SLICE, AnnyBody, pose_bones, pose_rig
from video2mesh.models.body.anny_keypoints import FOOT_NAMES, FOOT_VERTICES
from video2mesh.models.maths.camera_motion import intrinsics
from video2mesh.models.writers.animation import CAMERA_TO_YUP
from video2mesh.models.writers.gltf import CameraTrack, camera_track
from video2mesh.pipeline.artifacts import stack
from video2mesh.pipeline.errors import ConfigError, InputError
from video2mesh.pipeline.stage import Stage

from . import _export_core as core
from ._export_core import AXES
from .licence_free import load_body
from .outputs import ANNY_LICENCE_NOTE, files_artifact

log = logging.getLogger(__name__)

FIT_EXPORT = files_artifact("fit_export", version=2,
                            doc="Per-track Anny animation files (npz, bvh, glb, obj) of the licence-free path, with sha256.")
BODY_MODEL = "anny"
LICENCE = "Anny: code Apache-2.0, MakeHuman data CC0 (see the manifest's licence note)"
Rig = Literal["anny", "mixamo", "game_engine"]   # skeletons the anny package ships for the same mesh
RIGS = typing.get_args(Rig)
CAMERA_NOTE = ("pixel (u, v) of a point X of this file's frame (metres): x = cam_R X + cam_t (GL camera axes: x right, "
               "y up, looking along -Z); (u, v, 1) ~ cam_K (x, -y, -z) (OpenCV pinhole, image_size = width, height px, "
               "origin at the top-left corner)")
WORLD_AXES = ("Y up, right-handed, metres; world frame: floor y = 0, the person's root above the origin at the "
              "first frame, facing +Z; the camera per frame in the npz's cam_R / cam_t (world -> GL camera axes)")


@dataclass(frozen=True)
class FitExportConfig(core.AnimationExportConfig):
    """What to export of the fitted Anny motion (export.ExportConfig's options, minus gender)."""

    stage = "fit_export"
    obj_max_frames: core.ObjMaxFrames = 450  # an Anny OBJ is ~2.4 MB a frame (13,718 vertices with normals and UVs,
                                      # measured): ~1 GB of files, stored again in the cache; longer tracks skip it
                                      # (0 = no limit; memory stays bounded by obj_chunk_frames either way)
    rig: Rig = "anny"                 # skeleton of the bvh/glb/usd/fbx: anny (104 bones, as fitted), mixamo (Mixamo's
                                      # mixamorig:* names) or game_engine (Unreal-style), retargeted on the shared mesh

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rig not in RIGS:
            raise ConfigError(f"fit_export.rig must be one of {list(RIGS)}, got {self.rig!r}")


def yup_rig(body: AnnyBody, sk, rots: np.ndarray, orient: np.ndarray, transl: np.ndarray) -> dict[str, np.ndarray]:
    """The fitted rig re-expressed in the Y-up export frame, every bone's rest frame world-aligned.

    rots (T, J, 3) local axis-angle in rest model axes, orient (T, 3) rest model -> camera, transl
    (T, 3) camera metres. Returns local rotations `local` (T, J, 3, 3) (root: model -> Y-up world),
    `offsets` (J, 3) Y-up rest offsets to the parent (root 0), `root_pos` (T, 3) and `heads` (J, 3)
    of the rest skeleton in model axes. FK of (local, offsets, root_pos) = pose_rig's heads in Y-up.
    """
    h = sk.heads.detach().cpu().numpy().astype(np.float64)
    par = body.parents
    offsets = np.zeros_like(h)
    offsets[1:] = (h[1:] - h[par[1:]]) @ MODEL_TO_YUP.T
    t = len(rots)
    local = np.empty((t, N_BONES, 3, 3))
    for s in range(0, t, POSE_SLICE):       # in slices: whole-track temporaries would be ~4x the result
        sl = slice(s, min(s + POSE_SLICE, t))
        m = Rotation.from_rotvec(rots[sl].reshape(-1, 3)).as_matrix().reshape(-1, N_BONES, 3, 3)
        local[sl] = MODEL_TO_YUP @ m @ MODEL_TO_YUP.T
    local[:, 0] = CAMERA_TO_YUP @ Rotation.from_rotvec(orient).as_matrix() @ MODEL_TO_YUP.T
    return {"local": local, "offsets": offsets, "root_pos": transl @ CAMERA_TO_YUP.T, "heads": h}


def yup_skeleton(rotations: np.ndarray, heads_posed: np.ndarray, heads_rest: np.ndarray, parents: np.ndarray) -> dict[str, np.ndarray]:
    """`yup_rig`'s output from world rotations (T, K, 3, 3) relative to rest and posed heads (T, K, 3), camera
    axes, of any skeleton with rest heads (K, 3) in model axes (a retargeted rig)."""
    local = np.empty_like(rotations)
    local[:, 0] = CAMERA_TO_YUP @ rotations[:, 0] @ MODEL_TO_YUP.T
    local[:, 1:] = MODEL_TO_YUP @ np.swapaxes(rotations[:, parents[1:]], -1, -2) @ rotations[:, 1:] @ MODEL_TO_YUP.T
    offsets = np.zeros_like(heads_rest)
    offsets[1:] = (heads_rest[1:] - heads_rest[parents[1:]]) @ MODEL_TO_YUP.T
    return {"local": local, "offsets": offsets, "root_pos": heads_posed[:, 0] @ CAMERA_TO_YUP.T, "heads": heads_rest}


def dense_weights(body: AnnyBody) -> np.ndarray:
    """(V, J) Anny's skinning weights of `body`'s rig as a dense matrix."""
    wi = body.model.vertex_bone_indices.cpu().numpy()
    ww = body.model.vertex_bone_weights.detach().cpu().numpy().astype(np.float64)
    dense = np.zeros((len(wi), len(body.bone_names)))
    np.add.at(dense, (np.repeat(np.arange(len(wi)), wi.shape[1]), wi.reshape(-1)), ww.reshape(-1))
    return dense


def retargeted(body: AnnyBody, sk, phen: np.ndarray, rots: np.ndarray, orient: np.ndarray, transl: np.ndarray,
               target: AnnyBody):
    """(skeleton dict as `yup_rig`, target skeleton) of the fitted motion carried onto `target`'s rig."""
    import torch

    from video2mesh.models.body.rigs import retarget

    with torch.no_grad():
        tsk = target.skeleton(torch.as_tensor(phen[None], dtype=target.dtype))
    src = pose_rig(body, sk, rots, orient, transl, vertices=False)
    h = tsk.heads.detach().cpu().numpy().astype(np.float64)
    r = retarget(src["rotations"], src["heads"], sk.heads.detach().cpu().numpy().astype(np.float64), dense_weights(body),
                 tsk.rest_vertices.detach().cpu().numpy().astype(np.float64), h, target.parents, dense_weights(target))
    return yup_skeleton(r.rotations, r.heads, h, target.parents), tsk


def anny_track(g: pd.DataFrame, body: AnnyBody, rig_body: AnnyBody | None = None,
               image_wh: tuple[int, int] | None = None) -> core.RigTrack:
    """The export core's view of one track's `fit` rows (sorted by frame): the rig in the Y-up frame
    (yup_rig), the track's phenotype as its shape, the .npz of the module docstring. With `world` rows and
    the video's `image_wh` (width, height), the video's camera too (npz cam_K / image_size, glb/usd/fbx camera)."""
    import torch

    tid = int(g.track_id.iloc[0])
    if "rig" in g and set(g.rig) != {"anny"}:
        raise InputError(f"fit track {tid} uses rig(s) {sorted(set(g.rig))}; fit_export writes the 'anny' rig only")
    frames = g.frame.to_numpy(np.int64)
    n = len(frames)
    phen = stack(g["phenotype"], 6, np.float64)[0]
    rots = stack(g["bone_rotations"], N_BONES * 3, np.float64).reshape(n, N_BONES, 3)
    orient = stack(g["global_orient"], 3, np.float64)
    transl = stack(g["transl"], 3, np.float64)
    with torch.no_grad():
        sk = body.skeleton(torch.as_tensor(phen[None], dtype=body.dtype))
    y = yup_rig(body, sk, rots, orient, transl)
    names, par, skin_body, skin_sk, rig = tuple(body.bone_names), body.parents, body, sk, "anny"
    if rig_body is not None and rig_body.rig != "anny":    # bvh/glb/usd/fbx on a standard rig; npz/obj as fitted
        y, skin_sk = retargeted(body, sk, phen, rots, orient, transl, rig_body)
        names, par, skin_body, rig = tuple(rig_body.bone_names), rig_body.parents, rig_body, rig_body.rig
    axes = WORLD_AXES if "frame_space" in g and str(g.frame_space.iloc[0]) == "world" else AXES

    def npz(fps: float) -> dict:
        heads = pose_bones(body, sk, rots, orient, transl, rotations=False)["heads"]
        kp3d = stack(g["keypoints3d"], 51, np.float64).reshape(n, 17, 3) if "keypoints3d" in g else np.zeros((n, 17, 3))
        opt = {c: g[c].to_numpy(np.float32) for c in ("residual_px", "confidence") if c in g}
        opt.update(world_arrays(g, n, image_wh))
        if "feet3d" not in opt:   # bare `fit` rows (export_fit): pose the mesh for the foot points
            opt["feet3d"] = np.concatenate([posed(np.arange(s, min(s + 64, n)))[:, FOOT_VERTICES]
                                            for s in range(0, n, 64)]).astype(np.float32)   # Y-up
        return {
            "body_model": np.array(BODY_MODEL), "rig": np.array("anny"), "bone_names": np.array(names),
            "parents": np.asarray(par, np.int64), "rest_offsets_model": y["heads"] - y["heads"][par.clip(0)],
            "bone_rotations": rots, "global_orient": orient, "transl": transl, "phenotype": phen,
            "phenotype_names": np.array(PHENOTYPES), "frame": frames, "frames": frames, "fps": np.array(fps),
            "mocap_framerate": np.array(fps), "joints": (heads @ CAMERA_TO_YUP.T).astype(np.float32),
            "keypoints3d": (kp3d @ CAMERA_TO_YUP.T).astype(np.float32), "feet_names": np.array(FOOT_NAMES), **opt,
            "axes": np.array("bone_rotations: local axis-angle in rest model axes (z up, facing -y); global_orient/"
                             "transl: rest model -> (x, -y, -z) of the Y-up frame below (the camera's x right, y down, "
                             "z forward in camera space), metres; joints, keypoints3d, feet3d, floor, cam_R/cam_t's "
                             "source frame: " + axes),
            "units": np.array("metres, radians"),
        }

    def bind_pose() -> core.BindPose:
        h = y["heads"]
        verts = (skin_sk.rest_vertices.detach().cpu().numpy().astype(np.float64) - h[0]) @ MODEL_TO_YUP.T
        return core.BindPose(verts, dense_weights(skin_body), (h - h[0]) @ MODEL_TO_YUP.T)

    def posed(ks: np.ndarray) -> np.ndarray:
        return pose_rig(body, sk, rots[ks], orient[ks], transl[ks])["vertices"] @ CAMERA_TO_YUP.T

    return core.RigTrack(
        track_id=tid, frames=frames, local=y["local"], root_pos=y["root_pos"], offsets=y["offsets"], names=names,
        parents=par, faces=body.faces,
        meta={"body_model": BODY_MODEL, "rig": rig, "licence": LICENCE, "axes": axes,
              "phenotype": {k: round(float(v), 6) for k, v in zip(PHENOTYPES, phen)}},
        npz=npz, bind_pose=bind_pose, posed=posed, glb_note=f"skinned ({len(names)} bones, top-4 LBS weights)",
        glb_extras={"body_model": BODY_MODEL, "rig": rig, "licence": LICENCE, "phenotype": [float(x) for x in phen]},
        bvh_meta={"joints": len(names)}, obj_note="; body model: anny", obj_batch=64, uvs=body.uvs, uv_faces=body.uv_faces,
        rig=rig, floor_y=0.0 if axes == WORLD_AXES else None, camera=video_camera(g, n, image_wh))


def video_camera(g: pd.DataFrame, n: int, image_wh: tuple[int, int] | None) -> CameraTrack | None:
    """The video's camera in the output frame (world rows and a known image size), else None."""
    if "cam_R" not in g or "focal_px" not in g or image_wh is None:
        return None
    return camera_track(stack(g["cam_R"], 9, np.float64).reshape(n, 3, 3), stack(g["cam_t"], 3, np.float64),
                        float(g.focal_px.iloc[0]), *image_wh)


def world_arrays(g: pd.DataFrame, n: int, image_wh: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """The `world` stage's extras for the npz (none for bare `fit` rows): frame_space, cam_R (N, 3, 3) /
    cam_t (N, 3) output frame -> GL camera, contact (N, 2) bool left/right, floor (4,), feet3d (N, 6, 3);
    with the image size also cam_K (3, 3) and image_size (2,) (see CAMERA_NOTE)."""
    if "cam_R" not in g:
        return {}
    cam = {}
    if image_wh is not None and "focal_px" in g:
        cam = {"cam_K": intrinsics(float(g.focal_px.iloc[0]), *image_wh), "image_size": np.asarray(image_wh, np.int64),
               "camera_note": np.array(CAMERA_NOTE)}
    return {**cam, "frame_space": np.array(str(g.frame_space.iloc[0])),
            "cam_R": stack(g["cam_R"], 9, np.float64).reshape(n, 3, 3), "cam_t": stack(g["cam_t"], 3, np.float64),
            "contact": np.stack([g.contact_left.to_numpy(bool), g.contact_right.to_numpy(bool)], 1),
            "floor": stack(g["floor"], 4, np.float64)[0],
            "feet3d": (stack(g["feet3d"], 18, np.float64).reshape(n, 6, 3) @ CAMERA_TO_YUP.T).astype(np.float32)}


def track_files(g: pd.DataFrame, body: AnnyBody, fps: float, cfg: FitExportConfig = FitExportConfig(),
                stem: str | None = None, rig_body: AnnyBody | None = None) -> list[tuple]:
    """(track_id, kind, relative path, bytes, meta) of one track's `fit` rows (sorted by frame).

    Paths are `<stem>.npz|.bvh|.glb|.usd|.fbx` and `<stem>_obj/frame_<1-based frame>.obj`, stem defaulting
    to `track_<id>_anny`. `rig_body`: the Anny model of `cfg.rig` when it is not 'anny'. Writes nothing.
    """
    if cfg.rig != "anny" and (rig_body is None or rig_body.rig != cfg.rig):
        raise ValueError(f"fit_export.rig={cfg.rig!r} needs that rig's Anny model as rig_body")
    return core.track_files(anny_track(g, body, rig_body), fps, cfg, stem or f"track_{int(g.track_id.iloc[0]):03d}_anny")


def export_fit(fit: pd.DataFrame, out_dir, fps: float, stem: str = "video", formats=core.DEFAULT_FORMATS,
               body: AnnyBody | None = None) -> dict[int, dict[str, Path]]:
    """Write each track of a `fit` artifact as animator files `<stem>_track<id>_anny.*` into `out_dir`,
    for callers outside the pipeline (the pipeline's way is this stage + publish). `.obj` frames go to
    `<stem>_track<id>_anny_obj/frame_<1-based frame>.obj`, without a frame limit, each written as it is made.
    Returns {track_id: {format: path}} (for "obj" the folder).
    """
    body = body or load_body(None)
    cfg = FitExportConfig(formats=tuple(formats), obj_max_frames=0)
    return {int(tid): core.write_files(core.iter_track_files(anny_track(g.reset_index(drop=True), body), fps, cfg,
                                                             f"{stem}_track{int(tid):03d}_anny"), out_dir)
            for tid, g in fit.sort_values(["track_id", "frame"]).groupby("track_id")}


def with_fingers(ctx, rows: pd.DataFrame) -> pd.DataFrame:
    """One track's rows with the `fingers` stage's finger and wrist rotations put in (unchanged when it has
    none, e.g. with hands.enabled=false)."""
    from video2mesh.models.fit.fingers import N_FINGER_BONES, apply_fingers

    tid = int(rows.track_id.iloc[0])
    fingers = ctx.input("fingers", filters=[("track_id", "==", tid)])
    if fingers.empty:
        return rows
    n = len(rows)
    rots = apply_fingers(stack(rows["bone_rotations"], N_BONES * 3, np.float64).reshape(n, N_BONES, 3),
                         load_body(ctx).bone_names, rows.frame.to_numpy(np.int64), fingers.frame.to_numpy(np.int64),
                         stack(fingers["finger_rotations"], N_FINGER_BONES * 3, np.float64).reshape(-1, N_FINGER_BONES, 3),
                         stack(fingers["wrist_rotations"], 6, np.float64).reshape(-1, 2, 3))
    return rows.assign(bone_rotations=list(rots.reshape(n, -1).astype(np.float32)))


SOURCE = core.ExportSource(stage="fit_export", artifact=FIT_EXPORT, input="world",
                           rig_track=lambda ctx, cfg, rows: anny_track(
                               with_fingers(ctx, rows), load_body(ctx), load_body(ctx, rig=cfg.rig) if cfg.rig != "anny" else None,
                               image_wh=(ctx.video.width, ctx.video.height)),
                           stem="track_{tid:03d}_anny", method="licence-free", body_model=lambda cfg: BODY_MODEL,
                           licence=ANNY_LICENCE_NOTE,   # each file's manifest entry names its rig
                           manifest={"axes": "per file: the world frame (" + WORLD_AXES + ") unless "
                                     "run with --set world.frame=camera (" + AXES + ")"})


# (runner, results, video_path, out_dir, folder=None) -> paths: publish a finished `fit_export` with manifest.json, running nothing
publish_fit_export = partial(core.publish_export, SOURCE)
# (runner, video_path, out_dir) -> paths: run (or reuse) everything up to `fit_export`, then publish
fit_export_outputs = partial(core.export_outputs, SOURCE)

# v6: reference_pose (a T-/A-pose frame 0); v5: reads `world` (the fit in the world frame by default; `--set world.frame=camera` for camera space);
# usd/fbx formats, standard rigs, OBJ normals/UVs
# v7: finger and wrist bones from the `fingers` stage (hands.enabled=false: as v6)
# v8: the video's camera: npz cam_K / image_size, an animated camera in glb/usd/fbx
# v9: OBJ sequences in chunks of obj_chunk_frames (stages/_export_core.layout): the same files
STAGE = Stage(name="fit_export", version=9, config=FitExportConfig, output=FIT_EXPORT, compute=partial(core.compute, SOURCE),
              inputs=("probe", "world", "fingers"), plan=partial(core.plan, SOURCE), publish=publish_fit_export,
              doc="per-track npz, bvh, glb and obj files of the fitted Anny motion (licence-free path)")
