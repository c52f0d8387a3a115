"""motion_quality's exported-camera residual: pixels back-projected through a known camera come back exactly."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from video2mesh.benchmarks.motion_quality import _residual, exported_pixels


def test_exported_pixels_invert_a_back_projection():
    rng = np.random.default_rng(0)
    t, w, h, f = 5, 640, 480, 700.0
    k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
    raw = np.c_[rng.uniform(0, w, (t * 17, 1)), rng.uniform(0, h, (t * 17, 1))].reshape(t, 17, 2)
    depth = rng.uniform(2, 6, (t, 17, 1))
    cv = np.concatenate([(raw - [w / 2, h / 2]) / f, np.ones((t, 17, 1))], -1) * depth   # OpenCV camera axes
    gl = cv * [1.0, -1.0, -1.0]
    cam_r, cam_t = Rotation.random(t, random_state=3).as_matrix(), rng.normal(size=(t, 3))
    world = np.einsum("tji,tkj->tki", cam_r, gl - cam_t[:, None])                         # R^T (x - t)
    npz = {"frame": np.arange(10, 10 + t), "cam_R": cam_r, "cam_t": cam_t, "cam_K": k, "keypoints3d": world.astype(np.float32)}
    got = exported_pixels(npz, np.array([11, 13]))
    np.testing.assert_allclose(got, raw[[1, 3]], atol=1e-3)
    ok = np.ones((2, 17), bool)
    shifted = raw[[1, 3]] + [3.0, 4.0]                                                    # 5 px away everywhere
    np.testing.assert_allclose(_residual(got, shifted, ok), 5.0, atol=1e-3)
    assert exported_pixels({"frame": npz["frame"]}, np.array([11])) is None
