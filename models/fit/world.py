"""World frame of a fitted track: camera rotation, foot contacts, body odometry, floor and planting.

Inputs are one track's camera-space fit (OpenCV camera axes: x right, y down, z forward; metres):
root position p_t, rest-model -> camera rotation O_t, six foot points (left big toe, small toe, heel,
right ...), and the camera's rotation C_t (first camera's axes -> camera t's, from background
homographies). Everything is first expressed in the "reference" axes of the first camera, where a
tripod camera's body motion is C_t^T p_t; the root's reference position T_t is then solved as a
weighted least-squares problem over the whole track:

- odometry: while foot f is in contact at t-1 and t, T_t - T_{t-1} = -(m_f(t) - m_f(t-1)), m_f the
  foot's midpoint relative to the root in reference axes (a planted foot does not move);
- camera evidence: T_t = C_t^T p_t, weighted by how static the camera is (a turning camera may also
  be travelling; a still one is not), so under a still camera the result follows the camera-space one;
- dynamics: T_{t+1} - 2 T_t + T_{t-1} = a_t dt^2, a_t = gravity in flight frames (no contact), else 0.

Contacts use the lower foot (relative height), the foot's world speed under the current trajectory and
(after the first pass) its height above the floor, with hysteresis. The floor is a plane fitted to the
lowest foot points of contact frames (with the body's mean vertical as a prior normal); gravity is its
normal. Planting moves the root so that each contact foot stays where it was planted and touches the
floor; a contact foot is also locked to one rotation (foot_lock), the leg IK doing the rest. The
camera rotations may be re-read as the floor's homographies once the floor is known (camera_rotations'
floor_ref): a travelling camera's parallax is then not mistaken for a turn; with camera_travel (off by
default) the same homographies give such a camera's metric translation at its height above the floor, and
the camera-space root plus the camera's centre becomes world evidence again where the background shows
parallax. On tracks over 30 s the chained rotations' slow tilt drift is pulled onto the body's vertical
first (level_drift: the stage calls it on C_t before the solve). The world frame: Y up along the floor
normal, floor y = 0, the root at frame 0 above the origin, the body at frame 0 facing +Z, metres. Per frame x_world = A_t x_cam + b_t (A_t rotation).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.ndimage import gaussian_filter1d, grey_opening, median_filter
from scipy.sparse.linalg import spsolve
from scipy.spatial.transform import Rotation

from video2mesh.models.maths.camera_motion import (chain_plane_centres, chain_plane_rotations, chain_rotations,
                                                   fill_rotations, rotation_from_homography)

GRAVITY = 9.81
MODEL_UP = np.array([0.0, 0.0, 1.0])          # Anny's rest model: z up, facing -y
MODEL_FORWARD = np.array([0.0, -1.0, 0.0])


@dataclass(frozen=True)
class WorldConfig:
    """Thresholds and weights of the world solve; odd defaults carry their reason."""

    contact_on_m: float = 0.05        # a foot within this of the lower foot (and of the floor) may be planted
    contact_off_m: float = 0.09       # ... and stays planted until it rises above this (hysteresis)
    air_on_m: float = 0.12            # a foot this high above the fitted floor is not planted (flight) ...
    air_off_m: float = 0.18           # ... and leaves contact above this
    speed_on_mps: float = 0.6         # a planted foot's world speed (walking body speed is ~1.4 m/s)
    speed_off_mps: float = 1.0
    sigma_odo_m: float = 0.02         # per-frame noise of a foot's position relative to the root (fit jitter)
    sigma_cam_m: float = 0.10         # per-frame noise of the camera-space root (depth jitter)
    accel_mps2: float = 2.5           # typical root acceleration while walking/running (smoothness scale)
    static_deg_s: float = 3.0         # camera turning slower than this counts as still (weight e^-(w/w0)^2)
    max_rotation_err: float = 0.05    # K^-1 H K further than this from a rotation: not a pure turn, dropped
    still_rotation_err: float = 0.005 # ... and this far (a dolly's floor at 1 m/s, 30 fps: ~0.01) is not still
    floor_prior_m: float = 0.05       # strength of the body-vertical prior on the floor normal
    iterations: int = 2               # contact -> trajectory -> floor rounds
    max_flight_s: float = 0.4         # longest gap between contacts treated as ballistic flight
    plant: bool = True
    plant_smooth_frames: float = 2.0  # Gaussian sigma of the root's planting correction (frames)
    floor_homography: bool = True     # 2nd pass: read H as the floor's (camera_rotations), normal from the 1st
    leg_ik: bool = True               # the legs take what the root cannot (double support): models.fit.leg_ik
    foot_lock: bool = True            # a contact foot keeps one world rotation (its segment's mean) with the IK:
    #                                   the fit's foot jitter (1 deg ~ 3.5 mm at the toes) would slide its points
    lock_fade_frames: int = 3         # frames over which the lock blends in before and out after a contact
    lock_max_deg: float = 45.0        # a contact foot yawing further than this from its mean is pivoting: not locked
    #                                   (a pivot turn is 45-90 deg; the fit's own foot yaw noise passed 20 on straight walks)
    camera_travel: bool = False       # 3rd pass: a travelling camera's metric translation from the floor homographies
    #                                   (camera_travel) makes the camera-space root world evidence again
    parallax_err: float = 0.004       # K^-1 H K further than this from a rotation (median over 1/2 s) is a travelling
    #                                   camera: weight 0 up to it, 1 from twice it (the flow noise of a still, panning or
    #                                   handheld camera: <= 0.003; a camera travelling 1 m/s at 2.5 m: ~0.009)
    travel_odometry_scale: bool = False  # scale the camera's path to the body odometry's length (the camera's is
    #                                   the fit's depth scale, i.e. the focal length guess's)
    level_sigma_s: float = 15.0       # the chained camera rotations' tilt drift (~2 deg a minute handheld) is pulled onto
    #                                   the body's vertical averaged over this Gaussian sigma (level_drift); tracks
    #                                   shorter than 2 sigma are left as they are; 0 = off
    reference_fps: float = 30.0       # the rate the frame counts above were chosen at: a faster video measures a
    #                                   foot's speed over as long (round(fps / ref) frames), median-filters it, fades
    #                                   locks and smooths the planting over as many seconds (rate_frames); 0 = per frame


@dataclass(frozen=True)
class WorldTrack:
    """One track in the world frame. x_world = A[t] @ x_cam + b[t] (Y-up world, camera axes OpenCV)."""

    A: np.ndarray          # (T, 3, 3) rotations, camera -> world
    b: np.ndarray          # (T, 3) metres
    contact: np.ndarray    # (T, 2) bool, left / right foot planted
    up_ref: np.ndarray     # (3,) gravity-up in the first camera's axes
    static: np.ndarray     # (T,) camera stillness weight in [0, 1]
    foot_shift: np.ndarray  # (T, 2, 3) camera axes: how far each foot must still move (leg IK), metres
    foot_turn: np.ndarray | None = None   # (T, 2, 3, 3) camera axes: rotation applied to each foot about its ankle
    root_ref: np.ndarray | None = None    # (T, 3) the root in the first camera's axes (the solve's T), metres


def camera_rotations(h: np.ndarray, valid: np.ndarray, k: np.ndarray, fps: float,
                     cfg: WorldConfig = WorldConfig(), floor_ref: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Chained camera rotations C (T, 3, 3) and stillness (T,) of per-frame homographies h (T, 3, 3).

    Without floor_ref each H is read as a pure rotation (the nearest one); with the floor's normal
    floor_ref (3,) in the first camera's axes, as the floor's homography of a camera that may also
    travel (chain_plane_rotations): a dolly's parallax is then not mistaken for a turn."""
    r, err = rotation_from_homography(h, k)
    ok = np.asarray(valid, bool) & (err < cfg.max_rotation_err)
    ok[0] = True                                    # frame 0's identity is exact by definition
    r[0] = np.eye(3)
    err = np.where(ok, err, cfg.max_rotation_err)   # no estimate: not evidence of a still camera
    r = fill_rotations(r, ok)
    c = chain_rotations(r) if floor_ref is None else chain_plane_rotations(h, ok, k, floor_ref, r)
    speed = np.degrees(np.linalg.norm(Rotation.from_matrix(r).as_rotvec(), axis=-1)) * fps
    if len(speed) > 1:
        speed[0], err[0] = speed[1], err[1]         # frame 0 has no previous frame, not a still camera
    win = max(int(round(fps / 2)) | 1, 1)
    speed = median_filter(speed, size=win, mode="nearest")
    # a travelling camera turns little but its background does not move as a rotation would (parallax):
    # K^-1 H K far from a rotation is not a still camera either
    err = median_filter(err, size=win, mode="nearest")
    return c, np.exp(-(speed / cfg.static_deg_s) ** 2 - (err / cfg.still_rotation_err) ** 2)


