"""Temporal quality of the licence-free fit: smoothing presets, input preparation, windows of long tracks.

- `SMOOTHING`: the presets behind `--set fit.smoothing=off|standard|strong`. `off` is the fit as it was
  (raw BlazePose input, no dynamics prior; the stage's L-BFGS polish still runs, `fit.polish_iters=0`
  gives Adam only); `standard` smooths the input landmarks with a robust local quadratic over +-0.1 s
  (the world landmarks over +-0.2 s from 30 fps up) and adds the part-based acceleration prior; `strong`
  doubles the window and the prior (for users who want calm motion more than every flick of a wrist).
- `prepare_track`: BlazePose's per-frame landmarks -> the fit's targets: front and back made continuous (a
  reading that would turn the torso faster than people turn replaced by its mirror: models/fit/facing.py), then
  left/right labels made continuous over time, for the upper body and the legs each on its own
  (models/fit/smoothing.consistent_labels),
  per-keypoint weights visibility x presence x temporal robustness, and robustly smoothed 2D keypoints and
  world landmarks (models/fit/smoothing.robust_smooth; the raw values stay in the `blazepose` artifact).
- `windows` / `fit_windowed`: a long track is fitted in windows of `window` frames, each with
  `overlap` frames of context on both sides that are fitted but not kept, so memory is bounded by the
  window and time is linear in the length; every window depends only on its own frames (and the
  track's shape, fixed beforehand), so windows can be computed in any order, resumed, or in parallel.
Shapes: T frames; COCO-17 keypoints; BlazePose-33 landmarks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from video2mesh.models.body.anny_body import COCO_FLIP
from video2mesh.models.runners.blazepose import BLAZEPOSE_FLIP, COCO_FROM_BLAZEPOSE

from .facing import consistent_facing, other_reading
from .occlusion import fill_borrowed
from .smoothing import consistent_labels, half_window_frames, robust_smooth


@dataclass(frozen=True)
class Smoothing:
    """One smoothing preset: input window (s, each side), acceleration prior weight (FitConfig.w_accel), and
    the world landmarks' own window (s, each side; None = the input window). BlazePose's depth is its noisiest
    coordinate (on the rendered set the fit's acceleration error is 2x larger along the camera's axis than
    across it) while the 2D term already holds the image-plane motion, so `standard` smooths the world
    landmarks over twice its 2D window; the stage applies that from fit.reference_fps up only (at 15 fps and
    on the 12 fps real videos it made the motion jerkier: docs/temporal.md)."""

    name: str
    input_half_window_s: float
    w_accel: float
    world_half_window_s: float | None = None


SMOOTHING: dict[str, Smoothing] = {
    "off": Smoothing("off", 0.0, 0.0),
    "standard": Smoothing("standard", 0.1, 5.0, world_half_window_s=0.2),
    "strong": Smoothing("strong", 0.2, 10.0),
}


def rate_scaled(w_smooth: float, w_accel: float, fps: float, reference_fps: float) -> tuple[float, float]:
    """(w_smooth, w_accel) of a fit at `fps` frames/s for weights tuned at `reference_fps` (0 = as given).

    The fit's temporal terms are means over frames of per-frame differences, a velocity term (x[t+1] - x[t])^2
    and an acceleration term (x[t+1] - 2 x[t] + x[t-1])^2, beside data terms that are means of independent
    per-frame errors. The continuous penalties int |dx/dt|^2 dt and int |d2x/dt2|^2 dt over a clip of
    N = T fps frames are, per frame, fps (dx)^2 and fps^3 (ddx)^2: against per-frame evidence their weights go
    as fps and fps^3. Below the reference rate the weights follow that (a 12 fps video's acceleration prior was
    ~16x too strong and pulled the fit off the image: docs/temporal.md, "Frame rate"). Above it they stay
    as tuned: 8x the prior at 60 fps made the motion jerkier, not smoother, because the fit's fixed
    iterations (Adam, then 60 L-BFGS) no longer converge on the stiffer energy (measured there as well);
    the rest of the acceleration prior's strength comes over several frames instead (stride_prior)."""
    if reference_fps <= 0 or fps <= 0:
        return w_smooth, w_accel
    r = min(fps / reference_fps, 1.0)
    return w_smooth * r, w_accel * r ** 3


