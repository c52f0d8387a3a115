"""export: per track, files for animators (.npz, .bvh, .glb, .obj sequence) as a cached file table.

Layout once published (`export_outputs`) under `<out>/<video-stem>/`:
    track_000.npz  track_000.bvh  track_000.glb  track_000_obj/frame_000001.obj ...  manifest.json
Frame numbers in names are 1-based video frames (video frame 0 -> frame_000001). Every file uses the
axes of video2mesh.models.writers.animation: Y up, metres, camera at the origin looking along -Z. One shape per person:
the mesh stage's per-track median betas (`betas_track`).

The .npz follows the AMASS layout that Blender SMPL add-ons read: poses (N, 72) with the root turned
into the Y-up frame, trans (N, 3) (SMPL `transl` in that frame), betas (10,), gender,
mocap_framerate; extras: frame (N,) video frame ids (0-based), poses_camera / trans_camera (the mesh
stage's camera-frame values), joints (N, 24, 3) Y-up metres, cam_crop (N, 3), cam_orig (N, 4),
uncertainty (N,), axes and units strings.
"""
from __future__ import annotations

import io
import logging
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from video2mesh.models.writers import animation as anim
from video2mesh.models.writers.gltf import SkinnedAnimation, skinned_glb
from video2mesh.pipeline.artifacts import stack
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.errors import ConfigError, InputError
from video2mesh.pipeline.stage import Chunk, Context, Stage

from .outputs import SMPL_LICENCE_NOTE, file_rows, files_artifact, publish

log = logging.getLogger(__name__)

EXPORT = files_artifact("export", version=1, doc="Per-track animation files (npz, bvh, glb, obj) with sha256.")
AXES = "Y up, right-handed; camera at the origin looking along -Z (camera x right, y down, z forward -> x, -y, -z)"
FORMATS = ("npz", "bvh", "glb", "obj")
_UNITS_PER_M = {"m": 1.0, "cm": 100.0}


@dataclass(frozen=True)
class ExportConfig:
    """What to export. `gender` must name the body model the mesh stage used."""

    gender: str = "neutral"
    formats: tuple[str, ...] = FORMATS
    obj_stride: Annotated[int, Range(1, 1_000_000)] = 1  # write every n-th frame's OBJ
    obj_max_frames: Annotated[int, Range(0, None)] = 900  # OBJ is ~0.45 MB a frame: longer tracks skip it (0 = no limit)
    bvh_units: str = "m"              # Blender's BVH import at its default scale reads 1 unit = 1 m
    bvh_rotation_order: str = "ZXY"

    def __post_init__(self) -> None:
        if self.gender not in ("neutral", "male", "female"):
            raise ConfigError(f"export.gender must be neutral, male or female, got {self.gender!r}")
        bad = sorted(set(self.formats) - set(FORMATS))
        if bad:
            raise ConfigError(f"export.formats has unknown format(s) {bad}; choose from {list(FORMATS)}")
        if self.bvh_units not in _UNITS_PER_M:
            raise ConfigError(f"export.bvh_units must be one of {list(_UNITS_PER_M)}, got {self.bvh_units!r}")
        if self.obj_stride < 1:
            raise ConfigError("export.obj_stride must be >= 1")


def smpl_asset(gender: str) -> str:
    return f"smpl_{gender}"


# -- SMPL model file --------------------------------------------------------------------------------
def load_smpl_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an SMPL .pkl (official or synthetic) without chumpy: v_template (6890, 3),
    shapedirs (6890, 3, B), posedirs (6890, 3, 207), J_regressor (24, 6890) dense, weights
    (6890, 24), kintree_table (2, 24), f (F, 3)."""
    from video2mesh.models.body.smpl import load_model_data  # the one chumpy-free reader (.pkl official or not, .npz)

    try:
        raw = load_model_data(path)
    except (OSError, ValueError, pickle.UnpicklingError, EOFError) as e:
        raise InputError(f"{path}: not a readable SMPL model file ({e}); get SMPL_*.pkl from smpl.is.tue.mpg.de") from e
    keys = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
    missing = [k for k in keys if k not in raw]
    if missing:
        raise InputError(f"{path}: SMPL model file lacks {missing}; is it an SMPL (not SMPL-X/H) .pkl?")
    out = {k: np.asarray(raw[k].toarray() if hasattr(raw[k], "toarray") else raw[k]) for k in keys}
    out["f"] = out["f"].astype(np.int64)
    return out


def smpl_layer(arrays: dict[str, np.ndarray], gender: str = "neutral", num_betas: int = 10):
    """An smplx.SMPL module built from `load_smpl_arrays` output (float32, CPU)."""
    from smplx.utils import Struct

    from video2mesh.models.body.smpl import smplx_smpl

    return smplx_smpl(model_path="", data_struct=Struct(**arrays), gender=gender, num_betas=num_betas)


def shaped_rest(arrays: dict[str, np.ndarray], betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shaped rest vertices (6890, 3) and joints (24, 3) for betas (B,), in metres (float64)."""
    b = np.asarray(betas, np.float64)
    v = arrays["v_template"] + arrays["shapedirs"][:, :, : len(b)] @ b
    return v, arrays["J_regressor"] @ v


