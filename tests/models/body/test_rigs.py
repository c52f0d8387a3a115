"""Retargeting between skeletons of one mesh (models/body/rigs.py): closed forms on toy rigs."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from video2mesh.models.body.rigs import point_weights, retarget, rotation_about, skin


def test_rotation_about_recovers_a_known_rotation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    r = Rotation.random(4, random_state=1).as_matrix()                # (4, 3, 3)
    y = np.einsum("tij,vj->tvi", r, x)
    np.testing.assert_allclose(rotation_about(x, y, np.ones(30)), r, atol=1e-10)


def test_point_weights_of_a_vertex_are_its_own():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(50, 3))
    w = rng.dirichlet(np.ones(4), size=50)
    got = point_weights(v, w, v[[3, 7]] + 1e-9)
    np.testing.assert_allclose(got.sum(1), 1.0)
    np.testing.assert_allclose(got, w[[3, 7]], atol=1e-4)


def _bar(n=200):
    """A bar along y (the shared mesh) skinned by a 2-bone source rig and a 3-bone target rig."""
    rng = np.random.default_rng(2)
    v = np.c_[rng.uniform(-0.05, 0.05, n), rng.uniform(0, 1, n), rng.uniform(-0.05, 0.05, n)]
    src_heads = np.array([[0, 0, 0], [0, 0.5, 0]], float)
    src_w = np.stack([v[:, 1] < 0.5, v[:, 1] >= 0.5], 1).astype(float)
    dst_heads = np.array([[0, 0, 0], [0, 0.5, 0], [0, 0.75, 0]], float)
    dst_w = np.stack([v[:, 1] < 0.5, (v[:, 1] >= 0.5) & (v[:, 1] < 0.75), v[:, 1] >= 0.75], 1).astype(float)
    return v, src_heads, src_w, dst_heads, dst_w


def test_retarget_reproduces_a_bent_bar_exactly():
    """Source: bone 1 bends 60 degrees about z at y = 0.5, the whole bar turned and moved. The target's
    bones 1 and 2 both lie on the bent half, so the target reproduces every vertex and joint exactly."""
    v, sh, sw, dh, dw = _bar()
    t = 3
    g0 = Rotation.from_rotvec([[0.2, 0.1, 0.3]] * t).as_matrix()
    g1 = g0 @ Rotation.from_euler("z", [[0.0], [30.0], [60.0]], degrees=True).as_matrix()
    src_rot = np.stack([g0, g1], 1)                                            # (T, 2, 3, 3)
    root = np.array([[0.1, 0.2, 3.0]] * t)
    src_pos = np.stack([root, root + np.einsum("tij,j->ti", g0, sh[1] - sh[0])], 1)
    posed = skin(v, sh, sw, src_rot, src_pos)
    r = retarget(src_rot, src_pos, sh, sw, v, dh, np.array([-1, 0, 1]), dw)
    np.testing.assert_allclose(skin(v, dh, dw, r.rotations, r.heads), posed, atol=1e-9)
    np.testing.assert_allclose(r.heads, r.target_heads, atol=1e-9)
    np.testing.assert_allclose(r.rotations[:, 2], g1, atol=1e-9)


def test_a_root_that_skins_nothing_follows_its_child():
    """A game-engine style rig: a `Root` below the bar that skins no vertex. The bar's bone still lands
    exactly (its head where the mesh puts it, its vertices reproduced)."""
    v, sh, sw, _, _ = _bar()
    dh = np.array([[0, -0.3, 0], [0, 0, 0]], float)              # Root 30 cm below the bar, then the bar
    dw = np.stack([np.zeros(len(v)), np.ones(len(v))], 1)
    t = 2
    g = Rotation.from_rotvec([[0.4, 0.0, 0.2]] * t).as_matrix()
    src_rot = np.stack([g, g], 1)
    root = np.array([[0.1, 0.2, 3.0]] * t)
    src_pos = np.stack([root, root + np.einsum("tij,j->ti", g, sh[1] - sh[0])], 1)
    r = retarget(src_rot, src_pos, sh, sw, v, dh, np.array([-1, 0]), dw)
    np.testing.assert_allclose(r.heads[:, 1], r.target_heads[:, 1], atol=1e-9)
    np.testing.assert_allclose(skin(v, dh, dw, r.rotations, r.heads), skin(v, sh, sw, src_rot, src_pos), atol=1e-9)