def stride_prior(w_accel: float, fps: float, reference_fps: float) -> tuple[int, float]:
    """(stride k, weight) of the second acceleration prior (over k frames: x[t+k] - 2 x[t] + x[t-k]) that a
    fit at `fps`, at least 1.5 x `reference_fps`, adds to its per-frame prior `w_accel` (tuned at the
    reference rate); (1, 0.0) = none.

    The physically right prior at fps is (fps / reference)^3 x w_accel per frame (rate_scaled), but a per-frame
    prior that stiff is ill-conditioned: its largest eigenvalue, at the alternating (Nyquist) frame pattern,
    grows with the weight, and the fit's fixed iterations stopped converging (8x at 60 fps came out jerkier:
    docs/temporal.md, "Frame rate"). Over k = round(fps / reference) frames the same continuous penalty
    int |x''|^2 dt needs k^4 less weight (the k-frame second difference of smooth motion is k^2 the per-frame
    one), and the operator is stiff only at the reference rate's frequencies, as a reference-rate fit is. The
    per-frame prior stays (it ties the k interleaved chains together at high frequencies), so the k-frame weight
    is what is left of the total: w_accel ((fps / reference)^3 - 1) / k^4."""
    if reference_fps <= 0 or fps < 1.5 * reference_fps or w_accel <= 0:
        return 1, 0.0
    k = int(round(fps / reference_fps))
    return k, w_accel * ((fps / reference_fps) ** 3 - 1.0) / k ** 4


MIN_SCALE_PX = 0.5      # robust residual scale floor of 2D keypoints (sub-pixel noise is not an outlier)
MIN_SCALE_M = 0.005     # the same for world landmarks, metres
BORROWED_WEIGHT = 0.5   # visibility given to a hidden person's in-between landmarks (models/fit/occlusion.py)


@dataclass(frozen=True)
class TrackInput:
    """The fit's targets for one track. keypoints (T, 17, 3) px + weight; world (T, 17, 3) metres;
    flipped (T,) bool: BlazePose's reading was changed here to keep the track continuous (its left/right labels
    exchanged, for the whole body with the depth mirrored or for one part)."""

    keypoints: np.ndarray
    world: np.ndarray
    flipped: np.ndarray


def person_size(kp: np.ndarray) -> np.ndarray:
    """(T,) diagonal of the keypoints' box in px (at least 16)."""
    return np.maximum(np.linalg.norm(np.ptp(kp[..., :2], axis=1), axis=-1), 16.0)


# The parts whose left/right labels are made continuous each on its own: (COCO-17 keypoints that decide, BlazePose
# landmarks exchanged). From the side BlazePose crosses the legs alone (knees, ankles and feet of one leg given to
# the other while arms and hips are right): on the rendered 60 fps pan 13 frames; a whole-body exchange there
# would cross the arms instead (measured: docs/temporal.md, "A standing person's feet (world v4), crossed legs
# (fit v9)"). Hips stay with the upper body: the pelvis cannot face the other way from the shoulders.
LABEL_PARTS = ((np.arange(13), np.arange(25)), (np.arange(13, 17), np.arange(25, 33)))


def _part_flip(coco: np.ndarray) -> np.ndarray:
    """COCO_FLIP restricted to the keypoints `coco` (indices into that subset)."""
    at = {int(c): i for i, c in enumerate(coco)}
    return np.array([at[int(COCO_FLIP[c])] for c in coco])


