"""homography stage: flow + grid + DLT against known warps, degenerate tracks, chunking, RAFT smoke,
missing weights, and real footage (DIS near identity on a static background)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from video2mesh.models.nets import flow as flowlib
from video2mesh.models.maths.geometry import apply_homography_np, box_grid, dlt_homography_np
from video2mesh.pipeline.artifacts import Artifact, stack
from video2mesh.pipeline.assets import AssetRegistry
from video2mesh.pipeline.errors import AssetMissing, ConfigError, StageFailed
from video2mesh.pipeline.config import from_mapping
from video2mesh.pipeline.runner import Runner
from video2mesh.pipeline.stage import Stage
from video2mesh.pipeline.store import ArtifactStore
from video2mesh.stages import homography as hs
from video2mesh.stages import probe

W, H = 320, 240


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Multi-scale smoothed noise: trackable at every scale, no repeated pattern. (h, w, 3) uint8 BGR."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for sigma, amp in ((1.0, 0.35), (3.0, 0.35), (9.0, 0.3)):
        n = cv2.GaussianBlur(rng.normal(0, 1, (h, w, 3)).astype(np.float32), (0, 0), sigma)
        img += amp * n / n.std()
    return np.clip(128 + 45 * img, 0, 255).astype(np.uint8)


def step_h() -> np.ndarray:
    """A small inter-frame homography: 1 deg rotation, 1% zoom, a few pixels shift, mild perspective."""
    a = np.deg2rad(1.0)
    c = np.array([W / 2, H / 2])
    R = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) * np.array([[1.01], [1.01], [1]])
    T = np.array([[1, 0, c[0] + 2.5], [0, 1, c[1] - 1.5], [0, 0, 1]]) @ R @ np.array([[1, 0, -c[0]], [0, 1, -c[1]], [0, 0, 1]])
    T = T @ np.array([[1, 0, 0], [0, 1, 0], [2e-5, -1e-5, 1]])
    return T / T[0, 0]


def corner_error(Hest: np.ndarray, Htrue: np.ndarray, box) -> float:
    x1, y1, x2, y2 = box
    c = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], float)
    return float(np.linalg.norm(apply_homography_np(Hest, c) - apply_homography_np(Htrue, c), axis=1).max())


# -- flow + grid + DLT on one warped pair ----------------------------------------------------------
@pytest.mark.parametrize("long_side", [320, 160])
def test_dis_grid_dlt_recovers_warp(long_side):
    big = texture(H + 80, W + 80, seed=1)[40:40 + H, 40:40 + W]              # no border inside the frame
    Htrue = step_h()
    f1 = big
    f2 = cv2.warpPerspective(f1, Htrue, (W, H), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    cfg = hs.HomographyConfig(backend="dis", work_long_side=long_side)
    size = hs.flow_size(cfg, W, H)
    flow = flowlib.DISFlow("medium")(flowlib.resize_rgb(f1, size)[None], flowlib.resize_rgb(f2, size)[None])[0]
    box = np.array([[80.0, 50.0, 240.0, 200.0]])
    src, dst, mask = hs.correspondences(flow, box, (W, H), cfg)
    assert src.shape == (1, 289, 2) and mask.sum() >= 280
    Hest, valid = dlt_homography_np(src, dst, mask)
    assert valid[0]
    assert corner_error(Hest[0], Htrue, box[0]) < 1.0


# -- the stage through the runner -----------------------------------------------------------------
TRACKLETS = Artifact("tracklets", 1, pa.schema([
    ("frame", pa.int64()), ("track_id", pa.int32()),
    ("x1", pa.float32()), ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32()),
    ("score", pa.float32()), ("cx", pa.float32()), ("cy", pa.float32()), ("side", pa.float32()),
    ("interpolated", pa.bool_()),
]))


def fake_tracklets(boxes: dict[int, dict[int, tuple[float, float, float, float]]]) -> Stage:
    """A `tracklets` stage that returns fixed boxes {track_id: {frame: (x1, y1, x2, y2)}}."""
    rows = [dict(frame=f, track_id=t, x1=b[0], y1=b[1], x2=b[2], y2=b[3], score=0.9,
                 cx=(b[0] + b[2]) / 2, cy=(b[1] + b[3]) / 2, side=max(b[2] - b[0], b[3] - b[1]), interpolated=False)
            for t, fb in boxes.items() for f, b in fb.items()]
    df = pd.DataFrame(rows).sort_values(["frame", "track_id"])

    @dataclass(frozen=True)
    class FakeConfig:
        tag: str = repr(sorted(boxes.items()))                               # the boxes enter the cache key

    return Stage("tracklets", 1, FakeConfig, TRACKLETS, lambda ctx, cfg, chunk: df.copy(), inputs=("probe",))


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        vw.write(f)
    vw.release()
    return path


N_FRAMES = 7
INSIDE = (90.0, 60.0, 230.0, 190.0)


@pytest.fixture(scope="module")
def warped_video(tmp_path_factory) -> Path:
    """N_FRAMES frames, each the previous one warped by step_h() (composed from a large texture)."""
    big = texture(H + 160, W + 160, seed=2)
    off = np.array([[1, 0, -80], [0, 1, -80], [0, 0, 1]], float)             # crop the centre of `big`
    Hs = np.linalg.matrix_power
    frames = [cv2.warpPerspective(big, Hs(step_h(), k) @ off, (W, H), flags=cv2.INTER_CUBIC) for k in range(N_FRAMES)]
    return write_video(tmp_path_factory.mktemp("vid") / "warp.mp4", frames)


TRACKS = {
    0: {f: INSIDE for f in range(N_FRAMES)},                                 # whole video
    1: {f: (100.0, 70.0, 220.0, 180.0) for f in range(2, 6)},                # starts at frame 2
    2: {f: (-400.0, -300.0, -100.0, -50.0) for f in range(1, 4)},            # entirely outside the image
}


def run(tmp_path, video, tracks, registry=None, **cfg):
    stages = {"probe": probe.STAGE, "tracklets": fake_tracklets(tracks), "homography": hs.STAGE}
    reg = registry or AssetRegistry(hs.ASSETS, models_dir=tmp_path / "models")
    r = Runner(stages, ArtifactStore(tmp_path / "cache"), reg, configs={"homography": hs.HomographyConfig(**cfg)})
    res = r.run(video)
    return r.store.read_df(res["homography"].ref.path), res["homography"]


def test_stage_recovers_warp_and_flags_degenerate_tracks(tmp_path, warped_video):
    df, res = run(tmp_path, warped_video, TRACKS, backend="dis", work_long_side=320, chunk_frames=3)
    assert res.parts_total == 3
    assert len(df) == sum(len(v) for v in TRACKS.values())
    assert list(df.columns) == ["frame", "track_id", "h", "valid"]
    h = stack(df.h, 9).reshape(-1, 3, 3)
    assert np.isfinite(h).all() and np.allclose(h[:, 0, 0], 1.0)
    first = df.groupby("track_id").frame.transform("min") == df.frame
    assert not df.valid[first].any() and np.array_equal(h[first.to_numpy()], np.tile(np.eye(3), (first.sum(), 1, 1)))
    out = (df.track_id == 2).to_numpy()
    assert not df.valid[out].any() and np.allclose(h[out], np.eye(3))
    good = (~first & (df.track_id != 2)).to_numpy()
    assert df.valid[good].all()
    Htrue = step_h()
    errs = [corner_error(h[i], Htrue, TRACKS[int(df.track_id[i])][int(df.frame[i])]) for i in np.flatnonzero(good)]
    assert max(errs) < 1.0, errs                                             # mp4v artefacts included


def test_chunking_does_not_change_results(tmp_path, warped_video):
    a, _ = run(tmp_path / "a", warped_video, TRACKS, backend="dis", work_long_side=320, chunk_frames=2)
    b, _ = run(tmp_path / "b", warped_video, TRACKS, backend="dis", work_long_side=320, chunk_frames=256)
    assert a[["frame", "track_id", "valid"]].equals(b[["frame", "track_id", "valid"]])
    assert np.allclose(stack(a.h, 9), stack(b.h, 9), atol=1e-5)


def test_frame_region_shares_one_h_per_frame(tmp_path, warped_video):
    tracks = {0: TRACKS[0], 1: TRACKS[1]}
    df, _ = run(tmp_path, warped_video, tracks, backend="dis", work_long_side=320, region="frame")
    for f, g in df[df.valid].groupby("frame"):
        hs_ = stack(g.h, 9)
        assert np.allclose(hs_, hs_[0])
        assert corner_error(hs_[0].reshape(3, 3).astype(float), step_h(), (40, 30, 280, 210)) < 1.0


def test_raft_smoke_with_random_checkpoint(tmp_path, warped_video):
    """Random RAFT weights are NOT accurate: this only checks loading torchvision's key layout,
    the working-size rules (>= 128, multiples of 8) and that the stage yields finite rows."""
    torch.manual_seed(0)
    ckpt = tmp_path / "raft_small_random.pth"
    torch.save(flowlib.build_raft("raft_small").state_dict(), ckpt)
    reg = AssetRegistry(hs.ASSETS, models_dir=tmp_path / "models", overrides={"raft_small": ckpt})
    tracks = {0: {f: INSIDE for f in range(3)}}
    df, _ = run(tmp_path, warped_video, tracks, registry=reg, backend="raft_small", work_long_side=160, raft_iterations=2)
    assert len(df) == 3 and np.isfinite(stack(df.h, 9)).all() and not df.valid[0]
    assert hs.flow_size(hs.HomographyConfig(backend="raft_small", work_long_side=160), W, H) == (160, 128)


def test_load_raft_rejects_other_layouts(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a torchvision raft_small state dict"):
        flowlib.load_raft("raft_small", bad)


def test_missing_raft_weights_suggest_dis(tmp_path, warped_video):
    with pytest.raises(AssetMissing, match=r"--set homography\.backend=dis"):
        run(tmp_path, warped_video, {0: {0: INSIDE}}, backend="raft_large")


def test_ptlflow_missing_says_how_to_install(tmp_path, warped_video):
    try:
        import ptlflow  # noqa: F401
        pytest.skip("ptlflow is installed here")
    except ImportError:
        pass
    with pytest.raises((ConfigError, StageFailed), match=r"pip install video2mesh\[ptlflow\]"):
        run(tmp_path, warped_video, {0: {0: INSIDE, 1: INSIDE}}, backend="ptlflow")


def test_config_rules():
    with pytest.raises(ConfigError, match="multiple of 8"):
        from_mapping(hs.HomographyConfig, {"backend": "raft_large", "work_long_side": 300})
    with pytest.raises(ConfigError):
        from_mapping(hs.HomographyConfig, {"region": "person"})
    assert hs.assets(hs.HomographyConfig(backend="raft_large")) == ("raft_large",)
    assert hs.assets(hs.HomographyConfig()) == (), "the default (DIS) needs no weight file"


# -- real footage --------------------------------------------------------------------------------
def grid_shift(h: np.ndarray, box, ref: np.ndarray | None = None) -> np.ndarray:
    """(17*17,) distances between where h and ref (default identity) send the box's grid points."""
    g = box_grid(np.array([box]), 17)[0]
    return np.linalg.norm(apply_homography_np(h, g) - apply_homography_np(np.eye(3) if ref is None else ref, g), axis=1)


