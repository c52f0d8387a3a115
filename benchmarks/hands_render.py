"""Finger accuracy against known finger poses: an Anny body rendered by Blender with its finger bones set,
close to its left hand, then the hand stage's search (models/runners/hands.py via stages.hands.find_hand)
and the finger solve (models/fit/fingers.py), scored against the poses it was rendered with.

    python -m video2mesh.benchmarks.hands_render [--frames 24] [--seed 0] [--json FILE] [--work DIR]

Why a render: the shared mocap has no finger motion (CMU's LFingers/RFingers channels are constant, its
single thumb joint is noise; the Bandai clips have no finger joints), and no real clip here has finger
ground truth. Each frame draws every finger joint's curl uniformly inside 90% of its limits (spread in
+-90% of its half-range); the camera looks at the left hand from 45 cm, front-left, 480x480 px, fx 600
(Blender's workbench render: the hand is flat-shaded in one clothing colour, not skin: a harder input
than a photo for the hand model, which was trained on real hands). The hand ROI is seeded as the
pipeline seeds it, from three points where BlazePose puts them (the rig's wrist, index and pinky
knuckles, projected): no BlazePose run here.

Prints per frame and in total: the hand flag, the finger-joint position error (mm, the 10 joints the
finger bones move: thumb MCP/IP, the other fingers' PIP/DIP, plus the 5 fingertips 2 cm along the last
bone, in the hand's own frame) of the solve and of the rest pose (what the output was before hands),
and the mean joint angle error (degrees) of the solve and of the rest pose.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from video2mesh.models.body.anny_body import MODEL_TO_YUP, N_BONES, pose_rig
from video2mesh.models.fit import fingers as F

TIP_M = 0.02     # fingertip marker: this far along each finger's last bone from its head


def random_pose(rest: F.RestHand, rng: np.random.Generator, share: float = 0.9) -> np.ndarray:
    """(15, 3) finger rotations: curl and spread per joint drawn inside `share` of the limits."""
    rot = np.zeros((15, 3))
    for c in range(5):
        limits = F.THUMB_LIMITS_DEG if c == 0 else F.FINGER_LIMITS_DEG
        for j in range(3):
            k = 3 * c + j
            d = rest.dirs[k]
            p = rest.palm_side - (rest.palm_side @ d) * d
            p /= np.linalg.norm(p)
            lo, hi, sp = np.radians(limits[j]) * share
            rot[k] = rng.uniform(lo, hi) * np.cross(d, p) + rng.uniform(-sp, sp) * p
    return rot


def hand_points(body, sk, rots: np.ndarray, side: str) -> np.ndarray:
    """(15, 3) metres: the 10 moved joints and 5 fingertips of one hand in the rest model's axes with the
    body at rest elsewhere (so two poses compare in the hand's own frame)."""
    names = F.finger_bones(side)
    full = np.zeros((1, N_BONES, 3))
    full[0, [body.bone_names.index(n) for n in names]] = rots
    rig = pose_rig(body, sk, full, np.zeros((1, 3)), np.zeros((1, 3)), vertices=False)
    heads, g = rig["heads"][0], rig["rotations"][0]
    rr = sk.rest_rotations.double().numpy()
    moved = [body.bone_names.index(n) for n in names if n.endswith(("-2" + F.SUFFIX[side], "-3" + F.SUFFIX[side]))]
    last = [body.bone_names.index(n) for n in names if n.endswith("-3" + F.SUFFIX[side])]
    tips = np.stack([heads[b] + TIP_M * (g[b] @ rr[b][:, 1]) for b in last])
    return np.concatenate([heads[moved], tips])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--work", type=Path, help="keep the rendered frames here")
    a = ap.parse_args(argv)

    import cv2
    import torch

    from video2mesh.benchmarks.accuracy.cameras import look_at
    from video2mesh.benchmarks.accuracy.scene import region_uv, render_frames
    from video2mesh.models.body.anny_keypoints import dominant_bones
    from video2mesh.models.runners.hands import Hands
    from video2mesh.pipeline.assets import AssetRegistry
    from video2mesh.stages.hands import HandsConfig, find_hand
    from video2mesh.stages.licence_free import HAND_ASSETS, load_body

    body = load_body(None)
    with torch.no_grad():
        sk = body.skeleton(torch.full((1, 6), 0.5, dtype=body.dtype))
    rest = F.rest_hand(body.bone_names, sk.heads.double().numpy(), sk.rest_rotations.double().numpy(), "left")
    rng = np.random.default_rng(a.seed)
    gts = np.stack([random_pose(rest, rng) for _ in range(a.frames)])
    idx = [body.bone_names.index(n) for n in F.finger_bones("left")]
    rots = np.zeros((a.frames, N_BONES, 3))
    rots[:, idx] = gts
    orient = np.tile(Rotation.from_matrix(MODEL_TO_YUP).as_rotvec(), (a.frames, 1))   # model -> world Y up
    posed = pose_rig(body, sk, rots, orient, np.zeros((a.frames, 3)))
    lift = -posed["vertices"][..., 1].min()
    verts, heads = posed["vertices"] + [0, lift, 0], posed["heads"] + [0, lift, 0]
    wi, ii, pi = (body.bone_names.index(n) for n in ("wrist.L", "finger2-1.L", "finger5-1.L"))
    centre = heads[0, [wi, ii, pi]].mean(0)
    eye = centre + 0.45 * np.array([np.sqrt(0.5), 0.1, np.sqrt(0.5)])     # front-left of the body (it faces +z)
    r_wc, t_wc = look_at(eye, centre)
    size, fx = (480, 480), 600.0
    k = np.array([[fx, 0, size[0] / 2], [0, fx, size[1] / 2], [0, 0, 1]])
    work = a.work or Path(tempfile.mkdtemp(prefix="v2m-hands-render-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    render_frames(work, verts[None].astype(np.float32), body.faces, region_uv(body.bone_names, dominant_bones(body)),
                  k, np.repeat(r_wc[None], a.frames, 0), np.repeat(t_wc[None], a.frames, 0), size, a.seed)
    render_s = time.perf_counter() - t0

    reg = AssetRegistry(HAND_ASSETS)
    net = Hands(reg.resolve("hand_palm_detector"), reg.resolve("hand_landmark"))
    cfg = HandsConfig()
    cam = heads @ r_wc.T + t_wc
    uv = cam[..., :2] / cam[..., 2:] * fx + np.array(size) / 2
    rows, t_hand = [], 0.0
    for f in range(a.frames):
        rgb = cv2.cvtColor(cv2.imread(str(work / f"frame_{f:05d}.png")), cv2.COLOR_BGR2RGB)
        pose33 = np.zeros((33, 5))
        for lm, b in ((15, wi), (17, pi), (19, ii)):        # BlazePose's left wrist, pinky, index
            pose33[lm] = [*uv[f, b], 0.0, 1.0, 1.0]
        t = time.perf_counter()
        hand, source = find_hand(net, rgb, pose33, "left", cfg)
        dirs, resid = F.segment_directions(hand.world, rest)
        est = F.solve_hand(dirs, rest)
        t_hand += time.perf_counter() - t
        gt_pts = hand_points(body, sk, gts[f], "left")
        err = {name: float(np.linalg.norm(hand_points(body, sk, r, "left") - gt_pts, axis=1).mean() * 1000)
               for name, r in (("solve", est), ("rest", np.zeros((15, 3))))}
        ang = {name: float(np.degrees(np.linalg.norm((Rotation.from_rotvec(r).inv() * Rotation.from_rotvec(gts[f])).as_rotvec(), axis=1)).mean())
               for name, r in (("solve", est), ("rest", np.zeros((15, 3))))}
        rows.append({"frame": f, "presence": hand.presence, "right": hand.right, "source": source, "palm_resid": resid,
                     "err_mm": err["solve"], "err_mm_rest": err["rest"], "angle_deg": ang["solve"], "angle_deg_rest": ang["rest"]})
        print(f"frame {f:3d}  flag {hand.presence:.2f} ({source})  joints {err['solve']:6.1f} mm (rest {err['rest']:6.1f})"
              f"  angles {ang['solve']:5.1f} deg (rest {ang['rest']:5.1f})")
    ok = [r for r in rows if r["presence"] >= cfg.min_presence]
    med = lambda key, rs: float(np.median([r[key] for r in rs])) if rs else float("nan")  # noqa: E731
    summary = {"frames": a.frames, "found": len(ok), "err_mm": med("err_mm", ok), "err_mm_rest": med("err_mm_rest", ok),
               "angle_deg": med("angle_deg", ok), "angle_deg_rest": med("angle_deg_rest", ok),
               "err_mm_all": med("err_mm", rows), "render_s": round(render_s, 1),
               "hand_fps": a.frames / t_hand if t_hand else float("nan"), "work": str(work)}
    print(json.dumps(summary, indent=1))
    if a.json:
        a.json.write_text(json.dumps({"summary": summary, "frames": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
