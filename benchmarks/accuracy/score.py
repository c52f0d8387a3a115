"""Scoring a pipeline run against a ground-truth clip (GT_FORMAT.md): read the published per-track npz,
match output tracks to GT people, compute every metric of issue 12 per clip.

Prediction axes. The licence-free npz (stages/fit_export.py) holds `keypoints3d` (N, 17, 3) in GL camera
axes (Y up, camera at the origin looking -Z) and optionally `feet3d` (N, 6, 3) the same way; a
world-grounded output adds `frame_space` ("world" or "camera"), `cam_R` (N, 3, 3) and `cam_t` (N, 3)
(world -> GL camera). Camera-space joints are cam_R @ kp + cam_t when cam_R exists, else kp; GL camera
axes become OpenCV's with diag(1, -1, -1). World metrics use the output's own world (Y up, floor y = 0)
when frame_space == "world"; otherwise the camera-space output as if the camera were static at the GT
camera's first pose (the honest number for a camera-relative output: a panning camera makes a
"treadmill").

Matching: per frame, Hungarian assignment of output track boxes (the run's `tracklets`) to GT people's
boxes by IoU + intersection over the smaller box (that one >= MIN_COVER); each track then goes to the GT person it matched most often. A GT present
person-frame counts for recall when a track assigned to that person matched it in that frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from video2mesh.models.body.anny_body import COCO_FLIP
from video2mesh.models.body.anny_keypoints import FLIP_23
from video2mesh.models.metrics import accuracy as acc
from video2mesh.models.metrics import world as wm

GL_TO_CV = np.diag([1.0, -1.0, -1.0])
MIN_COVER = 0.5            # a track box and a GT box sharing less than this of the smaller one are different people
HIPS = (11, 12)            # COCO left/right hip: the root of every root-aligned metric here
FEET = slice(17, 23)       # the 6 foot points in the 23-joint order
# SMPL-24 joints standing in for COCO-17 (best effort: the face points all take SMPL's head joint, and SMPL's
# hip/shoulder joints sit inside the body where COCO's are on the surface, a definitional offset of a few cm).
COCO_FROM_SMPL24 = np.array([15, 15, 15, 15, 15, 16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8])


@dataclass
class Prediction:
    """One output track. frames (N,) video frames; cam (N, J, 3) OpenCV camera metres; world (N, J, 3)
    Y-up world metres or None (camera-relative output); J = 23 with feet, else 17."""

    track_id: int
    frames: np.ndarray
    cam: np.ndarray
    world: np.ndarray | None
    frame_space: str
    rig: dict | None = None          # Anny rig parameters (bone_rotations, global_orient, transl, phenotype) for PVE
    cam_r: np.ndarray | None = None  # (N, 3, 3) the estimated world -> OpenCV camera rotation (world outputs)


def read_prediction(path: str | Path, track_id: int | None = None) -> Prediction:
    """A published track npz: licence-free `track_NNN_anny.npz`, or the SMPL path's `track_NNN.npz` (its
    Y-up camera-axes `joints` (N, 24, 3) mapped to COCO-17 by COCO_FROM_SMPL24)."""
    with np.load(path, allow_pickle=False) as z:
        if "keypoints3d" in z.files:
            kp = z["keypoints3d"].astype(np.float64)
        elif "joints" in z.files and z["joints"].shape[1] == 24:
            kp = z["joints"][:, COCO_FROM_SMPL24].astype(np.float64)      # SMPL path (stages/export.py)
        else:
            raise ValueError(f"{path}: neither keypoints3d (COCO-17) nor SMPL joints (N, 24, 3) to score")
        if "feet3d" in z.files:
            kp = np.concatenate([kp, z["feet3d"].astype(np.float64)], 1)
        space = str(z["frame_space"]) if "frame_space" in z.files else "camera"
        cam_gl = kp
        if "cam_R" in z.files:
            cam_gl = np.einsum("nij,nkj->nki", z["cam_R"], kp) + z["cam_t"][:, None]
        frames = z["frame"].astype(np.int64)
        rig = {k: z[k] for k in RIG_KEYS} if set(RIG_KEYS) <= set(z.files) and str(z.get("body_model", "")) == "anny" else None
        cam_r = GL_TO_CV @ z["cam_R"].astype(np.float64) if "cam_R" in z.files and space == "world" else None
    tid = track_id if track_id is not None else int(Path(path).stem.split("_")[1])
    return Prediction(tid, frames, cam_gl @ GL_TO_CV.T, kp if space == "world" else None, space, rig, cam_r)


RIG_KEYS = ("bone_rotations", "global_orient", "transl", "phenotype")


def pve_mm(gt: dict, preds: list[Prediction], owner: dict[int, int], hits: dict[int, np.ndarray], body) -> float | None:
    """Mean per-vertex error (mm) on the GT's vertex frames (every `verts_stride`), both meshes root-aligned
    on their hips, as VIBE's PVE. The predicted mesh is posed from the npz's rig (Anny LBS) and brought
    into the output's camera frame by the rigid transform taking its COCO-17 keypoints onto the output's
    camera-space keypoints (exact when the rig and keypoints3d agree, whatever frame the rig is stored in)."""
    import torch

    from video2mesh.models.body.anny_body import pose_rig
    from video2mesh.models.body.anny_keypoints import keypoints23

    if "verts_world" not in gt or body is None:
        return None
    stride = int(gt["verts_stride"])
    errs = []
    for p in preds:
        if p.rig is None or p.track_id not in owner:
            continue
        i = owner[p.track_id]
        ks = [k for k, f in enumerate(p.frames) if f % stride == 0 and hits[p.track_id][f] and f // stride < gt["verts_world"].shape[1]]
        if not ks:
            continue
        with torch.no_grad():
            sk = body.skeleton(torch.as_tensor(p.rig["phenotype"][None], dtype=body.dtype))
        v = pose_rig(body, sk, p.rig["bone_rotations"][ks], p.rig["global_orient"][ks], p.rig["transl"][ks])["vertices"]
        kp = keypoints23(body, v)[:, :17]
        for n, k in enumerate(ks):
            f = int(p.frames[k])
            s_, r, t = wm.similarity_transform(kp[n], p.cam[k, :17], scale=False)
            pv = v[n] @ r.T + t - p.cam[k, list(HIPS)].mean(0)
            gv = gt["verts_world"][i, f // stride].astype(np.float64) @ gt["R_wc"][f].T + gt["t_wc"][f]
            gv = gv - gt["joints_cam"][i, f, list(HIPS)].astype(np.float64).mean(0)
            errs.append(np.linalg.norm(pv - gv, axis=-1).mean())
    return 1000 * float(np.mean(errs)) if errs else None


def box_iou(a: np.ndarray, b: np.ndarray, over_min: bool = False) -> np.ndarray:
    """IoU matrix of boxes a (N, 4), b (M, 4) x0, y0, x1, y1 -> (N, M); `over_min`: intersection over the
    smaller box instead (a tracker's loose box around a person's tight mesh box scores ~1, IoU only ~0.3)."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    area = lambda x: np.clip(x[:, 2:] - x[:, :2], 0, None).prod(-1)  # noqa: E731
    if over_min:
        return inter / np.maximum(np.minimum(area(a)[:, None], area(b)[None]), 1e-9)
    return inter / np.maximum(area(a)[:, None] + area(b)[None] - inter, 1e-9)


