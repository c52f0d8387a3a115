"""mesh stage on fake upstream artifacts (in the shared schemas): streamed windows and track batches
equal one model pass per track; cameras, translation and joints follow their closed forms."""
from dataclasses import dataclass

import cv2
import numpy as np
import pyarrow as pa
import pytest
import torch

from video2mesh.models.nets.embedder import EmbedderConfig, PoseEmbedder, normalize_coco13
from video2mesh.models.nets.model import ModelConfig, V2MModel, from_vibe, random_vibe_gen_state_dict
from video2mesh.models.maths.rotations import rotmat_to_axis_angle
from video2mesh.models.body.smpl import SMPL
from video2mesh.pipeline.artifacts import Artifact, fixed
from video2mesh.pipeline.assets import AssetRegistry
from video2mesh.pipeline.runner import Runner
from video2mesh.pipeline.stage import Stage
from video2mesh.pipeline.store import ArtifactStore
from video2mesh.stages import all_stages, mesh
from video2mesh.stages.probe import STAGE as PROBE

W, H, N_FRAMES = 96, 64, 30
SPANS = {0: (0, 30), 1: (5, 20), 2: (12, 30)}      # track -> [first, last) frame


@dataclass(frozen=True)
class NoConfig:
    """Fake upstream stages have no parameters."""


def _fake(name, schema, rows_fn):
    def compute(ctx, cfg, chunk):
        import pandas as pd
        return pd.DataFrame(rows_fn())
    return Stage(name=name, version=1, config=NoConfig, output=Artifact(name, 1, pa.schema(schema)),
                 inputs=("probe",), compute=compute)


def _keys():
    return [(f, t) for t, (a, b) in SPANS.items() for f in range(a, b)]


def _tracklets():
    rng = np.random.default_rng(0)
    keys = _keys()
    cx, cy, side = rng.uniform(30, 60, len(keys)), rng.uniform(20, 40, len(keys)), rng.uniform(20, 40, len(keys))
    return {"frame": [f for f, _ in keys], "track_id": [t for _, t in keys], "x1": cx - side / 2, "y1": cy - side / 2,
            "x2": cx + side / 2, "y2": cy + side / 2, "score": np.ones(len(keys)), "cx": cx, "cy": cy, "side": side,
            "interpolated": np.zeros(len(keys), bool)}


def _features():
    keys = _keys()
    feat = np.random.default_rng(1).random((len(keys), 2048), dtype=np.float32)
    return {"frame": [f for f, _ in keys], "track_id": [t for _, t in keys], "feature": list(feat)}


def _pose2d():
    keys = [k for k in _keys() if k != (7, 1)]                       # one frame without a 2D pose
    kp = np.random.default_rng(2).uniform(0, 64, (len(keys), 17, 3)).astype(np.float32)
    return {"frame": [f for f, _ in keys], "track_id": [t for _, t in keys], "keypoints": list(kp.reshape(-1, 51))}


def _homography():
    keys = _keys()
    h = np.tile(np.eye(3, dtype=np.float32).reshape(1, 9), (len(keys), 1))
    h[:, 1:] += np.random.default_rng(3).normal(0, 0.01, (len(keys), 8)).astype(np.float32)
    valid = np.arange(len(keys)) % 5 != 0
    return {"frame": [f for f, _ in keys], "track_id": [t for _, t in keys], "h": list(h), "valid": valid}


STAGES = {
    "probe": PROBE,
    "tracklets": _fake("tracklets", [("frame", pa.int64()), ("track_id", pa.int32()), ("x1", pa.float32()),
                                     ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32()),
                                     ("score", pa.float32()), ("cx", pa.float32()), ("cy", pa.float32()),
                                     ("side", pa.float32()), ("interpolated", pa.bool_())], _tracklets),
    "features": _fake("features", [("frame", pa.int64()), ("track_id", pa.int32()), ("feature", fixed(2048))], _features),
    "pose2d": _fake("pose2d", [("frame", pa.int64()), ("track_id", pa.int32()), ("keypoints", fixed(51))], _pose2d),
    "homography": _fake("homography", [("frame", pa.int64()), ("track_id", pa.int32()), ("h", fixed(9)),
                                       ("valid", pa.bool_())], _homography),
    "mesh": mesh.STAGE,
}


