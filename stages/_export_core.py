"""The export core shared by both methods' export stages (`export`: SMPL from `mesh`; `fit_export`:
Anny from `fit`): per track, files for animators (.npz, .bvh, .glb, .obj sequence) as rows of a file
table, and their publication with a manifest.

A helper module (no stage). A body model comes in through an `ExportSource` (as the report's
MotionSource): the artifact it reads, how one track's rows become a `RigTrack` (the rig's motion in
the export frame plus the body model's own .npz arrays, bind-pose mesh and posed vertices), and what
the manifest says about it. Formats, options, file names, manifest entries, the OBJ size limit and
the frame-gap warning are here, once.

Every file uses AXES: Y up, metres, camera at the origin looking along -Z. Frame numbers in file
names are 1-based video frames (video frame 0 -> frame_000001); frame_first/frame_last are 0-based.
"""
from __future__ import annotations

import importlib.util
import io
import logging
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Callable, ClassVar, Iterable, Iterator, Literal

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from video2mesh.models.body.reference import POSES, reference_local
from video2mesh.models.writers.animation import MOTION_SLICE, bvh_text, obj_text
from video2mesh.models.writers.fbx import BLENDER_HINT, blender_path, fbx_from_glb
from video2mesh.models.writers.gltf import CameraTrack, SkinnedAnimation, skinned_glb
from video2mesh.models.writers.usd import skinned_usd
from video2mesh.pipeline.artifacts import Artifact
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.errors import ConfigError
from video2mesh.pipeline.stage import Chunk, Context

from ._methods import METHODS
from .outputs import file_rows, publish

log = logging.getLogger(__name__)

AXES = "Y up, right-handed; camera at the origin looking along -Z (camera x right, y down, z forward -> x, -y, -z)"
FORMATS = ("npz", "bvh", "glb", "obj", "usd", "fbx")
DEFAULT_FORMATS = ("npz", "bvh", "glb", "obj")     # usd needs usd-core (installed), fbx needs Blender on PATH
UNITS_PER_M = {"m": 1.0, "cm": 100.0}
ObjMaxFrames = Annotated[int, Range(0, None)]   # the subclasses set their own default (0 = no limit)


@dataclass(frozen=True)
class AnimationExportConfig:
    """Options of an export stage; each stage's config subclasses it and names itself in `stage`."""

    stage: ClassVar[str] = "export"   # the stage whose settings these are (in error messages)
    formats: tuple[str, ...] = DEFAULT_FORMATS
    obj_stride: Annotated[int, Range(1, 1_000_000)] = 1  # write every n-th frame's OBJ
    obj_max_frames: ObjMaxFrames = 900  # longer tracks skip the OBJ sequence (0 = no limit); see the subclasses
    obj_chunk_frames: Annotated[int, Range(1, 100_000)] = 64  # OBJ frames per chunk of the stage: a chunk's files
                                      # are held ~4x over (bytes, rows, Arrow table), an Anny OBJ is ~2.4 MB
    bvh_units: str = "m"              # Blender's BVH import at its default scale reads 1 unit = 1 m
    bvh_rotation_order: str = "ZXY"
    reference_pose: Literal["none", "rest", "t", "a"] = "none"  # bvh/glb/usd/fbx: frame 0 in this pose, the motion
                                      # from file frame 1 (rest = the rig's bind pose; t / a = arms level / 45 deg down)

    def __post_init__(self) -> None:
        if self.reference_pose not in POSES:
            raise ConfigError(f"{self.stage}.reference_pose must be one of {list(POSES)}, got {self.reference_pose!r}")
        bad = sorted(set(self.formats) - set(FORMATS))
        if bad:
            raise ConfigError(f"{self.stage}.formats has unknown format(s) {bad}; choose from {list(FORMATS)}")
        if "fbx" in self.formats and blender_path() is None:
            raise ConfigError(f"{self.stage}.formats has fbx: {BLENDER_HINT}")
        if "usd" in self.formats and importlib.util.find_spec("pxr") is None:
            raise ConfigError(f"{self.stage}.formats has usd, which needs usd-core: pip install usd-core")
        if self.bvh_units not in UNITS_PER_M:
            raise ConfigError(f"{self.stage}.bvh_units must be one of {list(UNITS_PER_M)}, got {self.bvh_units!r}")
        if self.obj_stride < 1:
            raise ConfigError(f"{self.stage}.obj_stride must be >= 1")
        if self.obj_chunk_frames < 1:
            raise ConfigError(f"{self.stage}.obj_chunk_frames must be >= 1")
        if sorted(self.bvh_rotation_order) != ["X", "Y", "Z"]:
            raise ConfigError(f"{self.stage}.bvh_rotation_order must be a permutation of XYZ, got {self.bvh_rotation_order!r}")


