"""fingers: the Anny rig's 30 finger-bone and 2 wrist rotations per track and frame, fitted to the `hands` landmarks.

models/fit/fingers.py does the maths: each hand's observation is aligned on the person's rest palm
(the track's phenotype from `fit`), its 15 finger joints get a curl and a spread within anatomical
limits, smoothed over time with a Gaussian window of `sigma_s` weighted by confidence, easing to the
rest pose where the hand is not seen. With `wrist` on, the wrist bone turns the fit's forearm onto the
observed palm (within limits, same smoothing), easing back to the fit's own wrist where the hand is not seen. An observation counts (weight = the hand flag) when its hand flag
reaches `min_presence`, the model's handedness does not contradict the arm it came from (probability
of the other side below 1 - `min_side_prob`), and the palm fits the rest palm rigidly
(`max_palm_residual`, a share of the wrist -> index knuckle length). `fit_export` puts these rotations on
the finger and wrist bones; with `hands.enabled=false` this artifact is empty and the fingers stay at rest.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import pandas as pd
import pyarrow as pa

from video2mesh.models.body.anny_body import N_BONES, pose_bones
from video2mesh.models.fit.fingers import (N_FINGER_BONES, SIDES, SUFFIX, palm_rotation, rest_hand, segment_directions,
                                           track_fingers, track_wrist, wrist_local)
from video2mesh.models.runners.hands import N_HAND
from video2mesh.pipeline.artifacts import Artifact, fixed, stack
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.stage import Chunk, Context, Stage

from .licence_free import load_body

log = logging.getLogger(__name__)


FINGERS = Artifact(
    "fingers",
    version=2,
    schema=pa.schema([
        ("frame", pa.int64()),
        ("track_id", pa.int32()),
        ("finger_rotations", fixed(N_FINGER_BONES * 3)),  # local axis-angle of finger_bones("left") then ("right"),
                                                          # the `fit` artifact's bone_rotations convention
        ("wrist_rotations", fixed(6)),         # wrist.L, wrist.R local axis-angle (the fit's own where unseen)
        ("weight", fixed(2)),                  # left, right: 1 = as observed, 0 = rest pose (not seen), between = easing
    ]),
    doc="Finger-bone rotations of the Anny rig per track and frame from the hand landmarks (licence-free path).",
)


@dataclass(frozen=True)
class FingersConfig:
    """Parameters of the finger fit."""

    sigma_s: Annotated[float, Range(0, 10)] = 0.05   # Gaussian smoothing window, seconds (0 = per frame); a hand
                                                     # that leaves view relaxes to rest over ~2 sigma
    min_presence: Annotated[float, Range(0, 1)] = 0.5   # hands.min_presence's meaning: weaker flags are not used
    min_side_prob: Annotated[float, Range(0, 1)] = 0.2  # drop a hand the model calls the other side with p > 1 - this
    max_palm_residual: Annotated[float, Range(0, 10)] = 0.25  # drop a hand whose palm does not fit the rest palm rigidly
    full_weight: Annotated[float, Range(0, 1, lo_open=True)] = 0.5  # window confidence that gives the full pose
    wrist: bool = True                # turn the wrist bones to the observed palms (false: the body fit's wrists)


def observations(rows: pd.DataFrame, rest, cfg: FingersConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(frames (M,), segment directions (M, 15, 3), palm rotations (M, 3, 3) rest model -> image axes,
    weights (M,)) of one hand's `hands` rows."""
    if rows.empty:
        return np.zeros(0, np.int64), np.zeros((0, 15, 3)), np.zeros((0, 3, 3)), np.zeros(0)
    world = stack(rows["world"], N_HAND * 3, np.float64).reshape(-1, N_HAND, 3)
    dirs, conf = np.zeros((len(rows), 15, 3)), rows.presence.to_numpy(np.float64).copy()
    palms = np.stack([palm_rotation(w, rest) for w in world])
    p_side = rows.right.to_numpy(np.float64) if rest.side == "right" else 1.0 - rows.right.to_numpy(np.float64)
    for k, w in enumerate(world):
        dirs[k], resid = segment_directions(w, rest)
        if resid > cfg.max_palm_residual:
            conf[k] = 0.0
    conf[(conf < cfg.min_presence) | (p_side < cfg.min_side_prob)] = 0.0
    return rows.frame.to_numpy(np.int64), dirs, palms, conf