@pytest.fixture(scope="module")
def env(tmp_path_factory, synthetic_smpl_dir):
    d = tmp_path_factory.mktemp("mesh")
    video = d / "v.avi"
    wr = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (W, H))
    for i in range(N_FRAMES):
        wr.write(np.full((H, W, 3), i * 8, np.uint8))
    wr.release()
    torch.manual_seed(0)
    model = V2MModel(ModelConfig(gru_hidden=16, regressor_hidden=32, dyn_hidden_per_group=8)).eval()
    with torch.no_grad():  # make the extra columns matter
        model.regressor.fc1.weight.normal_(0, 0.02)
    emb = PoseEmbedder(EmbedderConfig(hidden=16)).eval()
    paths = {"v2m_model": model.save(d / "m.pt"), "embedder": emb.save(d / "e.pt"),
             "smpl_neutral": synthetic_smpl_dir / "SMPL_NEUTRAL.pkl"}
    return {"dir": d, "video": video, "model": model, "emb": emb, "paths": paths, "smpl_dir": synthetic_smpl_dir}


def _run(env, cfg, name, extra_paths=None):
    reg = AssetRegistry(mesh.ASSETS, models_dir=env["dir"] / "models", overrides={**env["paths"], **(extra_paths or {})})
    runner = Runner(stages=STAGES, store=ArtifactStore(env["dir"] / name), registry=reg, configs={"mesh": cfg})
    res = runner.run(env["video"], until="mesh")
    return runner.store.read_df(res["mesh"].ref.path).sort_values(["track_id", "frame"]).reset_index(drop=True)


def _stack(df, col):
    return np.stack(df[col].to_numpy()).astype(np.float64)


def _reference(env, track):
    """One pass of the model over one whole track, inputs assembled independently of the stage."""
    a, b = SPANS[track]
    keys = _keys()
    rows = [i for i, k in enumerate(keys) if k[1] == track]
    f = torch.as_tensor(np.stack(_features()["feature"])[rows])[None]
    p2 = _pose2d()
    kp_by_key = dict(zip(zip(p2["frame"], p2["track_id"]), p2["keypoints"]))
    mu, sigma, unc = [], [], []
    for fr in range(a, b):
        if (fr, track) in kp_by_key:
            m, s = env["emb"](normalize_coco13(torch.as_tensor(kp_by_key[(fr, track)]).reshape(1, 17, 3)))
            unc.append(float(s.mean()))
        else:  # no 2D pose: the prior N(0, I) as input, no uncertainty value
            m, s = torch.zeros(1, 32), torch.ones(1, 32)
            unc.append(np.nan)
        mu.append(m), sigma.append(s)
    u = torch.cat([torch.cat(mu), torch.cat(sigma)], -1)[None]
    hom = _homography()
    hs = [np.asarray(hom["h"][i]) if hom["valid"][i] else np.eye(3).reshape(9) for i in rows]
    eye = np.eye(3).reshape(9)
    d = np.stack([np.concatenate([hs[t - k] if t - k >= 0 else eye for k in range(14, -1, -1)]) for t in range(len(rows))])
    out = env["model"](f, u, torch.as_tensor(d, dtype=torch.float32)[None])
    return out, np.array(unc)


@pytest.fixture(scope="module")
def small(env):
    """Windows of 7 frames (tracks cross window borders), 2 tracks per part (tracks 0-1 batched)."""
    return _run(env, mesh.MeshConfig(model="v2m", window_frames=7, tracks_per_chunk=2), "small")


@torch.no_grad()
def test_streamed_stage_equals_one_pass_per_track(env, small):
    big = _run(env, mesh.MeshConfig(model="v2m", window_frames=1000, tracks_per_chunk=16), "big")
    assert list(small.columns) == mesh.MESH.schema.names
    assert len(small) == len(big) == len(_keys())
    for col in ("pose", "betas", "cam_crop", "joints3d", "pose_next", "uncertainty"):
        a = _stack(small, col) if col != "uncertainty" else small[col].to_numpy()
        b = _stack(big, col) if col != "uncertainty" else big[col].to_numpy()
        assert np.allclose(a, b, atol=1e-4, equal_nan=True), col
    for track in SPANS:
        ref, unc = _reference(env, track)
        got = small[small.track_id == track]
        aa = rotmat_to_axis_angle(ref.rotmat[0].double()).reshape(-1, 72).numpy()
        assert np.allclose(_stack(got, "pose"), aa, atol=1e-4)
        assert np.allclose(_stack(got, "betas"), ref.betas[0].numpy(), atol=1e-4)
        prev = rotmat_to_axis_angle(ref.rotmat_prev[0].double()).reshape(-1, 72).numpy()
        assert np.allclose(_stack(got, "pose_prev"), prev, atol=1e-4)
        u = got.uncertainty.to_numpy()
        assert np.allclose(u, unc, atol=1e-5, equal_nan=True)
        assert np.allclose(_stack(got, "betas_track"), np.median(_stack(got, "betas"), 0), atol=1e-6)