@dataclass(frozen=True)
class BindPose:
    """The .glb's skinned mesh in the export frame: vertices (V, 3) metres, LBS weights (V, J),
    rest_joints (J, 3) bind-pose joint positions."""

    vertices: np.ndarray
    weights: np.ndarray
    rest_joints: np.ndarray


@dataclass(frozen=True)
class RigTrack:
    """One person's motion on a body model's rig, as the writers take it. N frames, J joints.

    local (N, J, 3, 3) joint rotations relative to the parent (root: rest model -> Y-up world);
    root_pos (N, 3) metres; offsets (J, 3) rest offsets to the parent (root 0), metres; names and
    parents (J,) the rig's joints; faces (F, 3) of the body mesh. The costly parts are made only for
    the formats asked: `npz(fps)` the .npz arrays, `bind_pose()` the .glb mesh, `posed(idx)` the
    vertices (k, V, 3) Y-up metres of frames `idx` (indices into `frames`, at most `obj_batch`).
    """

    track_id: int
    frames: np.ndarray                       # (N,) 0-based video frames
    local: np.ndarray
    root_pos: np.ndarray
    offsets: np.ndarray
    names: tuple[str, ...]
    parents: np.ndarray
    faces: np.ndarray
    meta: dict[str, Any]                     # the body model's entries in every file's manifest entry
    npz: Callable[[float], dict[str, Any]]
    bind_pose: Callable[[], BindPose]
    posed: Callable[[np.ndarray], np.ndarray]
    glb_note: str                            # the .glb entry's "animation" text
    glb_extras: dict | None = None           # glTF asset extras
    bvh_meta: dict[str, Any] | None = None   # further entries of the .bvh's manifest entry
    obj_note: str = ""                       # appended to each OBJ's comment line
    obj_batch: int = 64                      # frames posed at once for the OBJ meshes
    uvs: np.ndarray | None = None            # (U, 2) the body's UV map for the OBJ frames, if it has one
    uv_faces: np.ndarray | None = None       # (F, 3) indices into `uvs`, corner by corner of `faces`
    rig: str = "smpl"                        # the skeleton's kind (models.body.reference.ARM_CHAINS names its arms)
    floor_y: float | None = None             # height of the floor in the export frame, when it is known (world frame)
    camera: CameraTrack | None = None        # the video's camera per frame in the export frame (glb/usd/fbx), when known


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


def reference_frame(track: RigTrack, pose: str) -> tuple[np.ndarray, np.ndarray]:
    """(local (J, 3, 3), root position (3,)) of the reference pose: standing upright facing +Z where the
    track's first frame stands, its feet on the floor when the floor is known, else at the first root height."""
    local = reference_local(track.rig, track.names, track.parents, track.offsets, pose)
    root = track.root_pos[0].astype(np.float64).copy()
    if track.floor_y is not None:
        bind = track.bind_pose()     # the lowest rest vertex stands on the floor
        root[1] = track.floor_y + bind.rest_joints[0, 1] - bind.vertices[:, 1].min()
    return local, root


def reference_note(pose: str, frame_first: int) -> str:
    kind = {"rest": "the rig's bind pose", "t": "a T-pose (arms level)", "a": "an A-pose (arms 45 deg down)"}[pose]
    return (f"file frame 0 is {kind}, upright, facing +Z where the first frame stands; the motion starts at file "
            f"frame 1 = video frame {frame_first} (0-based)")