def track_rows(frames: np.ndarray, hands: pd.DataFrame, rests: dict, fps: float, cfg: FingersConfig,
               forearm: dict[str, np.ndarray] | None = None, wrist_fit: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Finger rotations (N, 30, 3), wrist rotations (N, 2, 3) and weights (N, 2) of one track's frames (N,)
    from its `hands` rows. forearm: side -> (N, 3, 3) the fit's forearm rotations (rest model -> camera);
    wrist_fit (N, 2, 3): the fit's wrist rotations (kept where unseen; without forearm they stay as they are)."""
    n = len(frames)
    rots, weights = [], []
    wrists = np.zeros((n, 2, 3)) if wrist_fit is None else np.array(wrist_fit, np.float64, copy=True)
    for si, side in enumerate(SIDES):
        f, d, palms, c = observations(hands[hands.side == side].sort_values("frame"), rests[side], cfg)
        keep = np.isin(f, frames)       # a hand row of a frame the fit dropped has no body to go on
        f, d, palms, c = f[keep], d[keep], palms[keep], c[keep]
        r, w = track_fingers(frames, f, d, c, rests[side], cfg.sigma_s * fps, cfg.full_weight)
        rots.append(r)
        weights.append(w)
        if cfg.wrist and forearm is not None and len(f):
            pos = np.searchsorted(frames, f)
            local = np.stack([wrist_local(forearm[side][i], pr, rests[side]) for i, pr in zip(pos, palms)])
            wrists[:, si] = track_wrist(frames, f, local, c, wrists[:, si], cfg.sigma_s * fps, cfg.full_weight)
    return {"finger_rotations": np.concatenate(rots, 1), "wrist_rotations": wrists, "weight": np.stack(weights, 1)}


def compute(ctx: Context, cfg: FingersConfig, chunk: Chunk) -> pd.DataFrame:
    hands = ctx.input("hands")
    if hands.empty:
        return FINGERS.empty()
    import torch

    fit = ctx.input("fit", columns=["frame", "track_id", "phenotype", "bone_rotations", "global_orient", "transl"])
    body = load_body(ctx)
    wrist_idx = [body.bone_names.index("wrist" + SUFFIX[s]) for s in SIDES]
    out = []
    for tid, g in fit.sort_values(["track_id", "frame"]).groupby("track_id"):
        h = hands[hands.track_id == tid]
        if h.empty:
            continue
        with torch.no_grad():
            sk = body.skeleton(torch.as_tensor(stack(g["phenotype"].iloc[:1], 6, np.float64), dtype=body.dtype))
        heads, rr = sk.heads.double().cpu().numpy(), sk.rest_rotations.double().cpu().numpy()
        rests = {s: rest_hand(body.bone_names, heads, rr, s) for s in SIDES}
        frames, n = g.frame.to_numpy(np.int64), len(g)
        bone_rots = stack(g["bone_rotations"], N_BONES * 3, np.float64).reshape(n, N_BONES, 3)
        fore = [body.parents[w] for w in wrist_idx]
        glob = pose_bones(body, sk, bone_rots, stack(g["global_orient"], 3, np.float64), stack(g["transl"], 3, np.float64),
                          fore)["rotations"]
        forearm = {s: glob[:, i] for i, s in enumerate(SIDES)}
        res = track_rows(frames, h, rests, ctx.video.fps, cfg, forearm, bone_rots[:, wrist_idx])
        out.append(pd.DataFrame({"frame": frames, "track_id": np.full(n, tid, np.int32),
                                 "finger_rotations": list(res["finger_rotations"].reshape(n, -1).astype(np.float32)),
                                 "wrist_rotations": list(res["wrist_rotations"].reshape(n, -1).astype(np.float32)),
                                 "weight": list(res["weight"].astype(np.float32))}))
    ctx.advance(ctx.video.n_frames)
    return pd.concat(out, ignore_index=True) if out else FINGERS.empty()


# v2: wrist rotations (schema), the wrist takes the forearm twist
STAGE = Stage(name="fingers", version=2, config=FingersConfig, output=FINGERS, compute=compute,
              inputs=("probe", "hands", "fit"),
              doc="Anny finger-bone rotations per track fitted to the hand landmarks (licence-free path)")

__all__ = ["FINGERS", "FingersConfig", "N_FINGER_BONES", "STAGE", "track_rows"]