def smpl_vertices(layer, pose: np.ndarray, betas: np.ndarray, transl: np.ndarray, batch: int = 128) -> np.ndarray:
    """Posed vertices (T, 6890, 3) float32 from pose (T, 72), betas (10,), transl (T, 3)."""
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(pose), batch):
            p = torch.as_tensor(pose[s:s + batch], dtype=torch.float32)
            n = len(p)
            res = layer(global_orient=p[:, :3], body_pose=p[:, 3:],
                        betas=torch.as_tensor(betas, dtype=torch.float32).expand(n, -1),
                        transl=torch.as_tensor(transl[s:s + batch], dtype=torch.float32))
            out.append(res.vertices.numpy())
    return np.concatenate(out) if out else np.zeros((0, 6890, 3), np.float32)


# -- per-track files -------------------------------------------------------------------------------
def npz_bytes(arrays: dict[str, Any]) -> bytes:
    """An .npz (zip of .npy) with fixed timestamps, so equal inputs give byte-identical files."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, value in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            b = io.BytesIO()
            np.lib.format.write_array(b, np.asanyarray(value), allow_pickle=False)
            zf.writestr(info, b.getvalue())
    return buf.getvalue()


def track_ids(ctx: Context) -> list[int]:
    return sorted(int(t) for t in ctx.input("mesh", columns=["track_id"]).track_id.unique())


def plan(ctx: Context, cfg: ExportConfig) -> list[Chunk]:
    """One chunk per track (chunk i = i-th track id in ascending order), spanning its frames."""
    df = ctx.input("mesh", columns=["frame", "track_id"])
    g = df.groupby("track_id").frame.agg(["min", "max"]).sort_index()
    return [Chunk(i, int(r["min"]), int(r["max"]) + 1) for i, (_, r) in enumerate(g.iterrows())]


def compute(ctx: Context, cfg: ExportConfig, chunk: Chunk) -> pd.DataFrame:
    ids = track_ids(ctx)
    if chunk.index >= len(ids):
        return EXPORT.empty()
    tid = ids[chunk.index]
    df = ctx.input("mesh", filters=[("track_id", "==", tid)]).sort_values("frame").reset_index(drop=True)
    arrays = ctx.memo("smpl", lambda: load_smpl_arrays(ctx.weight(smpl_asset(cfg.gender))))
    files = export_track(df, arrays, fps=ctx.video.fps, cfg=cfg, layer=ctx.memo("layer", lambda: smpl_layer(arrays, cfg.gender)))
    ctx.advance(max(chunk.stop - chunk.start, 1))
    return file_rows(files)


def export_track(df: pd.DataFrame, arrays: dict[str, np.ndarray], fps: float, cfg: ExportConfig, layer=None) -> list[tuple]:
    """(track_id, kind, path, bytes, meta) for one track's rows of the `mesh` artifact (sorted by frame)."""
    tid = int(df.track_id.iloc[0])
    frames = df.frame.to_numpy(np.int64)
    n = len(frames)
    pose = stack(df.pose, 72, np.float64)
    trans = stack(df.trans, 3, np.float64)
    betas = np.median(stack(df.betas_track, 10, np.float64), axis=0)
    v_rest, j_rest = shaped_rest(arrays, betas)
    rot, root_pos, trans_yup = anim.camera_to_yup(pose, trans, j_rest)
    offsets = anim.rest_offsets(j_rest)
    joints, _ = anim.forward_kinematics(rot, offsets, root_pos)
    pose_yup = Rotation.from_matrix(rot.reshape(-1, 3, 3)).as_rotvec().reshape(n, 72)
    gaps = int(np.sum(np.diff(frames) != 1))
    if gaps:
        log.warning("track %d has %d frame gaps; bvh/glb/obj assume the listed frames, see `frame` in the npz", tid, gaps)
    stem = f"track_{tid:03d}"
    keep = np.arange(0, n, cfg.obj_stride)
    obj_skipped = "obj" in cfg.formats and bool(cfg.obj_max_frames) and len(keep) > cfg.obj_max_frames
    base = {"track_id": tid, "fps": fps, "frame_first": int(frames[0]), "frame_last": int(frames[-1]),
            "n_frames": n, "axes": AXES, "body_model": f"SMPL {cfg.gender}", "betas": [round(float(b), 6) for b in betas]}
    if obj_skipped:
        base["obj_skipped"] = f"{len(keep)} OBJ frames > export.obj_max_frames={cfg.obj_max_frames}; raise it or obj_stride"
    out: list[tuple] = []
    if "npz" in cfg.formats:
        data = npz_bytes({
            "poses": pose_yup.astype(np.float32), "trans": trans_yup.astype(np.float32),
            "betas": betas.astype(np.float32), "gender": np.array(cfg.gender), "mocap_framerate": np.array(fps),
            "frame": frames, "poses_camera": pose.astype(np.float32), "trans_camera": trans.astype(np.float32),
            "joints": joints.astype(np.float32), "cam_crop": stack(df.cam_crop, 3), "cam_orig": stack(df.cam_orig, 4),
            "uncertainty": df.uncertainty.to_numpy(np.float32), "axes": np.array(AXES), "units": np.array("metres, radians"),
        })
        out.append((tid, "npz", f"{stem}.npz", data, {**base, "units": "metres, radians (axis-angle)"}))
    if "bvh" in cfg.formats:
        text = anim.bvh_text(rot, root_pos, offsets, 1.0 / fps, order=cfg.bvh_rotation_order,
                             units_per_m=_UNITS_PER_M[cfg.bvh_units])
        out.append((tid, "bvh", f"{stem}.bvh", text.encode(), {
            **base, "units": f"{cfg.bvh_units}, degrees",
            "rotation_order": f"intrinsic {cfg.bvh_rotation_order} (R = R{cfg.bvh_rotation_order[0]} R{cfg.bvh_rotation_order[1]} R{cfg.bvh_rotation_order[2]})"}))
    if "glb" in cfg.formats:
        quat = Rotation.from_matrix(rot.reshape(-1, 3, 3)).as_quat().reshape(n, 24, 4)   # (x, y, z, w)
        glb = skinned_glb(SkinnedAnimation(
            vertices=v_rest, faces=arrays["f"], weights=arrays["weights"], rest_joints=j_rest,
            times_s=(frames - frames[0]) / fps, local_quat=quat, root_pos=root_pos, name=stem))
        out.append((tid, "glb", f"{stem}.glb", glb, {**base, "units": "metres, seconds",
                                                       "animation": "skinned (24 joints, top-4 LBS weights, no pose blend shapes)"}))
    if "obj" in cfg.formats:
        if obj_skipped:
            log.warning("track %d: %s", tid, base["obj_skipped"])
        else:
            layer = layer if layer is not None else smpl_layer(arrays, cfg.gender)
            verts = smpl_vertices(layer, pose_yup[keep], betas, trans_yup[keep])
            for i, k in enumerate(keep):
                text = anim.obj_text(verts[i], arrays["f"], comment=f"video2mesh track {tid} video frame {frames[k] + 1} (1-based)")
                out.append((tid, "obj", f"{stem}_obj/frame_{frames[k] + 1:06d}.obj", text.encode(),
                            {**base, "units": "metres", "frame": int(frames[k])}))
    return out


