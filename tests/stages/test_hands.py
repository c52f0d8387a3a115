"""hands + fingers stages and the finger bones in fit_export's files."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import torch

from video2mesh.models.body.anny_body import N_BONES
from video2mesh.models.fit import fingers as F
from video2mesh.pipeline.artifacts import stack
from video2mesh.pipeline.assets import AssetRegistry, default_models_dir
from video2mesh.pipeline.runner import Runner
from video2mesh.pipeline.store import ArtifactStore
from video2mesh.stages import fit_export, hands, probe
from video2mesh.stages.fingers import FingersConfig, track_rows

from tests.models.fit.test_fingers import _landmarks
from .fakes import write_video
from .fit_fakes import fake_fingers_stage, fake_fit_stage, fit_frame, rig_params, world_stages
from .licence_free_helpers import anny_body


@pytest.fixture(scope="module")
def body():
    return anny_body()


@pytest.fixture(scope="module")
def rests(body):
    sk = body.skeleton(torch.full((1, 6), 0.5, dtype=body.dtype))
    h, r = sk.heads.double().numpy(), sk.rest_rotations.double().numpy()
    return {s: F.rest_hand(body.bone_names, h, r, s) for s in F.SIDES}


def _curl(rest: F.RestHand, deg: float) -> np.ndarray:
    """(15, 3) every finger's middle joint curled by `deg` towards the palm."""
    rot = np.zeros((15, 3))
    for c in range(1, 5):
        k = 3 * c + 1
        d, p = rest.dirs[k], rest.palm_side - (rest.palm_side @ rest.dirs[k]) * rest.dirs[k]
        rot[k] = np.radians(deg) * np.cross(d, p / np.linalg.norm(p))
    return rot


def _hand_rows(rest: F.RestHand, frames, deg: float, right: float, presence: float = 0.9) -> pd.DataFrame:
    world = _landmarks(_curl(rest, deg), rest).reshape(-1).astype(np.float32)
    return pd.DataFrame({"frame": np.asarray(frames, np.int64), "track_id": np.zeros(len(frames), np.int32),
                         "side": rest.side, "world": [world] * len(frames), "presence": np.float32(presence),
                         "right": np.float32(right)})


def test_disabled_stage_needs_no_file_and_is_empty():
    off = hands.HandsConfig(enabled=False)
    assert hands._assets(off) == () and hands.compute(None, off, None).empty
    assert hands._assets(hands.HandsConfig()) == ("hand_palm_detector", "hand_landmark")


def test_finger_rows_follow_the_hand_and_drop_the_wrong_one(rests):
    """Right hand seen at frames 0-5 with curled fingers (frame 3 claims to be a left hand: dropped);
    left hand never seen. Per-frame (sigma 0): the right fingers are the solve of the landmarks."""
    frames = np.arange(8)
    h = pd.concat([_hand_rows(rests["right"], [0, 1, 2, 4, 5], 60.0, right=0.95),
                   _hand_rows(rests["right"], [3], 60.0, right=0.05)])
    out = track_rows(frames, h, rests, fps=25.0, cfg=FingersConfig(sigma_s=0.0))
    want = F.solve_hand(F.segment_directions(_landmarks(_curl(rests["right"], 60.0), rests["right"]), rests["right"])[0],
                        rests["right"])
    rot, w = out["finger_rotations"], out["weight"]
    assert np.allclose(rot[[0, 1, 2, 4, 5], 15:], want, atol=1e-4)      # landmarks stored as float32
    assert np.all(rot[[3, 6, 7]] == 0) and np.all(rot[:, :15] == 0)
    assert np.allclose(w[:, 1], [1, 1, 1, 0, 1, 1, 0, 0]) and np.all(w[:, 0] == 0)
    assert np.degrees(np.linalg.norm(rot[0, 15 + 4])) == pytest.approx(60.0, abs=0.5)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, body):
    """The same fake fit exported with no fingers and with curled right-hand fingers on track 0."""
    tmp = tmp_path_factory.mktemp("hands_export")
    video = write_video(tmp / "clip.mp4")
    fit = fit_frame({0: np.arange(0, 6)}, rig=lambda tid, fr: rig_params(body, tid, fr))
    rests = {s: F.rest_hand(body.bone_names, *(a.double().numpy() for a in (
        lambda sk: (sk.heads, sk.rest_rotations))(body.skeleton(torch.as_tensor(stack(fit.phenotype, 6)[:1], dtype=body.dtype)))), s)
        for s in F.SIDES}
    rot = np.zeros((6, F.N_FINGER_BONES, 3), np.float32)
    rot[:, 15:] = _curl(rests["right"], 70.0)
    wrist = np.zeros((6, 2, 3), np.float32)
    wrist[:, 1] = [0.0, 0.4, 0.2]
    fingers = pd.DataFrame({"frame": np.arange(6, dtype=np.int64), "track_id": np.zeros(6, np.int32),
                            "finger_rotations": list(rot.reshape(6, -1)), "wrist_rotations": list(wrist.reshape(6, -1)),
                            "weight": [np.array([0, 1], np.float32)] * 6})
    out = {}
    for name, df in (("none", None), ("curl", fingers)):
        extra, configs = world_stages("camera")
        extra["fingers"] = fake_fingers_stage(df)
        runner = Runner(stages={"probe": probe.STAGE, "fit": fake_fit_stage(fit), "fit_export": fit_export.STAGE, **extra},
                        store=ArtifactStore(tmp / f"cache-{name}"), registry=AssetRegistry([], models_dir=default_models_dir()),
                        configs={**configs, "fit_export": fit_export.FitExportConfig(formats=("npz", "bvh"))})
        paths = fit_export.fit_export_outputs(runner, video, tmp / f"out-{name}")
        out[name] = {p.suffix: p for p in paths if p.suffix in (".npz", ".bvh")}
    return fit, rot, wrist, out


