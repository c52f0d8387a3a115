"""Two-bone leg IK (models.fit.leg_ik) on a hand-built leg chain with forward kinematics
G_child = G_parent L_child, head_child = head_parent + G_parent offset_child (the convention leg_ik's
local rotations assume): the ankle must land on its target and the foot take the given world rotation."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from video2mesh.models.fit.leg_ik import CHAIN, SIDES, leg_ik

NAMES = ["root"] + [f"{b}.{s}" for s in SIDES for b in CHAIN]
PARENT = {f"{b}.{s}": (f"{CHAIN[i - 1]}.{s}" if i else "root") for s in SIDES for i, b in enumerate(CHAIN)}
OFFSET = {"pelvis": [0.0, 0.0, 0.0], "upperleg01": [0.1, 0.0, 0.0], "upperleg02": [0.0, 0.0, -0.2],
          "lowerleg01": [0.0, 0.0, -0.22], "lowerleg02": [0.0, 0.0, -0.2], "foot": [0.0, 0.0, -0.2]}


def fk(rots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World rotations (T, J, 3, 3) and heads (T, J, 3) of local axis-angle rotations (T, J, 3)."""
    n = len(rots)
    loc = Rotation.from_rotvec(rots.reshape(-1, 3)).as_matrix().reshape(n, len(NAMES), 3, 3)
    g, h = np.zeros_like(loc), np.zeros((n, len(NAMES), 3))
    g[:, 0], h[:, 0] = loc[:, 0], [0.0, 0.0, 1.0]
    for j, name in enumerate(NAMES[1:], 1):
        p = NAMES.index(PARENT[name])
        off = np.array(OFFSET[name.split(".")[0]]) * (1 if name.endswith("L") else [-1, 1, 1])
        g[:, j] = g[:, p] @ loc[:, j]
        h[:, j] = h[:, p] + np.einsum("tij,j->ti", g[:, p], off)
    return g, h


def bent_legs(rng, n: int) -> np.ndarray:
    """Random local rotations with both knees bent ~55 deg (a target a few cm away stays within reach)."""
    rots = rng.normal(0, 0.15, (n, len(NAMES), 3))
    for side in SIDES:
        rots[:, NAMES.index(f"lowerleg01.{side}")] += [1.0, 0.0, 0.0]
    return rots


def test_ankle_reaches_its_target_and_the_foot_takes_its_turn():
    rng = np.random.default_rng(0)
    n = 8
    rots = bent_legs(rng, n)
    g, h = fk(rots)
    shift = rng.normal(0, 0.015, (n, 2, 3))
    turn = Rotation.from_rotvec(rng.normal(0, 0.1, (n * 2, 3))).as_matrix().reshape(n, 2, 3, 3)
    shift[0], turn[0] = 0.0, np.eye(3)                   # a frame with nothing to do stays as it was
    out = leg_ik(NAMES, rots, g, h, shift, turn)
    g2, h2 = fk(out)
    for s, side in enumerate(SIDES):
        f = NAMES.index(f"foot.{side}")                  # the ankle is the foot bone's head
        np.testing.assert_allclose(h2[:, f], h[:, f] + shift[:, s], atol=1e-9)
        np.testing.assert_allclose(g2[:, f], np.einsum("tij,tjk->tik", turn[:, s], g[:, f]), atol=1e-9)
    np.testing.assert_array_equal(out[0], rots[0])
    np.testing.assert_allclose(h2[:, NAMES.index("pelvis.L")], h[:, NAMES.index("pelvis.L")], atol=1e-12)


def test_without_a_turn_the_foot_keeps_its_world_rotation():
    rng = np.random.default_rng(1)
    rots = bent_legs(rng, 5)
    g, h = fk(rots)
    out = leg_ik(NAMES, rots, g, h, rng.normal(0, 0.03, (5, 2, 3)))
    g2, _ = fk(out)
    for side in SIDES:
        f = NAMES.index(f"foot.{side}")
        np.testing.assert_allclose(g2[:, f], g[:, f], atol=1e-9)
