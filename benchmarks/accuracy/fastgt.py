"""Ground truth without rendering, for the fast mode: the rendered set's clips minus the video.

`build_fast_set` mirrors render.build_set (same clip naming, cameras, phenotypes, retarget, gt.npz) but
writes no video and needs no Blender: `<root>/fast-<set key>/<clip>/gt.npz`. `procedural_gt` makes a
small clip from a synthetic walking skeleton (tests; no mocap file needed).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np

from .cameras import CameraSpec, camera_path
from .groundtruth import ground_truth, write_gt
from .mocap import load_mocap
from .render import DEFAULT_CAMERAS, DEFAULT_PHENOTYPES, Phenotype, arrange, set_key
from .retarget import RetargetConfig, retarget

log = logging.getLogger(__name__)


def build_fast_set(mocap_files: Sequence[Path], root: Path, *, frames: int | None = 300,
                   cameras: Sequence[CameraSpec] = DEFAULT_CAMERAS, phenotypes: Sequence[Phenotype] = DEFAULT_PHENOTYPES,
                   size: tuple[int, int] = (640, 360), fps: float = 30.0, verts_stride: int = 10,
                   retarget_cfg: RetargetConfig = RetargetConfig(), body=None) -> list[Path]:
    """GT clip folders (gt.npz only) of `mocap_files`, one person each; cached by content like build_set."""
    mocap_files = [Path(p) for p in mocap_files]
    settings = {"fast": True, "frames": frames, "cameras": [asdict(c) for c in cameras],
                "phenotypes": [asdict(p) for p in phenotypes], "size": list(size), "fps": fps,
                "verts_stride": verts_stride, "retarget": asdict(retarget_cfg)}
    set_dir = Path(root) / f"fast-{set_key(mocap_files, settings)}"
    clips = []
    for i, f in enumerate(mocap_files):
        cam, phen = cameras[i % len(cameras)], phenotypes[i % len(phenotypes)]
        clip_dir = set_dir / f"{i:02d}_{f.stem}_{cam.name}_{phen.name}"
        if not (clip_dir / "gt.npz").exists():
            if body is None:
                from video2mesh.stages.licence_free import load_body

                body = load_body(None)
            mocap = load_mocap(f, fps=fps, frames=frames)
            r = retarget(body, mocap, phen.values(), retarget_cfg)
            (v, j, c), = arrange([r], len(mocap.joints))
            meta = {"mocap": f.name, "sha256": mocap.sha256, "camera": asdict(cam) | {"name": cam.name},
                    "phenotype": asdict(phen), "fast": True, "retarget_s": round(r.seconds, 2)}
            write_clip(clip_dir, j[None], v[None], cam, 0.5 * (c[:, 0] + c[:, 1])[None], size, fps, meta, verts_stride, seed=i)
        clips.append(clip_dir)
    return clips


def write_clip(clip_dir: Path, joints: np.ndarray, verts: np.ndarray, cam: CameraSpec, pelvis: np.ndarray,
               size: tuple[int, int], fps: float, meta: dict, verts_stride: int = 10, seed: int = 0) -> Path:
    """gt.npz of people joints (P, T, 23, 3), vertices (P, T, V, 3) filmed by `cam`; atomically written."""
    k, r_wc, t_wc = camera_path(cam, pelvis, size, clip_seed=seed)
    clip_dir.mkdir(parents=True, exist_ok=True)
    tmp = clip_dir / ".gt.tmp.npz"
    write_gt(tmp, ground_truth(joints, verts, k, r_wc, t_wc, size, fps, meta, verts_stride))
    tmp.replace(clip_dir / "gt.npz")
    (clip_dir / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    return clip_dir / "gt.npz"


def procedural_gt(clip_dir: Path, frames: int = 40, fps: float = 30.0, speed_ms: float = 1.2,
                  cam: CameraSpec = DEFAULT_CAMERAS[0], body=None) -> Path:
    """A clip of the average Anny body moving forward (+Z, its facing) at `speed_ms` with its legs and arms
    swinging at 1 Hz, as gt.npz; posed through the retarget's own skinning path (retarget._vertices)."""
    import torch

    from video2mesh.models.body.anny_body import FIT_BONES, PHENOTYPES
    from video2mesh.models.body.anny_keypoints import keypoints23
    from video2mesh.models.body.anny_body import MODEL_TO_YUP

    from .retarget import _vertices

    if body is None:
        from video2mesh.stages.licence_free import load_body

        body = load_body(None)
    names = list(FIT_BONES)
    t = np.arange(frames) / fps
    theta = np.zeros((frames, len(names), 3))
    swing = 0.4 * np.sin(2 * np.pi * t)
    for name, sign in (("upperleg01.L", 1.0), ("upperleg01.R", -1.0), ("upperarm01.L", -0.5), ("upperarm01.R", 0.5)):
        theta[:, names.index(name), 0] = sign * swing
    phen = torch.full((1, len(PHENOTYPES)), 0.5, dtype=body.dtype)
    with torch.no_grad():
        sk = body.skeleton(phen)
    glob = torch.as_tensor(np.repeat(MODEL_TO_YUP[None], frames, 0), dtype=body.dtype)
    verts = _vertices(body, sk, body.bone_index(names), phen, torch.as_tensor(theta, dtype=body.dtype), glob).astype(np.float64)
    verts[..., 2] += speed_ms * t[:, None]
    verts[..., 1] -= verts[0, :, 1].min()
    joints = keypoints23(body, verts)
    pelvis = joints[:, [11, 12]].mean(1)
    return write_clip(Path(clip_dir), joints[None].astype(np.float32), verts[None].astype(np.float32), cam, pelvis[None],
                      (640, 360), fps, {"procedural": True, "speed_ms": speed_ms}, verts_stride=10)
