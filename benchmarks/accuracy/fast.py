"""Fast mode of the accuracy benchmark: no rendering, no BlazePose network.

A fast clip is a gt.npz (GT_FORMAT.md, made by the same retarget + camera code as a rendered clip, or by
`procedural_gt` for tests) and a stand-in video.mp4: plain frames of the right size and count with the
clip's and the noise settings' digest written on them, so its content digest (and so every cache key of
the run) differs per clip and per noise model. The keypoints come from the GT projected through the same
cameras, with noise modelled on BlazePose's errors (NoiseModel), and enter the pipeline's cache as
artifacts of the stages they replace:

1. `detect`: the GT boxes (present people) are written as the detect artifact at the key the runner
   computes for detect on this video (`Runner.stage_key("detect", {"probe": ...})`).
2. `tracks` and `tracklets` then run normally on those boxes (`Runner.run(video, until="tracklets")`).
3. `blazepose`: for every tracklet row, the GT person whose box overlaps most gives the noisy COCO-17
   keypoints and the hip-centred 3D landmarks, written with the BLAZEPOSE schema at the blazepose key
   (which hashes the tracklets key, so a changed tracker setting gives a new key, never a stale hit).
4. `camera_motion`: the homographies the GT floor induces between frames (what a perfect flow on the
   floor gives; the stand-in frames have no background), at the key the runner computes.
5. The normal run (flows.video_to_mesh.run_video) finds probe..blazepose and camera_motion cached and
   computes fit, world, fit_export, fit_report as for any video.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from video2mesh.models.body.anny_body import COCO_FLIP
from video2mesh.models.runners.blazepose import COCO_FROM_BLAZEPOSE, N_LANDMARKS
from video2mesh.pipeline.hashing import digest_obj
from video2mesh.stages.blazepose import BLAZEPOSE
from video2mesh.stages.detect import DETECTIONS

from .score import box_iou

# --- BlazePose's errors ---------------------------------------------------------------------------------
# Measured in issue 12's investigation of our BlazePose runner on real clips: median 2D keypoint error
# 6.2 px at a body size of ~450 px (1.38 % of the body size), 2D acceleration 7.0 px/frame^2.
MEDIAN_ERR_FRAC = 0.0138
ACCEL_FRAC = 0.0138 * 7.0 / 6.2


def ar1_rho(median_frac: float = MEDIAN_ERR_FRAC, accel_frac: float = ACCEL_FRAC) -> float:
    """Lag-1 correlation of AR(1) jitter giving both measured numbers.

    Per-axis sigma s makes the 2D error Rayleigh (median s sqrt(2 ln 2)); the second difference of AR(1)
    noise has per-axis variance s^2 (6 - 8 rho + 2 rho^2), its 2D norm mean s sqrt(pi/2) sqrt(that)."""
    s = median_frac / np.sqrt(2 * np.log(2))
    q = (accel_frac / (s * np.sqrt(np.pi / 2))) ** 2          # = 6 - 8 rho + 2 rho^2
    return float(np.clip((8 - np.sqrt(max(64 - 8 * (6 - q), 0.0))) / 4, 0.0, 0.99))


@dataclass(frozen=True)
class NoiseModel:
    """BlazePose-like errors, sizes as fractions of the person's 2D size (box diagonal).

    median_frac / rho: the measurements above. dropout / swap / world_err_m are assumptions, not
    measurements (BlazePose loses a keypoint now and then with a low visibility, and swaps left and right
    on some frames of side views); `perfect()` turns everything off."""

    median_frac: float = MEDIAN_ERR_FRAC
    rho: float = ar1_rho()
    dropout: float = 0.02          # chance a keypoint-frame is lost: visibility 0.05, error 10 % of size
    swap: float = 0.01             # chance a frame has left/right labels swapped
    world_err_m: float = 0.03      # per-axis sigma of the 3D (world landmark) jitter, metres
    seed: int = 0

    @staticmethod
    def perfect() -> "NoiseModel":
        return NoiseModel(median_frac=0.0, rho=0.0, dropout=0.0, swap=0.0, world_err_m=0.0)


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], rho: float) -> np.ndarray:
    """Unit-variance AR(1) noise along axis 0."""
    e = rng.standard_normal(shape)
    out = np.empty(shape)
    out[0] = e[0]
    for t in range(1, shape[0]):
        out[t] = rho * out[t - 1] + np.sqrt(1 - rho ** 2) * e[t]
    return out


def noisy_keypoints(uv: np.ndarray, cam: np.ndarray, visible: np.ndarray, noise: NoiseModel, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
    """One person's noisy keypoints: uv (T, 17, 2) px, cam (T, 17, 3) OpenCV metres, visible (T, 17).

    Returns (T, 17, 3) x, y, score and (T, 17, 3) hip-centred 3D metres (BlazePose world landmarks)."""
    t = len(uv)
    size = np.linalg.norm(np.ptp(uv, axis=1), axis=-1)[:, None, None]              # (T, 1, 1) px
    sigma = noise.median_frac / np.sqrt(2 * np.log(2))
    xy = uv + _ar1(rng, (t, 17, 2), noise.rho) * sigma * size
    score = np.where(visible, 0.95, 0.1)
    drop = rng.random((t, 17)) < noise.dropout
    xy[drop] += rng.standard_normal((int(drop.sum()), 2)) * 0.1 * size[:, 0][np.nonzero(drop)[0]]
    score[drop] = 0.05
    world = cam - cam[:, [11, 12]].mean(1, keepdims=True) + rng.standard_normal((t, 17, 3)) * noise.world_err_m
    swap = rng.random(t) < noise.swap
    xy[swap], score[swap], world[swap] = xy[swap][:, COCO_FLIP], score[swap][:, COCO_FLIP], world[swap][:, COCO_FLIP]
    return np.concatenate([xy, score[..., None]], -1), world


def blazepose_rows(gt: dict, tracklets: pd.DataFrame, noise: NoiseModel) -> pd.DataFrame:
    """The `blazepose` artifact for these tracklets: each row's keypoints from the GT person whose box
    overlaps the tracklet box most (no overlap: no row, as a lost person)."""
    rng = np.random.default_rng(noise.seed)
    n_p = gt["present"].shape[0]
    kps, worlds = zip(*[noisy_keypoints(gt["joints_2d"][p, :, :17].astype(np.float64), gt["joints_cam"][p, :, :17].astype(np.float64),
                                        gt["visible"][p, :, :17], noise, rng) for p in range(n_p)])
    rows = []
    for r in tracklets.itertuples(index=False):
        f = int(r.frame)
        iou = box_iou(np.array([[r.x1, r.y1, r.x2, r.y2]]), gt["bbox"][:, f])[0] * gt["present"][:, f]
        if iou.max() <= 0:
            continue
        p = int(iou.argmax())
        kp, world = kps[p][f], worlds[p][f]
        lm = np.zeros((N_LANDMARKS, 5))
        lm[COCO_FROM_BLAZEPOSE, :2], lm[COCO_FROM_BLAZEPOSE, 3] = kp[:, :2], kp[:, 2]
        lm[COCO_FROM_BLAZEPOSE, 4] = 1.0
        w33 = np.zeros((N_LANDMARKS, 3))
        w33[COCO_FROM_BLAZEPOSE] = world
        side = max(r.x2 - r.x1, r.y2 - r.y1)
        rows.append({"frame": f, "track_id": int(r.track_id), "keypoints": kp.reshape(-1).astype(np.float32),
                     "landmarks": lm.reshape(-1).astype(np.float32), "world": w33.reshape(-1).astype(np.float32),
                     "pose_score": np.float32(0.99), "roi": np.array([(r.x1 + r.x2) / 2, (r.y1 + r.y2) / 2, side, 0.0], np.float32),
                     "redetected": False})
    if not rows:
        return BLAZEPOSE.empty()
    df = pd.DataFrame(rows)
    df["frame"] = df["frame"].astype(np.int64)
    df["track_id"] = df["track_id"].astype(np.int32)
    return df


def detections(gt: dict) -> pd.DataFrame:
    """The `detect` artifact: every present GT person's box, score 0.9."""
    p, f = np.nonzero(gt["present"])
    b = gt["bbox"][p, f]
    order = np.lexsort((p, f))
    return pd.DataFrame({"frame": f[order].astype(np.int64), "x1": b[order, 0], "y1": b[order, 1], "x2": b[order, 2],
                         "y2": b[order, 3], "score": np.full(len(f), 0.9, np.float32),
                         "follower": np.int64(-1), "drifted": np.int64(-1)}).astype(
        {c: np.float32 for c in ("x1", "y1", "x2", "y2")})


