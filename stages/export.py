"""export: per track, files for animators (.npz, .bvh, .glb, .obj sequence) of the SMPL path, as a cached file table.

A declaration over the export core shared with `fit_export` (stages/_export_core.py: formats, options,
file names, manifest); this module is the SMPL adapter (`smpl_track`).

Layout once published (`export_outputs`) under `<out>/<video-stem>/`:
    track_000.npz  track_000.bvh  track_000.glb  track_000_obj/frame_000001.obj ...  manifest.json
Frame numbers in names are 1-based video frames (video frame 0 -> frame_000001). Every file uses the
axes of video2mesh.models.writers.animation (_export_core.AXES): Y up, metres, camera at the origin looking along -Z. One shape per person:
the mesh stage's per-track median betas (`betas_track`).

The .npz follows the AMASS layout that Blender SMPL add-ons read: poses (N, 72) with the root turned
into the Y-up frame, trans (N, 3) (SMPL `transl` in that frame), betas (10,), gender,
mocap_framerate; extras: frame (N,) video frame ids (0-based), poses_camera / trans_camera (the mesh
stage's camera-frame values), joints (N, 24, 3) Y-up metres, cam_crop (N, 3), cam_orig (N, 4),
uncertainty (N,), axes and units strings.

`export.rig=mixamo|game_engine` names the bvh/glb/usd/fbx joints as Mixamo's / Unreal's mannequin
(models.body.reference.SMPL_RIG_NAMES): SMPL's hierarchy matches theirs joint for joint and its rest is a
T-pose like theirs, so only the names change; the npz keeps SMPL's layout.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from video2mesh.models.body.reference import SMPL_RIG_NAMES
from video2mesh.models.writers import animation as anim
from video2mesh.pipeline.artifacts import stack
from video2mesh.pipeline.errors import ConfigError
from video2mesh.pipeline.stage import Context, Stage

from . import _export_core as core
from ._export_core import AXES
from ._smpl import load_smpl_arrays, shaped_rest, smpl_asset, smpl_layer, smpl_vertices
from .outputs import SMPL_LICENCE_NOTE, files_artifact

log = logging.getLogger(__name__)

EXPORT = files_artifact("export", version=1, doc="Per-track animation files (npz, bvh, glb, obj) with sha256.")


@dataclass(frozen=True)
class ExportConfig(core.AnimationExportConfig):
    """What to export. `gender` must name the body model the mesh stage used."""

    stage = "export"
    obj_max_frames: core.ObjMaxFrames = 900  # OBJ is ~0.45 MB a frame: longer tracks skip it (0 = no limit)
    gender: str = "neutral"
    rig: Literal["smpl", "mixamo", "game_engine"] = "smpl"   # joint names of bvh/glb/usd/fbx (SMPL's skeleton either way)

    def __post_init__(self) -> None:
        if self.rig not in ("smpl", *SMPL_RIG_NAMES):
            raise ConfigError(f"export.rig must be one of {['smpl', *SMPL_RIG_NAMES]}, got {self.rig!r}")
        if self.gender not in ("neutral", "male", "female"):
            raise ConfigError(f"export.gender must be neutral, male or female, got {self.gender!r}")
        super().__post_init__()


def smpl_track(df: pd.DataFrame, arrays: dict[str, np.ndarray], cfg: ExportConfig, layer=None) -> core.RigTrack:
    """The export core's view of one track's rows of the `mesh` artifact (sorted by frame): SMPL-24
    rotations turned into the Y-up frame, one shape (the median of `betas_track`), the .npz in the AMASS
    layout (module docstring). `layer` (smpl_layer) poses the OBJ meshes; made when needed if None."""
    tid = int(df.track_id.iloc[0])
    frames = df.frame.to_numpy(np.int64)
    n = len(frames)
    pose = stack(df.pose, 72, np.float64)
    trans = stack(df.trans, 3, np.float64)
    betas = np.median(stack(df.betas_track, 10, np.float64), axis=0)
    v_rest, j_rest = shaped_rest(arrays, betas)
    rot, root_pos, trans_yup = anim.camera_to_yup(pose, trans, j_rest)
    offsets = anim.rest_offsets(j_rest)
    pose_yup = Rotation.from_matrix(rot.reshape(-1, 3, 3)).as_rotvec().reshape(n, 72)

    def npz(fps: float) -> dict:
        joints, _ = anim.forward_kinematics(rot, offsets, root_pos)
        return {
            "poses": pose_yup.astype(np.float32), "trans": trans_yup.astype(np.float32),
            "betas": betas.astype(np.float32), "gender": np.array(cfg.gender), "mocap_framerate": np.array(fps),
            "frame": frames, "poses_camera": pose.astype(np.float32), "trans_camera": trans.astype(np.float32),
            "joints": joints.astype(np.float32), "cam_crop": stack(df.cam_crop, 3), "cam_orig": stack(df.cam_orig, 4),
            "uncertainty": df.uncertainty.to_numpy(np.float32), "axes": np.array(AXES), "units": np.array("metres, radians"),
        }

    def posed(ks: np.ndarray) -> np.ndarray:
        return smpl_vertices(layer if layer is not None else smpl_layer(arrays, cfg.gender), pose_yup[ks], betas, trans_yup[ks])

    return core.RigTrack(
        track_id=tid, frames=frames, local=rot, root_pos=root_pos, offsets=offsets,
        names=SMPL_RIG_NAMES.get(cfg.rig, anim.SMPL_JOINT_NAMES), parents=anim.SMPL_PARENTS, faces=arrays["f"],
        meta={"body_model": f"SMPL {cfg.gender}", "rig": cfg.rig, "betas": [round(float(b), 6) for b in betas]},
        npz=npz, bind_pose=lambda: core.BindPose(v_rest, arrays["weights"], j_rest), posed=posed,
        glb_note="skinned (24 joints, top-4 LBS weights, no pose blend shapes)", obj_batch=128, rig=cfg.rig)


def export_track(df: pd.DataFrame, arrays: dict[str, np.ndarray], fps: float, cfg: ExportConfig, layer=None) -> list[tuple]:
    """(track_id, kind, path, bytes, meta) for one track's rows of the `mesh` artifact (sorted by frame)."""
    return core.track_files(smpl_track(df, arrays, cfg, layer), fps, cfg, f"track_{int(df.track_id.iloc[0]):03d}")


