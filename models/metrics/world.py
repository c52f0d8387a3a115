"""Ground-truth metrics of world-grounded motion, feet and identity, in numpy (metres in, metres out).

Camera-space pose metrics (MPJPE, PA-MPJPE, accel error) are models.metrics.accuracy's (VIBE parity);
this module adds what the world-grounded literature and the foot/identity checks need:

- W-MPJPE / WA-MPJPE (WHAM, Shin et al. CVPR 2024, sec. 4; GVHMR, Shen et al. SIGGRAPH Asia 2024, its
  `compute_global_metrics`): the sequence is cut into 100-frame segments; W aligns each segment's
  prediction to the ground truth by the rigid transform (rotation + translation, scale 1) fitted on the
  segment's first two frames, WA by the similarity transform (Umeyama) fitted on the whole segment;
  the error is the mean per-joint L2 after that, averaged over segments' frames.
- Root drift per 10 m: in the spirit of WHAM's RTE (root translation error normalised by the distance
  travelled): after the W alignment of the whole clip on its first two frames, the root (mid-hip)
  error at the last frame divided by the ground-truth root path length, times 10 m.
- Foot skate (e.g. the contact-velocity metrics of Shimada et al. PhysCap 2020 / Yuan et al. GLAMR
  2022): mean horizontal (floor-plane) displacement per frame of the predicted foot points over frame
  pairs where the ground truth says that foot is in contact in both frames.
- Floor penetration / float: in ground-truth contact frames, the predicted lowest foot point's height
  minus the ground truth's lowest foot point height (the foot points sit on the skin ~1.5 cm above the
  sole): penetration = mean of the negative part, float = mean of the positive part.
- Left/right flip rate: a frame is flipped when the prediction with left and right labels swapped is
  closer to the ground truth (root-aligned mean L2) than the prediction as labelled.
- Detection recall: ground-truth present person-frames that have a matched output track frame.
- Camera rotation error (ours, to tell the camera's share of a world error from the body's): per frame,
  the angle between the estimated and the true rotation of the camera relative to its first frame
  (R_t R_0^T in the first camera's axes, so it needs no world alignment).
- Travel ratio (ours): the predicted root path length over the true one (sampled every 10th frame);
  below 1 when the body is fitted small (monocular size) or the camera's travel is missed.
World axes: Y up, floor y = 0 (GT_FORMAT.md).
"""
from __future__ import annotations

import numpy as np

from .accuracy import mpjpe

SEGMENT_FRAMES = 100       # WHAM / GVHMR segment length for W-MPJPE and WA-MPJPE
W_ALIGN_FRAMES = 2         # frames the W alignment is fitted on (the segment's first two)
DRIFT_PER_M = 10.0         # drift is reported per this many metres walked
MIN_PATH_M = 1.0           # below this path length drift is undefined (None)
UP = 1                     # world up axis index (Y)


def similarity_transform(src: np.ndarray, dst: np.ndarray, scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares s, R, t with s R src + t ~ dst (Umeyama 1991): (N, 3) x2 -> (s, (3, 3), (3,)).

    `scale=False` fixes s = 1 (a rigid transform). R is a proper rotation (det fix)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vh = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vh))
    z = np.diag([1.0, 1.0, d])
    r = vh.T @ z @ u.T
    s = float((sig * np.diag(z)).sum() / (a ** 2).sum()) if scale else 1.0
    return s, r, mu_d - s * r @ mu_s


def _apply(x: np.ndarray, s: float, r: np.ndarray, t: np.ndarray) -> np.ndarray:
    return s * x @ r.T + t


def first_frames_align(pred: np.ndarray, gt: np.ndarray, n: int = W_ALIGN_FRAMES) -> np.ndarray:
    """Rigidly align the whole of pred (T, J, 3) to gt using only its first `n` frames (W alignment)."""
    s, r, t = similarity_transform(pred[:n].reshape(-1, 3), gt[:n].reshape(-1, 3), scale=False)
    return _apply(pred, s, r, t)


