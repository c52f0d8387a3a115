"""Finger motion on real videos (no 3D finger ground truth exists for them): how the hand landmarks were
found and how far the fitted finger bones land from them, with the fingers fitted vs at rest.

    python -m video2mesh.benchmarks.hands_real OUT/<video-stem> [...] [--json FILE]

Reads a licence-free run's `run.json` (its cached `hands`, `fingers` and `fit` artifacts) and prints
per track and hand:
- `seen`: frames whose hand flag reaches 0.5, of the frames where BlazePose saw the wrist; `palm`: share
  of those found through the palm detector fallback; `side_ok`: share whose model handedness agrees
  with the arm it came from (p > 0.5);
- `err2d`: median 2D distance of the finger joints that the finger bones move (thumb MCP/IP, the
  other fingers' PIP/DIP: 10 joints) between the Anny rig (the fit's camera, finger rotations as
  exported) and the hand model's 2D landmarks, after moving the rig's wrist onto the landmarks' wrist
  (the body fit's wrist error is not the hand's), as a share of the observed wrist -> middle knuckle
  length; `err2d_rest`: the same with the fingers and wrist as the body fit left them (the output before
  hands); `err2d_palm` / `_rest`: the same after the 2D similarity that best puts the rig's palm (wrist
  and four knuckles) on the observed one: the fingers' articulation alone;
- `dir3d` / `dir3d_rest`: median angle (degrees) between the rig's finger segments and the hand
  model's 3D segments, both in the palm's frame (the fit's own residual: limits, smoothing).
Only frames where the hand counts (flag >= 0.5) and the finger weight is 1 are scored. The hand
stage's speed is its wall time from run.json over the video's frames (machine load not controlled).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

# MediaPipe landmark -> the Anny bone whose head it is (per side suffix); MOVING: those that finger rotations move
HEAD_OF = {0: "wrist", 1: "finger1-1", 2: "finger1-2", 3: "finger1-3", 5: "finger2-1", 6: "finger2-2", 7: "finger2-3",
           9: "finger3-1", 10: "finger3-2", 11: "finger3-3", 13: "finger4-1", 14: "finger4-2", 15: "finger4-3",
           17: "finger5-1", 18: "finger5-2", 19: "finger5-3"}
MOVING = (2, 3, 6, 7, 10, 11, 14, 15, 18, 19)


def _read(run: dict, name: str) -> pd.DataFrame:
    parts = sorted(Path(run["stages"][name]["ref"]["path"]).glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def similarity(src: np.ndarray, dst: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """pts (K, 2) moved by the 2D similarity (rotation, scale, shift) that best takes src (P, 2) onto dst (P, 2)."""
    a, b = src - src.mean(0), dst - dst.mean(0)
    u, sv, vt = np.linalg.svd(a.T @ b)
    r = (u @ np.diag([1.0, np.sign(np.linalg.det(u @ vt))]) @ vt).T
    scale = sv.sum() / max((a ** 2).sum(), 1e-12)
    return (pts - src.mean(0)) @ r.T * scale + dst.mean(0)


def hand_scores(run: dict, body) -> list[dict]:
    """Rows of the module docstring's table for one run.json."""
    import torch

    from video2mesh.models.body.anny_body import N_BONES, pose_rig
    from video2mesh.models.fit import fingers as F
    from video2mesh.pipeline.artifacts import stack

    hands, fit, fing = _read(run, "hands"), _read(run, "fit"), _read(run, "fingers")
    w, h = run["size"]
    out = []
    for tid, g in fit.sort_values("frame").groupby("track_id"):
        n = len(g)
        rots = stack(g.bone_rotations, N_BONES * 3, np.float64).reshape(n, N_BONES, 3)
        fg = fing[fing.track_id == tid].set_index("frame").reindex(g.frame)
        with torch.no_grad():
            sk = body.skeleton(torch.as_tensor(stack(g.phenotype, 6, np.float64)[:1], dtype=body.dtype))
        heads_rest = sk.heads.double().numpy()
        rests = {s: F.rest_hand(body.bone_names, heads_rest, sk.rest_rotations.double().numpy(), s) for s in F.SIDES}
        have = fg.finger_rotations.notna().to_numpy()
        fr = np.zeros((n, F.N_FINGER_BONES, 3))
        if have.any():
            fr[have] = stack(fg.finger_rotations[have], F.N_FINGER_BONES * 3, np.float64).reshape(-1, F.N_FINGER_BONES, 3)
        wt, wr = np.zeros((n, 2)), rots[:, body.bone_index(["wrist.L", "wrist.R"])].copy()
        if have.any():
            wt[have] = stack(fg.weight[have], 2, np.float64)
            wr[have] = stack(fg.wrist_rotations[have], 6, np.float64).reshape(-1, 2, 3)
        posed = {}
        fitted = F.apply_fingers(rots, body.bone_names, g.frame.to_numpy(), g.frame.to_numpy(), fr, wr)
        for name, r in (("fit", fitted), ("rest", rots)):
            p = pose_rig(body, sk, r, stack(g.global_orient, 3, np.float64), stack(g.transl, 3, np.float64), vertices=False)
            f = g.focal_px.to_numpy(np.float64)[:, None, None]
            posed[name] = (p["heads"][..., :2] / np.maximum(p["heads"][..., 2:], 1e-3) * f + np.array([w / 2, h / 2]), p["rotations"])
        frame_pos = {int(f): i for i, f in enumerate(g.frame)}
        for si, side in enumerate(F.SIDES):
            hs = hands[(hands.track_id == tid) & (hands.side == side)]
            ok = hs[hs.presence >= 0.5]
            row = {"track": int(tid), "side": side, "attempted": len(hs), "seen": len(ok),
                   "palm": float((ok.source == "palm").mean()) if len(ok) else float("nan"),
                   "side_ok": float(((ok.right > 0.5) == (side == "right")).mean()) if len(ok) else float("nan")}
            idx = [body.bone_names.index(HEAD_OF[k] + F.SUFFIX[side]) for k in sorted(HEAD_OF)]
            lm_ids = sorted(HEAD_OF)
            moving = [lm_ids.index(k) for k in MOVING]
            errs = {"fit": [], "rest": []}
            errs_palm = {"fit": [], "rest": []}
            dirs = {"fit": [], "rest": []}
            for r in ok.itertuples(index=False):
                i = frame_pos.get(int(r.frame))
                if i is None or wt[i, si] < 0.999:
                    continue
                lm = np.asarray(r.landmarks, np.float64).reshape(21, 3)[:, :2]
                size = np.linalg.norm(lm[9] - lm[0])
                obs_dirs, _ = F.segment_directions(np.asarray(r.world, np.float64).reshape(21, 3), rests[side])
                for name in ("fit", "rest"):
                    uv, grot = posed[name]
                    pts = uv[i, idx]
                    pts = pts - pts[0] + lm[0]                       # wrist onto the landmarks' wrist
                    obs = lm[lm_ids]
                    errs[name].append(np.median(np.linalg.norm(pts[moving] - obs[moving], axis=1)) / size)
                    palm = [lm_ids.index(k) for k in (0, 5, 9, 13, 17)]
                    errs_palm[name].append(np.median(np.linalg.norm(similarity(pts[palm], obs[palm], pts)[moving] - obs[moving], axis=1)) / size)
                    fr_i = fr[i, 15 * si:15 * si + 15] if name == "fit" else rots[i, [body.bone_names.index(b) for b in F.finger_bones(side)]]
                    got = F.posed_directions(fr_i, rests[side])
                    dirs[name].append(np.degrees(np.median(np.arccos(np.clip((got * obs_dirs).sum(1), -1, 1)))))
            row.update({"scored": len(errs["fit"]),
                        "err2d": float(np.median(errs["fit"])) if errs["fit"] else float("nan"),
                        "err2d_rest": float(np.median(errs["rest"])) if errs["rest"] else float("nan"),
                        "err2d_palm": float(np.median(errs_palm["fit"])) if errs_palm["fit"] else float("nan"),
                        "err2d_palm_rest": float(np.median(errs_palm["rest"])) if errs_palm["rest"] else float("nan"),
                        "dir3d": float(np.median(dirs["fit"])) if dirs["fit"] else float("nan"),
                        "dir3d_rest": float(np.median(dirs["rest"])) if dirs["rest"] else float("nan")})
            out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path, help="published output folders (with run.json)")
    ap.add_argument("--json", type=Path, help="write the rows here")
    a = ap.parse_args(argv)
    from video2mesh.stages.licence_free import load_body

    body = load_body(None)
    rows = []
    cols = ("track", "side", "attempted", "seen", "palm", "side_ok", "scored", "err2d", "err2d_rest", "err2d_palm",
            "err2d_palm_rest", "dir3d", "dir3d_rest")
    print(f"{'video':32s} " + " ".join(f"{c:>10s}" for c in cols))
    for folder in a.folders:
        run = json.loads((folder / "run.json").read_text())
        hs = run["stages"]["hands"]
        fps = run["n_frames"] / hs["seconds"] if hs["status"] == "computed" and hs.get("seconds") else float("nan")   # cached: not timed
        for r in hand_scores(run, body):
            r = {"video": folder.name, **r, "hands_fps": fps}
            rows.append(r)
            print(f"{folder.name[:32]:32s} " + " ".join(f"{r[c]:>10.3f}" if isinstance(r[c], float) else f"{r[c]:>10}" for c in cols))
        print(f"  hands stage: {fps:.1f} frames/s ({run['n_frames']} frames, {run['stages']['hands'].get('seconds', 0):.1f} s, status "
              f"{run['stages']['hands']['status']})")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
