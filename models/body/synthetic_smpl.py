"""A licence-free body model in the official SMPL file layout, for tests and benchmarks.

SMPL itself is licensed and never ships with this project. This module builds a file with the same
keys, shapes and dtypes as the official `SMPL_NEUTRAL.pkl` (6890 vertices, 24 joints, 10 shape and
207 pose blend shapes, sparse `J_regressor`, `kintree_table`, faces), so every code path that reads
SMPL (smplx, exporters, the mesh stage) runs on it. The geometry is 24 ellipsoid blobs at
SMPL-like rest joint positions: a stick figure, not a human surface.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import scipy.sparse as sp

N_VERTS = 6890
N_JOINTS = 24
# SMPL kinematic tree (parent of each joint; -1 for the pelvis).
PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21])
# Approximate rest (T-pose) joint positions in metres, x to the body's left, y up, z forward.
REST_JOINTS = np.array([
    [0.00, 0.00, 0.00], [0.06, -0.09, 0.00], [-0.06, -0.09, 0.00], [0.00, 0.11, -0.01],
    [0.10, -0.47, 0.00], [-0.10, -0.47, 0.00], [0.00, 0.24, 0.00], [0.09, -0.87, -0.04],
    [-0.09, -0.87, -0.04], [0.00, 0.29, 0.03], [0.12, -0.93, 0.08], [-0.12, -0.93, 0.08],
    [0.00, 0.51, 0.00], [0.08, 0.42, 0.00], [-0.08, 0.42, 0.00], [0.00, 0.60, 0.05],
    [0.19, 0.45, 0.00], [-0.19, 0.45, 0.00], [0.45, 0.43, 0.00], [-0.45, 0.43, 0.00],
    [0.71, 0.44, 0.00], [-0.71, 0.44, 0.00], [0.79, 0.44, 0.00], [-0.79, 0.44, 0.00],
])
_RINGS, _SEG = 15, 19            # 15 x 19 + 2 poles = 287 vertices per blob, 24 blobs + 2 = 6890


def _blob(center: np.ndarray, radius: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UV ellipsoid: (287, 3) vertices and (2 * 19 * 15, 3) faces (outward winding)."""
    theta = np.linspace(0, np.pi, _RINGS + 2)[1:-1]
    phi = np.linspace(0, 2 * np.pi, _SEG, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(t) * np.cos(p), np.cos(t), np.sin(t) * np.sin(p)], -1).reshape(-1, 3)
    unit = np.concatenate([[[0, 1, 0]], ring, [[0, -1, 0]]])
    verts = center + unit * radius
    faces = []
    top, bottom = 0, 1 + _RINGS * _SEG
    idx = lambda r, s: 1 + r * _SEG + (s % _SEG)  # noqa: E731
    for s in range(_SEG):
        faces.append([top, idx(0, s + 1), idx(0, s)])
        faces.append([bottom, idx(_RINGS - 1, s), idx(_RINGS - 1, s + 1)])
        for r in range(_RINGS - 1):
            a, b, c, d = idx(r, s), idx(r, s + 1), idx(r + 1, s), idx(r + 1, s + 1)
            faces += [[a, b, d], [a, d, c]]
    return verts, np.array(faces)


def build(seed: int = 0) -> dict:
    """The model as a dict with the official SMPL keys and dtypes (float64 arrays, like the .pkl)."""
    rng = np.random.default_rng(seed)
    verts, faces, owner = [], [], []
    for j in range(N_JOINTS):
        c = PARENTS[j]
        # Centre each blob halfway to the parent so the surface follows the bones.
        center = REST_JOINTS[j] if c < 0 else 0.5 * (REST_JOINTS[j] + REST_JOINTS[c])
        v, f = _blob(center, np.array([0.05, 0.06, 0.05]))
        faces.append(f + len(verts) * 287)
        verts.append(v)
        owner.append(np.full(287, j))
    v_template = np.concatenate(verts + [REST_JOINTS[[0, 0]]])      # 2 spare vertices at the pelvis
    owner = np.concatenate(owner + [np.array([0, 0])])
    assert v_template.shape == (N_VERTS, 3)
    weights = np.zeros((N_VERTS, N_JOINTS))
    weights[np.arange(N_VERTS), owner] = 0.8
    parent_of_owner = np.where(PARENTS[owner] < 0, owner, PARENTS[owner])
    weights[np.arange(N_VERTS), parent_of_owner] += 0.2
    # Joint regressor: each joint is the mean of 8 of its own blob's vertices placed so that the
    # rest joints come out exactly at REST_JOINTS (a sparse, row-stochastic matrix like SMPL's).
    v_template = v_template.copy()
    jreg = np.zeros((N_JOINTS, N_VERTS))
    for j in range(N_JOINTS):
        ids = np.flatnonzero(owner == j)[:287][::36][:8]
        v_template[ids] += REST_JOINTS[j] - v_template[ids].mean(0)
        jreg[j, ids] = 1.0 / len(ids)
    shapedirs = rng.normal(0, 0.01, (N_VERTS, 3, 10)) + 0.02 * v_template[:, :, None] * rng.normal(0, 1, (1, 1, 10))
    posedirs = rng.normal(0, 0.001, (N_VERTS, 3, 207))
    kintree = np.stack([np.where(PARENTS < 0, 4294967295, PARENTS), np.arange(N_JOINTS)]).astype(np.int64)
    return {
        "v_template": v_template,
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "J_regressor": sp.csc_matrix(jreg),
        "weights": weights,
        "kintree_table": kintree,
        "f": np.concatenate(faces).astype(np.uint32),
        "J": REST_JOINTS.copy(),
        "bs_type": "lrotmin",
        "bs_style": "lbs",
    }


def write(folder: str | Path, gender: str = "NEUTRAL", seed: int = 0) -> Path:
    """Write `<folder>/SMPL_<GENDER>.pkl` (the name smplx looks for) and return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"SMPL_{gender.upper()}.pkl"
    with open(path, "wb") as f:
        pickle.dump(build(seed), f, protocol=2)
    return path
