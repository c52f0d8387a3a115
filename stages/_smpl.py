"""SMPL's model file for the stages that read it outside the network (export, report previews).

A helper module (no stage). The arrays come from video2mesh.models.body.smpl's chumpy-free reader;
an unreadable file is an InputError that says where to get a real one.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from video2mesh.pipeline.errors import InputError


def smpl_asset(gender: str) -> str:
    """The asset name of the SMPL model file of `gender` (declared by the mesh stage)."""
    return f"smpl_{gender}"


def load_smpl_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an SMPL .pkl (official or synthetic) without chumpy: v_template (6890, 3),
    shapedirs (6890, 3, B), posedirs (6890, 3, 207), J_regressor (24, 6890) dense, weights
    (6890, 24), kintree_table (2, 24), f (F, 3)."""
    from video2mesh.models.body.smpl import load_model_data  # the one chumpy-free reader (.pkl official or not, .npz)

    try:
        raw = load_model_data(path)
    except (OSError, ValueError, pickle.UnpicklingError, EOFError) as e:
        raise InputError(f"{path}: not a readable SMPL model file ({e}); get SMPL_*.pkl from smpl.is.tue.mpg.de") from e
    keys = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
    missing = [k for k in keys if k not in raw]
    if missing:
        raise InputError(f"{path}: SMPL model file lacks {missing}; is it an SMPL (not SMPL-X/H) .pkl?")
    out = {k: np.asarray(raw[k].toarray() if hasattr(raw[k], "toarray") else raw[k]) for k in keys}
    out["f"] = out["f"].astype(np.int64)
    return out


def smpl_layer(arrays: dict[str, np.ndarray], gender: str = "neutral", num_betas: int = 10):
    """An smplx.SMPL module built from `load_smpl_arrays` output (float32, CPU)."""
    from smplx.utils import Struct

    from video2mesh.models.body.smpl import smplx_smpl

    return smplx_smpl(model_path="", data_struct=Struct(**arrays), gender=gender, num_betas=num_betas)


def shaped_rest(arrays: dict[str, np.ndarray], betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shaped rest vertices (6890, 3) and joints (24, 3) for betas (B,), in metres (float64)."""
    b = np.asarray(betas, np.float64)
    v = arrays["v_template"] + arrays["shapedirs"][:, :, : len(b)] @ b
    return v, arrays["J_regressor"] @ v


def smpl_vertices(layer, pose: np.ndarray, betas: np.ndarray, transl: np.ndarray, batch: int = 128) -> np.ndarray:
    """Posed vertices (T, 6890, 3) float32 from pose (T, 72), betas (10,), transl (T, 3)."""
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(pose), batch):
            p = torch.as_tensor(pose[s:s + batch], dtype=torch.float32)
            n = len(p)
            res = layer(global_orient=p[:, :3], body_pose=p[:, 3:],
                        betas=torch.as_tensor(betas, dtype=torch.float32).expand(n, -1),
                        transl=torch.as_tensor(transl[s:s + batch], dtype=torch.float32))
            out.append(res.vertices.numpy())
    return np.concatenate(out) if out else np.zeros((0, 6890, 3), np.float32)
