"""Anny, a licence-free parametric body (NAVER's `anny` package: Apache-2.0 code, MakeHuman CC0 data).

A thin layer over `anny.Anny` that the fitting and export code need:

- `AnnyBody.keypoints(rotvecs, phenotype)`: COCO-17 (+ 6 foot points) of a batch of poses, computed
  without skinning the 13,718 vertices: a keypoint is a fixed blend of vertices and a vertex a fixed
  blend of bone transforms, so keypoint k = sum_j T_j A_kj with A_kj = sum_v w_kv W_vj [v_rest; 1].
  Exactly the skinned-then-regressed keypoints (checked in tests), ~100x cheaper.
- `AnnyBody.posed(rotvecs, phenotype)`: vertices, bone transforms and poses (for export).

Pose: per-bone rotation vectors (B, J, 3) in Anny's 'local-ref' parameterization (each bone's rotation
relative to its rest pose, about world-aligned axes at rest), root fixed at identity: the global
rotation and translation are applied by the caller. Model axes: z up, the body faces -y, its left
is +x, metres. The model's first build takes ~80 s and writes ~800 MB to its cache folder; later
loads take < 1 s. Only the MakeHuman topology is used (Anny's SMPL/retopology paths download
non-commercial data and are never called here).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

COCO_NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
              "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
              "right_knee", "left_ankle", "right_ankle"]
COCO_FLIP = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15])
PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")

# Bones of the 'anny' rig that the fit moves (fingers, toes, eyes stay at rest), with the weight
# of their pose prior: twist/spine/neck segments move little on their own, limbs move freely.
FIT_BONES: dict[str, float] = {
    "upperleg01.L": 1.0, "upperleg02.L": 4.0, "lowerleg01.L": 1.0, "lowerleg02.L": 4.0, "foot.L": 2.0,
    "upperleg01.R": 1.0, "upperleg02.R": 4.0, "lowerleg01.R": 1.0, "lowerleg02.R": 4.0, "foot.R": 2.0,
    "spine05": 3.0, "spine04": 3.0, "spine03": 3.0, "spine02": 3.0, "spine01": 3.0,
    "clavicle.L": 4.0, "shoulder01.L": 4.0, "upperarm01.L": 0.5, "upperarm02.L": 4.0,
    "lowerarm01.L": 0.5, "lowerarm02.L": 4.0, "wrist.L": 4.0,
    "clavicle.R": 4.0, "shoulder01.R": 4.0, "upperarm01.R": 0.5, "upperarm02.R": 4.0,
    "lowerarm01.R": 0.5, "lowerarm02.R": 4.0, "wrist.R": 4.0,
    "neck01": 3.0, "neck02": 3.0, "neck03": 3.0, "head": 2.0,
}
N_BONES = 104   # bones of the 'anny' rig (the `fit` artifact stores a rotation for each)
# Rest model axes (z up, facing -y) -> the export frame (Y up, the rest body facing +z); the camera's
# axes go to that frame by video2mesh.models.writers.animation.CAMERA_TO_YUP.
MODEL_TO_YUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def default_cache_dir(models_dir: str | os.PathLike) -> Path:
    """Where Anny's built model data live: beside the other weights, never in the repository."""
    return Path(models_dir) / "anny_cache"


@dataclass
class Skeleton:
    """One shape's rest skeleton (see AnnyBody.skeleton)."""

    heads: torch.Tensor           # (J, 3) rest bone heads, model axes, metres
    rest_rotations: torch.Tensor  # (J, 3, 3) rest bone orientations
    ref_from_rest: torch.Tensor   # (J, 3, 3) rotation from each bone's rest to its reference orientation
    parents: np.ndarray           # (J,)
    kp_a: torch.Tensor            # (17, J, 4) COCO regression folded onto the bone transforms
    rest_vertices: torch.Tensor   # (V, 3)