@torch.no_grad()
def test_cameras_translation_and_joints(env, small):
    df = small
    boxes = _tracklets()
    order = np.lexsort((boxes["frame"], boxes["track_id"]))
    cx, cy, side = (np.asarray(boxes[k], np.float32).astype(np.float64)[order] for k in ("cx", "cy", "side"))
    crop = 1.1 * side
    cam = _stack(df, "cam_crop")
    orig = _stack(df, "cam_orig")
    assert np.allclose(orig[:, 0], cam[:, 0] * crop / W, rtol=1e-5)
    assert np.allclose(orig[:, 2], (cx - W / 2) / (W / 2) / orig[:, 0] + cam[:, 1], rtol=1e-4, atol=1e-4)
    # SMPL joints from the stored pose and betas, then both projections of every joint:
    body = SMPL(env["smpl_dir"])(torch.as_tensor(_stack(df, "betas"), dtype=torch.float32),
                                torch.as_tensor(_stack(df, "pose"), dtype=torch.float32))
    j = body.joints24.double().numpy()
    trans = _stack(df, "trans")
    assert np.allclose(_stack(df, "joints3d").reshape(-1, 24, 3), j + trans[:, None], atol=1e-4)
    # weak perspective in the crop, mapped to the image = the stored 2D joints
    u_crop = cx[:, None] + crop[:, None] / 2 * cam[:, :1] * (j[..., 0] + cam[:, 1:2])
    assert np.allclose(_stack(df, "joints2d").reshape(-1, 24, 2)[..., 0], u_crop, atol=1e-2)
    # the pinhole camera with the stated focal agrees with it at the body's depth (Z = 0 in SMPL space)
    f = np.hypot(W, H)
    x = np.zeros_like(j[:, 0])
    x[:, 0] = 0.3
    pin = W / 2 + f * (x[:, 0] + trans[:, 0]) / (x[:, 2] + trans[:, 2])
    weak = cx + crop / 2 * cam[:, 0] * (x[:, 0] + cam[:, 1])
    assert np.allclose(pin, weak, atol=1e-3)
    assert np.isnan(df[(df.frame == 7) & (df.track_id == 1)].uncertainty).all()


@torch.no_grad()
def test_vibe_weights_run_as_baseline(env):
    path = mesh.write_random_vibe(env["dir"] / "vibe_model_w_3dpw.pth.tar", seed=0)
    sd = random_vibe_gen_state_dict(0)
    df = _run(env, mesh.MeshConfig(uncertainty=False), "vibe", {"vibe": path})
    assert np.isnan(_stack(df, "pose_prev")).all() and df.uncertainty.isna().all()
    base = from_vibe(sd).eval()
    rows = [i for i, k in enumerate(_keys()) if k[1] == 1]
    f = torch.as_tensor(np.stack(_features()["feature"])[rows])[None]
    aa = rotmat_to_axis_angle(base(f).rotmat[0].double()).reshape(-1, 72).numpy()
    assert np.allclose(_stack(df[df.track_id == 1], "pose"), aa, atol=1e-4)


def test_declared_assets_and_registry():
    assert "mesh" in all_stages()
    assert mesh.assets(mesh.MeshConfig()) == ("smpl_neutral", "vibe", "embedder")
    assert mesh.assets(mesh.MeshConfig(model="v2m", gender="female", uncertainty=False)) == ("smpl_female", "v2m_model", "embedder")
    names = {a.name for a in mesh.ASSETS}
    assert {"vibe", "smpl_neutral", "smpl_male", "smpl_female", "j_regressor_h36m", "embedder", "v2m_model"} <= names


def test_homography_stack_layout():
    h = np.arange(3 * 9, dtype=np.float32).reshape(3, 9)
    hist = np.tile(np.eye(3, dtype=np.float32).reshape(1, 9), (14, 1))
    d, new = mesh.homography_stack(hist, h)
    assert d.shape == (3, 135)
    assert np.array_equal(d[2, -27:], h.reshape(-1)) and np.array_equal(d[1, -18:], h[:2].reshape(-1))
    assert np.array_equal(d[0, :9], np.eye(3).reshape(9)) and np.array_equal(d[0, -9:], h[0])
    assert np.array_equal(new[-3:], h)
