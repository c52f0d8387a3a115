"""mesh: per track and frame, SMPL pose/shape, cameras, 3D/2D joints, uncertainty and the dynamics
head's extra poses (METHOD.md sections 2, 3, 5).

How it runs. One Parquet part holds `tracks_per_chunk` whole tracks, batched together through the
model. Time is streamed in windows of `window_frames`: only one window of inputs (features, 2D
keypoints, homographies) is in memory, and the unidirectional GRU carries each track's hidden state
from one window to the next, so the result equals one pass over the whole track. The per-track
median shape needs a whole track, hence whole tracks per part.

Which model. `model="vibe"` (default, until a trained checkpoint of ours exists): VIBE's released
generator in the `baseline` configuration, which reproduces VIBE; it has no dynamics head, so
`pose_prev`/`pose_next` are NaN. `model="v2m"`: our checkpoint (asset `v2m_model`); its own config
says which variant it is (full model, ablation, or VIBE zero-initialised). A full model built from
VIBE with zero-initialised u_t/d_t columns computes the same poses as `vibe`, with an untrained
dynamics head, so it is not offered as a silent substitute.

Outputs. Camera: `cam_crop` [s, tx, ty] is weak perspective in the network's crop (x_crop = s (X + tx)
in [-1, 1]); `cam_orig` [sx, sy, tx, ty] is VIBE's convert_crop_cam_to_orig_img, computed with the
crop actually fed to the network (side x crop_scale; VIBE's demo used the unscaled box here).
`trans` assumes a pinhole camera with the principal point at the image centre and focal length
`focal_length_px` (default sqrt(W^2 + H^2), about 53 degrees diagonal field of view, as CLIFF assumes
for unknown cameras): t_z = 2 f / (s crop_px), t_xy = [tx, ty] + 2 (box centre - image centre) /
(s crop_px), which makes the perspective projection agree with the weak-perspective one at the
body's depth. `joints3d`/`coco3d` are SMPL joints (per-frame betas) + trans, camera axes (x right,
y down, z forward), metres. `joints2d`/`coco2d` are the weak-perspective projection through
`cam_orig` (exactly what the network predicts), pixels. `pose_prev`/`pose_next`: the head's poses
for frames t - dt and t + dt, predicted at frame t (compare with `pose` of those frames).
`uncertainty`: mean over the 32 dimensions of the embedder's sigma for the frame's 2D pose.

Vertices are not stored: 6890 x 3 floats (83 KB) per frame and track would make this table ~100x
larger, and they are a deterministic function of (pose, betas_track or betas, trans) that export
recomputes with the same SMPL file in milliseconds per frame.
"""
from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from typing import Annotated, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from video2mesh.models.nets.embedder import EmbedderConfig, PoseEmbedder, normalize_coco13
from video2mesh.models.maths.geometry import homography_stacks
from video2mesh.models.nets.model import ModelConfig, V2MModel, from_vibe, random_vibe_gen_state_dict
from video2mesh.models.maths.rotations import rotmat_to_axis_angle
from video2mesh.models.body.smpl import SMPL
from video2mesh.pipeline.artifacts import Artifact, fixed, stack
from video2mesh.pipeline.assets import Asset
from video2mesh.pipeline.config import Range
from video2mesh.pipeline.errors import ConfigError, InputError
from video2mesh.pipeline.stage import Chunk, Context, Stage

log = logging.getLogger(__name__)

MESH = Artifact(
    "mesh",
    version=1,
    schema=pa.schema([
        ("frame", pa.int64()), ("track_id", pa.int32()),
        ("pose", fixed(72)), ("betas", fixed(10)), ("betas_track", fixed(10)),
        ("cam_crop", fixed(3)), ("cam_orig", fixed(4)), ("trans", fixed(3)),
        ("joints3d", fixed(72)), ("coco3d", fixed(51)), ("joints2d", fixed(48)), ("coco2d", fixed(34)),
        ("uncertainty", pa.float32()), ("pose_prev", fixed(72)), ("pose_next", fixed(72)),
    ]),
    doc="SMPL per track and frame: axis-angle pose, shape, cameras, joints (m, camera axes; px), uncertainty.",
)

_SMPL_SOURCE = "SMPL body model, smpl.is.tue.mpg.de (registration required)"
_SMPL_HOW = ("Register at https://smpl.is.tue.mpg.de, download 'SMPL for Python' (v1.1.0), and copy "
             "the {g} model .pkl from its models/ folder renamed to {f}.")
