"""HMR iterative-error-feedback SMPL regressor (VIBE lib/models/spin.py `Regressor`; METHOD.md section 5).

Starting from mean parameters (pose 24 x 6D = 144, shape 10, camera 3), three iterations of
`[x, pose, shape, cam] -> fc1 -> Dropout -> fc2 -> Dropout -> heads`, each head adding a residual.
There is no non-linearity between fc1 and fc2, as in SPIN/VIBE. Parameter and buffer names are
VIBE's (`fc1`, `fc2`, `decpose`, `decshape`, `deccam`, `init_pose`, `init_shape`, `init_cam`), so
its released weights load as they are.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from video2mesh.models.maths.rotations import identity_rot6d

N_POSE6D, N_SHAPE, N_CAM = 24 * 6, 10, 3
# Mean weak-perspective camera of SPIN's smpl_mean_params.npz is close to [0.9, 0, 0]; a zero scale
# would put the first iteration's projection at a point.
DEFAULT_CAM = (0.9, 0.0, 0.0)


def load_mean_params(path: str | Path | None) -> dict[str, torch.Tensor]:
    """SPIN's `smpl_mean_params.npz` (pose (144,), shape (10,), cam (3,)), or identity/zeros/DEFAULT_CAM."""
    if path is None:
        return {"pose": identity_rot6d(24), "shape": torch.zeros(N_SHAPE), "cam": torch.tensor(DEFAULT_CAM)}
    with np.load(path) as z:
        return {k: torch.as_tensor(z[k], dtype=torch.float32).reshape(-1) for k in ("pose", "shape", "cam")}


@dataclass(frozen=True)
class RegressorOutput:
    """pose6d (N, 144), shape (N, 10), cam (N, 3) [s, tx, ty], hidden (N, H): fc2 output of the last iteration."""

    pose6d: torch.Tensor
    shape: torch.Tensor
    cam: torch.Tensor
    hidden: torch.Tensor


class Regressor(nn.Module):
    """x (N, in_dim) -> RegressorOutput. `in_dim` = 2048 for VIBE, 2247 with u_t and d_t."""

    def __init__(self, in_dim: int = 2048, hidden: int = 1024, n_iter: int = 3,
                 mean_params: str | Path | None = None) -> None:
        super().__init__()
        self.n_iter = n_iter
        self.fc1 = nn.Linear(in_dim + N_POSE6D + N_SHAPE + N_CAM, hidden)
        self.drop1 = nn.Dropout(0.5)
        self.fc2 = nn.Linear(hidden, hidden)
        self.drop2 = nn.Dropout(0.5)
        self.decpose = nn.Linear(hidden, N_POSE6D)
        self.decshape = nn.Linear(hidden, N_SHAPE)
        self.deccam = nn.Linear(hidden, N_CAM)
        for head in (self.decpose, self.decshape, self.deccam):
            nn.init.xavier_uniform_(head.weight, gain=0.01)
        mean = load_mean_params(mean_params)
        self.register_buffer("init_pose", mean["pose"][None])     # (1, 144)
        self.register_buffer("init_shape", mean["shape"][None])   # (1, 10)
        self.register_buffer("init_cam", mean["cam"][None])       # (1, 3)

    def forward(self, x: torch.Tensor) -> RegressorOutput:
        n = x.shape[0]
        pose = self.init_pose.expand(n, -1)
        shape = self.init_shape.expand(n, -1)
        cam = self.init_cam.expand(n, -1)
        h = x.new_zeros(n, self.fc2.out_features)
        for _ in range(self.n_iter):
            h = self.drop2(self.fc2(self.drop1(self.fc1(torch.cat([x, pose, shape, cam], 1)))))
            pose = pose + self.decpose(h)
            shape = shape + self.decshape(h)
            cam = cam + self.deccam(h)
        return RegressorOutput(pose6d=pose, shape=shape, cam=cam, hidden=h)
