"""Mocap in, canonical joints out: any BVH's skeleton mapped by joint name, in metres, Y up, 30 fps.

The BVH is parsed by the project's one reader (models.training.datasets.read_bvh, checked against bvhio).
Joints are mapped by name onto CANONICAL (the joint centres Anny's skeleton also has): a name is split into
a side (Left*/Right*, *_L/*_R, L*/R* before a known body part, ...) and a body part, after stripping the
prefixes of common exporters (Mixamo `mixamorig:`, Bandai `joint_`, 3ds Max `Bip01 `). Each body part has
a preference list because conventions disagree: Mixamo's LeftShoulder is the clavicle (its shoulder joint
is LeftArm), CMU's LeftShoulder is the shoulder joint; CMU's LeftWrist is the wrist and lhand lies beyond it.
A joint that cannot be mapped is one line naming it (InputError).

Units come from the skeleton, not the header (BVH has no unit field): the candidate unit that makes the leg
(hip -> knee -> ankle) closest to an adult's LEG_M is taken. The up axis is the one the pelvis -> head
vector points along. The clip is then turned about the vertical so that the person faces +Z at frame 0,
with the hip centre above the origin, and resampled to `fps` by linear interpolation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video2mesh.models.training.datasets import CMU_UNIT_M, read_bvh
from video2mesh.pipeline.errors import InputError
from video2mesh.pipeline.hashing import sha256_file

CANONICAL = ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_toe", "right_toe",
             "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "neck", "head")
OPTIONAL = ("left_toe", "right_toe")
# Body part -> accepted names after side and exporter prefixes are removed, most specific first.
JOINT_BASES = {
    "hip": ("upleg", "upperleg", "thigh", "hip", "femur"),
    "knee": ("leg", "lowerleg", "knee", "shin", "calf", "tibia"),
    "ankle": ("foot", "ankle"),
    "toe": ("toebase", "toe", "toes", "ball", "toe0"),
    "shoulder": ("arm", "upperarm", "shoulder", "humerus"),
    "elbow": ("forearm", "lowerarm", "elbow"),
    "wrist": ("wrist", "hand"),
    "neck": ("neck", "neck1", "lowerneck", "upperneck"),
    "head": ("head",),
}
_PREFIXES = ("mixamorig:", "mixamorig_", "mixamorig1:", "joint_", "bip01 ", "bip001 ", "bip01_", "def-", "j_bip_c_")
UNITS_M = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "cmu": CMU_UNIT_M}
LEG_M = 0.85          # hip -> knee -> ankle of an adult, for unit detection


@dataclass(frozen=True)
class Mocap:
    """A clip's canonical joints: joints (T, C, 3) metres, world Y up, facing +Z at frame 0, hip centre at
    x = z = 0 at frame 0 (feet not yet on y = 0: the retarget puts the body's feet there)."""

    name: str
    sha256: str
    joints: np.ndarray
    fps: float
    source_fps: float
    unit: str
    up_axis: str
    leg_m: float


def split_name(name: str) -> tuple[str, str]:
    """('L' | 'R' | '', body part) of a BVH joint name, e.g. 'mixamorig:LeftUpLeg' -> ('L', 'upleg')."""
    n = name.strip().lower()
    for p in _PREFIXES:
        if n.startswith(p):
            n = n[len(p):]
    bases = {b for v in JOINT_BASES.values() for b in v}
    m = re.fullmatch(r"(left|right)[ _.\-]?(.+)", n) or re.fullmatch(r"(.+?)[ _.\-]?(left|right)", n)
    if m:
        side, rest = (m.group(1), m.group(2)) if m.group(1) in ("left", "right") else (m.group(2), m.group(1))
        return side[0].upper(), re.sub(r"[^a-z0-9]", "", rest)
    m = re.fullmatch(r"(.+?)[_.\- ]([lr])", n) or re.fullmatch(r"([lr])[_.\- ](.+)", n)
    if m:
        side, rest = (m.group(2), m.group(1)) if m.group(2) in ("l", "r") else (m.group(1), m.group(2))
        return side.upper(), re.sub(r"[^a-z0-9]", "", rest)
    flat = re.sub(r"[^a-z0-9]", "", n)
    if flat[:1] in ("l", "r") and flat[1:] in bases:   # CMU's lhand, 3ds Max's 'L Thigh'
        return flat[0].upper(), flat[1:]
    return "", flat


def map_joints(names: list[str] | tuple[str, ...], source: str = "BVH") -> dict[str, int]:
    """canonical name -> index into `names`; OPTIONAL joints may be missing. Raises InputError naming the
    first canonical joint that no name maps to."""
    parsed = [split_name(n) for n in names]
    out: dict[str, int] = {}
    for canon in CANONICAL:
        side = {"left": "L", "right": "R"}.get(canon.split("_")[0], "")
        part = canon.split("_")[-1]
        for base in JOINT_BASES[part]:
            hits = [i for i, (s, b) in enumerate(parsed) if s == side and b == base]
            if hits:
                out[canon] = hits[0]
                break
        else:
            if canon not in OPTIONAL:
                want = "/".join(JOINT_BASES[part])
                raise InputError(
                    f"{source}: cannot map the {canon} joint: no joint named like {side or ''}{want} among "
                    f"{', '.join(names)}; rename it or add its name to JOINT_BASES in benchmarks/accuracy/mocap.py")
    return out


def detect_unit(leg_file_units: float) -> str:
    """The unit in UNITS_M that makes a leg of `leg_file_units` closest (log ratio) to LEG_M."""
    return min(UNITS_M, key=lambda u: abs(np.log(max(leg_file_units, 1e-9) * UNITS_M[u] / LEG_M)))


def leg_length(joints: np.ndarray, idx: dict[str, int]) -> float:
    """Median over frames of the mean left/right hip -> knee -> ankle length, in the joints' units."""
    legs = [np.linalg.norm(joints[:, idx[f"{s}_hip"]] - joints[:, idx[f"{s}_knee"]], axis=-1)
            + np.linalg.norm(joints[:, idx[f"{s}_knee"]] - joints[:, idx[f"{s}_ankle"]], axis=-1) for s in ("left", "right")]
    return float(np.median(0.5 * (legs[0] + legs[1])))


def up_rotation(joints: np.ndarray, idx: dict[str, int]) -> tuple[np.ndarray, str]:
    """Rotation (3, 3) taking the skeleton's up axis (median pelvis -> head direction) onto +Y, and its name."""
    hips = 0.5 * (joints[:, idx["left_hip"]] + joints[:, idx["right_hip"]])
    up = np.median(joints[:, idx["head"]] - hips, axis=0)
    axis = int(np.argmax(np.abs(up)))
    sign = 1.0 if up[axis] > 0 else -1.0
    name = ("+" if sign > 0 else "-") + "XYZ"[axis]
    rots = {"+Y": np.eye(3), "-Y": np.diag([1.0, -1.0, -1.0]),
            "+Z": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]), "-Z": np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]),
            "+X": np.array([[0, -1.0, 0], [1, 0, 0], [0, 0, 1]]), "-X": np.array([[0, 1.0, 0], [-1, 0, 0], [0, 0, 1]])}
    return rots[name], name