@dataclass
class AnnyBody:
    """An Anny model of one rig, on one device/dtype, with its COCO keypoint regressor."""

    rig: str
    model: torch.nn.Module
    bone_names: list[str]
    parents: np.ndarray          # (J,) parent index, -1 for the root
    kp_weights: torch.Tensor     # (K, Vk) regression weights on the vertices in kp_vertices
    kp_vertices: torch.Tensor    # (Vk,) vertex indices used by any keypoint
    skin_weights: torch.Tensor   # (Vk, J) dense skinning weights of those vertices
    faces: np.ndarray            # (F, 3) triangles
    uvs: np.ndarray | None = None       # (U, 2) texture coordinates of the MakeHuman UV map
    uv_faces: np.ndarray | None = None  # (F, 3) indices into `uvs`, corner by corner of `faces`
    _lv: list | None = None
    _inv: torch.Tensor | None = None

    @classmethod
    def load(cls, cache_dir: str | os.PathLike, rig: str = "anny", dtype: torch.dtype = torch.float32,
             device: str = "cpu") -> "AnnyBody":
        """Build (first time: ~80 s, cached in `cache_dir`) or load the model."""
        import anny
        from anny.paths import set_anny_cache_path
        from anny.skinning.skinning import dense_bone_weights

        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        set_anny_cache_path(Path(cache_dir))
        model = anny.Anny(rig=rig, skinning_method="lbs", pose_parameterization="local-ref")
        model = model.to(device=device, dtype=dtype)
        reg = anny.KeypointsRegressor.coco(model, labels=COCO_NAMES)
        w = reg.regression_weights.to(device=device, dtype=dtype)
        used = torch.nonzero(w.abs().sum(0) > 0).flatten()
        dense = dense_bone_weights(model.vertex_bone_weights, model.vertex_bone_indices, model.bone_count)
        faces = model.get_triangular_faces().cpu().numpy().astype(np.int64)
        uvs = uv_faces = None
        if np.array_equal(faces, model.faces.cpu().numpy()):   # the UV indices follow `model.faces`
            uvs = model.texture_coordinates.cpu().numpy().astype(np.float64)
            uv_faces = model.face_texture_coordinate_indices.cpu().numpy().astype(np.int64)
        return cls(rig=rig, model=model, bone_names=list(model.bone_labels),
                   parents=np.asarray(model.bone_parents.cpu() if torch.is_tensor(model.bone_parents) else model.bone_parents),
                   kp_weights=w[:, used], kp_vertices=used, skin_weights=dense[used].to(dtype), faces=faces,
                   uvs=uvs, uv_faces=uv_faces)

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    def bone_index(self, names) -> list[int]:
        return [self.bone_names.index(n) for n in names]

    def _rest(self, phenotype: torch.Tensor) -> dict[str, torch.Tensor]:
        coeffs = self.model._get_phenotype_blendshape_coefficients(
            self.model._parse_parameter_kwargs(phenotype, self.model.phenotype_labels, 0.5, "phenotype"),
            self.model._parse_parameter_kwargs(None, self.model.local_change_labels, 0.0, "local_changes"),
            self.model._parse_parameter_kwargs(None, self.model.facial_action_labels, 0.0, "facial_actions"),
        )
        return self.model.get_rest_model(coeffs)

    def _deltas(self, rotvecs: torch.Tensor) -> torch.Tensor:
        import roma

        b, j = rotvecs.shape[:2]
        d = torch.eye(4, dtype=rotvecs.dtype, device=rotvecs.device).repeat(b, j, 1, 1)
        d[:, :, :3, :3] = roma.rotvec_to_rotmat(rotvecs)
        return d

    def transforms(self, rotvecs: torch.Tensor, phenotype: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Rest model of `phenotype` (1, 6), skinning transforms T (B, J, 4, 4) and posed bone poses W."""
        rest = self._rest(phenotype)
        t, w = self.model.get_bone_transforms(self._deltas(rotvecs), rest["rest_bone_poses"])
        return rest, t, w

    def skeleton(self, phenotype: torch.Tensor) -> "Skeleton":
        """Rest skeleton of one shape (phenotype (1, 6) in [0, 1]); differentiable in the phenotype."""
        rest = self._rest(phenotype)
        p = rest["rest_bone_poses"][0]
        r = p[:, :3, :3]
        u = self.model.reference_bone_orientations
        u = r if u is None else u.reshape(-1, 3, 3).to(r.dtype)
        a = u @ r.transpose(1, 2)
        v = rest["rest_vertices"][0, self.kp_vertices]
        vh = torch.cat([v, torch.ones_like(v[:, :1])], 1)
        kp_a = torch.stack([(self.kp_weights * vh[:, c]) @ self.skin_weights for c in range(4)], -1)  # (K, J, 4)
        return Skeleton(heads=p[:, :3, 3], rest_rotations=r, ref_from_rest=a, parents=self.parents, kp_a=kp_a,
                        rest_vertices=rest["rest_vertices"][0])

    def fk(self, theta: torch.Tensor, sk: "Skeleton", bones: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """World rotations relative to rest H (B, J, 3, 3) and posed heads (B, J, 3), model axes.

        theta (B, len(bones), 3): rotation vectors of `bones` relative to their rest pose about
        model axes at the parent's frame (zero = Anny's rest A-pose); the other bones stay at rest.
        Anny's 'local-ref' kinematics with the root delta at identity, in closed form: with A_c the
        rotation from bone c's rest to its reference orientation and D_c the delta,
        H_0 = R_0^T, H_c = H_p A_p^T D_c A_c, head_c = head_p + H_p (h_c - h_p), T_c = [H_c | head_c - H_c h_c].
        Here D_c = exp(theta_c) A_p A_c^T, so theta = 0 gives H_c = H_p (the rest pose).
        """
        import roma

        b, n_bones = theta.shape[0], len(self.bone_names)
        a = sk.ref_from_rest
        par = torch.as_tensor(self.parents, device=theta.device).clamp(min=0)
        bones_t = torch.as_tensor(bones, device=theta.device)
        local = a[par[bones_t]].transpose(1, 2) @ roma.rotvec_to_rotmat(theta) @ a[par[bones_t]]   # (B, n, 3, 3)
        slot = torch.zeros(n_bones, dtype=torch.long, device=theta.device)
        slot[bones_t] = torch.arange(1, len(bones) + 1, device=theta.device)
        eye = torch.eye(3, dtype=theta.dtype, device=theta.device).expand(b, 1, 3, 3)
        local = torch.cat([eye, local], 1)[:, slot]                                     # (B, J, 3, 3)
        offsets = sk.heads - sk.heads[par]                                              # (J, 3)
        hs = sk.rest_rotations[0].T.expand(b, 1, 3, 3)
        ws = torch.zeros(b, 1, 3, dtype=theta.dtype, device=theta.device)
        for lvl, ppos in self._levels():
            hp, wp = hs[:, ppos], ws[:, ppos]
            hs = torch.cat([hs, hp @ local[:, lvl]], 1)
            ws = torch.cat([ws, wp + (hp @ offsets[lvl][None, :, :, None])[..., 0]], 1)
        inv = self._level_inverse()
        return hs[:, inv], ws[:, inv]

    def _levels(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Bones by depth (root excluded) with their parents' positions in the depth-ordered list."""
        if getattr(self, "_lv", None) is None:
            depth = np.zeros(len(self.parents), np.int64)
            for c in range(1, len(self.parents)):
                depth[c] = depth[self.parents[c]] + 1
            order = [0]
            pos = {0: 0}
            levels = []
            for d in range(1, depth.max() + 1):
                lvl = [c for c in range(len(self.parents)) if depth[c] == d]
                levels.append((torch.as_tensor(lvl), torch.as_tensor([pos[int(self.parents[c])] for c in lvl])))
                for c in lvl:
                    pos[c] = len(order)
                    order.append(c)
            self._lv = levels
            self._inv = torch.as_tensor([pos[c] for c in range(len(self.parents))])
        return self._lv

    def _level_inverse(self) -> torch.Tensor:
        self._levels()
        return self._inv

    def deltas_from_theta(self, theta: torch.Tensor, sk: "Skeleton", bones: list[int]) -> torch.Tensor:
        """Anny 'local-ref' delta rotations (B, J, 3) (rotvecs) equal to `fk`'s pose (for anny's own forward)."""
        import roma

        a = sk.ref_from_rest
        p = torch.as_tensor(self.parents[1:], device=a.device)
        d = torch.eye(3, dtype=a.dtype, device=a.device).repeat(theta.shape[0], len(self.bone_names), 1, 1)
        d[:, 1:] = (a[p] @ a[1:].transpose(1, 2)).expand(theta.shape[0], -1, 3, 3)
        d[:, bones] = roma.rotvec_to_rotmat(theta) @ d[:, bones]
        return roma.rotmat_to_rotvec(d)

    def keypoints_fk(self, hs: torch.Tensor, ws: torch.Tensor, sk: "Skeleton") -> torch.Tensor:
        """(B, 17, 3) COCO keypoints from `fk`'s output: keypoint k = sum_j T_j A_kj."""
        t = ws - (hs @ sk.heads[None, :, :, None])[..., 0]
        return torch.einsum("bjrc,kjc->bkr", hs, sk.kp_a[..., :3]) + torch.einsum("bjr,kj->bkr", t, sk.kp_a[..., 3])

    def keypoints(self, rotvecs: torch.Tensor, phenotype: torch.Tensor) -> torch.Tensor:
        """(B, 17, 3) COCO keypoints in model axes (metres) for rotvecs (B, J, 3), phenotype (1, 6) in [0, 1]."""
        rest, t, _ = self.transforms(rotvecs, phenotype)
        v = rest["rest_vertices"][0, self.kp_vertices]                          # (Vk, 3)
        vh = torch.cat([v, torch.ones_like(v[:, :1])], 1)                       # (Vk, 4)
        a = torch.einsum("kv,vj,vc->kjc", self.kp_weights, self.skin_weights, vh)  # (K, J, 4)
        return torch.einsum("bjrc,kjc->bkr", t[:, :, :3, :], a)

    def posed(self, rotvecs: torch.Tensor, phenotype: torch.Tensor) -> dict[str, torch.Tensor]:
        """Full forward: vertices (B, V, 3), bone_poses (B, J, 4, 4), rest_bone_poses (1, J, 4, 4), transforms."""
        rest, t, w = self.transforms(rotvecs, phenotype)
        verts = self.model.get_skinned_vertices(rest["rest_vertices"].expand(t.shape[0], -1, -1), t)
        return {"vertices": verts, "bone_poses": w, "transforms": t, "rest_bone_poses": rest["rest_bone_poses"],
                "rest_vertices": rest["rest_vertices"]}


