"""Temporal quality of finished licence-free runs on real videos (no ground truth).

    python -m video2mesh.benchmarks.motion_quality OUT [--json FILE]

OUT is a `v2m run ... --out OUT` folder; for each `OUT/<stem>/run.json` this reads the `blazepose` and
`fit` artifacts from the run's cache and prints, per video and track:
- 2D acceleration of the fit's input keypoints (px/frame^2, median and p99 over visible keypoints and
  frames): `raw` = BlazePose's own keypoints, `input` = what the fit saw (smoothed; raw before it existed);
- 3D joint acceleration of the fitted COCO-17 keypoints (camera space, mm/frame^2, median and p99);
- reprojection residual against BlazePose's raw keypoints (px, visibility >= 0.3, median over frames
  of the per-frame mean; per frame the better of the two left/right labellings, so a fixed flip
  does not count as an error);
- the same residual of the published file: the npz's world-frame `keypoints3d` projected through its own
  exported camera (cam_R, cam_t, cam_K: what an overlay or a DCC camera shows), when the npz has one;
- flips: frames whose labels the fit exchanged (temporal fix + the fit's own check).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from video2mesh.models.body.anny_body import COCO_FLIP
from video2mesh.pipeline.artifacts import stack


def _accel(x: np.ndarray, ok: np.ndarray | None = None) -> np.ndarray:
    """Norms of second differences of x (T, K, D) over frames where all three samples are ok (T, K)."""
    a = np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1)
    if ok is not None:
        a = a[ok[2:] & ok[1:-1] & ok[:-2]]
    return a.ravel()


def _residual(reproj: np.ndarray, raw: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """(T,) per-frame mean distance (px) of reproj (T, 17, 2) to raw (T, 17, 2+) over ok (T, 17) keypoints,
    the better of the two left/right labellings."""
    per_frame = []
    for lab in (np.arange(17), COCO_FLIP):
        err = np.linalg.norm(reproj[:, lab] - raw[..., :2], axis=-1)
        per_frame.append((err * ok).sum(-1) / np.maximum(ok.sum(-1), 1))
    return np.minimum(*per_frame)


def exported_pixels(npz: dict, frames: np.ndarray) -> np.ndarray | None:
    """(T, 17, 2) the npz's keypoints3d at video `frames` projected through its exported camera (its
    camera_note's recipe), or None when the file has no camera intrinsics (before fit_export v8)."""
    if "cam_K" not in npz:
        return None
    idx = np.searchsorted(npz["frame"], frames)
    x = np.einsum("tij,tkj->tki", npz["cam_R"][idx], npz["keypoints3d"][idx].astype(np.float64)) + npz["cam_t"][idx, None]
    uvw = np.einsum("ij,tkj->tki", npz["cam_K"], x * [1.0, -1.0, -1.0])
    return uvw[..., :2] / uvw[..., 2:]


def track_quality(bp: pd.DataFrame, fit: pd.DataFrame, npz: dict | None = None) -> dict:
    """Numbers of one track: bp and fit rows of the same track, sorted by frame, same frames; `npz` the
    track's published .npz (arrays by name), if any."""
    raw = stack(bp["keypoints"], 51).reshape(-1, 17, 3)
    ok = raw[..., 2] >= 0.3
    cols = fit.columns
    inp = stack(fit["keypoints_input"], 51).reshape(-1, 17, 3) if "keypoints_input" in cols else raw
    reproj = stack(fit["keypoints"], 51).reshape(-1, 17, 3)[..., :2]
    k3d = stack(fit["keypoints3d"], 51).reshape(-1, 17, 3)
    resid = _residual(reproj, raw, ok)
    exported = exported_pixels(npz, fit["frame"].to_numpy()) if npz is not None else None
    resid_export = _residual(exported, raw, ok) if exported is not None else np.full(1, np.nan)
    a2raw, a2in, a3 = _accel(raw[..., :2], ok), _accel(inp[..., :2], ok), _accel(k3d) * 1000.0
    q = lambda a, p: float(np.percentile(a, p)) if len(a) else float("nan")  # noqa: E731
    flips = int(fit["swapped"].sum()) + (int(fit["flipped_input"].sum()) if "flipped_input" in cols else 0)
    return {"frames": len(fit), "accel2d_raw_med": q(a2raw, 50), "accel2d_raw_p99": q(a2raw, 99),
            "accel2d_input_med": q(a2in, 50), "accel2d_input_p99": q(a2in, 99),
            "accel3d_mm_med": q(a3, 50), "accel3d_mm_p99": q(a3, 99),
            "reproj_raw_px_med": float(np.median(resid)), "reproj_raw_px_mean": float(resid.mean()),
            "reproj_export_px_med": float(np.median(resid_export)), "flip_frames": flips}


def run_quality(run_dir: Path) -> dict[int, dict]:
    run = json.loads((run_dir / "run.json").read_text())
    st = run["stages"]
    read = lambda name: pd.concat([pd.read_parquet(p) for p in sorted(Path(st[name]["ref"]["path"]).glob("part-*.parquet"))])  # noqa: E731
    bp = read("blazepose")
    fit = read("fit")
    out = {}
    for tid, f in fit.sort_values(["track_id", "frame"]).groupby("track_id"):
        b = bp[bp["track_id"] == tid].set_index("frame").loc[f["frame"].to_numpy()].reset_index()
        npz_path = run_dir / f"track_{int(tid):03d}_anny.npz"
        npz = dict(np.load(npz_path)) if npz_path.exists() else None
        out[int(tid)] = track_quality(b, f.reset_index(drop=True), npz)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    rows = {}
    for rj in sorted(Path(a.out).glob("*/run.json")):
        for tid, q in run_quality(rj.parent).items():
            rows[f"{rj.parent.name}/track{tid}"] = q
    keys = ["frames", "accel2d_raw_med", "accel2d_raw_p99", "accel2d_input_med", "accel2d_input_p99",
            "accel3d_mm_med", "accel3d_mm_p99", "reproj_raw_px_med", "reproj_raw_px_mean", "reproj_export_px_med",
            "flip_frames"]
    print(f"{'track':<42}" + "".join(f"{k:>19}" for k in keys))
    for name, q in rows.items():
        print(f"{name:<42}" + "".join(f"{q[k]:>19.2f}" if isinstance(q[k], float) else f"{q[k]:>19}" for k in keys))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