def local_linear(x: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-weighted local linear fit of x (T, D) at every frame (sigma in frames; frames weighted by
    weight (T,)): a drift is near linear, and a plain Gaussian average would bend it back at the track's ends."""
    n = len(x)
    s = (np.arange(n) - n / 2) / max(sigma, 1.0)                           # scaled time: moments stay O(1)
    g = lambda v: gaussian_filter1d(v, sigma, axis=0, mode="constant")     # noqa: E731  (no samples beyond the ends)
    m0, m1, m2 = g(weight), g(weight * s), g(weight * s * s)
    y0, y1 = g(weight[:, None] * x), g((weight * s)[:, None] * x)
    c1, c2 = m1 - s * m0, m2 - 2 * s * m1 + s * s * m0                     # moments about each frame
    d1 = y1 - s[:, None] * y0
    det = m0 * c2 - c1 * c1
    ok = det > 1e-9 * np.maximum(m0 * c2, 1e-30)
    a = np.where(ok[:, None], (c2[:, None] * y0 - c1[:, None] * d1) / np.where(ok, det, 1.0)[:, None],
                 y0 / np.maximum(m0, 1e-12)[:, None])                      # degenerate: the weighted mean
    return a


def level_drift(cam_rot: np.ndarray, orient_cam: np.ndarray, fps: float, sigma_s: float,
                upright_deg: float = 30.0) -> np.ndarray:
    """Chained camera rotations cam_rot (T, 3, 3) (first camera's axes -> camera t) with their slow tilt drift
    taken out, given the body's rest model -> camera rotations orient_cam (T, 3, 3).

    A chain of per-frame homographies drifts: on a 5.6-minute handheld clip played forwards and backwards
    (the camera back where it was every 80 frames) it turned ~0.2 deg per loop, 10.3 deg in all, 8.5 of it
    tilt, leaning the world over and sinking the camera 0.40 m. The body's vertical is an absolute cue for
    gravity in each camera's axes: a person standing, walking or running is upright on average. As an IMU's
    accelerometer corrects its
    gyro, the chained vertical (the body's, carried into the first camera's axes) is pulled, after a Gaussian
    average over sigma_s seconds, onto its whole-track mean: tilt only (the smallest rotation between the two
    vertical directions; heading has no such cue and is left alone), and only slow drift (faster turns are
    the homographies'). Frames where the body leans more than upright_deg from the track's mean vertical
    (bending, lying) are not counted. Tracks shorter than 2 sigma are returned unchanged."""
    n = len(cam_rot)
    sigma = sigma_s * fps
    if sigma <= 0 or n < 2 * sigma:
        return cam_rot
    ct = np.swapaxes(cam_rot, 1, 2)                                        # camera t -> reference
    up = np.einsum("tij,tjk,k->ti", ct, orient_cam, MODEL_UP)
    mean = up.mean(0) / np.linalg.norm(up.mean(0))
    ok = (up @ mean > np.cos(np.radians(upright_deg))).astype(np.float64)
    if ok.sum() < sigma:
        return cam_rot
    target = (up * ok[:, None]).sum(0)
    target /= np.linalg.norm(target)
    slow = local_linear(up, ok, sigma)
    slow /= np.maximum(np.linalg.norm(slow, axis=1, keepdims=True), 1e-12)
    axis = np.cross(slow, target)
    ang = np.arctan2(np.linalg.norm(axis, axis=1), slow @ target)
    corr = Rotation.from_rotvec(axis / np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), 1e-12) * ang[:, None])
    return np.einsum("tij,tkj->tik", cam_rot, corr.as_matrix())           # C' = C corr^T: reference' = corr reference