def pose_rig(body: AnnyBody, sk: Skeleton, bone_rotations: np.ndarray, global_orient: np.ndarray,
             transl: np.ndarray, vertices: bool = True) -> dict[str, np.ndarray]:
    """Camera-space rig and mesh from stored rig parameters (the `fit` artifact's columns).

    bone_rotations (T, J, 3) local axis-angle (root ignored), global_orient (T, 3) rest model ->
    camera, transl (T, 3) camera position of the root head. World rotations G_0 = R(global_orient),
    G_c = G_p L_c; heads p_0 = transl, p_c = p_p + G_p (h_c - h_p); vertices by linear blend skinning
    with Anny's weights: v -> sum_j w_vj (G_j (v - h_j) + p_j). Returns rotations (T, J, 3, 3),
    heads (T, J, 3) and, if asked, vertices (T, V, 3), all in camera axes, metres.
    """
    local = Rotation.from_rotvec(bone_rotations.reshape(-1, 3)).as_matrix().reshape(*bone_rotations.shape[:2], 3, 3)
    t, j = local.shape[:2]
    h = sk.heads.detach().cpu().numpy().astype(np.float64)
    g = np.zeros((t, j, 3, 3))
    p = np.zeros((t, j, 3))
    g[:, 0] = Rotation.from_rotvec(global_orient).as_matrix()
    p[:, 0] = transl
    for c in range(1, j):
        q = body.parents[c]
        g[:, c] = g[:, q] @ local[:, c]
        p[:, c] = p[:, q] + g[:, q] @ (h[c] - h[q])
    out = {"rotations": g, "heads": p}
    if vertices:
        v = sk.rest_vertices.detach().cpu().numpy().astype(np.float64)          # (V, 3)
        wi = body.model.vertex_bone_indices.cpu().numpy()                        # (V, K)
        ww = body.model.vertex_bone_weights.detach().cpu().numpy().astype(np.float64)
        verts = np.zeros((t, len(v), 3))
        for k in range(wi.shape[1]):
            jk = wi[:, k]
            rel = v - h[jk]                                                      # (V, 3)
            verts += ww[None, :, k, None] * (np.einsum("tvrc,vc->tvr", g[:, jk], rel) + p[:, jk])
        out["vertices"] = verts
    return out