ASSETS = [
    Asset("vibe", "vibe_model_w_3dpw.pth.tar", "VIBE (Kocabas et al., CVPR 2020), github.com/mkocabas/VIBE",
          "non-commercial scientific research only (VIBE licence)",
          instructions="Run VIBE's scripts/prepare_data.sh (or download vibe_data.zip as it says) and "
                       "take data/vibe_data/vibe_model_w_3dpw.pth.tar.", used_by=("mesh",)),
    *[Asset(f"smpl_{g}", f"SMPL_{g.upper()}.pkl", _SMPL_SOURCE, "SMPL Model licence (non-commercial)",
            instructions=_SMPL_HOW.format(g=g, f=f"SMPL_{g.upper()}.pkl"), used_by=("mesh",))
      for g in ("neutral", "male", "female")],
    Asset("j_regressor_h36m", "J_regressor_h36m.npy", "SPIN / VIBE data (Human3.6M joint regressor)",
          "non-commercial research (SPIN data)",
          instructions="Take data/vibe_data/J_regressor_h36m.npy from VIBE's vibe_data.zip.", used_by=("evaluate",)),
    Asset("embedder", "pose_embedder.pt", "this project (Pr-VIPE embedder trained by `v2m train embedder`)",
          "same as this project's trained weights", instructions="Train it with the embedder training flow.",
          used_by=("mesh",)),
    Asset("v2m_model", "v2m_model.pt", "this project (mesh model checkpoint, config inside)",
          "same as this project's trained weights", instructions="Train or fine-tune it from VIBE.",
          used_by=("mesh",)),
]


@dataclass(frozen=True)
class MeshConfig:
    model: str = "vibe"             # "vibe" (released VIBE, baseline) or "v2m" (our checkpoint)
    gender: str = "neutral"
    uncertainty: bool = True        # run the embedder for per-frame sigma (a v2m model with u_t needs it anyway)
    tracks_per_chunk: Annotated[int, Range(1, 4096)] = 16  # tracks per Parquet part and per batch
    window_frames: Annotated[int, Range(1, 1_000_000)] = 256  # frames per streamed window (bounds memory)
    crop_scale: Annotated[float, Range(0, 10, lo_open=True)] = 1.1  # must equal the features stage's crop scale (VIBE demo: 1.1)
    focal_length_px: Annotated[float, Range(0, None)] = 0.0  # 0: sqrt(W^2 + H^2) of the video


def assets(cfg: MeshConfig) -> tuple[str, ...]:
    names = [f"smpl_{cfg.gender}", "v2m_model" if cfg.model == "v2m" else "vibe"]
    if cfg.uncertainty or cfg.model == "v2m":
        names.append("embedder")
    return tuple(names)


def plan(ctx: Context, cfg: MeshConfig) -> list[Chunk]:
    _check(cfg)
    ids = ctx.input("tracklets", columns=["track_id"])["track_id"]
    n = int(ids.max()) + 1 if len(ids) else 0
    # Chunks are ranges of track ids (whole tracks), not frames: see the module docstring.
    return [Chunk(i, s, min(s + cfg.tracks_per_chunk, n)) for i, s in enumerate(range(0, n, cfg.tracks_per_chunk))]


def _check(cfg: MeshConfig) -> None:
    if cfg.model not in ("vibe", "v2m"):
        raise ConfigError(f"mesh.model must be 'vibe' or 'v2m', got {cfg.model!r}")
    if cfg.gender not in ("neutral", "male", "female"):
        raise ConfigError(f"mesh.gender must be neutral, male or female, got {cfg.gender!r}")
    if cfg.tracks_per_chunk < 1 or cfg.window_frames < 1:
        raise ConfigError("mesh.tracks_per_chunk and mesh.window_frames must be >= 1")


class Net(NamedTuple):
    model: V2MModel
    embedder: PoseEmbedder | None
    smpl: SMPL
    device: torch.device


def load_vibe_checkpoint(path) -> dict:
    """VIBE's .pth.tar. It was written with torch 1.x and may hold numpy scalars (its 'performance'),
    which the weights-only loader refuses; the file is the one the user put there from VIBE's release."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        log.warning("%s holds non-tensor objects; loading it with full unpickling (trusted VIBE release file)", path)
        return torch.load(path, map_location="cpu", weights_only=False)


def write_random_vibe(path, seed: int = 0):
    """VIBE's generator checkpoint layout ({'gen_state_dict', 'epoch'}) with random weights, for tests
    and benchmarks: the compute cost is VIBE's, the poses mean nothing."""
    torch.save({"gen_state_dict": random_vibe_gen_state_dict(seed), "epoch": 0}, path)
    return path


