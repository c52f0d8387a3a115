"""SMPL body model: a thin wrapper over `smplx.SMPL` that reads the official files without chumpy.

The official `SMPL_{NEUTRAL,MALE,FEMALE}.pkl` files pickle some arrays as chumpy `Ch` objects.
chumpy does not install on current Python/numpy, so `load_model_data` unpickles with a custom
`Unpickler` that maps every `chumpy.*` class to a stub; a chumpy `Ch` pickles its value under the
`x` key of its `__dict__` (chumpy/ch.py `__getstate__`), which the stub turns back into an array.
`.npz` model files (smplx's conversion) are read directly.

Outputs (`SMPLOutput`): vertices (B, 6890, 3), SMPL-24 joints (B, 24, 3), COCO-17 joints (B, 17, 3)
and, when a `J_regressor_h36m.npy` is given, the 14 evaluation joints (B, 14, 3). Metres.
"""
from __future__ import annotations

import contextlib
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

import smplx
from smplx.utils import Struct
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS

from video2mesh.models.maths.rotations import axis_angle_to_rotmat

GENDERS = ("neutral", "male", "female")
N_VERTS = 6890
N_BETAS = 10

# COCO-17 order. Face points are mesh vertices (smplx's SMPL-H vertex ids); the rest are SMPL joints.
_FACE = SMPLX_VERTEX_IDS["smplh"]
COCO17_NAMES = ("nose", "leye", "reye", "lear", "rear", "lshoulder", "rshoulder", "lelbow", "relbow",
                "lwrist", "rwrist", "lhip", "rhip", "lknee", "rknee", "lankle", "rankle")
COCO17_VERTICES = {0: _FACE["nose"], 1: _FACE["leye"], 2: _FACE["reye"], 3: _FACE["lear"], 4: _FACE["rear"]}
COCO17_JOINTS = {5: 16, 6: 17, 7: 18, 8: 19, 9: 20, 10: 21, 11: 1, 12: 2, 13: 4, 14: 5, 15: 7, 16: 8}
# Rows of the 17-joint Human3.6M regressor in the 14-joint evaluation order (SPIN's H36M_TO_J14):
# rankle, rknee, rhip, lhip, lknee, lankle, rwrist, relbow, rshoulder, lshoulder, lelbow, lwrist, neck, headtop.
H36M_TO_J14 = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10)


class _ChumpyStub:
    """Stands in for any chumpy class while unpickling; keeps the pickled state."""

    def __init__(self, *args, **kwargs) -> None:
        self.args = args

    def __setstate__(self, state) -> None:
        self.state = state


class _NoChumpyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStub
        return super().find_class(module, name)


def _unstub(value, key: str, path: Path):
    if not isinstance(value, _ChumpyStub):
        return value
    state = getattr(value, "state", None)
    if isinstance(state, dict) and "x" in state:
        return np.asarray(state["x"])
    raise ValueError(f"{path}: entry {key!r} is a chumpy expression, not a stored array; "
                     "convert the file with smplx's tools (tools/clean_ch.py) or provide the .npz model")


def smplx_smpl(**kwargs) -> "smplx.SMPL":
    """`smplx.SMPL(**kwargs)` without the banner smplx prints to stdout for 10-beta models."""
    with contextlib.redirect_stdout(io.StringIO()):
        return smplx.SMPL(**kwargs)


