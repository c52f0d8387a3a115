"""Training data readers: VIBE's preprocessed databases, 3D pose sources for the embedder (CMU BVH).

VIBE database files (joblib dicts, one row per frame; METHOD.md section 6) are the interchange format
for 3DPW, Human3.6M, MPI-INF-3DHP, InstaVariety, PennAction and PoseTrack:
  vid_name (N,), frame_id (N,), joints2D (N, 49, 3) image px + confidence, joints3D (N, 49, 3) metres,
  pose (N, 72), shape (N, 10), bbox (N, 4) [cx, cy, w, h] of the crop, features (N, 2048), valid (N,).
Keys a dataset lacks (2D-only sets have no pose/shape/joints3D) are absent; this reader fills zeros and
marks them with has_3d / has_smpl = 0. The 49 joints are SPIN's: 25 OpenPose BODY_25 points, then 24
"ground-truth" points whose [0:14] are the 14 common evaluation joints.

Readers take a path and return arrays; nothing else in models/ touches files (ARCHITECTURE.md).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from video2mesh.models.maths.geometry import homography_stacks

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("vid_name", "frame_id", "joints2D", "bbox", "features")
# COCO-17 from SPIN's 49 joints: the ground-truth block (25 + i) and the OpenPose block as fallback.
COCO17_FROM_J49_GT = np.array([44, 45, 46, 47, 48, 34, 33, 35, 32, 36, 31, 28, 27, 29, 26, 30, 25])
COCO17_FROM_J49_OP = np.array([0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11])
J14_FROM_J49 = np.arange(25, 39)
COCO13_FROM_COCO17 = np.array([0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16])


def load_vibe_db(path: str | Path) -> dict[str, np.ndarray]:
    """Read one VIBE database file (`<dataset>_<split>_db.pt`, a joblib dict) into numpy arrays."""
    import joblib  # only readers need it

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"VIBE database not found: {path} (VIBE's preprocessing writes <set>_<split>_db.pt)")
    db = joblib.load(path)
    missing = [k for k in REQUIRED_KEYS if k not in db]
    if missing:
        raise ValueError(f"{path}: not a VIBE database, missing keys {missing}; expected at least {REQUIRED_KEYS}")
    return {k: np.asarray(v) for k, v in db.items()}


def coco17_from_joints49(j49: np.ndarray) -> np.ndarray:
    """(N, 49, 3) SPIN joints -> (N, 17, 3) COCO-17: the ground-truth point where its confidence > 0,
    else the OpenPose point."""
    gt, op = j49[:, COCO17_FROM_J49_GT], j49[:, COCO17_FROM_J49_OP]
    return np.where(gt[..., 2:] > 0, gt, op)


def split_into_windows(vid_name: np.ndarray, seqlen: int = 16, stride: int = 16) -> np.ndarray:
    """[start, end] (inclusive) row indices of windows that stay inside one video: (N,) -> (W, 2).

    Rows of one video must be contiguous (they are in VIBE's files). Tails shorter than `seqlen`
    are dropped, as VIBE does; stride 16 = VIBE evaluation windows, stride 1 = TCMR's.
    """
    vid_name = np.asarray(vid_name)
    change = np.flatnonzero(vid_name[1:] != vid_name[:-1]) + 1
    starts, ends = np.r_[0, change], np.r_[change, len(vid_name)]
    if len(np.unique(vid_name)) != len(starts):
        raise ValueError("rows of one video are not contiguous in vid_name; sort the database by video first")
    out = [(s, s + seqlen - 1) for a, e in zip(starts, ends) for s in range(a, e - seqlen + 1, stride)]
    return np.array(out, dtype=np.int64).reshape(-1, 2)


@dataclass(frozen=True)
class WindowSpec:
    seqlen: int = 16
    stride: int = 16
    crop_scale: float = 1.0       # VIBE's db bbox is already the crop box: keypoints map to [-1, 1] by it


class VibeWindows(torch.utils.data.Dataset):
    """Fixed-length windows of one VIBE-layout database, as tensors ready for the model and losses.

    Each item: features (T, 2048), kp2d (T, 17, 3) COCO-17 in [-1, 1] crop coordinates + confidence,
    homography (T, 135) (identity stacks when the db has no 'homography' key: VIBE's files carry none),
    j14 (T, 14, 3) metres, pose (T, 72), betas (T, 10), has_3d (T,), has_smpl (T,), valid (T,).
    """

    def __init__(self, db: dict[str, np.ndarray], spec: WindowSpec = WindowSpec()) -> None:
        self.db, self.spec = db, spec
        self.windows = split_into_windows(db["vid_name"], spec.seqlen, spec.stride)
        n = len(db["vid_name"])
        kp = coco17_from_joints49(db["joints2D"].astype(np.float32))
        bbox = db["bbox"].astype(np.float32)
        half = 0.5 * spec.crop_scale * bbox[:, 2:3]
        kp[..., :2] = (kp[..., :2] - bbox[:, None, :2]) / half[:, None]
        self.kp2d = kp
        self.has_3d = np.full(n, "joints3D" in db, np.float32)
        self.has_smpl = np.full(n, "pose" in db and "shape" in db, np.float32)
        if "pose" in db and "shape" in db:
            # A row of zeros marks "no SMPL fit" in some of VIBE's sets (e.g. MPI-INF-3DHP's test split).
            self.has_smpl *= np.abs(db["pose"]).sum(1) > 0
        self.j14 = db["joints3D"][:, J14_FROM_J49].astype(np.float32) if "joints3D" in db else np.zeros((n, 14, 3), np.float32)
        self.pose = db.get("pose", np.zeros((n, 72))).astype(np.float32)
        self.betas = db.get("shape", np.zeros((n, 10))).astype(np.float32)
        self.valid = db.get("valid", np.ones(n)).astype(np.float32).reshape(n)
        h = db.get("homography")
        self.homography = None if h is None else np.asarray(h, np.float32).reshape(n, 9)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s, e = self.windows[i]
        sl = slice(s, e + 1)
        t = e + 1 - s
        if self.homography is None:
            hom = np.tile(np.eye(3, dtype=np.float32).reshape(1, 9), (t, 15))
        else:
            hom = homography_stacks(self.homography[sl])
        item = {"features": self.db["features"][sl].astype(np.float32), "kp2d": self.kp2d[sl], "homography": hom,
                "j14": self.j14[sl], "pose": self.pose[sl], "betas": self.betas[sl], "has_3d": self.has_3d[sl],
                "has_smpl": self.has_smpl[sl], "valid": self.valid[sl], "frame": np.arange(s, e + 1)}
        return {k: torch.as_tensor(v) for k, v in item.items()}


# ----------------------------------------------------------------------------- BVH (CMU mocap)

CMU_UNIT_M = 0.056444  # CMU's ASF/BVH length unit: (1 / 0.45) inch in metres

# COCO-13 from CMU BVH joint names (nose: midway up the head bone, see `bvh_to_coco13`).
_CMU_COCO13 = ("Head", "LeftShoulder", "RightShoulder", "LeftElbow", "RightElbow", "LeftWrist", "RightWrist",
               "LeftHip", "RightHip", "LeftKnee", "RightKnee", "LeftAnkle", "RightAnkle")


@dataclass(frozen=True)
class Bvh:
    """A parsed BVH: joint names (J,), parents (J,) (-1 root), positions (F, J, 3) in file units, y up."""

    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    positions: np.ndarray
    end_sites: dict[str, np.ndarray]
    frame_time_s: float


def read_bvh(path: str | Path) -> Bvh:
    """Parse a BVH file and run forward kinematics (Euler channels in the order the file lists them; position
    channels, on the root or any joint, replace that joint's OFFSET)."""
    path = Path(path)
    tokens = re.split(r"\s+", path.read_text().strip())
    names, parents, offsets, channels, end_sites = [], [], [], [], {}
    stack, i, in_end = [], 0, False
    while tokens[i] != "MOTION":
        tok = tokens[i]
        if tok in ("ROOT", "JOINT"):
            names.append(tokens[i + 1])
            parents.append(stack[-1] if stack else -1)
            i += 2
        elif tok == "End":
            in_end, i = True, i + 2
        elif tok == "{":
            if not in_end:
                stack.append(len(names) - 1)
            i += 1
        elif tok == "}":
            if in_end:
                in_end = False
            else:
                stack.pop()
            i += 1
        elif tok == "OFFSET":
            off = np.array(tokens[i + 1:i + 4], float)
            if in_end:
                end_sites[names[stack[-1]]] = off
            else:
                offsets.append(off)
            i += 4
        elif tok == "CHANNELS":
            n = int(tokens[i + 1])
            channels.append(tokens[i + 2:i + 2 + n])
            i += 2 + n
        else:
            i += 1
    n_frames = int(tokens[i + 2])
    frame_time = float(tokens[i + 5])
    n_ch = sum(len(c) for c in channels)
    values = tokens[i + 6:]
    if len(values) != n_frames * n_ch:
        raise ValueError(f"{path}: header says {n_frames} frames x {n_ch} channels, found {len(values)} values")
    data = np.array(values, float).reshape(n_frames, n_ch)
    parents_a, offsets_a = np.array(parents), np.array(offsets)
    pos = np.zeros((n_frames, len(names), 3))
    rot = np.zeros((n_frames, len(names), 3, 3))
    col = 0
    for j, ch in enumerate(channels):
        vals = data[:, col:col + len(ch)]
        col += len(ch)
        rot_names = [c for c in ch if c.endswith("rotation")]
        rcols = [ch.index(c) for c in rot_names]
        local = Rotation.from_euler("".join(c[0].upper() for c in rot_names), vals[:, rcols], degrees=True).as_matrix()
        trans = np.stack([vals[:, ch.index(a)] if a in ch else np.zeros(n_frames)
                          for a in ("Xposition", "Yposition", "Zposition")], -1)
        # A joint with position channels takes them as its translation in place of its OFFSET (as bvhio
        # does): Bandai's Hips carries the walk that way below a static joint_Root.
        has_pos = any(c.endswith("position") for c in ch)
        local_t = trans if has_pos else np.broadcast_to(offsets_a[j], trans.shape)
        p = parents_a[j]
        if p < 0:
            rot[:, j], pos[:, j] = local, local_t
        else:
            rot[:, j] = rot[:, p] @ local
            pos[:, j] = pos[:, p] + np.einsum("fij,fj->fi", rot[:, p], local_t)
    ends = {k: np.einsum("fij,j->fi", rot[:, names.index(k)], v) + pos[:, names.index(k)] for k, v in end_sites.items()}
    return Bvh(tuple(names), parents_a, offsets_a, pos, ends, frame_time)


def bvh_to_coco13(bvh: Bvh, unit_m: float = 1.0) -> np.ndarray:
    """CMU skeleton -> (F, 13, 3) COCO-13 joints in metres, y up. The nose has no CMU joint: it is
    taken halfway between the head joint and the head's end site (a head-centre proxy)."""
    idx = [bvh.names.index(n) for n in _CMU_COCO13]
    out = bvh.positions[:, idx].copy()
    out[:, 0] = 0.5 * (out[:, 0] + bvh.end_sites["Head"])
    return out * unit_m


# ----------------------------------------------------------------------------- random cameras


def random_camera_rotations(n: int, rng: np.random.Generator, azimuth_deg: float = 180.0,
                            elevation_deg: float = 30.0, roll_deg: float = 30.0) -> np.ndarray:
    """(n, 3, 3) rotations R = R_roll(z) R_elev(x) R_azim(y), angles uniform in +- the given ranges."""
    az = rng.uniform(-azimuth_deg, azimuth_deg, n)
    el = rng.uniform(-elevation_deg, elevation_deg, n)
    ro = rng.uniform(-roll_deg, roll_deg, n)
    return Rotation.from_euler("ZXY", np.stack([ro, el, az], -1), degrees=True).as_matrix()


def project_random_views(pose3d: np.ndarray, rng: np.random.Generator, n_views: int = 2,
                         depth_m: tuple[float, float] = (3.0, 8.0)) -> np.ndarray:
    """Perspective views of y-up 3D poses from random cameras: (N, J, 3) -> (n_views, N, J, 2), y down.

    Each pose is centred on its hip midpoint (COCO-13 hips 7, 8), rotated by a random camera,
    pushed to a random depth and divided by depth (unit focal length: the embedder normalises scale).
    """
    hip = 0.5 * (pose3d[:, 7:8] + pose3d[:, 8:9])
    centred = pose3d - hip
    out = []
    for _ in range(n_views):
        r = random_camera_rotations(len(pose3d), rng)
        cam = np.einsum("nij,nkj->nki", r, centred)
        z = cam[..., 2:] + rng.uniform(*depth_m, (len(pose3d), 1, 1))
        out.append(np.concatenate([cam[..., :1], -cam[..., 1:2]], -1) / z)
    return np.stack(out).astype(np.float32)