def match_tracks(gt_boxes: np.ndarray, present: np.ndarray, tracks: dict[int, tuple[np.ndarray, np.ndarray]]
                 ) -> tuple[dict[int, int], dict[int, np.ndarray]]:
    """(track -> GT person, track -> (T,) bool frames where it matched that person).

    gt_boxes (P, T, 4), present (P, T); tracks: id -> (frames (N,), boxes (N, 4)). Unmatched tracks are left out."""
    n_p, n_t = present.shape
    per_frame: dict[int, dict[int, int]] = {}           # frame -> {track: person}
    by_frame: dict[int, list[tuple[int, np.ndarray]]] = {}
    for tid, (frames, boxes) in tracks.items():
        for f, b in zip(frames, boxes):
            if 0 <= f < n_t:
                by_frame.setdefault(int(f), []).append((tid, b))
    for f, items in by_frame.items():
        people = np.flatnonzero(present[:, f])
        if not len(people):
            continue
        tb = np.stack([b for _, b in items])
        iou, cover = box_iou(tb, gt_boxes[people, f]), box_iou(tb, gt_boxes[people, f], over_min=True)
        rows, cols = linear_sum_assignment(-(iou + cover))
        per_frame[f] = {items[r][0]: int(people[c]) for r, c in zip(rows, cols) if cover[r, c] >= MIN_COVER}
    owner, hits = {}, {}
    for tid in tracks:
        votes = np.bincount([m[tid] for m in per_frame.values() if tid in m], minlength=n_p)
        if votes.sum():
            owner[tid] = int(votes.argmax())
            hits[tid] = np.array([per_frame.get(f, {}).get(tid) == owner[tid] for f in range(n_t)])
    return owner, hits


