"""World-frame quality of published licence-free outputs (no ground truth): travel, jitter, skate, floor.

    python -m video2mesh.benchmarks.world_real OUT/<video-stem> [...] [--json FILE]

Reads every `track_*_anny.npz` (fit_export) under the given folders and prints per track:
frames; root path length and net horizontal displacement (m); median / p99 acceleration of the 17
COCO keypoints in the file's frame (mm/frame^2, root motion included: what a world-frame metric sees);
foot skate: mean horizontal step of each foot's midpoint (feet3d) over frames where that foot is in
contact at t-1 and t (mm/frame); floor: mean |distance| of the lowest foot point to the floor plane
over contact frames (float, cm) and the deepest point under it over all frames (penetration, cm).
Run it on a `--set world.frame=camera` output for the "before" numbers (camera space, floor plane as
seen from the first frame).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def track_metrics(d: dict) -> dict[str, float]:
    """Numbers of one npz (a dict of arrays, see the module docstring)."""
    kp = d["keypoints3d"].astype(np.float64)
    root = d["joints"][:, 0].astype(np.float64)
    n_plane = d["floor"][:3].astype(np.float64)
    up = n_plane / np.linalg.norm(n_plane)
    acc = np.linalg.norm(kp[2:] - 2 * kp[1:-1] + kp[:-2], axis=-1) * 1000 if len(kp) > 2 else np.zeros((0, 17))
    step = np.diff(root, axis=0)
    step -= (step @ up)[:, None] * up
    net = root[-1] - root[0]
    net -= (net @ up) * up
    feet = d["feet3d"].astype(np.float64).reshape(len(kp), 2, 3, 3)
    mid = feet.mean(2)
    dm = np.diff(mid, axis=0)
    dm -= (dm @ up)[..., None] * up
    c = d["contact"].astype(bool)
    both = c[1:] & c[:-1]
    skate = float((np.linalg.norm(dm, axis=-1) * both).sum() / max(both.sum(), 1) * 1000)
    dist = feet @ n_plane + float(d["floor"][3])                 # (T, 2, 3) signed distance to the floor
    low = dist.min(2)
    return {
        "frames": int(len(kp)), "frame_space": str(d.get("frame_space", "camera")),
        "root_path_m": float(np.linalg.norm(step, axis=1).sum()), "root_net_m": float(np.linalg.norm(net)),
        "accel_median_mm": float(np.median(acc)) if acc.size else float("nan"),
        "accel_p99_mm": float(np.percentile(acc, 99)) if acc.size else float("nan"),
        "contact_share": float(c.mean()), "skate_mm": skate,
        "float_cm": float(np.abs(low[c]).mean() * 100) if c.any() else float("nan"),
        "penetration_cm": float(max(0.0, -dist.min()) * 100),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    rows = []
    for folder in a.folders:
        for f in sorted(folder.glob("track_*_anny.npz")):
            with np.load(f) as z:
                rows.append({"video": folder.name, "track": f.stem, **track_metrics(dict(z))})
    cols = ["frames", "frame_space", "root_path_m", "root_net_m", "accel_median_mm", "accel_p99_mm", "contact_share",
            "skate_mm", "float_cm", "penetration_cm"]
    print(" | ".join(["video", "track"] + cols))
    for r in rows:
        print(" | ".join([r["video"], r["track"]] + [f"{r[k]:.3g}" if isinstance(r[k], float) else str(r[k]) for k in cols]))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
