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

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from video2mesh.models.writers.animation import bvh_text, obj_text
from video2mesh.models.writers.fbx import BLENDER_HINT, blender_path, fbx_from_glb
from video2mesh.models.writers.gltf import SkinnedAnimation, skinned_glb
from video2mesh.models.writers.usd import skinned_usd
from video2mesh.models.body.anny_body import PHENOTYPES, AnnyBody, pose_rig
from video2mesh.pipeline.artifacts import stack
from video2mesh.pipeline.errors import ConfigError, InputError
from video2mesh.pipeline.stage import Chunk, Context, Stage

from .export import AXES, npz_bytes
from .fit_anny import CAMERA_TO_YUP, MODEL_TO_YUP, N_BONES, load_body
from .outputs import ANNY_LICENCE_NOTE, file_rows, files_artifact, publish

log = logging.getLogger(__name__)

FIT_EXPORT = files_artifact("fit_export", version=1,
                            doc="Per-track Anny animation files (npz, bvh, glb, obj) of the licence-free path, with sha256.")
FORMATS = ("npz", "bvh", "glb", "obj", "usd", "fbx")
DEFAULT_FORMATS = ("npz", "bvh", "glb", "obj")   # usd needs usd-core (installed), fbx needs Blender on PATH
RIGS = ("anny", "mixamo", "game_engine")   # skeletons the anny package ships for the same mesh
BODY_MODEL = "anny"
LICENCE = "Anny: code Apache-2.0, MakeHuman data CC0 (see the manifest's licence note)"
_UNITS_PER_M = {"m": 1.0, "cm": 100.0}
_OBJ_BATCH = 64   # frames posed at once for the OBJ meshes (~1 MB of temporaries per frame)


@dataclass(frozen=True)
class FitExportConfig:
    """What to export of the fitted Anny motion (same options as export.ExportConfig, minus gender)."""

    formats: tuple[str, ...] = DEFAULT_FORMATS
    obj_stride: int = 1               # write every n-th frame's OBJ
    obj_max_frames: int = 450         # an Anny OBJ is ~0.9 MB a frame (13,718 vertices): the same ~400 MB
                                      # cap as export's 900 SMPL frames; longer tracks skip it (0 = no limit)
    bvh_units: str = "m"              # Blender's BVH import at its default scale reads 1 unit = 1 m
    bvh_rotation_order: str = "ZXY"
    rig: str = "anny"                 # skeleton of the bvh/glb: anny (104 bones, as fitted), mixamo (Mixamo's
                                      # mixamorig:* names) or game_engine (Unreal-style), retargeted on the shared mesh

    def __post_init__(self) -> None:
        bad = sorted(set(self.formats) - set(FORMATS))
        if bad:
            raise ConfigError(f"fit_export.formats has unknown format(s) {bad}; choose from {list(FORMATS)}")
        if self.bvh_units not in _UNITS_PER_M:
            raise ConfigError(f"fit_export.bvh_units must be one of {list(_UNITS_PER_M)}, got {self.bvh_units!r}")
        if self.obj_stride < 1:
            raise ConfigError("fit_export.obj_stride must be >= 1")
        if "fbx" in self.formats and blender_path() is None:
            raise ConfigError(f"fit_export.formats has fbx: {BLENDER_HINT}")
        if "usd" in self.formats and importlib.util.find_spec("pxr") is None:
            raise ConfigError("fit_export.formats has usd, which needs usd-core: pip install usd-core")
        if self.rig not in RIGS:
            raise ConfigError(f"fit_export.rig must be one of {list(RIGS)}, got {self.rig!r}")
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