def _static_world(cam_cv: np.ndarray, r_wc0: np.ndarray, t_wc0: np.ndarray) -> np.ndarray:
    """Camera-space joints (N, J, 3) into the GT world as if the camera stayed at its first pose."""
    return (cam_cv - t_wc0) @ r_wc0


def person_streams(gt: dict, person: int, preds: list[Prediction], hits: dict[int, np.ndarray]):
    """GT frames of `person` covered by its tracks, and the predicted joints there (first track wins)."""
    n_t = gt["present"].shape[1]
    cam = np.full((n_t, 23, 3), np.nan)
    world = np.full((n_t, 23, 3), np.nan)
    for p in sorted(preds, key=lambda p: -len(p.frames)):
        j = p.cam.shape[1]
        w = p.world if p.world is not None else _static_world(p.cam, gt["R_wc"][0], gt["t_wc"][0])
        for k, f in enumerate(p.frames):
            if 0 <= f < n_t and hits[p.track_id][f] and np.isnan(cam[f, 0, 0]):
                cam[f, :j], world[f, :j] = p.cam[k], w[k]
    valid = ~np.isnan(cam[:, 0, 0]) & gt["present"][person]
    return valid, cam, world


def score_clip(gt: dict, preds: list[Prediction], track_boxes: dict[int, tuple[np.ndarray, np.ndarray]], body=None) -> dict:
    """Every metric for one clip (millimetres, centimetres for the floor, rates in [0, 1]); None where undefined."""
    owner, hits = match_tracks(gt["bbox"], gt["present"], track_boxes)
    n_p, n_t = gt["present"].shape
    matched = np.zeros((n_p, n_t), bool)
    for tid, p in owner.items():
        matched[p] |= hits[tid]
    out = {"recall": wm.recall(gt["present"], matched), "people": n_p, "tracks": len(track_boxes),
           "tracks_matched": len(owner)}
    per = [_score_person(gt, i, [p for p in preds if owner.get(p.track_id) == i], hits) for i in range(n_p)]
    per = [s for s in per if s["frames"]]
    out["frames_scored"] = sum(s["frames"] for s in per)
    out["cam_rot_err_deg"] = camera_rotation_error(gt, preds)
    out["pve_mm"] = pve_mm(gt, preds, owner, hits, body)
    for k in METRIC_KEYS:
        vals = [(s[k], s["frames"]) for s in per if s.get(k) is not None]
        out[k] = float(np.average([v for v, _ in vals], weights=[w for _, w in vals])) if vals else None
    return out


