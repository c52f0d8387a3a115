"""Reading our .glb files with two independent libraries (trimesh for the mesh, pygltflib for the
glTF structure and its validator), for both export stages' tests."""
from __future__ import annotations

from pathlib import Path

import pytest


def load_valid_glb(path: Path):
    """(trimesh geometries, pygltflib.GLTF2) of a .glb after pygltflib's validator passes it; skips
    the test when either reader is missing."""
    trimesh = pytest.importorskip("trimesh")
    pygltflib = pytest.importorskip("pygltflib")
    from pygltflib.validator import validate

    scene = trimesh.load(path, process=False)
    geoms = list(scene.geometry.values()) if hasattr(scene, "geometry") else [scene]
    g = pygltflib.GLTF2().load(str(path))
    validate(g)
    return geoms, g