def write_standin_video(path: Path, gt: dict, noise: NoiseModel) -> Path:
    """Grey frames of the clip's size and count, the GT + noise digest written on them (unique content)."""
    import cv2

    tag = digest_obj({"joints": digest_obj(gt["joints_2d"].round(3).tolist()), "noise": dataclasses.asdict(noise)})[:24]
    w, h, n = int(gt["width"]), int(gt["height"]), gt["present"].shape[1]
    frame = np.full((h, w, 3), 96, np.uint8)
    cv2.putText(frame, tag, (10, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(gt["fps"]), (w, h))
    for _ in range(n):
        vw.write(frame)
    vw.release()
    return path


def _write_artifact(runner, info, name: str, input_keys: dict, df: pd.DataFrame):
    """Write `df` as stage `name`'s finished artifact at the key the runner computes; one part."""
    stage = runner.stages[name]
    key = runner.stage_key(name, input_keys)
    d = runner.store.stage_dir(info.digest, name, key)
    if runner.store.ref(d) is None:
        with runner.store.claim(d):
            runner.store.write_part(d, 0, stage.output.to_table(df))
            runner.store.finish(d, stage.output, 1, {"stage": name, "key": key, "stage_version": stage.version,
                                                     "params": dataclasses.asdict(runner.config(name)),
                                                     "inputs": input_keys, "video_digest": info.digest,
                                                     "injected": "benchmarks.accuracy.fast"})
    return key


def inject(runner, video: Path, gt: dict, noise: NoiseModel) -> None:
    """Put the GT detections and the noisy keypoints into the cache for `video` (steps 1-3 above)."""
    info, probe_res = runner.probe_video(video)
    _write_artifact(runner, info, "detect", {"probe": probe_res.ref.key}, detections(gt))
    res = runner.run(video, until="tracklets")
    tracklets = runner.store.read_df(res["tracklets"].ref.path)
    _write_artifact(runner, info, "blazepose", {"probe": probe_res.ref.key, "tracklets": res["tracklets"].ref.key},
                    blazepose_rows(gt, tracklets, noise))
    if "camera_motion" in runner.stages:   # the stand-in frames have no background to measure: perfect flow
        _write_artifact(runner, info, "camera_motion", {"probe": probe_res.ref.key, "tracklets": res["tracklets"].ref.key},
                        camera_motion_rows(gt))


def camera_motion_rows(gt: dict) -> pd.DataFrame:
    """The `camera_motion` artifact a perfect flow on the floor would give: per frame the homography the
    floor plane (y = 0) induces between frames t-1 and t, K (R + t n^T / d) K^-1 with the relative
    motion (R, t) of the GT camera and the floor's normal n and distance d in camera t-1 (pixels,
    H[0,0] = 1; frame 0 invalid): a turn is a pure rotation, a travelling camera adds parallax."""
    k, r, tw = gt["K"], gt["R_wc"], gt["t_wc"]
    n = len(r)
    h = np.tile(np.eye(3), (n, 1, 1))
    rr = r[1:] @ np.swapaxes(r[:-1], 1, 2)
    tr = tw[1:] - np.einsum("tij,tj->ti", rr, tw[:-1])
    nc = r[:-1] @ np.array([0.0, 1.0, 0.0])
    dc = np.einsum("ti,ti->t", nc, tw[:-1])
    h[1:] = k @ (rr + tr[:, :, None] * nc[:, None, :] / dc[:, None, None]) @ np.linalg.inv(k)
    h /= h[:, :1, :1]
    return pd.DataFrame({"frame": np.arange(n, dtype=np.int64), "h": list(h.reshape(n, 9).astype(np.float32)),
                         "valid": np.arange(n) > 0, "n_points": np.zeros(n, np.int32), "residual_px": np.zeros(n, np.float32)})


def fast_clip(gt_path: Path, noise: NoiseModel) -> Path:
    """The stand-in video beside gt.npz for this noise model: `<clip>/fast-<digest>.mp4`."""
    from .groundtruth import read_gt

    gt = read_gt(gt_path)
    tag = digest_obj(dataclasses.asdict(noise))[:12]
    path = Path(gt_path).parent / f"fast-{tag}.mp4"
    if not path.exists():
        tmp = path.with_name(f".{path.name}.tmp.mp4")
        write_standin_video(tmp, gt, noise)
        tmp.replace(path)
        (path.with_suffix(".json")).write_text(json.dumps(dataclasses.asdict(noise), indent=1))
    return path
