"""Homography tables as a training input (issue 19 item 1): written per (video, frame), attached to a
VIBE database by key, and required by every preset that uses d_t."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from video2mesh.models.maths.geometry import homography_stacks
from video2mesh.models.training import datasets as D
from video2mesh.models.training import synthetic_data as S


def _vibe_file(db: dict, path):
    import joblib

    joblib.dump({k: v for k, v in db.items() if k not in ("homography", "cam", "fps")}, path)
    return str(path)


@pytest.fixture(scope="module")
def vibe_db(synthetic_body):
    return S.make_db(synthetic_body, S.SyntheticConfig(n_videos=2, n_frames=20, feature_dim=8, seed=5))


def test_table_roundtrip_is_keyed_by_video_and_frame(vibe_db, tmp_path):
    n = len(vibe_db["vid_name"])
    order = np.random.default_rng(0).permutation(n)                       # the table's row order is irrelevant
    path = D.write_homography_table(tmp_path / "h.parquet", vibe_db["vid_name"][order],
                                    vibe_db["frame_id"][order], vibe_db["homography"][order])
    plain = {k: v for k, v in vibe_db.items() if k != "homography"}
    got = D.attach_homographies(plain, [path])["homography"]
    assert np.array_equal(got, vibe_db["homography"])
    ds = D.VibeWindows(D.attach_homographies(plain, [path]), D.WindowSpec(seqlen=16, stride=16))
    item = ds[1]                                                          # second video: its own first frame
    expect = homography_stacks(vibe_db["homography"][20:36])
    assert torch.allclose(item["homography"], torch.as_tensor(expect, dtype=torch.float32))
    half = D.write_homography_table(tmp_path / "half.parquet", vibe_db["vid_name"][:20], vibe_db["frame_id"][:20],
                                    vibe_db["homography"][:20])
    with pytest.raises(ValueError, match="lack 20 of 40 database rows, e.g. video"):
        D.attach_homographies(plain, [half])


def test_v2m_train_full_without_homographies_stops_with_one_line(vibe_db, synthetic_smpl_dir, synthetic_h36m_regressor,
                                                               tmp_path, capsys):
    from video2mesh.flows.cli import main

    db = _vibe_file(vibe_db, tmp_path / "synthetic_train_db.pt")
    common = ["--out", str(tmp_path / "run"), "--train-db", db, "--smpl-dir", str(synthetic_smpl_dir),
              "--j-regressor-h36m", synthetic_h36m_regressor, "--device", "cpu", "--steps", "1"]
    assert main(["train", "--preset", "full", *common]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--homographies TABLE" in err[0] and "--preset no_dynamic" in err[0], err
    assert not (tmp_path / "run" / "model.pt").exists()


def test_table_from_a_video_recovers_a_known_camera_shift(tmp_path):
    # A textured frame translated by (3, -2) px per frame: every H must be that translation (closed form).
    import cv2

    from video2mesh.flows.homography_table import table_for_db

    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur(rng.integers(0, 255, (400, 560, 3), dtype=np.uint8), (0, 0), 2.0)
    path = str(tmp_path / "pan.avi")
    w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    for t in range(8):
        x, y = 100 - 3 * t, 60 + 2 * t          # content moves by (+3, -2) px per frame
        w.write(np.ascontiguousarray(tex[y:y + 240, x:x + 320]))
    w.release()
    db = {"vid_name": np.array(["pan"] * 6), "frame_id": np.arange(1, 7),
          "bbox": np.tile([160.0, 120.0, 120.0, 160.0], (6, 1))}
    out = table_for_db(db, {"pan": path}, tmp_path / "pan.parquet")
    h = D.attach_homographies({"vid_name": db["vid_name"], "frame_id": db["frame_id"]}, [out])["homography"]
    assert np.allclose(h[0], np.eye(3).reshape(9))                       # the first database frame
    from video2mesh.models.maths.geometry import apply_homography_np

    pts = np.stack(np.meshgrid(np.linspace(100, 220, 5), np.linspace(40, 200, 5)), -1).reshape(-1, 2)
    for hk in h[1:]:                                                      # points of the box move by (3, -2) px
        moved = apply_homography_np(hk.reshape(3, 3).astype(np.float64), pts)
        assert np.abs(moved - pts - [3.0, -2.0]).max() < 0.3, hk.round(4)


def test_training_db_attaches_tables_and_no_dynamic_needs_none(vibe_db, tmp_path):
    from video2mesh.models.training import train as T

    db = _vibe_file(vibe_db, tmp_path / "synthetic_train_db.pt")
    table = D.write_homography_table(tmp_path / "h.parquet", vibe_db["vid_name"], vibe_db["frame_id"],
                                     vibe_db["homography"])
    with_h = T.training_db(T.TrainConfig(train_db=(db,), homographies=(str(table),)), None, 8, needs_dt=True)
    assert np.array_equal(with_h["homography"], vibe_db["homography"])
    without = T.training_db(T.TrainConfig(train_db=(db,), preset="no_dynamic"), None, 8, needs_dt=False)
    assert "homography" not in without
    with pytest.raises(T.TrainingSetupError, match="--homographies TABLE"):
        T.training_db(T.TrainConfig(train_db=(db,)), None, 8, needs_dt=True)