def camera_rotation_error(gt: dict, preds: list[Prediction]) -> float | None:
    """Median over frames of the camera's rotation error relative to its first frame (degrees), from the
    longest world-frame track (every track of a run carries the same camera); None for camera-space output."""
    worlds = [p for p in preds if p.cam_r is not None and len(p.frames) > 1]
    if not worlds:
        return None
    p = max(worlds, key=lambda p: len(p.frames))
    ok = (p.frames >= 0) & (p.frames < len(gt["R_wc"]))
    return float(np.median(wm.camera_rotation_error_deg(p.cam_r[ok], gt["R_wc"][p.frames[ok]])))


METRIC_KEYS = ("mpjpe_mm", "pa_mpjpe_mm", "accel_err_mm", "w_mpjpe_mm", "wa_mpjpe_mm", "drift_m_per_10m",
               "travel_ratio", "foot_skate_mm", "foot_skate_gt_mm", "penetration_cm", "float_cm", "flip_rate")


def _score_person(gt: dict, i: int, preds: list[Prediction], hits: dict[int, np.ndarray]) -> dict:
    if not preds:
        return {"frames": 0}
    valid, cam, world = person_streams(gt, i, preds, hits)
    if valid.sum() < 3:
        return {"frames": 0}
    has_feet = all(p.cam.shape[1] == 23 for p in preds)
    j = 23 if has_feet else 17
    g_cam, g_world = gt["joints_cam"][i].astype(np.float64), gt["joints_world"][i].astype(np.float64)
    pc, gc = cam[valid, :17], g_cam[valid, :17]
    s = {"frames": int(valid.sum())}
    s["mpjpe_mm"] = 1000 * float(acc.mpjpe(acc.align_root(pc, HIPS), acc.align_root(gc, HIPS)).mean())
    s["pa_mpjpe_mm"] = 1000 * float(acc.pa_mpjpe(pc, gc).mean())
    a_valid = acc.accel_valid(valid)
    filled = np.where(valid[:, None, None], cam[:, :17], g_cam[:, :17])        # gaps are masked out below
    if a_valid.any():
        err = acc.accel_error(acc.align_root(filled, HIPS), acc.align_root(g_cam[:, :17], HIPS))
        s["accel_err_mm"] = 1000 * float(err[a_valid].mean())
    pw, gw = world[valid, :17], g_world[valid, :17]
    s["w_mpjpe_mm"] = 1000 * float(wm.w_mpjpe(pw, gw).mean())
    s["wa_mpjpe_mm"] = 1000 * float(wm.wa_mpjpe(pw, gw).mean())
    s["drift_m_per_10m"] = wm.root_drift_per_10m(pw, gw, HIPS)
    s["travel_ratio"] = wm.travel_ratio(pw, gw, HIPS)
    flip = FLIP_23 if has_feet else COCO_FLIP
    s["flip_rate"] = float(wm.flipped(cam[valid, :j], g_cam[valid, :j], flip, HIPS).mean())
    if has_feet:
        run = _longest_run(valid)
        feet = world[run, FEET].reshape(-1, 2, 3, 3)
        g_feet = g_world[run, FEET].reshape(-1, 2, 3, 3)
        contact = gt["contact"][i][run]
        skate, gt_skate = wm.foot_skate(feet, contact), wm.foot_skate(g_feet, contact)
        s["foot_skate_mm"] = None if skate is None else 1000 * skate
        s["foot_skate_gt_mm"] = None if gt_skate is None else 1000 * gt_skate   # the GT's own (contact rule slack)
        pen, flo = wm.floor_contact_error(feet, g_feet, contact)
        s["penetration_cm"] = None if pen is None else 100 * pen
        s["float_cm"] = None if flo is None else 100 * flo
    return s


def _longest_run(valid: np.ndarray) -> slice:
    """The longest run of consecutive True frames (foot skate needs consecutive frames)."""
    best, start = (0, 0), None
    for t, v in enumerate(list(valid) + [False]):
        if v and start is None:
            start = t
        elif not v and start is not None:
            best = max(best, (t - start, start))
            start = None
    return slice(best[1], best[1] + best[0])