def test_export_carries_the_finger_rotations(exported, body):
    fit, rot, wrist, out = exported
    idx = body.bone_index([b for s in F.SIDES for b in F.finger_bones(s)])
    wi = body.bone_index(["wrist.L", "wrist.R"])
    stored = stack(fit.sort_values("frame").bone_rotations, N_BONES * 3, np.float64).reshape(-1, N_BONES, 3)
    with np.load(out["none"][".npz"]) as z:
        assert np.array_equal(z["bone_rotations"], stored)           # no hands: the fit's rotations untouched
    with np.load(out["curl"][".npz"]) as z:
        got = z["bone_rotations"]
    assert np.allclose(got[:, idx], rot, atol=1e-6) and np.allclose(got[:, wi], wrist, atol=1e-6)
    others = np.setdiff1d(np.arange(N_BONES), idx + wi)
    assert np.array_equal(got[:, others], stored[:, others])


def test_bvh_fingers_match_the_rig(exported, body):
    """The BVH's finger joints (read by bvhio) sit where the rig's FK of the npz puts them (< 1 mm),
    and the curled fingertips moved by centimetres against the no-hands file."""
    bvhio = pytest.importorskip("bvhio")
    *_, out = exported
    pos = {}
    for name in ("none", "curl"):
        root = bvhio.readAsHierarchy(str(out[name][".bvh"]))
        joints = {j.Name: j for j, _, _ in root.layout()}
        root.loadPose(0)
        pos[name] = np.array([tuple(joints[b].PositionWorld) for b in body.bone_names])
        with np.load(out[name][".npz"]) as z:
            ref = z["joints"][0]
        assert np.abs(pos[name][1:] - ref[1:]).max() < 1e-3
    k = body.bone_names.index("finger3-3.R")
    assert np.linalg.norm(pos["curl"][k] - pos["none"][k]) > 0.01


def test_wrist_follows_the_palm_and_keeps_the_fit_where_unseen(rests):
    """Right palm seen at frames 0-3 turned by R against a forearm at G: the wrist there is G^T R; the
    left hand is never seen: its wrist keeps the fit's value."""
    from scipy.spatial.transform import Rotation

    rh = rests["right"]
    frames = np.arange(4)
    g = Rotation.from_euler("xyz", [0.2, 0.5, -0.3]).as_matrix()
    want = Rotation.from_rotvec(np.radians(30) * np.cross(rh.wrist_dir, rh.palm_side))     # a 30 degree flexion
    world = _landmarks(np.zeros((15, 3)), rh)       # rotated by _landmarks' fixed rotation M
    m = F.palm_rotation(world, rh)
    world = world @ (g @ want.as_matrix() @ m.T).T  # now the palm is at G want
    rows = pd.DataFrame({"frame": frames, "track_id": np.zeros(4, np.int32), "side": "right",
                         "world": [world.reshape(-1).astype(np.float32)] * 4, "presence": np.float32(0.9),
                         "right": np.float32(0.9)})
    base = np.tile([[0.1, 0.0, 0.0], [0.0, 0.0, 0.2]], (4, 1, 1))
    out = track_rows(frames, rows, rests, 25.0, FingersConfig(sigma_s=0.0), {s: np.tile(g, (4, 1, 1)) for s in F.SIDES}, base)
    assert np.allclose(out["wrist_rotations"][:, 1], want.as_rotvec(), atol=1e-4)
    assert np.array_equal(out["wrist_rotations"][:, 0], base[:, 0])


def test_stage_on_a_real_video(tmp_path):
    """8 frames of the shared multi-person clip: one row per (frame, track, hand) whose wrist BlazePose
    sees; some hands found (4 of 18 when written: the clip's hands are ~40 px, blurred, often hidden in
    its first frames; 62 of 74 over the whole clip for its main person); a found hand's wrist lies by BlazePose's wrist and its refined ROI is
    tighter than the one the body gives."""
    from video2mesh.models.runners.blazepose import N_LANDMARKS
    from video2mesh.models.runners.hands import POSE_HAND, roi_from_pose

    from .licence_free_helpers import blazepose_registry, run_path
    from tests.models.runners.test_hands import VIDEO

    if not VIDEO.is_file():
        pytest.skip(f"shared video absent: {VIDEO}")
    runner, res = run_path(VIDEO, tmp_path, blazepose_registry(), until="hands", max_frames=8, max_people=2)
    bp = runner.store.read_df(res["blazepose"].ref.path)
    h = runner.store.read_df(res["hands"].ref.path)
    m = h.merge(bp, on=["frame", "track_id"], how="left", validate="many_to_one")
    assert m.pose_score.notna().all() and not h.duplicated(["frame", "track_id", "side"]).any()
    found = m[m.presence >= 0.5]
    assert len(m) >= 12 and len(found) >= 3
    for r in found.itertuples(index=False):
        body = np.asarray(r.landmarks_y, np.float64).reshape(N_LANDMARKS, 5)
        w, p, i = POSE_HAND[r.side]
        body_roi = roi_from_pose(body[w, :2], body[p, :2], body[i, :2])
        wrist = np.asarray(r.landmarks_x, np.float64).reshape(21, 3)[0, :2]
        assert np.linalg.norm(wrist - body[w, :2]) < 0.5 * body_roi.size
        assert r.roi_x[2] < body_roi.size or r.source == "palm"     # roi_x: the hand row's, roi_y: the body's