def obj_frames(n: int, cfg: AnimationExportConfig) -> tuple[np.ndarray, bool]:
    """(indices into a track's n frames of its OBJ sequence, whether it is skipped for obj_max_frames);
    empty without the obj format."""
    keep = np.arange(0, n, cfg.obj_stride)
    skipped = "obj" in cfg.formats and bool(cfg.obj_max_frames) and len(keep) > cfg.obj_max_frames
    return (keep[:0] if skipped or "obj" not in cfg.formats else keep), skipped


def track_files(track: RigTrack, fps: float, cfg: AnimationExportConfig, stem: str) -> list[tuple]:
    """(track_id, kind, relative path, bytes, meta) of one track: `<stem>.npz|.bvh|.glb` and
    `<stem>_obj/frame_<1-based frame>.obj`, in that order, for the formats in `cfg`. Writes nothing."""
    return list(iter_track_files(track, fps, cfg, stem))


def iter_track_files(track: RigTrack, fps: float, cfg: AnimationExportConfig, stem: str, animated: bool = True,
                     obj: tuple[int, int | None] | None = (0, None)) -> Iterator[tuple]:
    """`track_files`' tuples one file at a time (OBJ frames are made as they are asked for): with `animated`
    the npz/bvh/glb/usd/fbx, then the OBJ frames obj[0]:obj[1] of the sequence (`obj_frames`; None: none)."""
    tid, frames = track.track_id, track.frames
    n = len(frames)
    gaps = int(np.sum(np.diff(frames) != 1))
    if gaps and animated:
        log.warning("track %d has %d frame gaps; bvh/glb/obj assume the listed frames, see `frame` in the npz", tid, gaps)
    keep, obj_skipped = obj_frames(n, cfg)
    base = {"track_id": tid, "fps": fps, "frame_first": int(frames[0]), "frame_last": int(frames[-1]), "n_frames": n,
            "axes": AXES, **track.meta}
    if obj_skipped:
        base["obj_skipped"] = (f"{-(-n // cfg.obj_stride)} OBJ frames > {cfg.stage}.obj_max_frames="
                               f"{cfg.obj_max_frames}; raise it or obj_stride")
        if animated:
            log.warning("track %d: %s", tid, base["obj_skipped"])
    if animated:
        yield from _animated_files(track, fps, cfg, stem, base)
    if obj is not None:
        keep = keep[obj[0]:obj[1]]
        for s in range(0, len(keep), track.obj_batch):
            ks = keep[s:s + track.obj_batch]
            for v, k in zip(track.posed(ks), ks):
                f1 = int(frames[k]) + 1
                text = obj_text(v, track.faces, comment=f"video2mesh track {tid} video frame {f1} (1-based){track.obj_note}",
                                uvs=track.uvs, uv_faces=track.uv_faces)
                yield (tid, "obj", f"{stem}_obj/frame_{f1:06d}.obj", text.encode(),
                       {**base, "units": "metres", "frame": int(frames[k])})