def camera_travel(h: np.ndarray, valid: np.ndarray, k: np.ndarray, cam_rot: np.ndarray, up_ref: np.ndarray,
                  height: np.ndarray, fps: float, cfg: WorldConfig = WorldConfig()) -> tuple[np.ndarray, np.ndarray]:
    """A travelling camera's centres (T, 3) in the first camera's axes (metres) and how far to trust them (T,).

    Each homography h (T, 3, 3) is read as the floor's (K^-1 H K ~ R + t n^T / d, normal -up_ref (3,)
    carried by the chained rotations cam_rot (T, 3, 3)), at the camera's height above the floor
    height (T,) metres (a 1 s running median of a first solve's): the metric translation t per frame
    (chain_plane_centres). The weight is clip(err / parallax_err - 1, 0, 1) of the rotation-only residual
    err (rotation_from_homography, 1/2 s running median): 1 where the background shows parallax, 0 for
    a still or turning camera, whose translation is noise (and whose camera-space root would pull a
    badly scaled fit's path, the handheld run's, away from its odometry)."""
    _, err = rotation_from_homography(h, k)
    ok = np.asarray(valid, bool) & (err < cfg.max_rotation_err)
    win = max(int(round(fps / 2)) | 1, 1)
    err = median_filter(np.where(ok, err, 0.0), size=win, mode="nearest")
    dist = median_filter(np.asarray(height, np.float64), size=max(int(round(fps)) | 1, 1), mode="nearest")
    centre = chain_plane_centres(h, ok, k, cam_rot, -up_ref / np.linalg.norm(up_ref), np.maximum(dist, 0.1))
    # parallax lasting less than 1/2 s (a single frame's flow at the clip's end) is noise: opened away
    weight = grey_opening(np.clip(err / cfg.parallax_err - 1.0, 0.0, 1.0), size=win, mode="nearest")
    # a step without parallax is no travel (as before this pass): its measured translation is noise
    steps = np.diff(centre, axis=0, prepend=centre[:1]) * weight[:, None]
    return np.cumsum(steps, axis=0), weight


