"""Ground-truth set builder: mocap -> Anny (several body shapes) -> Blender video with known cameras + gt.npz.

    build_set(mocap_files, root) -> [clip folders]

A set lives in `<root>/<set key>/` (GT_FORMAT.md): `index.json` and one folder per clip with `video.mp4`
and `gt.npz`. The set key hashes the mocap files' sha256, every setting and RENDER_VERSION (bump it when
the output of this code changes), so a changed setting never reuses a stale clip. A clip is written into a
temporary folder and renamed into place when complete, so a folder that exists is a finished clip and an
interrupted build resumes where it stopped.

Clips: with `people` = 1 each mocap file is a clip; with `people` = P, consecutive groups of P files share a
clip (their paths turned to cross each other mid-clip, side by side when standing). Clip i takes camera
i mod len(cameras) and phenotype (i + p) mod len(phenotypes) for person p, so a set covers the camera and
body-shape combinations without their full product. Needs Blender (scene.blender_path says how to get it).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from video2mesh.models.body.anny_body import PHENOTYPES
from video2mesh.pipeline.hashing import digest_obj, sha256_file

from .cameras import CameraSpec, camera_path
from .groundtruth import ground_truth, write_gt
from .mocap import load_mocap
from .retarget import Retargeted, RetargetConfig, retarget
from .scene import blender_path, encode_mp4, region_uv, render_frames

log = logging.getLogger(__name__)

RENDER_VERSION = 2
CROSS_OFFSET_M = 0.9        # lateral gap between the paths of people who cross


@dataclass(frozen=True)
class Phenotype:
    """A named Anny body shape; values in [0, 1] (gender 0 = male, 1 = female; age 0.5 = young adult)."""

    name: str
    gender: float = 0.5
    age: float = 0.5
    muscle: float = 0.5
    weight: float = 0.5
    height: float = 0.5
    proportions: float = 0.5

    def values(self) -> np.ndarray:
        return np.array([getattr(self, k) for k in PHENOTYPES])


DEFAULT_PHENOTYPES = (
    Phenotype("average"),
    Phenotype("tall-male", gender=0.0, height=0.8, muscle=0.65, weight=0.5),
    Phenotype("short-heavy-female", gender=1.0, height=0.25, weight=0.85, muscle=0.4),
)
DEFAULT_CAMERAS = (
    CameraSpec("static", height_m=1.5, distance_m=5.0, azimuth_deg=30.0),
    CameraSpec("pan", height_m=1.0, distance_m=4.0, azimuth_deg=-20.0),
    CameraSpec("handheld", height_m=1.6, distance_m=3.5, azimuth_deg=10.0),
    CameraSpec("dolly", height_m=2.5, distance_m=6.0, azimuth_deg=45.0),
)


def set_key(mocap_files: Sequence[Path], settings: dict) -> str:
    """Content key of a set: mocap sha256s (in order), the settings, RENDER_VERSION."""
    return digest_obj({"mocap": [sha256_file(p) for p in mocap_files], "settings": settings, "version": RENDER_VERSION})


def build_set(mocap_files: Sequence[Path], root: Path, *, frames: int | None = 300,
              cameras: Sequence[CameraSpec] = DEFAULT_CAMERAS, phenotypes: Sequence[Phenotype] = DEFAULT_PHENOTYPES,
              size: tuple[int, int] = (640, 360), fps: float = 30.0, people: int = 1, verts_stride: int = 10,
              retarget_cfg: RetargetConfig = RetargetConfig(), progress: Callable[[str], None] | None = None,
              body=None) -> list[Path]:
    """Render (or reuse) the ground-truth clips of `mocap_files`; returns the clip folders in order."""
    mocap_files = [Path(p) for p in mocap_files]
    settings = {"frames": frames, "cameras": [asdict(c) for c in cameras], "phenotypes": [asdict(p) for p in phenotypes],
                "size": list(size), "fps": fps, "people": people, "verts_stride": verts_stride,
                "retarget": asdict(retarget_cfg)}
    set_dir = Path(root) / set_key(mocap_files, settings)
    set_dir.mkdir(parents=True, exist_ok=True)
    groups = [mocap_files[i:i + people] for i in range(0, len(mocap_files) - people + 1, people)]
    say = progress or (lambda msg: log.info("%s", msg))
    clips, index = [], []
    for i, group in enumerate(groups):
        cam = cameras[i % len(cameras)]
        phens = [phenotypes[(i + p) % len(phenotypes)] for p in range(len(group))]
        clip_id = f"{i:02d}_{'+'.join(p.stem for p in group)}_{cam.name}_{'+'.join(p.name for p in phens)}"
        clip_dir = set_dir / clip_id
        if not (clip_dir / "gt.npz").exists():
            blender_path()                     # fail before the retarget when Blender is missing
            body = body or _load_body()
            say(f"clip {i + 1}/{len(groups)} {clip_id}: retargeting")
            _build_clip(body, group, clip_dir, cam, phens, frames, size, fps, verts_stride, retarget_cfg, seed=i,
                        progress=lambda m, c=clip_id: say(f"{c}: rendered {m}"))
        else:
            say(f"clip {i + 1}/{len(groups)} {clip_id}: cached")
        clips.append(clip_dir)
        index.append({"clip": clip_id, "meta": json.loads((clip_dir / "meta.json").read_text())})
    tmp = set_dir / f"index.json.{os.getpid()}.tmp"      # per process: two benches on one set both write it
    tmp.write_text(json.dumps({"render_version": RENDER_VERSION, "settings": settings, "clips": index}, indent=1))
    tmp.replace(set_dir / "index.json")
    return clips


def _load_body():
    from video2mesh.stages.licence_free import load_body

    return load_body(None)


def _build_clip(body, files, clip_dir: Path, cam: CameraSpec, phens, frames, size, fps, verts_stride,
                retarget_cfg, seed: int, progress=None) -> None:
    """Retarget, place, film, render and write one clip into clip_dir (atomically)."""
    mocaps = [load_mocap(f, fps=fps, frames=frames) for f in files]
    fitted = [retarget(body, m, p.values(), retarget_cfg) for m, p in zip(mocaps, phens)]
    n = min(len(m.joints) for m in mocaps)
    placed = arrange([r for r in fitted], n)
    verts = np.stack([v for v, _, _ in placed])                                      # (P, T, V, 3)
    joints = np.stack([j for _, j, _ in placed])                                     # (P, T, 23, 3)
    pelvis = np.stack([0.5 * (c[:, 0] + c[:, 1]) for _, _, c in placed])             # (P, T, 3)
    k, r_wc, t_wc = camera_path(cam, pelvis, size, clip_seed=seed)
    from video2mesh.models.body.anny_keypoints import dominant_bones

    uv = region_uv(body.bone_names, dominant_bones(body))
    clip_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{clip_dir.name}.", dir=clip_dir.parent))
    try:
        frames_dir = work / "frames"
        frames_dir.mkdir()
        render_s = render_frames(frames_dir, verts, body.faces, uv, k, r_wc, t_wc, size, seed, progress=progress)
        t0 = time.perf_counter()
        encode_mp4(frames_dir, work / "video.mp4", fps, size)
        encode_s = time.perf_counter() - t0
        meta = _meta(mocaps, fitted, phens, cam, r_wc, t_wc, pelvis, size, fps, retarget_cfg, seed,
                     {"render_s": round(render_s, 2), "encode_s": round(encode_s, 2),
                      "render_s_per_frame": round(render_s / n, 3)})
        write_gt(work / "gt.npz", ground_truth(joints, verts, k, r_wc, t_wc, size, fps, meta, verts_stride))
        (work / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        shutil.rmtree(frames_dir)
        if clip_dir.exists():                  # an incomplete leftover (no gt.npz): replace it
            shutil.rmtree(clip_dir)
        work.rename(clip_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def arrange(fitted: list[Retargeted], n: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Place P people in one scene, first n frames: (vertices, joints23, joint_centres) world, per person.

    Person 0 stays as retargeted (facing +Z at frame 0, starting above the origin). Each further person is
    turned 180 degrees about Y every other index and shifted so its path's midpoint lies CROSS_OFFSET_M
    (times its rank) to the side of person 0's: walkers cross each other mid-clip, standers stand side by side."""
    out = []
    ref_mid = None
    for p, r in enumerate(fitted):
        v, j, c = r.vertices[:n], r.joints23[:n], r.joint_centres[:n]
        pel = 0.5 * (c[:, 0] + c[:, 1])
        mid = 0.5 * (pel.min(0) + pel.max(0)) * [1.0, 0.0, 1.0]
        if p == 0:
            ref_mid = mid
            out.append((v, j, c))
            continue
        yaw = np.pi if p % 2 else 0.0
        rot = np.array([[np.cos(yaw), 0.0, np.sin(yaw)], [0.0, 1.0, 0.0], [-np.sin(yaw), 0.0, np.cos(yaw)]])
        shift = ref_mid + [CROSS_OFFSET_M * ((p + 1) // 2) * (1 if p % 2 else -1), 0.0, 0.0] - rot @ mid
        out.append(tuple(x @ rot.T + shift for x in (v, j, c)))
    return [(v.astype(np.float32), j.astype(np.float32), c) for v, j, c in out]


def _meta(mocaps, fitted, phens, cam, r_wc, t_wc, pelvis, size, fps, retarget_cfg, seed, timing) -> dict:
    centres = -np.einsum("tji,tj->ti", r_wc, t_wc)                                  # camera centres (T, 3)
    dist = np.linalg.norm((centres - pelvis.mean(0))[:, [0, 2]], axis=-1)
    return {
        "people": [{"mocap": m.name + ".bvh", "sha256": m.sha256, "unit": m.unit, "up_axis": m.up_axis,
                    "source_fps": m.source_fps, "leg_m": round(m.leg_m, 4), "phenotype": asdict(p),
                    "retarget_scale": round(r.scale, 4), "retarget_residual_mm": round(float(r.residual_mm.mean()), 2),
                    "retarget_s": round(r.seconds, 2)} for m, r, p in zip(mocaps, fitted, phens)],
        "camera": asdict(cam) | {"name": cam.name, "height_m_actual": round(float(centres[:, 1].mean()), 3),
                                 "distance_m_median": round(float(np.median(dist)), 3)},
        "retarget": asdict(retarget_cfg), "frames": int(len(r_wc)), "fps": fps, "size": list(size),
        "background": {"floor": "generated tiles", "wall": "generated buildings + sky", "seed": seed},
        "renderer": {"engine": "Blender Workbench", "script": "benchmarks/accuracy/blender_scene.py",
                     "render_version": RENDER_VERSION},
        "timing": timing,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m video2mesh.benchmarks.accuracy.render ROOT BVH... [--frames N] [--people P]`: build a set,
    print each clip's folder, retarget and render times (the scorer's `v2m bench accuracy` calls build_set)."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("root", type=Path)
    ap.add_argument("mocap", type=Path, nargs="+")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--people", type=int, default=1)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    start = time.perf_counter()
    clips = build_set(args.mocap, args.root, frames=args.frames, people=args.people)
    for c in clips:
        meta = json.loads((c / "meta.json").read_text())
        people = ", ".join(f"{p['mocap']} retarget {p['retarget_s']} s residual {p['retarget_residual_mm']} mm"
                           for p in meta["people"])
        print(f"{c}\n  {meta['frames']} frames; {people}; timing {meta['timing']}")
    print(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