def _animated_files(track: RigTrack, fps: float, cfg: AnimationExportConfig, stem: str, base: dict) -> Iterator[tuple]:
    """The npz/bvh/glb/usd/fbx tuples of `iter_track_files`."""
    tid, frames, n = track.track_id, track.frames, len(track.frames)
    local, root_pos, lead = track.local, track.root_pos, 0
    if cfg.reference_pose != "none" and {"bvh", "glb", "usd", "fbx"} & set(cfg.formats):
        ref_local, ref_root = reference_frame(track, cfg.reference_pose)
        local, root_pos, lead = np.concatenate([ref_local[None], local]), np.concatenate([ref_root[None], root_pos]), 1
    ref_meta = {"reference_pose": reference_note(cfg.reference_pose, int(frames[0]))} if lead else {}
    if "npz" in cfg.formats:
        yield tid, "npz", f"{stem}.npz", npz_bytes(track.npz(fps)), {**base, "units": "metres, radians (axis-angle)"}
    if "bvh" in cfg.formats:
        order = cfg.bvh_rotation_order
        data = bvh_text(local, root_pos, track.offsets, 1.0 / fps, track.names, track.parents, order=order,
                        units_per_m=UNITS_PER_M[cfg.bvh_units]).encode()     # the text is not kept (long tracks)
        yield tid, "bvh", f"{stem}.bvh", data, {
            **base, "units": f"{cfg.bvh_units}, degrees", **(track.bvh_meta or {}), **ref_meta,
            "rotation_order": f"intrinsic {order} (R = R{order[0]} R{order[1]} R{order[2]})"}
    if {"glb", "usd", "fbx"} & set(cfg.formats):
        bind = track.bind_pose()
        quat = np.empty((n + lead, len(track.names), 4))      # (x, y, z, w), in slices of frames (memory)
        for s in range(0, n + lead, MOTION_SLICE):
            sl = slice(s, s + MOTION_SLICE)
            quat[sl] = Rotation.from_matrix(local[sl].reshape(-1, 3, 3)).as_quat().reshape(-1, len(track.names), 4)
        extras = {**(track.glb_extras or {}), "fps": float(fps), "frame_first": int(frames[0]), "frame_last": int(frames[-1]),
                  "time_zero": "frame_first (0-based video frame); key k at (frame_k - frame_first) / fps seconds"
                  if not lead else "the reference pose; video frame_k at (frame_k - frame_first + 1) / fps seconds",
                  **ref_meta}
        times = np.concatenate([[0.0], (frames - frames[0] + 1) / fps]) if lead else (frames - frames[0]) / fps
        camera, cam_meta = track.camera, {}
        if camera is not None:
            if lead:      # the reference frame keeps the first frame's view
                camera = replace(camera, position=np.concatenate([camera.position[:1], camera.position]),
                                 rotation=np.concatenate([camera.rotation[:1], camera.rotation]))
            cam_meta = {"camera": f"'{camera.name}': the video's camera on every key (vertical field of view "
                                  f"{np.degrees(camera.yfov):.3f} deg, aspect {camera.aspect:.4f}); look through it to "
                                  "see the body where the video shows the person"}
        anim = SkinnedAnimation(
            vertices=bind.vertices, faces=track.faces, weights=bind.weights, rest_joints=bind.rest_joints,
            times_s=times, local_quat=quat, root_pos=root_pos, name=stem,
            joint_names=track.names, parents=tuple(int(p) for p in track.parents), extras=extras, camera=camera)
        glb = skinned_glb(anim)
        skinned = {**base, "animation": track.glb_note, **ref_meta, **cam_meta}
        if "glb" in cfg.formats:
            yield tid, "glb", f"{stem}.glb", glb, {**skinned, "units": "metres, seconds"}
        if "usd" in cfg.formats:
            yield (tid, "usd", f"{stem}.usd", skinned_usd(anim, fps),
                   {**skinned, "units": "metres (metersPerUnit 1), time codes = frames at the clip's fps"})
        if "fbx" in cfg.formats:
            yield (tid, "fbx", f"{stem}.fbx", fbx_from_glb(glb, fps),
                   {**skinned, "units": "metres (unit scale 1), frames at the clip's fps",
                    "written_by": "Blender (background mode), from the GLB"})


def write_files(files: Iterable[tuple], out_dir: str | Path) -> dict[str, Path]:
    """Write `track_files` / `iter_track_files` output under `out_dir` as it comes (for callers outside the
    pipeline, whose way is the stage + publish). Returns {kind: path}, for "obj" the folder."""
    paths: dict[str, Path] = {}
    for _, kind, rel, data, _meta in files:
        dest = Path(out_dir) / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        paths[kind] = dest.parent if kind == "obj" else dest
    return paths


@dataclass(frozen=True)
class ExportSource:
    """A body model's way into the export core (see the module docstring)."""

    stage: str                                   # the export stage (and its artifact)
    artifact: Artifact
    input: str                                   # upstream artifact, one row per (frame, track)
    rig_track: Callable[[Context, Any, pd.DataFrame], RigTrack]   # (ctx, cfg, one track's rows by frame)
    stem: str                                    # file stem, formatted with tid, e.g. "track_{tid:03d}"
    method: str                                  # its method in stages._methods.METHODS
    body_model: Callable[[Any], str]             # cfg -> the manifest's body model
    licence: str                                 # the manifest's licence note
    manifest: dict[str, Any] | None = None       # further manifest entries