def prepare_track(frames: np.ndarray, landmarks: np.ndarray, world33: np.ndarray, fps: float,
                  preset: Smoothing, flip_fix: bool = True, borrowed: np.ndarray | None = None,
                  facing_fix: bool = True, facing: np.ndarray | None = None,
                  focal_px: float | None = None) -> TrackInput:
    """frames (T,) int increasing; landmarks (T, 33, 5) x px, y px, z, visibility, presence;
    world33 (T, 33, 3) metres. Missing frames between `frames` count as missing samples.
    borrowed (T,) bool: frames whose landmarks are another person's body (models/fit/occlusion.py): there
    the landmarks become the in-between of the track's own frames, at BORROWED_WEIGHT: the hidden body is
    carried from its last seen pose to its next (after front and back are made continuous, so that it is
    carried between readings of one side). facing (T,) bool: the frames to take the other reading of, when the
    caller decided them on more frames than these (the fit stage: on the whole track); None = decided here, with
    the person's travel towards or away from the camera as evidence when focal_px is given (facing.receding)."""
    lm = np.asarray(landmarks, np.float64).copy()
    wl = np.asarray(world33, np.float64).copy()
    borrowed = np.zeros(len(frames), bool) if borrowed is None else np.asarray(borrowed, bool)
    flipped = np.zeros(len(frames), bool)
    if facing_fix and len(frames) > 1:
        if facing is None:
            conf = lm[..., 3] * lm[..., 4]
            conf[borrowed] = 0.0                            # another person's body says nothing of this one's side
            facing = consistent_facing(frames, wl, conf, fps, landmarks=lm, focal_px=focal_px)
        flipped = np.asarray(facing, bool) & ~borrowed
        lm, wl = other_reading(lm, wl, flipped)
    if borrowed.any():
        lm[..., :3] = fill_borrowed(frames, lm[..., :3], borrowed)
        wl = fill_borrowed(frames, wl, borrowed)
        lm[borrowed, :, 3] = BORROWED_WEIGHT
    if flip_fix and len(frames) > 1:
        kp = lm[:, COCO_FROM_BLAZEPOSE]
        size = person_size(kp)
        for coco, landmarks in LABEL_PARTS:
            part = consistent_labels(kp[:, coco, :2], _part_flip(coco), size,
                                     confidence=kp[:, coco, 3] * kp[:, coco, 4])
            sel = np.ix_(part, landmarks)
            lm[sel] = lm[part][:, BLAZEPOSE_FLIP[landmarks]]
            wl[sel] = wl[part][:, BLAZEPOSE_FLIP[landmarks]]
            flipped |= part
    conf = np.clip(lm[..., 3] * lm[..., 4], 0.0, 1.0)                                      # (T, 33)
    h = half_window_frames(preset.input_half_window_s, fps)
    hw = h if preset.world_half_window_s is None else half_window_frames(preset.world_half_window_s, fps)
    xy, rob = _smooth_dense(frames, lm[..., :2], conf, h, MIN_SCALE_PX)
    world, _ = _smooth_dense(frames, wl, conf, hw, MIN_SCALE_M)
    weight = conf * rob.min(-1)
    idx = COCO_FROM_BLAZEPOSE
    return TrackInput(keypoints=np.concatenate([xy[:, idx], weight[:, idx, None]], -1),
                      world=world[:, idx], flipped=flipped)


def _smooth_dense(frames: np.ndarray, values: np.ndarray, conf: np.ndarray, half_window: int,
                  min_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """robust_smooth of values (T, K, D) with weights conf (T, K) on the frame grid (gaps = weight 0)."""
    t_n, k_n, d_n = values.shape
    if half_window <= 0 or t_n < 3:
        return values.copy(), np.ones_like(values)
    f = np.asarray(frames, np.int64) - int(frames[0])
    dense = np.zeros((int(f[-1]) + 1, k_n * d_n))
    c = np.zeros_like(dense)
    dense[f] = values.reshape(t_n, -1)
    c[f] = np.repeat(conf, d_n, axis=1)
    # a quadratic needs >= 7 samples to smooth at all (on 3 or 5 it nearly interpolates): below that
    # (low frame rates) a local line
    degree = 2 if half_window >= 3 else 1
    out, rob = robust_smooth(dense, c + (c > 0) * 1e-3, half_window=half_window, degree=degree, min_scale=min_scale)
    return out[f].reshape(values.shape), rob[f].reshape(values.shape)


def windows(n_frames: int, window: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """[(start, stop, lo, hi)]: kept frames [start, stop), fitted frames [lo, hi) (kept plus context)."""
    window = max(int(window), 1)
    out = []
    for start in range(0, max(n_frames, 1), window):
        stop = min(start + window, n_frames)
        out.append((start, stop, max(start - overlap, 0), min(stop + overlap, n_frames)))
    return out


def fit_windowed(fit, kp2d: np.ndarray, world: np.ndarray, window: int, overlap: int) -> dict[str, np.ndarray]:
    """Run `fit(kp2d[lo:hi], world[lo:hi]) -> FitResult` per window and keep each window's own frames.

    Returns the concatenated per-frame arrays of FitResult (theta, global_orient, transl, keypoints2d,
    keypoints3d, residual_px, swapped); the shape must be fixed by the caller's `fit` (all windows alike).
    """
    keys = ("theta", "global_orient", "transl", "keypoints2d", "keypoints3d", "residual_px", "swapped")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for start, stop, lo, hi in windows(len(kp2d), window, overlap):
        r = fit(kp2d[lo:hi], world[lo:hi])
        for k in keys:
            parts[k].append(np.asarray(getattr(r, k))[start - lo:stop - lo])
    return {k: np.concatenate(v) for k, v in parts.items()}
