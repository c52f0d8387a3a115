"""The 23 keypoints ground truth and predictions are compared on: COCO-17 + 6 foot points, from Anny vertices.

COCO-17 is Anny's own COCO regressor, the one the licence-free fit uses (`AnnyBody.kp_weights` over
`AnnyBody.kp_vertices`; `AnnyBody.keypoints_fk` is the same blend folded onto the bones), so a "joint"
means the same thing in the ground truth and in the fit's output by construction.
The 6 foot points follow COCO-WholeBody (big toe, small toe, heel per foot) and are single, fixed vertices
of Anny's MakeHuman topology, chosen from the rest template by the rule in `choose_foot_vertices`
(tests re-run the rule on the template and compare with the ids below):

- a foot's vertices are those whose largest skinning weight is on `foot.<side>` or one of its `toe*` bones;
- heel: among the foot's sole vertices (within `SOLE_BAND_M` of its lowest point), the rear-most;
- big toe / small toe: the front-most vertex of the `toe1-*` (medial) / `toe5-*` (lateral) bones.

Model axes at rest: z up, the body faces -y, its left is +x (see anny_body).
"""
from __future__ import annotations

import numpy as np
import torch

from video2mesh.models.body.anny_body import COCO_FLIP, COCO_NAMES, AnnyBody

FOOT_NAMES = ["left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel"]
JOINT_NAMES_23 = COCO_NAMES + FOOT_NAMES
# Left <-> right permutation of the 23 joints (COCO's, then the feet's).
FLIP_23 = np.concatenate([COCO_FLIP, [20, 21, 22, 17, 18, 19]])
# Vertex ids in FOOT_NAMES order (Anny MakeHuman topology, 13,718 vertices); mirror pairs left/right.
FOOT_VERTICES = np.array([11519, 13248, 12783, 4917, 6668, 6202])
SOLE_BAND_M = 0.015   # the heel's sole band: the lowest 1.5 cm of the foot at rest


def keypoints23(body: AnnyBody, vertices):
    """(..., 23, 3) keypoints in JOINT_NAMES_23 order from posed vertices (..., V, 3), same axes and units.

    Accepts a numpy array or a torch tensor (returns the same kind)."""
    if torch.is_tensor(vertices):
        w = body.kp_weights.to(dtype=vertices.dtype, device=vertices.device)
        coco = torch.einsum("kv,...vc->...kc", w, vertices[..., body.kp_vertices.to(vertices.device), :])
        return torch.cat([coco, vertices[..., torch.as_tensor(FOOT_VERTICES, device=vertices.device), :]], -2)
    v = np.asarray(vertices)
    # each keypoint averages thousands of vertices: summed in float32, numpy's einsum (2.4) is ~1.6e-5 m off
    # where torch's BLAS product is ~3e-7, so the sum runs in float64 and the result has the input's dtype
    w = body.kp_weights.detach().cpu().numpy().astype(np.float64)
    coco = np.einsum("kv,...vc->...kc", w, v[..., body.kp_vertices.cpu().numpy(), :].astype(np.float64))
    return np.concatenate([coco.astype(v.dtype, copy=False), v[..., FOOT_VERTICES, :]], -2)


def choose_foot_vertices(rest_vertices: np.ndarray, dominant_bone: np.ndarray, bone_names: list[str]) -> np.ndarray:
    """The rule behind FOOT_VERTICES: (6,) vertex ids in FOOT_NAMES order.

    rest_vertices (V, 3) model axes at rest (z up, facing -y); dominant_bone (V,) index of each vertex's
    largest skinning weight into bone_names."""
    out = []
    for side in ("L", "R"):
        def verts_of(prefixes):
            ids = [i for i, n in enumerate(bone_names) if n.endswith("." + side) and n.startswith(prefixes)]
            return np.nonzero(np.isin(dominant_bone, ids))[0]

        foot = verts_of(("foot.", "toe"))
        sole = foot[rest_vertices[foot, 2] < rest_vertices[foot, 2].min() + SOLE_BAND_M]
        heel = sole[np.argmax(rest_vertices[sole, 1])]
        big, small = verts_of(("toe1-",)), verts_of(("toe5-",))
        out += [big[np.argmin(rest_vertices[big, 1])], small[np.argmin(rest_vertices[small, 1])], heel]
    return np.array(out)


def dominant_bones(body: AnnyBody) -> np.ndarray:
    """(V,) index of each vertex's largest skinning weight."""
    wi = body.model.vertex_bone_indices.cpu().numpy()
    ww = body.model.vertex_bone_weights.detach().cpu().numpy()
    return wi[np.arange(len(wi)), ww.argmax(1)]
