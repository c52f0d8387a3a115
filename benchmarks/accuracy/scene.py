"""The rendered scene's assets and the Blender call: textures made with numpy, clothing palettes, frames -> mp4.

Textures are generated, not photographs (nothing to license, nothing to download, and no people in them):
a floor of worn tiles (checker + multi-scale noise + grout lines) and a wrap-around wall of building
blocks with windows under a sky gradient. Each person wears a palette (shoes, trousers, shirt, skin) picked
by the clip's seed; a vertex takes the colour of its dominant bone's region.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np

from video2mesh.pipeline.errors import AssetMissing, StageFailed

log = logging.getLogger(__name__)

BLENDER_SCRIPT = Path(__file__).with_name("blender_scene.py")
BLENDER_MISSING = "Blender not found: apt-get install blender python3-numpy (Debian), or put blender on PATH"
FLOOR_TILES_M = 4.0        # one floor texture repeat (8 x 8 tiles of 0.5 m)
WALL_RADIUS_M = 25.0
WALL_HEIGHT_M = 12.0
REGIONS = ("shoes", "trousers", "shirt", "skin")
SHOES = [(30, 30, 35), (200, 200, 205), (80, 50, 30), (20, 40, 90)]
TROUSERS = [(35, 45, 80), (50, 50, 55), (120, 100, 70), (25, 25, 30), (70, 80, 60)]
SHIRTS = [(180, 40, 40), (40, 110, 170), (230, 200, 60), (240, 240, 240), (60, 140, 70), (150, 70, 150)]
SKINS = [(240, 200, 170), (200, 150, 110), (150, 100, 70), (95, 65, 45)]


def blender_path() -> str:
    """The Blender executable ($V2M_BLENDER or `blender` on PATH), else AssetMissing with how to get it."""
    exe = os.environ.get("V2M_BLENDER") or shutil.which("blender")
    if not exe or not Path(exe).exists():
        raise AssetMissing(BLENDER_MISSING)
    return exe


def _noise(rng: np.random.Generator, shape: tuple[int, int], scales=(4, 16, 64)) -> np.ndarray:
    """Multi-scale value noise in [-1, 1] (bilinear-upsampled random grids, seamless enough when tiled)."""
    out = np.zeros(shape)
    for s in scales:
        g = rng.standard_normal((max(shape[0] // s, 2), max(shape[1] // s, 2)))
        out += cv2.resize(g, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC) / len(scales)
    return np.clip(out, -1, 1)


def floor_texture(rng: np.random.Generator, n: int = 512, tiles: int = 8) -> np.ndarray:
    """(n, n, 3) uint8 RGB tiled floor."""
    yy, xx = np.indices((n, n))
    checker = ((yy // (n // tiles) + xx // (n // tiles)) % 2).astype(float)
    base = np.array(rng.choice([(150, 140, 125), (120, 125, 130), (160, 150, 140)]), float)
    img = base * (0.8 + 0.2 * checker[..., None]) * (1 + 0.12 * _noise(rng, (n, n))[..., None])
    grout = ((yy % (n // tiles)) < 3) | ((xx % (n // tiles)) < 3)
    img[grout] *= 0.6
    return np.clip(img, 0, 255).astype(np.uint8)


def wall_texture(rng: np.random.Generator, w: int = 2048, h: int = 512) -> np.ndarray:
    """(h, w, 3) uint8 RGB: sky gradient above a row of buildings with windows (wrapped around the wall)."""
    yy = np.linspace(0, 1, h)[:, None, None]
    img = (np.array([150, 185, 225]) * (1 - yy) + np.array([210, 220, 230]) * yy) * np.ones((h, w, 3))
    x = 0
    while x < w:
        bw = int(rng.integers(90, 260))
        top = int(rng.integers(h // 8, h // 2))
        colour = np.array(rng.choice([(170, 160, 150), (120, 110, 100), (190, 180, 160), (90, 95, 105), (150, 120, 100)]), float)
        block = colour * (1 + 0.08 * _noise(rng, (h - top, min(bw, w - x)))[..., None])
        wy, wx = np.indices(block.shape[:2])
        windows = ((wy % 40) > 14) & ((wy % 40) < 32) & ((wx % 30) > 8) & ((wx % 30) < 22) & (wy < h - top - 40)
        block[windows] = block[windows] * 0.35 + np.array([40, 50, 70])
        img[top:, x:x + block.shape[1]] = block
        x += bw
    img[-30:] *= 0.7                                              # a darker strip where wall meets floor
    return np.clip(img, 0, 255).astype(np.uint8)


def palette(rng: np.random.Generator) -> np.ndarray:
    """(4, 4, 3) uint8 RGB, one row per REGIONS entry, row 0 at the image's bottom (Blender's v = 0)."""
    rows = [SHOES[rng.integers(len(SHOES))], TROUSERS[rng.integers(len(TROUSERS))],
            SHIRTS[rng.integers(len(SHIRTS))], SKINS[rng.integers(len(SKINS))]]
    return np.repeat(np.array(rows[::-1], np.uint8)[:, None], 4, 1)


def region_uv(bone_names: list[str], dominant_bone: np.ndarray) -> np.ndarray:
    """(V, 2) per-vertex UV into a palette: the row of the vertex's dominant bone's clothing region."""
    def region(name: str) -> int:
        if name.startswith(("foot", "toe")):
            return 0
        if name.startswith(("upperleg", "lowerleg", "pelvis", "root")):
            return 1
        if name.startswith(("spine", "clavicle", "shoulder", "upperarm")):
            return 2
        return 3
    rows = np.array([region(n) for n in bone_names])[dominant_bone]
    return np.stack([np.full(len(rows), 0.5), (rows + 0.5) / len(REGIONS)], -1).astype(np.float32)


def write_png(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def render_frames(work: Path, verts: np.ndarray, faces: np.ndarray, uv: np.ndarray, k: np.ndarray,
                  r_wc: np.ndarray, t_wc: np.ndarray, size: tuple[int, int], seed: int, masks: bool = False,
                  progress=None) -> float:
    """Render verts (P, T, V, 3) world metres through the cameras into work/frame_%05d.png (and
    work/mask_%05d.png: white people on black, if `masks`). Returns the seconds Blender took."""
    exe = blender_path()
    rng = np.random.default_rng(seed)
    cfg = {"width": size[0], "height": size[1], "fx": float(k[0, 0]),
           "floor_png": str(write_png(work / "floor.png", floor_texture(rng))),
           "wall_png": str(write_png(work / "wall.png", wall_texture(rng))),
           "palettes": [str(write_png(work / f"palette{p}.png", palette(rng))) for p in range(len(verts))],
           "floor_tiles_m": FLOOR_TILES_M, "wall_radius_m": WALL_RADIUS_M, "wall_height_m": WALL_HEIGHT_M,
           "masks": masks}
    np.savez(work / "scene.npz", verts=verts.astype(np.float32), faces=faces.astype(np.int32), uv=uv,
             R_wc=r_wc.astype(np.float64), t_wc=t_wc.astype(np.float64), config=np.array(json.dumps(cfg)))
    start = time.perf_counter()
    cmd = [exe, "-b", "--factory-startup", "--python", str(BLENDER_SCRIPT), "--", str(work / "scene.npz"), str(work)]
    log_path = work / "blender.log"
    with open(log_path, "w") as logf:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            logf.write(line)
            if line.startswith("V2M_RENDERED") and progress:
                progress(line.split(" ", 1)[1].strip())
        rc = proc.wait()
    n = verts.shape[1]
    if rc != 0 or not (work / f"frame_{n - 1:05d}.png").exists():
        tail = [ln.strip() for ln in log_path.read_text().splitlines() if ln.strip()][-1:] or ["no output"]
        raise StageFailed(f"Blender failed rendering {work.name} (exit {rc}): {tail[0]}; full log in {log_path}")
    return time.perf_counter() - start


def encode_mp4(work: Path, out: Path, fps: float, size: tuple[int, int]) -> None:
    """work/frame_%05d.png -> out (H.264 with ffmpeg when present, else OpenCV's mp4v)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        cmd = [ffmpeg, "-y", "-loglevel", "error", "-framerate", f"{fps:g}", "-i", str(work / "frame_%05d.png"),
               "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", str(out)]
        if subprocess.run(cmd, capture_output=True).returncode == 0:
            return
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for f in sorted(work.glob("frame_*.png")):
        writer.write(cv2.imread(str(f)))
    writer.release()
