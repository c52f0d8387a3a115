"""Triangle-mesh maths shared by the file writers and previews."""
from __future__ import annotations

import numpy as np


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit normals: area-weighted sums of the adjacent faces' normals."""
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    vn = np.zeros_like(vertices, dtype=np.float64)
    for c in range(3):
        np.add.at(vn, faces[:, c], fn)
    n = np.linalg.norm(vn, axis=1, keepdims=True)
    return (vn / np.where(n > 0, n, 1.0)).astype(np.float32)
