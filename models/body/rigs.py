"""Motion of one Anny rig carried onto another rig of the same mesh (Mixamo, game engine, ...).

The `anny` package ships several skeletons for one MakeHuman mesh, each with its own skinning weights:
its own 104-bone `anny` rig (the one the fit moves), `mixamo` (52 bones, Mixamo's `mixamorig:*` names)
and `game_engine` (Unreal-style names). Because the mesh is shared, no hand-written joint table is
needed: the fitted body's posed vertices say where every part of the mesh went, and each target bone
takes the rigid motion that best carries the vertices it skins (weighted Kabsch on its own skinning
weights). Its head then follows by forward kinematics from the target root, so bone lengths stay those
of the target's rest skeleton and the result is an ordinary animated skeleton for BVH/GLB/FBX writers.

Conventions are `anny_body.pose_rig`'s: bone c moves a rest point x (model axes) to G_c (x - h_c) + p_c
with G_c (T, J, 3, 3) the world rotation relative to rest and p_c (T, J, 3) the posed head.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_WEIGHT = 0.05   # vertices a bone skins with less than this do not vote for its rotation


HEAD_WEIGHT = 0.9   # share of a bone's fit given to landing its children's heads where the mesh puts them


@dataclass(frozen=True)
class RetargetResult:
    rotations: np.ndarray   # (T, K, 3, 3) world rotation of each target bone relative to its rest
    heads: np.ndarray       # (T, K, 3) posed heads by FK from the target root
    target_heads: np.ndarray  # (T, K, 3) where the source's skinning carries each target rest head


def rotation_about(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rotation R (T, 3, 3) minimising sum_v w_v |R x_v - y_tv|^2 (orthogonal Procrustes, no translation).

    x (V, 3), y (T, V, 3), w (V,) non-negative.
    """
    h = np.einsum("v,vi,tvj->tij", w, x, y)                      # (T, 3, 3)
    u, _, vt = np.linalg.svd(h)
    v, ut = np.swapaxes(vt, 1, 2), np.swapaxes(u, 1, 2)
    fix = np.tile(np.eye(3), (len(y), 1, 1))
    fix[:, 2, 2] = np.sign(np.linalg.det(v @ ut))
    return v @ fix @ ut


def point_weights(rest_vertices: np.ndarray, skin_weights: np.ndarray, points: np.ndarray, k: int = 8) -> np.ndarray:
    """(P, J) skinning weights of arbitrary rest points: inverse-distance blend of the k nearest vertices'."""
    d = np.linalg.norm(points[:, None] - rest_vertices[None], axis=-1)     # (P, V)
    near = np.argsort(d, axis=1)[:, :k]
    inv = 1.0 / np.maximum(np.take_along_axis(d, near, 1), 1e-6)
    w = np.einsum("pk,pkj->pj", inv, skin_weights[near])
    return w / w.sum(1, keepdims=True)


def retarget(src_rotations: np.ndarray, src_heads_posed: np.ndarray, src_heads: np.ndarray, src_weights: np.ndarray,
             rest_vertices: np.ndarray, heads: np.ndarray, parents: np.ndarray, skin_weights: np.ndarray) -> RetargetResult:
    """Target-rig motion that reproduces the source rig's posed mesh.

    Source (the fitted rig, `pose_rig`'s output): rotations (T, J, 3, 3), posed heads (T, J, 3), rest heads
    (J, 3), dense weights (V, J). Target, same shape and mesh: rest_vertices (V, 3), rest heads (K, 3),
    parents (K,) with parents before children, dense weights (V, K). The target root lands where the
    source's skinning carries its rest head; each bone then turns about its (already placed) head to
    carry the vertices it skins and its children's heads where the source puts them. A bone whose points
    (vertices and children's heads) cannot fix a rotation keeps its parent's (tips); a root that skins
    nothing follows its most skinning child.
    """
    def lbs(points: np.ndarray, w: np.ndarray) -> np.ndarray:        # source skinning of rest points (T, P, 3)
        out = np.zeros((len(src_rotations), len(points), 3))
        for j in np.flatnonzero(w.max(0) > 0):
            sel = np.flatnonzero(w[:, j] > 0)
            out[:, sel] += w[sel, j, None] * (np.einsum("tij,pj->tpi", src_rotations[:, j], points[sel] - src_heads[j])
                                              + src_heads_posed[:, j, None])
        return out

    t, k = len(src_rotations), len(heads)
    target = lbs(heads, point_weights(rest_vertices, src_weights, heads))
    posed = lbs(rest_vertices, src_weights)
    kids = [np.flatnonzero(parents == c) for c in range(k)]

    def turn(c: int, head: np.ndarray) -> np.ndarray | None:
        """Bone c's rotation (T, 3, 3) about its posed head (T, 3), or None when its points cannot fix one."""
        sel = np.flatnonzero(skin_weights[:, c] >= MIN_WEIGHT)
        share = HEAD_WEIGHT if len(kids[c]) else 0.0
        xs = [rest_vertices[sel] - heads[c]]
        ys = [posed[:, sel] - head[:, None]]
        ws = [skin_weights[sel, c] / max(skin_weights[sel, c].sum(), 1e-12) * (1 - share)]
        if len(kids[c]):
            xs.append(heads[kids[c]] - heads[c])
            ys.append(target[:, kids[c]] - head[:, None])
            ws.append(np.full(len(kids[c]), share / len(kids[c])))
        x = np.concatenate(xs)
        spread = np.linalg.svd(x - x.mean(0), compute_uv=False) if len(x) >= 3 else np.zeros(3)
        return None if spread[1] < 1e-4 else rotation_about(x, np.concatenate(ys, axis=1), np.concatenate(ws))

    rot = np.zeros((t, k, 3, 3))
    pos = np.zeros((t, k, 3))
    pos[:, 0] = target[:, 0]
    for c in range(k):
        if c:
            p = parents[c]
            pos[:, c] = pos[:, p] + np.einsum("tij,j->ti", rot[:, p], heads[c] - heads[p])
        r = turn(c, pos[:, c])
        if r is None and c == 0 and len(kids[0]):
            # A root that skins nothing (a game-engine `Root` on the floor): it takes the rotation of its most
            # skinning child, placed so that this child's head lands where the mesh puts it.
            cc = max(kids[0], key=lambda j: skin_weights[:, j].sum())
            r = turn(cc, target[:, cc])
            if r is not None:
                pos[:, 0] = target[:, cc] - np.einsum("tij,j->ti", r, heads[cc] - heads[0])
        if r is None:
            r = rot[:, parents[c]] if c else np.tile(np.eye(3), (t, 1, 1))
        rot[:, c] = r
    return RetargetResult(rotations=rot, heads=pos, target_heads=target)


def skin(rest_vertices: np.ndarray, heads: np.ndarray, skin_weights: np.ndarray, rotations: np.ndarray,
         posed_heads: np.ndarray) -> np.ndarray:
    """Linear blend skinning (T, V, 3): v -> sum_k w_vk (G_k (v - h_k) + p_k)."""
    out = np.zeros((len(rotations), len(rest_vertices), 3))
    for c in np.flatnonzero(skin_weights.max(0) > 0):
        sel = np.flatnonzero(skin_weights[:, c] > 0)
        moved = np.einsum("tij,vj->tvi", rotations[:, c], rest_vertices[sel] - heads[c]) + posed_heads[:, c, None]
        out[:, sel] += skin_weights[sel, c, None] * moved
    return out