def track_files(g: pd.DataFrame, body: AnnyBody, fps: float, cfg: FitExportConfig = FitExportConfig(),
                stem: str | None = None, rig_body: AnnyBody | None = None) -> list[tuple]:
    """(track_id, kind, relative path, bytes, meta) of one track's `fit` rows (sorted by frame).

    Paths are `<stem>.npz|.bvh|.glb` and `<stem>_obj/frame_<1-based frame>.obj`, stem defaulting to
    `track_<id>_anny`. `rig_body`: the Anny model of `cfg.rig` when it is not 'anny' (its bvh/glb skeleton;
    the npz and obj keep the fitted parameters and mesh). Writes nothing.
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
    names, par, skin_body, skin_sk = tuple(body.bone_names), body.parents, body, sk
    if cfg.rig != "anny":
        if rig_body is None or rig_body.rig != cfg.rig:
            raise ValueError(f"fit_export.rig={cfg.rig!r} needs that rig's Anny model as rig_body")
        y, skin_sk = retargeted(body, sk, phen, rots, orient, transl, rig_body)
        names, par, skin_body = tuple(rig_body.bone_names), rig_body.parents, rig_body
    gaps = int(np.sum(np.diff(frames) != 1))
    if gaps:
        log.warning("track %d has %d frame gaps; bvh/glb/obj assume the listed frames, see `frame` in the npz", tid, gaps)
    keep = np.arange(0, n, cfg.obj_stride)
    obj_skipped = "obj" in cfg.formats and bool(cfg.obj_max_frames) and len(keep) > cfg.obj_max_frames
    base = {"track_id": tid, "fps": fps, "frame_first": int(frames[0]), "frame_last": int(frames[-1]), "n_frames": n,
            "axes": AXES, "body_model": BODY_MODEL, "rig": cfg.rig, "licence": LICENCE,
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
            **base, "units": f"{cfg.bvh_units}, degrees", "joints": len(names),
            "rotation_order": f"intrinsic {cfg.bvh_rotation_order} (R = R{cfg.bvh_rotation_order[0]} "
                              f"R{cfg.bvh_rotation_order[1]} R{cfg.bvh_rotation_order[2]})"}))
    if {"glb", "usd", "fbx"} & set(cfg.formats):
        h = y["heads"]
        anim = SkinnedAnimation(
            vertices=(skin_sk.rest_vertices.detach().cpu().numpy().astype(np.float64) - h[0]) @ MODEL_TO_YUP.T,
            faces=body.faces, weights=dense_weights(skin_body), rest_joints=(h - h[0]) @ MODEL_TO_YUP.T,
            times_s=(frames - frames[0]) / fps,
            local_quat=Rotation.from_matrix(y["local"].reshape(-1, 3, 3)).as_quat().reshape(n, len(names), 4),
            root_pos=y["root_pos"], joint_names=names, parents=tuple(int(p) for p in par), name=stem,
            extras={"body_model": BODY_MODEL, "rig": cfg.rig, "licence": LICENCE, "phenotype": [float(x) for x in phen],
                    "fps": float(fps), "frame_first": int(frames[0]), "frame_last": int(frames[-1]),
                    "time_zero": "the track's first frame (frame_first, 0-based video frame)"})
        skinned = {**base, "animation": f"skinned ({len(names)} bones, top-4 LBS weights)"}
        glb = skinned_glb(anim)
        if "glb" in cfg.formats:
            out.append((tid, "glb", f"{stem}.glb", glb, {**skinned, "units": "metres, seconds"}))
        if "usd" in cfg.formats:
            out.append((tid, "usd", f"{stem}.usd", skinned_usd(anim, fps),
                        {**skinned, "units": "metres (metersPerUnit 1), time codes = frames at the clip's fps"}))
        if "fbx" in cfg.formats:
            out.append((tid, "fbx", f"{stem}.fbx", fbx_from_glb(glb, fps),
                        {**skinned, "units": "metres (unit scale 1), frames at the clip's fps",
                         "written_by": "Blender (background mode), from the GLB"}))
    if "obj" in cfg.formats:
        if obj_skipped:
            log.warning("track %d: %s", tid, base["obj_skipped"])
        else:
            for s in range(0, len(keep), _OBJ_BATCH):
                ks = keep[s:s + _OBJ_BATCH]
                verts = pose_rig(body, sk, rots[ks], orient[ks], transl[ks])["vertices"] @ CAMERA_TO_YUP.T
                for v, k in zip(verts, ks):
                    f1 = int(frames[k]) + 1
                    text = obj_text(v, body.faces, comment=f"video2mesh track {tid} video frame {f1} (1-based); body model: anny",
                                    uvs=body.uvs, uv_faces=body.uv_faces)
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
    rig_body = load_body(ctx, rig=cfg.rig) if cfg.rig != "anny" else None
    files = track_files(g, load_body(ctx), fps=ctx.video.fps, cfg=cfg, rig_body=rig_body)
    ctx.advance(max(chunk.stop - chunk.start, 1))
    return file_rows(files)


STAGE = Stage(name="fit_export", version=3, config=FitExportConfig, output=FIT_EXPORT, compute=compute,
              inputs=("probe", "fit"), plan=plan,
              doc="per-track npz, bvh, glb and obj files of the fitted Anny motion (licence-free path)")


def fit_export_outputs(runner, video_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Run (or reuse from the cache) everything up to `fit_export` for one video and publish its files
    into `<out_dir>/<video-stem>/`, with manifest.json. Returns the written paths."""
    return publish_fit_export(runner, runner.run(video_path, until="fit_export"), video_path, out_dir)


def publish_fit_export(runner, results: dict, video_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Publish a finished `fit_export` (`results`: StageResults by stage name, with probe and fit_export)
    into `<out_dir>/<video-stem>/`, with manifest.json. Runs nothing. Returns the written paths."""
    probe = runner.store.read_df(results["probe"].ref.path).iloc[0]
    header = {
        "video": Path(video_path).name, "video_sha256": str(probe.digest), "fps": float(probe.fps),
        "n_frames": int(probe.n_frames), "axes": AXES, "units": "metres unless the file's entry says otherwise",
        "frame_numbers": "`frame_*` in names are 1-based video frames; frame_first/frame_last are 0-based",
        "method": "licence-free", "method_label": "Anny body fitted to BlazePose keypoints (licence-free)",
        "body_model": BODY_MODEL, "licence": ANNY_LICENCE_NOTE,   # each file names its rig
        "export_key": results["fit_export"].ref.key,
    }
    return publish(results["fit_export"].ref, Path(out_dir) / Path(video_path).stem, header=header)