def write_random_embedder(path, seed: int = 0, cfg: EmbedderConfig | None = None):
    """Our Pr-VIPE embedder checkpoint (config inside) with random weights, for tests and benchmarks."""
    torch.manual_seed(seed)
    return PoseEmbedder(cfg or EmbedderConfig()).eval().save(path)


def write_random_v2m(path, seed: int = 0, cfg: ModelConfig | None = None):
    """Our mesh model checkpoint (config inside; the full model by default) with random weights."""
    torch.manual_seed(seed)
    return V2MModel(cfg or ModelConfig()).eval().save(path)


def load_net(ctx: Context, cfg: MeshConfig) -> Net:
    device = torch.device(ctx.device)
    if cfg.model == "vibe":
        try:
            model = from_vibe(load_vibe_checkpoint(ctx.weight("vibe")))
        except ValueError as e:
            raise InputError(f"{ctx.weight('vibe')} is not VIBE's generator checkpoint: {e}") from e
    else:
        model = V2MModel.from_checkpoint(ctx.weight("v2m_model"))
    embedder = None
    if cfg.uncertainty or model.cfg.use_static:
        embedder = PoseEmbedder.from_checkpoint(ctx.weight("embedder")).to(device).eval()
    smpl = SMPL(ctx.weight(f"smpl_{cfg.gender}"), gender=cfg.gender).to(device)
    return Net(model.to(device).eval(), embedder, smpl, device)


