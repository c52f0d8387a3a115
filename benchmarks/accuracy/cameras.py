"""Known cameras for the ground-truth clips: intrinsics K and per-frame world -> camera extrinsics.

Conventions (GT_FORMAT.md): world Y up, floor y = 0, metres; camera axes OpenCV (x right, y down, z forward),
x_cam = R_wc @ x_world + t_wc; pixel centres at integer coordinates, so the optical axis (which Blender puts
at the image's geometric centre) is at ((W - 1) / 2, (H - 1) / 2).

Kinds (CameraSpec.kind), all placed from the people's pelvis paths (T, 3):
- static: fixed; far enough (up to twice `distance_m`) to keep most of the path in view;
- pan: fixed position, rotation only, aiming at the smoothed pelvis path (a tripod operator following);
- handheld: the static camera plus small smooth random rotation and translation (seeded);
- dolly: translates with the smoothed pelvis path at a fixed offset, fixed orientation (a tracking shot).
The camera looks at the path from the side the person faces at frame 0, `azimuth_deg` off the
perpendicular to the path's main direction (off the facing direction when the person stays in place).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

KINDS = ("static", "pan", "handheld", "dolly")
FOLLOW_SIGMA_FRAMES = 6.0       # smoothing of the path that pan and dolly follow
SHAKE_SIGMA_FRAMES = 5.0        # handheld shake: white noise low-passed to a few Hz at 30 fps
SHAKE_DEG = (0.8, 0.8, 0.4)     # std of the shake's yaw, pitch, roll
SHAKE_M = 0.015                 # std of the shake's translation per axis
MIN_PATH_M = 1.0                # a path shorter than this counts as standing in place


@dataclass(frozen=True)
class CameraSpec:
    """One camera set-up. Distances and heights in metres, angles in degrees (fov: horizontal)."""

    kind: str = "static"
    height_m: float = 1.5
    distance_m: float = 5.0
    azimuth_deg: float = 30.0
    fov_deg: float = 60.0
    aim_height_m: float = 0.9
    seed: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"camera kind {self.kind!r} is not one of {KINDS}")

    @property
    def name(self) -> str:
        return f"{self.kind}-h{self.height_m:g}-d{self.distance_m:g}"


def intrinsics(size: tuple[int, int], fov_deg: float) -> np.ndarray:
    """(3, 3) K for image size (W, H), horizontal field of view fov_deg, square pixels."""
    w, h = size
    f = 0.5 * w / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]])


def look_at(centre: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World -> camera (R (..., 3, 3), t (..., 3)) of cameras at `centre` (..., 3) looking at `target`, no roll."""
    fwd = target - centre
    fwd = fwd / np.linalg.norm(fwd, axis=-1, keepdims=True)
    right = np.cross(fwd, [0.0, 1.0, 0.0])
    right = right / np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(fwd, right)
    r = np.stack([right, down, fwd], -2)
    return r, -np.einsum("...ij,...j->...i", r, centre)


def project(points: np.ndarray, k: np.ndarray, r_wc: np.ndarray, t_wc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points (P, T, N, 3) -> camera points (P, T, N, 3) and pixels (P, T, N, 2) through per-frame
    extrinsics r_wc (T, 3, 3), t_wc (T, 3)."""
    cam = np.einsum("tij,ptnj->ptni", r_wc, points) + t_wc[None, :, None]
    z = cam[..., 2:3]
    uv = (cam[..., :2] / np.where(np.abs(z) < 1e-9, 1e-9, z)) * [k[0, 0], k[1, 1]] + [k[0, 2], k[1, 2]]
    return cam, uv


def _view_direction(pelvis: np.ndarray, azimuth_deg: float) -> tuple[np.ndarray, float]:
    """Unit horizontal direction from the path towards the camera, and the path's extent along the
    image's horizontal (metres)."""
    xz = pelvis[:, [0, 2]]
    centred = xz - xz.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    if np.ptp(centred @ vt[0]) < MIN_PATH_M:
        base = np.array([0.0, 1.0])                  # stays in place: face-on (+Z is where the person faces)
    else:
        base = np.array([-vt[0, 1], vt[0, 0]])       # perpendicular to the main direction ...
        if base[1] < 0:                               # ... on the side the person faces at frame 0 (+Z)
            base = -base
    a = np.radians(azimuth_deg)
    d = np.array([np.cos(a) * base[0] + np.sin(a) * base[1], -np.sin(a) * base[0] + np.cos(a) * base[1]])
    across = np.array([d[1], -d[0]])
    return np.array([d[0], 0.0, d[1]]), float(np.ptp(centred @ across))


def camera_path(spec: CameraSpec, pelvis: np.ndarray, size: tuple[int, int], clip_seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K (3, 3), R_wc (T, 3, 3), t_wc (T, 3) for pelvis paths (P, T, 3) (world, metres) of the people in view."""
    k = intrinsics(size, spec.fov_deg)
    path = pelvis.mean(0)                                           # (T, 3) the group's centre
    t_frames = len(path)
    smooth = gaussian_filter1d(path, FOLLOW_SIGMA_FRAMES, axis=0, mode="nearest")
    direction, extent = _view_direction(path, spec.azimuth_deg)
    aim = np.array([1.0, 0.0, 1.0]) * smooth + [0.0, spec.aim_height_m, 0.0]    # (T, 3)
    centre_xz = 0.5 * (path.min(0) + path.max(0)) * [1.0, 0.0, 1.0]
    up = np.array([0.0, spec.height_m, 0.0])
    if spec.kind == "dolly":
        cam = smooth * [1.0, 0.0, 1.0] + spec.distance_m * direction + up
        r, _ = look_at(cam[0], aim[0])
        r = np.repeat(r[None], t_frames, 0)
        return k, r, -np.einsum("tij,tj->ti", r, cam)
    if spec.kind == "pan":
        cam = np.repeat((centre_xz + spec.distance_m * direction + up)[None], t_frames, 0)
        r, t = look_at(cam, aim)
        return k, r, t
    # static / handheld: fit the path's extent in ~80% of the width, at most twice the nominal distance
    need = 0.5 * extent / np.tan(0.4 * np.radians(spec.fov_deg)) + 1.0
    dist = float(np.clip(need, spec.distance_m, 2 * spec.distance_m))
    cam = centre_xz + dist * direction + up
    target = centre_xz + [0.0, spec.aim_height_m, 0.0]
    r, _ = look_at(cam, target)
    r = np.repeat(r[None], t_frames, 0)
    cams = np.repeat(cam[None], t_frames, 0)
    if spec.kind == "handheld":
        rng = np.random.default_rng([spec.seed, clip_seed])
        shake = _smooth_noise(rng, t_frames, 3) * SHAKE_DEG
        jitter = _smooth_noise(rng, t_frames, 3) * SHAKE_M
        r = Rotation.from_euler("yxz", shake, degrees=True).as_matrix() @ r   # small rotation in camera axes
        cams = cams + jitter
    return k, r, -np.einsum("tij,tj->ti", r, cams)


def _smooth_noise(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    """(n, dims) smooth zero-mean noise with unit standard deviation per dimension."""
    x = gaussian_filter1d(rng.standard_normal((n + 60, dims)), SHAKE_SIGMA_FRAMES, axis=0)[30:30 + n]
    return (x - x.mean(0)) / np.maximum(x.std(0), 1e-9)