def whole_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Similarity-align pred (T, J, 3) to gt over all its frames (WA alignment, Umeyama)."""
    s, r, t = similarity_transform(pred.reshape(-1, 3), gt.reshape(-1, 3), scale=True)
    return _apply(pred, s, r, t)


def segments(n: int, length: int = SEGMENT_FRAMES) -> list[slice]:
    """Consecutive segments of `length` frames covering 0..n (the last one may be shorter, >= 2 frames)."""
    return [slice(s, min(s + length, n)) for s in range(0, n, length) if min(s + length, n) - s >= W_ALIGN_FRAMES]


def w_mpjpe(pred: np.ndarray, gt: np.ndarray, length: int = SEGMENT_FRAMES) -> np.ndarray:
    """Per-frame W-MPJPE (T,) metres of world joints (T, J, 3): first-two-frame rigid alignment per segment."""
    return np.concatenate([mpjpe(first_frames_align(pred[s], gt[s]), gt[s]) for s in segments(len(gt), length)])


def wa_mpjpe(pred: np.ndarray, gt: np.ndarray, length: int = SEGMENT_FRAMES) -> np.ndarray:
    """Per-frame WA-MPJPE (T,) metres of world joints (T, J, 3): whole-segment similarity alignment."""
    return np.concatenate([mpjpe(whole_align(pred[s], gt[s]), gt[s]) for s in segments(len(gt), length)])


def root_drift_per_10m(pred: np.ndarray, gt: np.ndarray, root: tuple[int, ...]) -> float | None:
    """Root error at the last frame per 10 m of ground-truth root path, metres; world joints (T, J, 3).

    The whole prediction is W-aligned (rigid, on its first two frames) first; the root is the mean of
    the `root` joints. None when the GT root path is shorter than MIN_PATH_M."""
    p = first_frames_align(pred, gt)[:, list(root)].mean(1)
    g = gt[:, list(root)].mean(1)
    path = float(np.linalg.norm(np.diff(g, axis=0), axis=-1).sum())
    if path < MIN_PATH_M:
        return None
    return float(np.linalg.norm(p[-1] - g[-1]) * DRIFT_PER_M / path)


def _horizontal(x: np.ndarray) -> np.ndarray:
    return np.delete(x, UP, axis=-1)


def foot_skate(pred_feet: np.ndarray, contact: np.ndarray) -> float | None:
    """Mean horizontal displacement per frame (metres/frame) of predicted foot points in GT contact.

    pred_feet (T, 2, K, 3) world (left, right foot; K points each), contact (T, 2) bool. A step t -> t+1
    counts for a foot when the GT has it in contact at both t and t+1. None if no such step."""
    step = np.linalg.norm(_horizontal(np.diff(pred_feet, axis=0)), axis=-1).mean(-1)     # (T-1, 2)
    both = contact[:-1] & contact[1:]
    return float(step[both].mean()) if both.any() else None


def floor_contact_error(pred_feet: np.ndarray, gt_feet: np.ndarray, contact: np.ndarray) -> tuple[float | None, float | None]:
    """(penetration, float) metres: mean negative / positive part of the lowest predicted foot point's
    height minus the GT lowest foot point's height, over GT contact foot-frames. Feet (T, 2, K, 3) world."""
    if not contact.any():
        return None, None
    d = pred_feet[..., UP].min(-1) - gt_feet[..., UP].min(-1)                               # (T, 2)
    d = d[contact]
    return float(np.maximum(-d, 0).mean()), float(np.maximum(d, 0).mean())


def flipped(pred: np.ndarray, gt: np.ndarray, flip: np.ndarray, root: tuple[int, ...]) -> np.ndarray:
    """(T,) bool: the left/right-swapped prediction (joints permuted by `flip`) is closer to gt than the
    prediction itself; both root-aligned on the mean of `root` joints. pred, gt (T, J, 3)."""
    def centred(x):
        return x - x[:, list(root)].mean(1, keepdims=True)
    p, g = centred(pred), centred(gt)
    return mpjpe(p[:, flip], g) < mpjpe(p, g)


def recall(present: np.ndarray, matched: np.ndarray) -> float | None:
    """Fraction of GT present person-frames that are matched: present, matched (P, T) bool."""
    n = int(present.sum())
    return float((present & matched).sum() / n) if n else None


def camera_rotation_error_deg(r_pred: np.ndarray, r_gt: np.ndarray) -> np.ndarray:
    """Per-frame angle (degrees) between estimated and true camera rotations relative to frame 0.
    r_pred, r_gt (N, 3, 3): world -> camera rotations in the same camera axes (e.g. both OpenCV); the two
    worlds may differ by any fixed rotation (it cancels in R_t R_0^T)."""
    rel_p = np.einsum("nij,kj->nik", r_pred, r_pred[0])
    rel_g = np.einsum("nij,kj->nik", r_gt, r_gt[0])
    d = np.einsum("nij,nkj->nik", rel_p, rel_g)
    cos = (np.trace(d, axis1=1, axis2=2) - 1.0) / 2.0
    sin = 0.5 * np.linalg.norm(np.stack([d[:, 2, 1] - d[:, 1, 2], d[:, 0, 2] - d[:, 2, 0], d[:, 1, 0] - d[:, 0, 1]], -1), axis=-1)
    return np.degrees(np.arctan2(sin, cos))       # not arccos(cos): that loses ~1e-6 deg near 0


def travel_ratio(pred: np.ndarray, gt: np.ndarray, root: tuple[int, ...], stride: int = 10) -> float | None:
    """Predicted root path length over the true one (pred/gt (N, J, 3)), both measured between every
    `stride`-th frame so that frame-to-frame jitter does not lengthen the path; None when the true path is
    shorter than MIN_PATH_M."""
    def path(x):
        r = x[::stride, list(root)].mean(1)
        return float(np.linalg.norm(np.diff(r, axis=0), axis=1).sum())

    g = path(gt)
    return None if g < MIN_PATH_M else path(pred) / g
