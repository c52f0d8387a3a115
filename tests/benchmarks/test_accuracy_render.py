"""The GT set builder: content-keyed cache, Blender missing, placing several people; one slow Blender render."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from video2mesh.benchmarks.accuracy import render as RD
from video2mesh.benchmarks.accuracy import scene as S
from video2mesh.benchmarks.accuracy.cameras import CameraSpec
from video2mesh.benchmarks.accuracy.retarget import Retargeted
from video2mesh.pipeline.errors import AssetMissing

from .bvh_helpers import write_bvh


@pytest.fixture
def bvh(tmp_path):
    return write_bvh(tmp_path / "walk.bvh", np.stack([np.zeros(30), np.zeros(30), np.linspace(0, 1, 30)], -1))


def _settings(**kw):
    base = {"frames": 300, "cameras": [], "phenotypes": [], "size": [640, 360], "fps": 30.0, "people": 1}
    return base | kw


def test_set_key_hashes_content_and_every_setting(bvh, tmp_path):
    k = RD.set_key([bvh], _settings())
    assert RD.set_key([bvh], _settings()) == k
    assert RD.set_key([bvh], _settings(frames=301)) != k
    assert RD.set_key([bvh], _settings(size=[1280, 720])) != k
    moved = shutil.copy(bvh, tmp_path / "elsewhere.bvh")
    assert RD.set_key([moved], _settings()) == k                 # the path does not matter, the bytes do
    write_bvh(moved, np.zeros((30, 3)))
    assert RD.set_key([moved], _settings()) != k


def test_missing_blender_is_one_line_before_any_work(bvh, tmp_path, monkeypatch):
    monkeypatch.setenv("V2M_BLENDER", str(tmp_path / "no-blender"))
    monkeypatch.setattr(RD, "_load_body", lambda: pytest.fail("loaded Anny before checking for Blender"))
    with pytest.raises(AssetMissing) as e:
        RD.build_set([bvh], tmp_path / "sets", frames=10)
    assert str(e.value) == S.BLENDER_MISSING and "\n" not in str(e.value)


def test_a_complete_clip_is_reused_without_blender(bvh, tmp_path, monkeypatch):
    """A clip folder that exists is complete (written by rename): build_set returns it and renders nothing."""
    monkeypatch.setenv("V2M_BLENDER", str(tmp_path / "no-blender"))
    cams = (CameraSpec("pan"),)
    phens = (RD.Phenotype("average"),)
    settings = {"frames": 10, "cameras": [RD.asdict(c) for c in cams], "phenotypes": [RD.asdict(p) for p in phens],
                "size": [640, 360], "fps": 30.0, "people": 1, "verts_stride": 10, "retarget": RD.asdict(RD.RetargetConfig())}
    clip = tmp_path / "sets" / RD.set_key([bvh], settings) / "00_walk_pan-h1.5-d5_average"
    clip.mkdir(parents=True)
    (clip / "gt.npz").write_bytes(b"stand-in")
    (clip / "meta.json").write_text(json.dumps({"frames": 10}))
    out = RD.build_set([bvh], tmp_path / "sets", frames=10, cameras=cams, phenotypes=phens)
    assert out == [clip]
    index = json.loads((clip.parent / "index.json").read_text())
    assert index["clips"][0]["clip"] == clip.name and index["render_version"] == RD.RENDER_VERSION


def _person(path_xz, t=20, v=50):
    """A stand-in retarget result: a box of vertices and joints moving along path_xz (T, 2)."""
    rng = np.random.default_rng(0)
    base = np.c_[path_xz[:, 0], np.full(t, 0.9), path_xz[:, 1]]
    verts = base[:, None] + rng.uniform(-0.3, 0.3, (1, v, 3))
    joints = base[:, None] + rng.uniform(-0.3, 0.3, (1, 23, 3))
    centres = np.repeat(base[:, None], 16, 1) + np.r_[[[0.1, 0, 0], [-0.1, 0, 0]], np.zeros((14, 3))]
    return Retargeted(verts, joints, centres, np.zeros(t), 1.0, 0.0, np.zeros((t, 1, 3)), np.tile(np.eye(3), (t, 1, 1)), base)


def test_two_walkers_are_turned_to_cross_mid_clip():
    t = 20
    walk = np.c_[np.zeros(t), np.linspace(0, 2, t)]                     # both walk 2 m along +Z
    placed = RD.arrange([_person(walk), _person(walk)], t)
    pel = [0.5 * (c[:, 0] + c[:, 1]) for _, _, c in placed]
    np.testing.assert_allclose(pel[0][:, [0, 2]], walk, atol=1e-9)     # person 0 untouched
    np.testing.assert_allclose(pel[1][:, 2], walk[::-1, 1], atol=1e-9)  # person 1 walks the other way ...
    np.testing.assert_allclose(pel[1][:, 0], RD.CROSS_OFFSET_M, atol=1e-9)   # ... beside person 0's path
    assert placed[1][0].dtype == np.float32 and placed[1][0].shape == (t, 50, 3)


@pytest.mark.slow
def test_blender_renders_the_body_inside_its_ground_truth_box(tmp_path):
    """3 frames of Anny through a moving camera: the rendered silhouette (the flat white mask pass) lies in
    the GT box of the projected mesh, and fills it (the Python and Blender cameras agree)."""
    try:
        S.blender_path()
    except AssetMissing as e:
        pytest.skip(str(e))
    from tests.stages.licence_free_helpers import anny_body

    import torch

    from video2mesh.benchmarks.accuracy.cameras import camera_path
    from video2mesh.benchmarks.accuracy.groundtruth import mesh_boxes
    from video2mesh.models.body.anny_keypoints import dominant_bones

    body = anny_body()
    with torch.no_grad():
        v = body.skeleton(torch.full((1, 6), 0.5, dtype=body.dtype)).rest_vertices.numpy()
    v = v @ np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]).T
    v[:, 1] -= v[:, 1].min()
    verts = np.stack([v + [0.3 * f, 0, 0.2 * f] for f in range(3)])[None].astype(np.float32)   # (1, 3, V, 3)
    size = (320, 180)
    pelvis = verts.mean(2)
    k, r, t = camera_path(CameraSpec("handheld", height_m=1.2, distance_m=3.0), pelvis, size, clip_seed=1)
    S.render_frames(tmp_path, verts, body.faces, S.region_uv(body.bone_names, dominant_bones(body)), k, r, t, size,
                    seed=0, masks=True)
    boxes = mesh_boxes(verts, k, r, t, size)[0]
    for f in range(3):
        mask = cv2.imread(str(tmp_path / f"mask_{f:05d}.png"), cv2.IMREAD_GRAYSCALE) > 127
        ys, xs = np.nonzero(mask)
        x0, y0, x1, y1 = boxes[f]
        assert xs.min() >= x0 - 1 and xs.max() <= x1 + 1 and ys.min() >= y0 - 1 and ys.max() <= y1 + 1
        assert xs.min() <= x0 + 2 and xs.max() >= x1 - 2 and ys.min() <= y0 + 2 and ys.max() >= y1 - 2
        frame = cv2.imread(str(tmp_path / f"frame_{f:05d}.png"))
        assert frame.shape == (size[1], size[0], 3) and frame.std() > 10     # a textured scene, not a blank