def facing_rotation(joints0: np.ndarray, idx: dict[str, int]) -> np.ndarray:
    """Rotation (3, 3) about +Y turning the person's facing at one frame (Y up) towards +Z. The facing is
    left-to-right hips and shoulders crossed with up: for a person facing +Z, left is +X."""
    left = (joints0[idx["left_hip"]] - joints0[idx["right_hip"]]) + (joints0[idx["left_shoulder"]] - joints0[idx["right_shoulder"]])
    fwd = np.cross(left, [0.0, 1.0, 0.0])
    yaw = np.arctan2(fwd[0], fwd[2])          # angle of fwd from +Z towards +X
    c, s = np.cos(-yaw), np.sin(-yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def resample(x: np.ndarray, src_fps: float, fps: float, frames: int | None) -> np.ndarray:
    """(T, ...) sampled at src_fps -> (T', ...) at fps by linear interpolation, at most `frames` frames."""
    t_src = np.arange(len(x)) / src_fps
    n = int(np.floor(t_src[-1] * fps + 1e-3)) + 1      # BVH frame times are rounded (0.0333333)
    n = n if frames is None else min(n, frames)
    t = np.arange(n) / fps
    i0 = np.clip(np.floor(t * src_fps + 1e-9).astype(int), 0, len(x) - 1)
    i1 = np.minimum(i0 + 1, len(x) - 1)
    w = (t * src_fps - i0).reshape(-1, *([1] * (x.ndim - 1)))
    return (1 - w) * x[i0] + w * x[i1]


def load_mocap(path: str | Path, fps: float = 30.0, frames: int | None = None) -> Mocap:
    """Read a BVH and return its canonical joints (see Mocap), resampled to `fps`, at most `frames` long."""
    path = Path(path)
    try:
        bvh = read_bvh(path)
    except (OSError, ValueError, IndexError) as e:
        raise InputError(f"{path}: not a readable BVH file ({e})") from None
    idx = map_joints(bvh.names, path.name)
    order = list(idx)
    pos = bvh.positions[:, [idx[c] for c in order]]                       # (F, C', 3) file units
    cidx = {c: i for i, c in enumerate(order)}
    leg = leg_length(pos, cidx)
    unit = detect_unit(leg)
    pos = pos * UNITS_M[unit]
    rot_up, up_name = up_rotation(pos, cidx)
    pos = pos @ rot_up.T
    pos = pos @ facing_rotation(pos[0], cidx).T
    hip0 = 0.5 * (pos[0, cidx["left_hip"]] + pos[0, cidx["right_hip"]])
    pos = pos - np.array([hip0[0], 0.0, hip0[2]])
    src_fps = 1.0 / bvh.frame_time_s
    pos = resample(pos, src_fps, fps, frames)
    full = np.full((len(pos), len(CANONICAL), 3), np.nan)
    for c, i in cidx.items():
        full[:, CANONICAL.index(c)] = pos[:, i]
    return Mocap(name=path.stem, sha256=sha256_file(path), joints=full, fps=fps, source_fps=round(src_fps, 3), unit=unit,
                 up_axis=up_name, leg_m=leg * UNITS_M[unit])