def _rig_track(ctx: Context, cfg: ExportConfig, rows: pd.DataFrame) -> core.RigTrack:
    arrays = ctx.memo("smpl", lambda: load_smpl_arrays(ctx.weight(smpl_asset(cfg.gender))))
    return smpl_track(rows, arrays, cfg, layer=ctx.memo("layer", lambda: smpl_layer(arrays, cfg.gender)))


SOURCE = core.ExportSource(stage="export", artifact=EXPORT, input="mesh", rig_track=_rig_track, stem="track_{tid:03d}",
                           method="smpl", body_model=lambda cfg: f"SMPL {cfg.gender}", licence=SMPL_LICENCE_NOTE)


# (runner, results, video_path, out_dir, folder=None) -> paths: publish a finished `export` with manifest.json, running nothing
publish_export = partial(core.publish_export, SOURCE)
# (runner, video_path, out_dir) -> paths: run (or reuse) everything up to `export`, then publish
export_outputs = partial(core.export_outputs, SOURCE)

# v3: rig names, reference_pose
# v4: OBJ sequences in chunks of obj_chunk_frames (stages/_export_core.layout): the same files
STAGE = Stage(name="export", version=4, config=ExportConfig, output=EXPORT, compute=partial(core.compute, SOURCE),
              inputs=("probe", "mesh"), assets=lambda cfg: (smpl_asset(cfg.gender),), plan=partial(core.plan, SOURCE),
              publish=publish_export, doc="per-track npz, bvh, glb and obj files for animators")