def layout(source: ExportSource, ctx: Context,
           cfg: AnimationExportConfig) -> list[tuple[int, tuple[int, int] | None, Chunk]]:
    """The stage's chunks: per track (ascending id) one for its npz/bvh/glb/usd/fbx (None), then one per
    `obj_chunk_frames` frames of its OBJ sequence ((start, stop) into `obj_frames`), so that a long OBJ
    sequence is made, cached and resumed a chunk at a time instead of held whole. As (track id, OBJ
    range, Chunk spanning the video frames it covers)."""
    df = ctx.input(source.input, columns=["frame", "track_id"])
    out: list[tuple[int, tuple[int, int] | None, Chunk]] = []
    for tid, fr in df.groupby("track_id").frame:
        frames = np.sort(fr.to_numpy(np.int64))
        out.append((int(tid), None, Chunk(len(out), int(frames[0]), int(frames[-1]) + 1)))
        keep, _ = obj_frames(len(frames), cfg)
        for s in range(0, len(keep), cfg.obj_chunk_frames):
            ks = keep[s:s + cfg.obj_chunk_frames]
            out.append((int(tid), (s, s + len(ks)), Chunk(len(out), int(frames[ks[0]]), int(frames[ks[-1]]) + 1)))
    return out


def plan(source: ExportSource, ctx: Context, cfg: AnimationExportConfig) -> list[Chunk]:
    """`layout`'s chunks."""
    return [c for _, _, c in layout(source, ctx, cfg)]


def compute(source: ExportSource, ctx: Context, cfg: AnimationExportConfig, chunk: Chunk) -> pd.DataFrame:
    """The files of the chunk (`layout`; bind `source` with functools.partial to get a stage's compute)."""
    lay = ctx.memo(f"{source.stage}:layout", lambda: layout(source, ctx, cfg))
    if chunk.index >= len(lay):
        return source.artifact.empty()
    tid, objs, _ = lay[chunk.index]
    # a track's chunks run one after another: its RigTrack is made once for all of them (only the last track's kept)
    last = ctx.memo(f"{source.stage}:rig_track", dict)
    if last.get("tid") != tid:
        rows = ctx.input(source.input, filters=[("track_id", "==", tid)]).sort_values("frame").reset_index(drop=True)
        last.clear()
        last.update(tid=tid, track=source.rig_track(ctx, cfg, rows))
    files = iter_track_files(last["track"], ctx.video.fps, cfg, source.stem.format(tid=tid),
                             animated=objs is None, obj=objs)
    df = file_rows(files)
    ctx.advance(max(chunk.stop - chunk.start, 1))
    return df


def publish_export(source: ExportSource, runner, results: dict, video_path: str | Path, out_dir: str | Path,
                   folder: str | None = None) -> list[Path]:
    """Publish a finished export stage (`results`: StageResults by stage name, with probe and the stage)
    into `<out_dir>/<folder>/` (default: the video's stem), with manifest.json. Runs nothing. Returns
    the written paths."""
    probe = runner.store.read_df(results["probe"].ref.path).iloc[0]
    method = METHODS[source.method]
    header = {
        "video": Path(video_path).name, "video_sha256": str(probe.digest), "fps": float(probe.fps),
        "n_frames": int(probe.n_frames), "axes": AXES, "units": "metres unless the file's entry says otherwise",
        "frame_numbers": "`frame_*` in names are 1-based video frames; frame_first/frame_last are 0-based",
        "method": method.name, "method_label": method.label, "body_model": source.body_model(runner.config(source.stage)),
        **(source.manifest or {}), "licence": source.licence, "export_key": results[source.stage].ref.key,
    }
    return publish(results[source.stage].ref, Path(out_dir) / (folder or Path(video_path).stem), header=header)


def export_outputs(source: ExportSource, runner, video_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Run (or reuse from the cache) everything up to the export stage for one video and publish its
    files into `<out_dir>/<video-stem>/`, with manifest.json. Returns the written paths."""
    return publish_export(source, runner, runner.run(video_path, until=source.stage), video_path, out_dir)
