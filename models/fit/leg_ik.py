"""Two-bone leg IK on Anny's rig: move an ankle by a small shift, keep the foot's orientation.

Chain per side: hip = head of upperleg01, knee = head of lowerleg01, ankle = head of foot (upperleg02
and lowerleg02 are twist bones riding along). With world rotations G (pose_rig's: rest model ->
camera per bone) and heads, the knee's interior angle is set by the law of cosines for the new
hip-ankle distance (R1, about the leg's bend normal at the knee), then the whole leg turns about the
hip (R2, the smallest rotation taking the bent ankle onto the target). New local rotations:
L_upperleg01 = G_pelvis^T R2 G_upperleg01, L_lowerleg01 = G_upperleg02^T R1 G_lowerleg01,
L_foot = (R2 R1 G_lowerleg02)^T D G_foot (the foot keeps its world rotation, or takes D G_foot given a
turn D: a locked foot).
A target beyond the leg's reach is approached as far as the leg allows.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

CHAIN = ("pelvis", "upperleg01", "upperleg02", "lowerleg01", "lowerleg02", "foot")
SIDES = ("L", "R")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _align(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(T, 3, 3) smallest rotations taking directions u (T, 3) onto v (T, 3)."""
    u, v = _unit(u), _unit(v)
    axis = np.cross(u, v)
    s = np.linalg.norm(axis, axis=-1)
    ang = np.arctan2(s, np.einsum("ti,ti->t", u, v))
    return Rotation.from_rotvec(_unit(axis) * ang[:, None]).as_matrix()


def leg_ik(bone_names: list[str], rots: np.ndarray, g: np.ndarray, heads: np.ndarray, shift: np.ndarray,
           turn: np.ndarray | None = None) -> np.ndarray:
    """Local rotations (T, J, 3) (axis-angle, BVH-style as the fit stores them) with each ankle moved by
    shift (T, 2, 3) (left, right; same axes as g / heads, metres) and, given turn (T, 2, 3, 3), each
    foot's world rotation G_foot replaced by turn G_foot. g (T, J, 3, 3) and heads (T, J, 3) are
    pose_rig's world rotations and heads of `rots`. Frames with a zero shift and no turn are left untouched."""
    out = rots.copy()
    if turn is None:
        turn = np.tile(np.eye(3), (len(rots), 2, 1, 1))
    for s, side in enumerate(SIDES):
        i_p, i_u1, i_u2, i_l1, i_l2, i_f = (bone_names.index(f"{b}.{side}") for b in CHAIN)
        turned = np.abs(turn[:, s] - np.eye(3)).max((1, 2)) > 1e-12
        t = np.flatnonzero((np.linalg.norm(shift[:, s], axis=-1) > 1e-9) | turned)
        if not len(t):
            continue
        hip, knee, ankle = heads[t, i_u1], heads[t, i_l1], heads[t, i_f]
        target = ankle + shift[t, s]
        a = np.linalg.norm(knee - hip, axis=-1)
        b = np.linalg.norm(ankle - knee, axis=-1)
        d = np.clip(np.linalg.norm(target - hip, axis=-1), np.abs(a - b) * 1.001 + 1e-6, (a + b) * 0.999)
        phi0 = np.arccos(np.clip(np.einsum("ti,ti->t", _unit(hip - knee), _unit(ankle - knee)), -1, 1))
        phi = np.arccos(np.clip((a ** 2 + b ** 2 - d ** 2) / (2 * a * b), -1, 1))
        normal = np.cross(knee - hip, ankle - knee)
        straight = np.linalg.norm(normal, axis=-1) < 1e-6 * a * b
        hinge = np.einsum("tij,j->ti", g[t, i_l1], [1.0, 0.0, 0.0])      # the knee's axis (model x) when straight
        normal = _unit(np.where(straight[:, None], hinge, normal))
        r1 = Rotation.from_rotvec(normal * (phi0 - phi)[:, None]).as_matrix()
        bent = knee + np.einsum("tij,tj->ti", r1, ankle - knee)
        r2 = _align(bent - hip, target - hip)
        gt = lambda i: g[t, i]  # noqa: E731
        tr = lambda m: np.swapaxes(m, -1, -2)  # noqa: E731
        new = {i_u1: tr(gt(i_p)) @ r2 @ gt(i_u1),
               i_l1: tr(gt(i_u2)) @ r1 @ gt(i_l1),
               i_f: tr(r2 @ r1 @ gt(i_l2)) @ turn[t, s] @ gt(i_f)}
        for i, m in new.items():
            out[t, i] = Rotation.from_matrix(m).as_rotvec()
    return out