POSE_SLICE = 2048   # frames posed at once on long tracks (pose_rig holds ~32 KB per frame: ~64 MB a slice)


def pose_bones(body: AnnyBody, sk: Skeleton, bone_rotations: np.ndarray, global_orient: np.ndarray,
               transl: np.ndarray, bones: list[int] | np.ndarray | None = None, rotations: bool = True,
               slice_frames: int = POSE_SLICE) -> dict[str, np.ndarray]:
    """pose_rig's `heads` (T, K, 3) and, if asked, `rotations` (T, K, 3, 3) of the bones `bones` (default:
    all), posed `slice_frames` frames at a time: pose_rig holds ~32 KB per frame, which a 2-hour track
    (216,000 frames at 30 fps) cannot afford."""
    bones = np.arange(len(body.parents)) if bones is None else np.asarray(bones)
    n = len(bone_rotations)
    out = {"heads": np.zeros((n, len(bones), 3))}
    if rotations:
        out["rotations"] = np.zeros((n, len(bones), 3, 3))
    for s in range(0, n, slice_frames):
        sl = slice(s, min(s + slice_frames, n))
        rig = pose_rig(body, sk, bone_rotations[sl], global_orient[sl], transl[sl], vertices=False)
        for k in out:
            out[k][sl] = rig[k][:, bones]
    return out