def homography_stack(history: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """history (14, 9) of the frames before, h (T, 9) -> d (T, 135) = [H_{t-14}, ..., H_t], new history."""
    allh = np.concatenate([history, h])                               # (14 + T, 9)
    return homography_stacks(allh)[len(history):], allh[-14:]


def crop_to_orig_cam(cam: np.ndarray, cx: np.ndarray, cy: np.ndarray, crop_px: np.ndarray,
                     width: int, height: int) -> np.ndarray:
    """VIBE's convert_crop_cam_to_orig_img: (N, 3) [s, tx, ty] -> (N, 4) [sx, sy, tx, ty] (image NDC)."""
    hw, hh = width / 2.0, height / 2.0
    sx = cam[:, 0] * crop_px / width
    sy = cam[:, 0] * crop_px / height
    return np.stack([sx, sy, (cx - hw) / hw / sx + cam[:, 1], (cy - hh) / hh / sy + cam[:, 2]], 1)


def camera_translation(cam: np.ndarray, cx: np.ndarray, cy: np.ndarray, crop_px: np.ndarray,
                       width: int, height: int, focal_px: float) -> np.ndarray:
    """(N, 3) weak-perspective crop camera -> (N, 3) translation (metres) for a pinhole camera."""
    s = np.maximum(cam[:, 0], 1e-6) * crop_px / 2                      # pixels per metre at the body
    return np.stack([cam[:, 1] + (cx - width / 2) / s, cam[:, 2] + (cy - height / 2) / s, focal_px / s], 1)


def project_orig(x: np.ndarray, cam_orig: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, J, 3) SMPL-space points, (N, 4) orig camera -> (N, J, 2) pixels."""
    u = (cam_orig[:, None, 0] * (x[..., 0] + cam_orig[:, None, 2]) + 1) * width / 2
    v = (cam_orig[:, None, 1] * (x[..., 1] + cam_orig[:, None, 3]) + 1) * height / 2
    return np.stack([u, v], -1)


def _rows(ctx: Context, name: str, columns: list[str], t0: int, t1: int, tracks: tuple[int, int]) -> pd.DataFrame:
    filters = [("frame", ">=", t0), ("frame", "<", t1), ("track_id", ">=", tracks[0]), ("track_id", "<", tracks[1])]
    return ctx.input(name, columns=["frame", "track_id", *columns], filters=filters)


def _align(rows: pd.DataFrame, table: pd.DataFrame) -> np.ndarray:
    """Position in `table` of each (frame, track_id) of `rows`, -1 where absent."""
    index = pd.MultiIndex.from_arrays([table["frame"].to_numpy(), table["track_id"].to_numpy()])
    return index.get_indexer(pd.MultiIndex.from_arrays([rows["frame"].to_numpy(), rows["track_id"].to_numpy()]))


def compute(ctx: Context, cfg: MeshConfig, chunk: Chunk) -> pd.DataFrame:
    _check(cfg)
    if chunk.stop <= chunk.start:
        return MESH.empty()
    net: Net = ctx.memo("mesh.net", lambda: load_net(ctx, cfg))
    tracks = (chunk.start, chunk.stop)
    boxes = ctx.input("tracklets", columns=["frame", "track_id", "cx", "cy", "side"],
                      filters=[("track_id", ">=", chunk.start), ("track_id", "<", chunk.stop)])
    boxes = boxes.sort_values(["track_id", "frame"], kind="stable").reset_index(drop=True)
    w, h = ctx.video.width, ctx.video.height
    focal = cfg.focal_length_px or float(np.hypot(w, h))
    hidden: dict[int, torch.Tensor] = {}                                # track -> (L, H)
    hist: dict[int, np.ndarray] = {}                                    # track -> last 14 homographies
    out: list[pd.DataFrame] = []
    f_lo, f_hi = (int(boxes.frame.min()), int(boxes.frame.max()) + 1) if len(boxes) else (0, 0)
    for t0 in range(f_lo, f_hi, cfg.window_frames):
        t1 = min(t0 + cfg.window_frames, f_hi)
        rows = boxes[(boxes.frame >= t0) & (boxes.frame < t1)]
        feats = _rows(ctx, "features", ["feature"], t0, t1, tracks)
        pos = _align(rows, feats)
        if (pos < 0).any():
            log.warning("mesh: %d track frames in [%d, %d) have no image feature; skipped", int((pos < 0).sum()), t0, t1)
            rows, pos = rows[pos >= 0], pos[pos >= 0]
        if not len(rows):
            continue
        rows = rows.reset_index(drop=True)
        feat = stack(feats["feature"], 2048)[pos]
        res = _window(ctx, cfg, net, rows, feat, t0, t1, tracks, hidden, hist)
        out.append(_finish_rows(rows, res, cfg, w, h, focal))
    ctx.advance(chunk.stop - chunk.start)
    if not out:
        return MESH.empty()
    df = pd.concat(out, ignore_index=True).sort_values(["track_id", "frame"], kind="stable").reset_index(drop=True)
    med = {t: np.median(np.stack(g.to_numpy()), 0) for t, g in df.groupby("track_id")["betas"]}
    df["betas_track"] = [med[t] for t in df["track_id"]]
    return df[MESH.schema.names]


@torch.no_grad()
def _window(ctx, cfg, net: Net, rows: pd.DataFrame, feat: np.ndarray, t0, t1, tracks, hidden, hist) -> dict:
    """Run one window for all tracks present in it; update the carried GRU states and histories."""
    mcfg, dev = net.model.cfg, net.device
    n = len(rows)
    mu = sigma = None
    if net.embedder is not None:
        kp_df = _rows(ctx, "pose2d", ["keypoints"], t0, t1, tracks)
        pos = _align(rows, kp_df)
        kp = np.full((n, 51), np.nan, np.float32)
        kp[pos >= 0] = stack(kp_df["keypoints"], 51)[pos[pos >= 0]]
        kp_t = torch.as_tensor(kp.reshape(n, 17, 3), device=dev)
        ok = torch.isfinite(kp_t).all(-1).all(-1)
        mu = torch.zeros(n, net.embedder.cfg.embed_dim, device=dev)
        sigma = torch.full_like(mu, float("nan"))
        if ok.any():
            mu[ok], sigma[ok] = net.embedder(normalize_coco13(kp_t[ok]))
    d = None
    if mcfg.use_dynamic:
        h_df = _rows(ctx, "homography", ["h", "valid"], t0, t1, tracks)
        pos = _align(rows, h_df)
        hs = np.tile(np.eye(3, dtype=np.float32).reshape(1, 9), (n, 1))
        good = pos >= 0
        good[good] = h_df["valid"].to_numpy()[pos[good]]
        hs[good] = stack(h_df["h"], 9)[pos[good]]
        d = np.zeros((n, 135), np.float32)
    # Pad tracks to (n_tracks, T, C), right-aligned sequences of their own lengths.
    groups = [np.flatnonzero(rows.track_id.to_numpy() == t) for t in pd.unique(rows.track_id)]
    tids = [int(rows.track_id.iloc[g[0]]) for g in groups]
    if d is not None:
        for t, g in zip(tids, groups):
            d[g], hist[t] = homography_stack(hist.get(t, np.tile(np.eye(3, dtype=np.float32).reshape(1, 9), (14, 1))), hs[g])
    lengths = torch.tensor([len(g) for g in groups])
    tmax = int(lengths.max())
    index = torch.full((len(groups), tmax), -1, dtype=torch.long)
    for i, g in enumerate(groups):
        index[i, :len(g)] = torch.as_tensor(g)
    valid = index >= 0

    def padded(x: torch.Tensor) -> torch.Tensor:                         # (n, C) -> (n_tracks, T, C)
        p = x.new_zeros(len(groups), tmax, x.shape[-1])
        p[valid] = x[index[valid]]
        return p

    f = padded(torch.as_tensor(feat, device=dev))
    # A frame without a 2D pose gets the embedder's prior N(0, I) as its static feature: no information.
    u = padded(torch.cat([mu, torch.nan_to_num(sigma, nan=1.0)], -1)) if mcfg.use_static else None
    dd = padded(torch.as_tensor(d, device=dev)) if d is not None else None
    h0 = torch.stack([hidden.get(t, torch.zeros(mcfg.gru_layers, mcfg.gru_hidden, device=dev)) for t in tids], 1)
    with torch.autocast("cuda", enabled=dev.type == "cuda"):
        o = net.model(f, u, dd, h0=h0, lengths=lengths)
    for i, t in enumerate(tids):
        hidden[t] = o.hidden[:, i].float()
    vidx = valid.to(dev)
    order = index[valid].argsort()                                       # padded order -> row order
    take = lambda x: x[vidx].float()[order.to(dev)] if x is not None else None  # noqa: E731
    rot, betas, cam = take(o.rotmat), take(o.betas), take(o.cam)
    body = net.smpl(betas, rot)
    aa = lambda r: rotmat_to_axis_angle(r).reshape(n, 72).cpu().numpy() if r is not None else np.full((n, 72), np.nan, np.float32)  # noqa: E731
    return {
        "pose": aa(rot), "betas": betas.cpu().numpy(), "cam": cam.cpu().numpy(),
        "joints": body.joints24.cpu().numpy(), "coco": body.coco17.cpu().numpy(),
        "pose_prev": aa(take(o.rotmat_prev)), "pose_next": aa(take(o.rotmat_next)),
        "uncertainty": sigma.mean(-1).cpu().numpy() if sigma is not None else np.full(n, np.nan, np.float32),
    }


def _finish_rows(rows: pd.DataFrame, r: dict, cfg: MeshConfig, w: int, h: int, focal: float) -> pd.DataFrame:
    cx, cy = rows.cx.to_numpy(np.float64), rows.cy.to_numpy(np.float64)
    crop = rows.side.to_numpy(np.float64) * cfg.crop_scale
    cam = r["cam"].astype(np.float64)
    cam_orig = crop_to_orig_cam(cam, cx, cy, crop, w, h)
    trans = camera_translation(cam, cx, cy, crop, w, h, focal)
    n = len(rows)
    cols = {
        "frame": rows.frame.to_numpy(np.int64), "track_id": rows.track_id.to_numpy(np.int32),
        "pose": r["pose"], "betas": r["betas"], "betas_track": r["betas"], "cam_crop": cam, "cam_orig": cam_orig,
        "trans": trans, "joints3d": (r["joints"] + trans[:, None]).reshape(n, 72),
        "coco3d": (r["coco"] + trans[:, None]).reshape(n, 51),
        "joints2d": project_orig(r["joints"], cam_orig, w, h).reshape(n, 48),
        "coco2d": project_orig(r["coco"], cam_orig, w, h).reshape(n, 34),
        "uncertainty": r["uncertainty"].astype(np.float32), "pose_prev": r["pose_prev"], "pose_next": r["pose_next"],
    }
    return pd.DataFrame({k: (list(v.astype(np.float32)) if isinstance(v, np.ndarray) and v.ndim == 2 else v)
                         for k, v in cols.items()})


STAGE = Stage(name="mesh", version=1, config=MeshConfig, output=MESH, compute=compute,
              inputs=("probe", "tracklets", "features", "pose2d", "homography"), assets=assets, plan=plan,
              doc="SMPL motion per track: temporal model streamed over whole tracks, SMPL joints, cameras")