STAGE = Stage(name="export", version=1, config=ExportConfig, output=EXPORT, compute=compute,
              inputs=("probe", "mesh"), assets=lambda cfg: (smpl_asset(cfg.gender),), plan=plan,
              doc="per-track npz, bvh, glb and obj files for animators")


def export_outputs(runner, video_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Run (or reuse from the cache) everything up to `export` for one video and publish its files
    into `<out_dir>/<video-stem>/`, with manifest.json. Returns the written paths."""
    return publish_export(runner, runner.run(video_path, until="export"), video_path, out_dir)


def publish_export(runner, results: dict, video_path: str | Path, out_dir: str | Path,
                   folder: str | None = None) -> list[Path]:
    """Publish a finished `export` (`results`: StageResults by stage name, with probe and export)
    into `<out_dir>/<video-stem>/`, with manifest.json. Runs nothing. Returns the written paths."""
    cfg = runner.config("export")
    probe = runner.store.read_df(results["probe"].ref.path).iloc[0]
    header = {
        "video": Path(video_path).name, "video_sha256": str(probe.digest), "fps": float(probe.fps),
        "n_frames": int(probe.n_frames), "axes": AXES, "units": "metres unless the file's entry says otherwise",
        "frame_numbers": "`frame_*` in names are 1-based video frames; frame_first/frame_last are 0-based",
        "method": "smpl", "method_label": "SMPL, learned model (paper's method; VIBE-initialised)",
        "body_model": f"SMPL {cfg.gender}", "licence": SMPL_LICENCE_NOTE,
        "export_key": results["export"].ref.key,
    }
    return publish(results["export"].ref, Path(out_dir) / (folder or Path(video_path).stem), header=header)