def load_model_data(path: str | Path) -> dict:
    """Read an SMPL model file (.pkl official layout, chumpy or not, or .npz) into plain arrays."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SMPL model file not found: {path}")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    with open(path, "rb") as f:
        raw = _NoChumpyUnpickler(f, encoding="latin1").load()
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a dict of model arrays, got {type(raw).__name__}")
    return {k: _unstub(v, k, path) for k, v in raw.items()}


def model_file(model_dir: str | Path, gender: str = "neutral") -> Path:
    """`<dir>/SMPL_<GENDER>.pkl` (or .npz); `model_dir` may also be the file itself."""
    p = Path(model_dir)
    if p.is_file():
        return p
    if gender not in GENDERS:
        raise ValueError(f"gender must be one of {GENDERS}, got {gender!r}")
    for ext in (".pkl", ".npz"):
        f = p / f"SMPL_{gender.upper()}{ext}"
        if f.is_file():
            return f
    raise FileNotFoundError(f"no SMPL_{gender.upper()}.pkl or .npz in {p}")


@dataclass(frozen=True)
class SMPLOutput:
    """vertices (B, 6890, 3), joints24 (B, 24, 3), coco17 (B, 17, 3), h36m14 (B, 14, 3) or None."""

    vertices: torch.Tensor
    joints24: torch.Tensor
    coco17: torch.Tensor
    h36m14: torch.Tensor | None = None


def coco17_from(vertices: torch.Tensor, joints24: torch.Tensor) -> torch.Tensor:
    """(B, 6890, 3), (B, 24, 3) -> (B, 17, 3) COCO joints (face points from vertices)."""
    out = vertices.new_empty(vertices.shape[0], 17, 3)
    for k, v in COCO17_VERTICES.items():
        out[:, k] = vertices[:, v]
    for k, j in COCO17_JOINTS.items():
        out[:, k] = joints24[:, j]
    return out


class SMPL(nn.Module):
    """SMPL with buffers from a model file; `forward` takes rotation matrices or axis-angle.

    `smplx.SMPL` holds the blend shapes and does the linear blend skinning; this class adds the
    chumpy-free loading and the joint sets used by the pipeline.
    """

    def __init__(self, model_path: str | Path, gender: str = "neutral", j_regressor_h36m: str | Path | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        path = model_file(model_path, gender)
        data = load_model_data(path)
        self.path = path
        self.body = smplx_smpl(model_path=str(path), data_struct=Struct(**data), num_betas=N_BETAS, create_betas=False,
                               create_global_orient=False, create_body_pose=False, create_transl=False,
                               gender=gender, dtype=dtype)
        if j_regressor_h36m is not None:
            jr = np.load(j_regressor_h36m)
            if jr.shape != (17, N_VERTS):
                raise ValueError(f"{j_regressor_h36m}: expected a (17, {N_VERTS}) regressor, got {jr.shape}")
            self.register_buffer("j_regressor_h36m", torch.as_tensor(jr[list(H36M_TO_J14)], dtype=dtype), persistent=False)
        else:
            self.j_regressor_h36m = None

    @property
    def faces(self) -> np.ndarray:
        return self.body.faces

    def forward(self, betas: torch.Tensor, pose: torch.Tensor, transl: torch.Tensor | None = None) -> SMPLOutput:
        """betas (B, 10); pose (B, 24, 3, 3) rotation matrices or (B, 72) axis-angle; transl (B, 3)."""
        if pose.shape[-1] == 72 and pose.dim() == 2:
            pose = axis_angle_to_rotmat(pose.reshape(-1, 24, 3))
        if tuple(pose.shape[1:]) != (24, 3, 3):
            raise ValueError(f"SMPL pose: expected (B, 24, 3, 3) or (B, 72), got {tuple(pose.shape)}")
        if betas.dim() != 2 or betas.shape[1] != N_BETAS:
            raise ValueError(f"SMPL betas: expected (B, {N_BETAS}), got {tuple(betas.shape)}")
        out = self.body(betas=betas, global_orient=pose[:, :1], body_pose=pose[:, 1:], pose2rot=False)
        verts = out.vertices
        joints = out.joints[:, :24]
        if transl is not None:
            verts = verts + transl[:, None]
            joints = joints + transl[:, None]
        h36m = None
        if self.j_regressor_h36m is not None:
            h36m = torch.einsum("jv,bvc->bjc", self.j_regressor_h36m, verts)
        return SMPLOutput(vertices=verts, joints24=joints, coco17=coco17_from(verts, joints), h36m14=h36m)