def _hysteresis(on: np.ndarray, off: np.ndarray) -> np.ndarray:
    """(T, F) bool: enters where `on`, leaves where `off`."""
    state = np.zeros(on.shape, bool)
    cur = on[0].copy()
    for t in range(len(on)):
        cur = np.where(cur, ~off[t], on[t])
        state[t] = cur
    return state


def detect_contacts(low_rel: np.ndarray, mid_rel: np.ndarray, root: np.ndarray, up: np.ndarray, fps: float, cfg: WorldConfig,
                    height: np.ndarray | None = None, speed_ok: np.ndarray | None = None,
                    forward: np.ndarray | None = None) -> np.ndarray:
    """(T, 2) contacts from lowest-point heights relative to the root low_rel (T, 2), foot midpoints
    relative to the root mid_rel (T, 2, 3), the current root trajectory (T, 3), optional heights above the floor (T, 2)
    and a per-frame mask where the world-speed test is trusted (T,). Where it is not (a turning camera
    before any odometry), a planted foot is the one moving backwards relative to the root along the
    body's horizontal forward direction forward (T, 3): a swinging foot moves forwards."""
    mid_world = root[:, None] + mid_rel
    margin = low_rel - low_rel.min(1, keepdims=True)
    v = np.zeros(low_rel.shape)
    back = np.zeros(low_rel.shape, bool)
    k, med = rate_frames(1, fps, cfg.reference_fps), rate_frames(3, fps, cfg.reference_fps) | 1
    if len(v) > k:
        d = mid_world[k:] - mid_world[:-k]
        d -= (d @ up)[..., None] * up
        v = median_filter(_centred(np.linalg.norm(d, axis=-1) * fps / k, k), size=(med, 1), mode="nearest")
        if forward is not None:
            s = np.einsum("tfk,tk->tf", mid_rel[k:] - mid_rel[:-k], forward[k - k // 2:len(v) - k // 2]) * fps / k
            s = median_filter(_centred(s, k), size=(med, 1), mode="nearest")
            # the more backward-moving foot, and not moving forward (both swing forward in flight), unless both
            # feet move forward alike and slowly: then it is the root that moves back (a standing person's hips
            # shifting while they raise their arms), not two feet swinging
            together = (np.abs(s[:, :1] - s[:, 1:]) < cfg.speed_on_mps / 3) & (s.max(1, keepdims=True) < cfg.speed_on_mps)
            back = (s <= s.min(1, keepdims=True) + cfg.speed_on_mps / 2) & ((s < cfg.speed_on_mps / 3) | together)
    trust = np.ones(len(v), bool) if speed_ok is None else np.asarray(speed_ok, bool)
    slow = np.where(trust[:, None], v < cfg.speed_on_mps, back)
    fast = np.where(trust[:, None], v > cfg.speed_off_mps, ~back)
    on = (margin < cfg.contact_on_m) & slow
    off = (margin > cfg.contact_off_m) | fast
    if height is not None:   # loose: the floor height comes from a trajectory that may have drifted
        on &= height < cfg.air_on_m
        off |= height > cfg.air_off_m
    return _hysteresis(on, off)


def rate_frames(n: int, fps: float, reference_fps: float) -> int:
    """A duration of n frames at `reference_fps` (where the frame-count settings were chosen) in frames at
    `fps`: longer for a faster video, never shorter (a slower one keeps the counts as they are); 0 = as given."""
    if reference_fps <= 0 or fps <= reference_fps:
        return n
    return max(n, int(round(n * fps / reference_fps)))


def _centred(x: np.ndarray, k: int) -> np.ndarray:
    """Differences over k frames, x[i] = f(t = i + k) - f(t = i), (T - k, ...) -> (T, ...) at their middle
    frames t = i + k - k // 2 (k = 1: the later frame, as a per-frame difference), ends held."""
    out = np.empty((len(x) + k,) + x.shape[1:])
    a = k - k // 2
    out[a:a + len(x)] = x
    out[:a] = x[0]
    out[a + len(x):] = x[-1]
    return out


def flight_frames(support: np.ndarray, max_frames: int) -> np.ndarray:
    """(T,) frames of a flight phase: without support, in a gap of at most `max_frames` between supported
    frames (a run's flight lasts ~0.1-0.3 s; a longer gap is missed contacts, not a jump)."""
    out = np.zeros(len(support), bool)
    for a, b in _segments(~np.asarray(support, bool)):
        if a > 0 and b < len(support) and b - a <= max_frames:
            out[a:b] = True
    return out


def solve_trajectory(cam_root: np.ndarray, mid_rel: np.ndarray, contact: np.ndarray, static: np.ndarray,
                     up: np.ndarray, fps: float, cfg: WorldConfig, flight: bool) -> np.ndarray:
    """Root positions T (T, 3) in reference axes; see the module docstring for the three terms.

    cam_root (T, 3) C_t^T p_t; mid_rel (T, 2, 3) foot midpoints relative to the root; contact (T, 2);
    static (T,) in [0, 1]; `flight`: frames without contact get gravity as their acceleration target.
    """
    n = len(cam_root)
    rows, cols, vals, w, y = [], [], [], [], []

    def add(idx, coef, weight, target):
        r = len(w)
        rows.extend([r] * len(idx)); cols.extend(idx); vals.extend(coef)
        w.append(weight); y.append(target)

    for t in range(1, n):
        for f in range(2):
            if contact[t - 1, f] and contact[t, f]:
                add([t, t - 1], [1.0, -1.0], 1.0 / cfg.sigma_odo_m ** 2, -(mid_rel[t, f] - mid_rel[t - 1, f]))
    for t in range(n):
        add([t], [1.0], max(float(static[t]), 1e-6 if t == 0 else 0.0) / cfg.sigma_cam_m ** 2, cam_root[t])
    sig_acc = cfg.accel_mps2 / fps ** 2
    g = -GRAVITY * up / fps ** 2
    airborne = flight_frames(contact.any(1), int(round(cfg.max_flight_s * fps))) if flight else np.zeros(n, bool)
    for t in range(1, n - 1):
        target = g if airborne[t] else np.zeros(3)
        add([t - 1, t, t + 1], [1.0, -2.0, 1.0], 1.0 / sig_acc ** 2, target)
    a = sp.csr_matrix((vals, (rows, cols)), shape=(len(w), n))
    wa = sp.diags(np.asarray(w)) @ a
    lhs = (a.T @ wa).tocsc() + sp.identity(n, format="csc") * 1e-9
    rhs = wa.T @ np.asarray(y)
    return np.asarray(spsolve(lhs, rhs)).reshape(n, 3)


def fit_floor(points: np.ndarray, up0: np.ndarray, prior_m: float) -> tuple[np.ndarray, float]:
    """Plane n . x = d through (N, 3) points, the normal pulled towards up0; (n, d), n . up0 > 0.

    Minimises sum (n . (x - c))^2 - lambda (n . up0)^2 over unit n (lambda = N prior_m^2), then drops
    points further than 3 x the median distance and refits once."""
    up0 = up0 / np.linalg.norm(up0)
    pts = np.asarray(points, np.float64)
    if len(pts) < 3:
        return up0, float(np.median(pts @ up0)) if len(pts) else 0.0
    keep = np.ones(len(pts), bool)
    for _ in range(2):
        p = pts[keep]
        c = p.mean(0)
        m = (p - c).T @ (p - c) - len(p) * prior_m ** 2 * np.outer(up0, up0)
        n = np.linalg.eigh(m)[1][:, 0]
        n = n if n @ up0 > 0 else -n
        dist = np.abs((pts - c) @ n)
        keep = dist <= max(3.0 * float(np.median(dist)), 0.01)
    return n, float(c @ n)


def _segments(c: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of the runs of True in a (T,) bool array."""
    c = np.concatenate([[False], c, [False]])
    return list(zip(np.flatnonzero(~c[:-1] & c[1:]), np.flatnonzero(c[:-1] & ~c[1:])))


def plant(root: np.ndarray, mid_rel: np.ndarray, low_rel: np.ndarray, contact: np.ndarray, up: np.ndarray,
          floor_d: float, smooth_frames: float = 1.0, fade_frames: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Root (T, 3) moved so that contact feet stay put on the floor, and what is left for the legs.

    Each contact segment's foot should stay at its mean horizontal position with its lowest point on
    the floor n . x = floor_d. The root takes the mean of the contact feet's corrections, linearly
    interpolated between contact frames and Gaussian-smoothed over `smooth_frames` (no jumps where the
    supporting foot changes); what the root cannot do (two feet in double support, the smoothing) is
    returned per foot, shift (T, 2, 3), for a leg IK, fading out over `fade_frames` after contact.
    No foot point ends under the floor. low_rel (T, 2, 3): lowest foot points relative to the root."""
    n = len(root)
    want = np.zeros((n, 2, 3))
    for f in range(2):
        for a, b in _segments(contact[:, f]):
            world = root[a:b] + mid_rel[a:b, f]
            d = world.mean(0) - world
            d -= (d @ up)[:, None] * up                                          # horizontal: stay put
            d += (floor_d - (root[a:b] + low_rel[a:b, f]) @ up)[:, None] * up   # vertical: on the floor
            want[a:b, f] = d
    have = contact.any(1)
    delta = np.zeros((n, 3))
    if have.any():
        idx, t = np.flatnonzero(have), np.arange(n)
        mean = (want * contact[..., None]).sum(1)[have] / contact.sum(1)[have, None]
        delta = np.stack([np.interp(t, idx, mean[:, k]) for k in range(3)], 1)
    if smooth_frames > 0 and have.any():
        delta = gaussian_filter1d(delta, smooth_frames, axis=0, mode="nearest")
    out = root + delta
    shift = np.where(contact[..., None], want - delta[:, None], 0.0)
    for f in range(2):                                                           # fade the leg's shift out
        for a, b in _segments(contact[:, f]):
            for k in range(1, fade_frames + 1):
                w = 1.0 - k / (fade_frames + 1)
                if b - 1 + k < n and not contact[b - 1 + k, f]:
                    shift[b - 1 + k, f] = w * shift[b - 1, f]
                if a - k >= 0 and not contact[a - k, f]:
                    shift[a - k, f] = w * shift[a, f]
    sink = floor_d - ((out[:, None] + low_rel + shift) @ up).min(1)              # > 0: a foot under the floor
    raise_ = np.maximum(sink, 0.0)
    out = out + raise_[:, None] * up
    shift -= np.where(contact[..., None], raise_[:, None, None] * up, 0.0)       # contact feet stay on the floor
    return out, shift


def mean_rotation(r: np.ndarray) -> np.ndarray:
    """Chordal L2 mean of rotations r (N, 3, 3): the rotation nearest (Frobenius) to their average."""
    u, _, vt = np.linalg.svd(r.mean(0))
    return u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt


def foot_lock(rot: np.ndarray, contact: np.ndarray, fade_frames: int, max_deg: float = 180.0,
              up: np.ndarray | None = None) -> np.ndarray:
    """(T, 2, 3, 3) turns D with D_t rot_t = the foot's locked rotation: in each contact segment the
    segment's mean rotation (a planted foot does not turn), blended in over `fade_frames` before and out
    after (D^w by a fraction w of its angle). A segment whose rotations turn further than max_deg from
    their mean about the vertical `up` (3,) (a foot pivoting on the ground, not fit noise; a heel-to-toe
    roll turns about a horizontal axis and stays locked) is left as it is.
    rot (T, 2, 3, 3) foot rotations in fixed (reference) axes."""
    n = len(rot)
    turn = np.tile(np.eye(3), (n, 2, 1, 1))
    for f in range(2):
        for a, b in _segments(contact[:, f]):
            lock = mean_rotation(rot[a:b, f])
            d = lock @ np.swapaxes(rot[a:b, f], 1, 2)
            vec = Rotation.from_matrix(d).as_rotvec()
            spread = np.abs(vec @ up) if up is not None else np.linalg.norm(vec, axis=-1)
            if np.degrees(spread).max() > max_deg:
                continue
            turn[a:b, f] = d
            for k in range(1, fade_frames + 1):
                w = 1.0 - k / (fade_frames + 1)
                for t in (a - k, b - 1 + k):
                    if 0 <= t < n and not contact[t, f]:
                        turn[t, f] = Rotation.from_rotvec(w * Rotation.from_matrix(lock @ rot[t, f].T).as_rotvec()).as_matrix()
    return turn


def travel_evidence(cam_root: np.ndarray, static: np.ndarray, centre: np.ndarray | None,
                    weight: np.ndarray | None, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The camera evidence of the root (T, 3) and its weights (T,): the camera-space root cam_root
    (reference axes) where the camera is still (static), plus the camera's centre (T, 3) where its
    travel is measured (weight (T,)), the path scaled by `scale` about frame 0; unchanged without a centre."""
    if centre is None or weight is None:
        return cam_root, static
    ev = cam_root + centre
    return ev[0] + scale * (ev - ev[0]), np.maximum(static, np.clip(weight, 0.0, 1.0))


def path_scale(path: np.ndarray, ref: np.ndarray, mask: np.ndarray, up: np.ndarray, span: int) -> float:
    """Least-jitter length ratio of two paths (T, 3): the sum of `ref`'s horizontal (normal to up (3,))
    chords over `span` frames divided by `path`'s, over the chords whose both ends are in mask (T,);
    1 when there are none. (Chords rather than steps: per-frame depth jitter would lengthen a path.)"""
    a = np.arange(len(path) - span)
    a = a[mask[a] & mask[a + span]] if span > 0 else a[:0]
    if len(a) == 0:
        return 1.0
    def length(x):
        d = x[a + span] - x[a]
        return float(np.linalg.norm(d - np.outer(d @ up, up), axis=1).sum())
    lp = length(path)
    return length(ref) / lp if lp > 1e-6 else 1.0


def world_axes(up: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """(3, 3) W with rows x, y = up, z = forward made horizontal; x = y cross z (right-handed)."""
    y = up / np.linalg.norm(up)
    z = forward - (forward @ y) * y
    if np.linalg.norm(z) < 1e-6:                    # facing straight up or down: any horizontal axis
        z = np.cross(y, [1.0, 0.0, 0.0]) if abs(y[0]) < 0.9 else np.cross(y, [0.0, 0.0, 1.0])
    z /= np.linalg.norm(z)
    return np.stack([np.cross(y, z), y, z])


def solve_world(root_cam: np.ndarray, orient_cam: np.ndarray, feet_cam: np.ndarray, cam_rot: np.ndarray,
                static: np.ndarray, fps: float, cfg: WorldConfig = WorldConfig(),
                ankle_cam: np.ndarray | None = None, foot_rot_cam: np.ndarray | None = None,
                cam_centre: np.ndarray | None = None, centre_weight: np.ndarray | None = None,
                travel_scale: float = 1.0) -> WorldTrack:
    """World frame of one track (see the module docstring).

    root_cam (T, 3), orient_cam (T, 3, 3) rest model -> camera, feet_cam (T, 6, 3) left big toe, small
    toe, heel, right ..., cam_rot (T, 3, 3) first camera's axes -> camera t, static (T,) in [0, 1].
    With ankle_cam (T, 2, 3) and the foot bones' rotations foot_rot_cam (T, 2, 3, 3) (camera axes) and
    cfg.foot_lock, contact feet are locked (foot_lock) about their ankles before planting; the turns
    are returned (foot_turn) for the leg IK. With a travelling camera's centres cam_centre (T, 3) in the
    first camera's axes (camera_travel) and their weights centre_weight (T,) in [0, 1], the camera
    evidence is the camera-space root plus the camera's centre (its path scaled by travel_scale), trusted
    by the larger of both weights.
    """
    n = len(root_cam)
    ct = np.swapaxes(cam_rot, 1, 2)                                        # camera t -> reference
    cam_root = np.einsum("tij,tj->ti", ct, root_cam)
    rel = np.einsum("tij,tkj->tki", ct, feet_cam - root_cam[:, None]).reshape(n, 2, 3, 3)
    mid_rel = rel.mean(2)                                                  # (T, 2, 3)
    ev_root, ev_w = travel_evidence(cam_root, static, cam_centre, centre_weight, travel_scale)
    body_up = np.einsum("tij,tjk,k->ti", ct, orient_cam, MODEL_UP).mean(0)
    up = body_up / np.linalg.norm(body_up) if np.linalg.norm(body_up) > 0.5 else np.array([0.0, -1.0, 0.0])
    root, height, floor_d = ev_root.copy(), None, 0.0
    contact = np.zeros((n, 2), bool)
    for it in range(max(cfg.iterations, 1)):
        low_idx = (rel @ up).argmin(2)                                     # (T, 2) lowest foot point
        low_rel = np.take_along_axis(rel, low_idx[..., None, None], 2)[:, :, 0]
        trust = static > 0.5            # world speeds need a trajectory; odometry's own is circular
        fwd = np.einsum("tij,tjk,k->ti", ct, orient_cam, MODEL_FORWARD)
        fwd -= (fwd @ up)[:, None] * up
        fwd /= np.maximum(np.linalg.norm(fwd, axis=1, keepdims=True), 1e-9)
        contact = detect_contacts(low_rel @ up, mid_rel, root, up, fps, cfg, height, trust, fwd)
        root = solve_trajectory(ev_root, mid_rel, contact, ev_w, up, fps, cfg, flight=it > 0)
        pts = (root[:, None] + low_rel)[contact]
        up, floor_d = fit_floor(pts, up, cfg.floor_prior_m) if len(pts) >= 3 else (up, float(np.percentile(
            ((root[:, None] + low_rel) @ up).min(1), 5)))
        height = (root[:, None] + low_rel) @ up - floor_d
    shift = np.zeros((n, 2, 3))
    turn = None
    if cfg.plant and cfg.leg_ik and cfg.foot_lock and ankle_cam is not None and foot_rot_cam is not None:
        turn = foot_lock(np.einsum("tij,tfjk->tfik", ct, foot_rot_cam), contact,
                         rate_frames(cfg.lock_fade_frames, fps, cfg.reference_fps),
                         cfg.lock_max_deg, up)
        ank = np.einsum("tij,tfj->tfi", ct, ankle_cam - root_cam[:, None])[:, :, None]     # (T, 2, 1, 3)
        rel = ank + np.einsum("tfij,tfkj->tfki", turn, rel - ank)
        mid_rel = rel.mean(2)
    if cfg.plant:
        low_idx = (rel @ up).argmin(2)
        low_rel = np.take_along_axis(rel, low_idx[..., None, None], 2)[:, :, 0]
        root, shift = plant(root, mid_rel, low_rel, contact, up, floor_d,
                            cfg.plant_smooth_frames * rate_frames(1, fps, cfg.reference_fps),
                            rate_frames(3, fps, cfg.reference_fps))              # plant's own fade, as long
        if not cfg.leg_ik:   # without the legs, the root alone keeps every foot point above the floor
            sink = floor_d - ((root[:, None] + rel.reshape(n, 6, 3)) @ up).min(1)
            root = root + np.maximum(sink, 0.0)[:, None] * up
            shift[:] = 0.0
    k0 = max(1, min(n, int(round(fps / 2))))
    forward = np.einsum("tij,tjk,k->ti", ct[:k0], orient_cam[:k0], MODEL_FORWARD).mean(0)
    w = world_axes(up, forward)
    o = w @ root[0]
    o[1] = floor_d
    a = w @ ct                                                             # (T, 3, 3)
    b = (root - cam_root) @ w.T - o
    if turn is not None:                                                   # reference -> camera axes
        turn = np.einsum("tij,tfjk,tlk->tfil", cam_rot, turn, cam_rot)
    return WorldTrack(A=a, b=b, contact=contact, up_ref=up, static=static, root_ref=root,
                      foot_shift=np.einsum("tij,tfj->tfi", cam_rot, shift), foot_turn=turn)


def world_to_camera_gl(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GL camera pose (camera looking along -Z, Y up) world -> camera: x_gl = R x_world + t.

    x_world = A x_cv + b and x_gl = F x_cv (F = diag(1, -1, -1)) give R = F A^T, t = -F A^T b."""
    f = np.diag([1.0, -1.0, -1.0])
    r = f @ np.swapaxes(a, 1, 2)
    return r, -np.einsum("tij,tj->ti", r, b)
