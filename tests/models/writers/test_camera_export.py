"""The video's camera in the GLB and USD: looking through it projects points as OpenCV's pinhole does.

Reference: cv2.projectPoints with K (focal f, principal point at the image centre) and the world -> camera
transform in OpenCV axes (x right, y down, z forward) = diag(1, -1, -1) (cam_R, cam_t) of the GL camera.
GLB side: the camera node's keyed transform read back from the file's buffer and glTF 2.0's perspective
projection matrix (spec, "Projection Matrices"); USD side: USD's own Gf.Frustum of the UsdGeom.Camera.
"""
from __future__ import annotations

import json
import struct

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from video2mesh.models.writers.gltf import SkinnedAnimation, camera_track, skinned_glb

W, H, F = 640, 360, 700.0
FLIP = np.diag([1.0, -1.0, -1.0])


def _scene(t: int = 4, seed: int = 0):
    """Random GL cameras (cam_R, cam_t) and, per frame, points in front of each camera (world metres)."""
    rng = np.random.default_rng(seed)
    cam_r = Rotation.random(t, random_state=seed).as_matrix()
    cam_t = rng.normal(size=(t, 3))
    pts_cam = np.c_[rng.uniform(-1, 1, (t * 20, 2)), -rng.uniform(2, 8, t * 20)].reshape(t, 20, 3)   # GL: z < 0 ahead
    pts = np.einsum("tji,tkj->tki", cam_r, pts_cam - cam_t[:, None])                               # R^T (x - t)
    return cam_r, cam_t, pts


def _opencv(cam_r, cam_t, pts):
    k = np.array([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1.0]])
    out = []
    for r, t, p in zip(cam_r, cam_t, pts):
        rvec, _ = cv2.Rodrigues(FLIP @ r)
        uv, _ = cv2.projectPoints(p, rvec, FLIP @ t, k, None)
        out.append(uv[:, 0])
    return np.array(out)


def _animation(cam) -> SkinnedAnimation:
    t = len(cam.position)
    v = np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0]], float)
    return SkinnedAnimation(vertices=v, faces=np.array([[0, 1, 2]]), weights=np.ones((3, 1)), rest_joints=np.zeros((1, 3)),
                            times_s=np.arange(t) / 30.0, local_quat=np.tile([0, 0, 0, 1.0], (t, 1, 1)),
                            root_pos=np.zeros((t, 3)), joint_names=("root",), parents=(-1,), camera=cam)


def _glb_json_and_bin(data: bytes) -> tuple[dict, bytes]:
    n_json = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + n_json])
    return doc, data[20 + n_json + 8:]


def _accessor(doc: dict, binary: bytes, i: int) -> np.ndarray:
    acc = doc["accessors"][i]
    view = doc["bufferViews"][acc["bufferView"]]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc["type"]]
    a = np.frombuffer(binary, np.float32, acc["count"] * width, view["byteOffset"])
    return a.reshape(acc["count"], width).astype(np.float64)


def test_glb_camera_projects_like_opencv():
    cam_r, cam_t, pts = _scene()
    doc, binary = _glb_json_and_bin(skinned_glb(_animation(camera_track(cam_r, cam_t, F, W, H))))
    node = next(i for i, n in enumerate(doc["nodes"]) if "camera" in n)
    assert node in doc["scenes"][0]["nodes"]
    persp = doc["cameras"][doc["nodes"][node]["camera"]]["perspective"]
    channels = {c["target"]["path"]: doc["animations"][0]["samplers"][c["sampler"]]
                for c in doc["animations"][0]["channels"] if c["target"]["node"] == node}
    pos, quat = (_accessor(doc, binary, channels[p]["output"]) for p in ("translation", "rotation"))
    y, a, n = persp["yfov"], persp["aspectRatio"], persp["znear"]
    proj = np.array([[1 / (a * np.tan(y / 2)), 0, 0, 0], [0, 1 / np.tan(y / 2), 0, 0],
                     [0, 0, -1, -2 * n], [0, 0, -1, 0]])                     # glTF's infinite perspective
    got = []
    for k in range(len(pos)):
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = Rotation.from_quat(quat[k]).as_matrix(), pos[k]
        clip = (proj @ np.linalg.inv(m) @ np.c_[pts[k], np.ones(len(pts[k]))].T).T
        ndc = clip[:, :2] / clip[:, 3:]
        got.append(np.c_[(ndc[:, 0] + 1) / 2 * W, (1 - ndc[:, 1]) / 2 * H])
    np.testing.assert_allclose(np.array(got), _opencv(cam_r, cam_t, pts), atol=0.01)


def test_usd_camera_projects_like_opencv(tmp_path):
    pytest.importorskip("pxr", reason="usd-core is not installed (pip install usd-core)")
    from pxr import Gf, Usd, UsdGeom

    from video2mesh.models.writers.usd import skinned_usd, validate

    cam_r, cam_t, pts = _scene(seed=1)
    path = tmp_path / "cam.usdc"
    path.write_bytes(skinned_usd(_animation(camera_track(cam_r, cam_t, F, W, H)), fps=30.0))
    assert validate(path) == []
    stage = Usd.Stage.Open(str(path))
    cam = UsdGeom.Camera(stage.GetPrimAtPath("/Camera"))
    got = []
    for k in range(len(pts)):
        fr = cam.GetCamera(Usd.TimeCode(float(k))).frustum
        view, proj = fr.ComputeViewMatrix(), fr.ComputeProjectionMatrix()
        row = []
        for p in pts[k]:
            c = Gf.Vec4d(*p, 1.0) * view * proj                          # Gf multiplies row vectors
            row.append([(c[0] / c[3] + 1) / 2 * W, (1 - c[1] / c[3]) / 2 * H])
        got.append(row)
    np.testing.assert_allclose(np.array(got), _opencv(cam_r, cam_t, pts), atol=0.01)


def test_camera_track_pose_is_the_inverse_transform():
    cam_r, cam_t, _ = _scene(t=3, seed=2)
    c = camera_track(cam_r, cam_t, F, W, H)
    for r, t, p, q in zip(cam_r, cam_t, c.position, c.rotation):
        np.testing.assert_allclose(r @ p + t, 0, atol=1e-12)               # the camera's centre maps to the origin
        np.testing.assert_allclose(Rotation.from_quat(q).as_matrix(), r.T, atol=1e-12)
    assert np.tan(c.yfov / 2) == pytest.approx(H / 2 / F) and c.aspect == pytest.approx(W / H)
