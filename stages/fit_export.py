"""fit_export: per track of the licence-free `fit`, animator files (.npz, .bvh, .glb, .obj) as a file table.

The Anny counterpart of stages/export.py, with its conventions. Layout once published
(`fit_export_outputs`) under `<out>/<video-stem>/`:
    track_000_anny.npz  track_000_anny.bvh  track_000_anny.glb  track_000_anny_obj/frame_000001.obj ...
    manifest.json
Frame numbers in names are 1-based video frames (video frame 0 -> frame_000001). Axes of every file:
Y up, metres, camera at the origin looking along -Z (stages.export.AXES). One shape per person: the
fit's per-track phenotype. The skeleton is Anny's 104-bone 'anny' rig (bone names and parents from
the model); root motion is the root bone's position.

- `.bvh`: rest offsets from the person's shape, root position channels, per-bone Euler rotations
  (`bvh_rotation_order`, degrees) relative to the parent; every bone's rest frame is world-aligned.
- `.glb`: the skinned Anny mesh (13,718 vertices, top-4 of Anny's LBS weights) with the same
  skeleton and animation (video2mesh.models.writers.gltf.skinned_glb); asset extras name the body model.
- `_obj/frame_*.obj`: the posed mesh per frame (Anny's own LBS, all weights).
- `.npz`: the rig parameters as fitted (bone_rotations (N, 104, 3) local axis-angle in the rest model
  axes, global_orient (N, 3), transl (N, 3) camera axes, phenotype (6,)), the rig (bone_names, parents,
  rest_offsets_model), frame (N,) 0-based video frames, fps, joints (N, 104, 3) Y-up bone heads,
  keypoints3d (N, 17, 3) COCO Y-up, residual_px (N,), confidence (N,), body_model, axes strings.

`track_files` computes the bytes (no file is written); `stages.fit_anny.export_fit` writes them to a
folder for callers outside the pipeline.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from video2mesh.models.writers.animation import bvh_text, obj_text
from video2mesh.models.writers.gltf import SkinnedAnimation, skinned_glb
from video2mesh.models.body.anny_body import PHENOTYPES, AnnyBody, pose_rig
from video2mesh.pipeline.artifacts import stack
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.errors import ConfigError, InputError
from video2mesh.pipeline.stage import Chunk, Context, Stage

from .export import AXES, npz_bytes
from .fit_anny import CAMERA_TO_YUP, MODEL_TO_YUP, N_BONES, load_body
from .outputs import ANNY_LICENCE_NOTE, file_rows, files_artifact, publish

log = logging.getLogger(__name__)

FIT_EXPORT = files_artifact("fit_export", version=1,
                            doc="Per-track Anny animation files (npz, bvh, glb, obj) of the licence-free path, with sha256.")
FORMATS = ("npz", "bvh", "glb", "obj")
BODY_MODEL = "anny"
LICENCE = "Anny: code Apache-2.0, MakeHuman data CC0 (see the manifest's licence note)"
_UNITS_PER_M = {"m": 1.0, "cm": 100.0}
_OBJ_BATCH = 64   # frames posed at once for the OBJ meshes (~1 MB of temporaries per frame)


@dataclass(frozen=True)
class FitExportConfig:
    """What to export of the fitted Anny motion (same options as export.ExportConfig, minus gender)."""

    formats: tuple[str, ...] = FORMATS
    obj_stride: Annotated[int, Range(1, 1_000_000)] = 1  # write every n-th frame's OBJ
    obj_max_frames: Annotated[int, Range(0, None)] = 450  # an Anny OBJ is ~0.9 MB a frame (13,718 vertices): the same ~400 MB
                                      # cap as export's 900 SMPL frames; longer tracks skip it (0 = no limit)
    bvh_units: str = "m"              # Blender's BVH import at its default scale reads 1 unit = 1 m
    bvh_rotation_order: str = "ZXY"

    def __post_init__(self) -> None:
        bad = sorted(set(self.formats) - set(FORMATS))
        if bad:
            raise ConfigError(f"fit_export.formats has unknown format(s) {bad}; choose from {list(FORMATS)}")
        if self.bvh_units not in _UNITS_PER_M:
            raise ConfigError(f"fit_export.bvh_units must be one of {list(_UNITS_PER_M)}, got {self.bvh_units!r}")
        if self.obj_stride < 1:
            raise ConfigError("fit_export.obj_stride must be >= 1")
        if sorted(self.bvh_rotation_order) != ["X", "Y", "Z"]:
            raise ConfigError(f"fit_export.bvh_rotation_order must be a permutation of XYZ, got {self.bvh_rotation_order!r}")


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
    local = Rotation.from_rotvec(rots.reshape(-1, 3)).as_matrix().reshape(t, N_BONES, 3, 3)
    local = MODEL_TO_YUP @ local @ MODEL_TO_YUP.T
    local[:, 0] = CAMERA_TO_YUP @ Rotation.from_rotvec(orient).as_matrix() @ MODEL_TO_YUP.T
    return {"local": local, "offsets": offsets, "root_pos": transl @ CAMERA_TO_YUP.T, "heads": h}


def track_files(g: pd.DataFrame, body: AnnyBody, fps: float, cfg: FitExportConfig = FitExportConfig(),
                stem: str | None = None) -> list[tuple]:
    """(track_id, kind, relative path, bytes, meta) of one track's `fit` rows (sorted by frame).

    Paths are `<stem>.npz|.bvh|.glb` and `<stem>_obj/frame_<1-based frame>.obj`, stem defaulting to
    `track_<id>_anny`. Writes nothing.
    """
    import torch

    tid = int(g.track_id.iloc[0])
    if "rig" in g and set(g.rig) != {"anny"}:
        raise InputError(f"fit track {tid} uses rig(s) {sorted(set(g.rig))}; fit_export writes the 'anny' rig only")
    stem = stem or f"track_{tid:03d}_anny"
    frames = g.frame.to_numpy(np.int64)
    n = len(frames)
    phen = stack(g["phenotype"], 6, np.float64)[0]
    rots = stack(g["bone_rotations"], N_BONES * 3, np.float64).reshape(n, N_BONES, 3)
    orient = stack(g["global_orient"], 3, np.float64)
    transl = stack(g["transl"], 3, np.float64)
    with torch.no_grad():
        sk = body.skeleton(torch.as_tensor(phen[None], dtype=body.dtype))
    y = yup_rig(body, sk, rots, orient, transl)
    names = tuple(body.bone_names)
    par = body.parents
    gaps = int(np.sum(np.diff(frames) != 1))
    if gaps:
        log.warning("track %d has %d frame gaps; bvh/glb/obj assume the listed frames, see `frame` in the npz", tid, gaps)
    keep = np.arange(0, n, cfg.obj_stride)
    obj_skipped = "obj" in cfg.formats and bool(cfg.obj_max_frames) and len(keep) > cfg.obj_max_frames
    base = {"track_id": tid, "fps": fps, "frame_first": int(frames[0]), "frame_last": int(frames[-1]), "n_frames": n,
            "axes": AXES, "body_model": BODY_MODEL, "rig": "anny", "licence": LICENCE,
            "phenotype": {k: round(float(v), 6) for k, v in zip(PHENOTYPES, phen)}}
    if obj_skipped:
        base["obj_skipped"] = f"{len(keep)} OBJ frames > fit_export.obj_max_frames={cfg.obj_max_frames}; raise it or obj_stride"
    out: list[tuple] = []
    if "npz" in cfg.formats:
        heads = pose_rig(body, sk, rots, orient, transl, vertices=False)["heads"]
        kp3d = stack(g["keypoints3d"], 51, np.float64).reshape(n, 17, 3) if "keypoints3d" in g else np.zeros((n, 17, 3))
        opt = {c: g[c].to_numpy(np.float32) for c in ("residual_px", "confidence") if c in g}
        data = npz_bytes({
            "body_model": np.array(BODY_MODEL), "rig": np.array("anny"), "bone_names": np.array(names),
            "parents": np.asarray(par, np.int64), "rest_offsets_model": y["heads"] - y["heads"][par.clip(0)],
            "bone_rotations": rots, "global_orient": orient, "transl": transl, "phenotype": phen,
            "phenotype_names": np.array(PHENOTYPES), "frame": frames, "frames": frames, "fps": np.array(fps),
            "mocap_framerate": np.array(fps), "joints": (heads @ CAMERA_TO_YUP.T).astype(np.float32),
            "keypoints3d": (kp3d @ CAMERA_TO_YUP.T).astype(np.float32), **opt,
            "axes": np.array("bone_rotations: local axis-angle in rest model axes (z up, facing -y); global_orient/"
                             "transl: rest model -> camera (x right, y down, z forward), metres; joints, keypoints3d: "
                             + AXES),
            "units": np.array("metres, radians"),
        })
        out.append((tid, "npz", f"{stem}.npz", data, {**base, "units": "metres, radians (axis-angle)"}))
    if "bvh" in cfg.formats:
        text = bvh_text(y["local"], y["root_pos"], y["offsets"], 1.0 / fps, names, par, order=cfg.bvh_rotation_order,
                        units_per_m=_UNITS_PER_M[cfg.bvh_units])
        out.append((tid, "bvh", f"{stem}.bvh", text.encode(), {
            **base, "units": f"{cfg.bvh_units}, degrees", "joints": N_BONES,
            "rotation_order": f"intrinsic {cfg.bvh_rotation_order} (R = R{cfg.bvh_rotation_order[0]} "
                              f"R{cfg.bvh_rotation_order[1]} R{cfg.bvh_rotation_order[2]})"}))
    if "glb" in cfg.formats:
        h = y["heads"]
        verts = (sk.rest_vertices.detach().cpu().numpy().astype(np.float64) - h[0]) @ MODEL_TO_YUP.T
        wi = body.model.vertex_bone_indices.cpu().numpy()
        ww = body.model.vertex_bone_weights.detach().cpu().numpy().astype(np.float64)
        dense = np.zeros((len(verts), N_BONES))
        np.add.at(dense, (np.repeat(np.arange(len(verts)), wi.shape[1]), wi.reshape(-1)), ww.reshape(-1))
        glb = skinned_glb(SkinnedAnimation(
            vertices=verts, faces=body.faces, weights=dense, rest_joints=(h - h[0]) @ MODEL_TO_YUP.T,
            times_s=(frames - frames[0]) / fps,
            local_quat=Rotation.from_matrix(y["local"].reshape(-1, 3, 3)).as_quat().reshape(n, N_BONES, 4),
            root_pos=y["root_pos"], joint_names=names, parents=tuple(int(p) for p in par), name=stem,
            extras={"body_model": BODY_MODEL, "rig": "anny", "licence": LICENCE, "phenotype": [float(x) for x in phen]}))
        out.append((tid, "glb", f"{stem}.glb", glb, {**base, "units": "metres, seconds",
                                                       "animation": f"skinned ({N_BONES} bones, top-4 LBS weights)"}))
    if "obj" in cfg.formats:
        if obj_skipped:
            log.warning("track %d: %s", tid, base["obj_skipped"])
        else:
            for s in range(0, len(keep), _OBJ_BATCH):
                ks = keep[s:s + _OBJ_BATCH]
                verts = pose_rig(body, sk, rots[ks], orient[ks], transl[ks])["vertices"] @ CAMERA_TO_YUP.T
                for v, k in zip(verts, ks):
                    f1 = int(frames[k]) + 1
                    text = obj_text(v, body.faces, comment=f"video2mesh track {tid} video frame {f1} (1-based); body model: anny")
                    out.append((tid, "obj", f"{stem}_obj/frame_{f1:06d}.obj", text.encode(),
                                {**base, "units": "metres", "frame": int(frames[k])}))
    return out


def track_ids(ctx: Context) -> list[int]:
    return sorted(int(t) for t in ctx.input("fit", columns=["track_id"]).track_id.unique())


def plan(ctx: Context, cfg: FitExportConfig) -> list[Chunk]:
    """One chunk per track (chunk i = i-th track id in ascending order), spanning its frames."""
    df = ctx.input("fit", columns=["frame", "track_id"])
    g = df.groupby("track_id").frame.agg(["min", "max"]).sort_index()
    return [Chunk(i, int(r["min"]), int(r["max"]) + 1) for i, (_, r) in enumerate(g.iterrows())]


def compute(ctx: Context, cfg: FitExportConfig, chunk: Chunk) -> pd.DataFrame:
    ids = track_ids(ctx)
    if chunk.index >= len(ids):
        return FIT_EXPORT.empty()
    tid = ids[chunk.index]
    g = ctx.input("fit", filters=[("track_id", "==", tid)]).sort_values("frame").reset_index(drop=True)
    files = track_files(g, load_body(ctx), fps=ctx.video.fps, cfg=cfg)
    ctx.advance(max(chunk.stop - chunk.start, 1))
    return file_rows(files)


STAGE = Stage(name="fit_export", version=2, config=FitExportConfig, output=FIT_EXPORT, compute=compute,
              inputs=("probe", "fit"), plan=plan,
              doc="per-track npz, bvh, glb and obj files of the fitted Anny motion (licence-free path)")


def fit_export_outputs(runner, video_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Run (or reuse from the cache) everything up to `fit_export` for one video and publish its files
    into `<out_dir>/<video-stem>/`, with manifest.json. Returns the written paths."""
    return publish_fit_export(runner, runner.run(video_path, until="fit_export"), video_path, out_dir)


def publish_fit_export(runner, results: dict, video_path: str | Path, out_dir: str | Path,
                       folder: str | None = None) -> list[Path]:
    """Publish a finished `fit_export` (`results`: StageResults by stage name, with probe and fit_export)
    into `<out_dir>/<video-stem>/`, with manifest.json. Runs nothing. Returns the written paths."""
    probe = runner.store.read_df(results["probe"].ref.path).iloc[0]
    header = {
        "video": Path(video_path).name, "video_sha256": str(probe.digest), "fps": float(probe.fps),
        "n_frames": int(probe.n_frames), "axes": AXES, "units": "metres unless the file's entry says otherwise",
        "frame_numbers": "`frame_*` in names are 1-based video frames; frame_first/frame_last are 0-based",
        "method": "licence-free", "method_label": "Anny body fitted to BlazePose keypoints (licence-free)",
        "body_model": BODY_MODEL, "rig": "anny", "licence": ANNY_LICENCE_NOTE,
        "export_key": results["fit_export"].ref.key,
    }
    return publish(results["fit_export"].ref, Path(out_dir) / (folder or Path(video_path).stem), header=header)