def test_real_footage_static_background_near_identity(tmp_path, shared_data):
    """mmhuman3d_multi_person_demo.mp4 holds the camera still over its first frames: the wall and
    tree above the people (top fifth of the 1080x1920 frame) must give finite, valid H that move
    the region's points by about a pixel (measured: mean <= 1.3 px, max <= 3.5 px)."""
    video = shared_data / "videos" / "mmhuman3d_multi_person_demo.mp4"
    wall = (20.0, 20.0, 1060.0, 400.0)
    n = 8
    df, _ = run(tmp_path, video, {0: {f: wall for f in range(n)}}, backend="dis", work_long_side=512)
    h = stack(df.h, 9).reshape(-1, 3, 3).astype(float)
    assert np.isfinite(h).all() and df.valid[1:].all()
    shifts = [grid_shift(h[i], wall) for i in range(1, n)]
    assert max(s.mean() for s in shifts) < 2.0 and max(s.max() for s in shifts) < 5.0, [s.mean() for s in shifts]


def test_real_footage_panning_camera_matches_feature_homography(tmp_path, shared_data):
    """mmhuman3d_single_person_demo.mp4 pans ~7-16 px a frame. Above the person, DIS + grid + DLT
    must agree with an independent estimate, ORB matches + RANSAC homography (OpenCV), to a few
    pixels on the region's grid (measured: mean 0.6-3.6 px over frames 1-5)."""
    video = shared_data / "videos" / "mmhuman3d_single_person_demo.mp4"
    box = (20.0, 20.0, 1060.0, 440.0)
    n = 6
    df, _ = run(tmp_path, video, {0: {f: box for f in range(n)}}, backend="dis", work_long_side=512)
    h = stack(df.h, 9).reshape(-1, 3, 3).astype(float)
    assert np.isfinite(h).all() and df.valid[1:].all()
    cap = cv2.VideoCapture(str(video))
    grey = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2GRAY) for _ in range(n)]
    cap.release()
    orb = cv2.ORB_create(3000)
    roi = np.zeros_like(grey[0])
    roi[int(box[1]):int(box[3]), int(box[0]):int(box[2])] = 255
    for t in range(1, n):
        k0, d0 = orb.detectAndCompute(grey[t - 1], roi)
        k1, d1 = orb.detectAndCompute(grey[t], None)
        m = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(d0, d1)
        p0 = np.float32([k0[x.queryIdx].pt for x in m])
        p1 = np.float32([k1[x.trainIdx].pt for x in m])
        Href, inliers = cv2.findHomography(p0, p1, cv2.RANSAC, 2.0)
        assert inliers.sum() > 200                                           # the reference itself is sound
        assert grid_shift(h[t], box).mean() > 3.0                            # the camera really moves
        assert grid_shift(h[t], box, Href).mean() < 5.0, t
