"""Blender-side scene script: builds the ground-truth scene from arrays and renders it frame by frame.

Runs INSIDE Blender (3.4, its own Python 3.11 + the system numpy 1.24), started by render.py as
    blender -b --factory-startup --python blender_scene.py -- scene.npz out_dir
It imports nothing from video2mesh and uses none of Blender's importers (Debian's BVH and glTF importers
are broken under Python 3.11 / numpy 1.24): meshes, materials and cameras are built here from scene.npz:

  verts      (P, T, V, 3) float32  body vertices per person and frame, world metres, Y up
  faces      (F, 3) int32          triangles (shared by all people: one topology)
  uv         (V, 2) float32        per-vertex UV into a person's palette image (clothing regions)
  R_wc, t_wc (T, 3, 3), (T, 3)     world -> OpenCV camera (x right, y down, z forward)
  config     JSON str: width, height, fx, floor_png, wall_png, palettes (P paths), floor_tiles_m,
             wall_radius_m, wall_height_m, masks (bool: also write a flat silhouette pass mask_%05d.png)

Writes out_dir/frame_%05d.png (and mask_%05d.png). Blender's world is Z up: (x, y, z)_blender =
(x, -z, y)_world. The intrinsics have the principal point at the image centre, square pixels.
"""
import json
import math
import sys
from pathlib import Path

import bpy
import mathutils
import numpy as np

WORLD_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
CV_TO_BLENDER_CAMERA = np.diag([1.0, -1.0, -1.0])   # OpenCV camera axes -> Blender camera (looks along -z, y up)
SENSOR_MM = 36.0


def textured_material(name, png, interpolation="Linear"):
    """A material whose active image-texture node Workbench shows in color_type TEXTURE."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes = mat.node_tree.nodes
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = bpy.data.images.load(str(png))
    tex.interpolation = interpolation
    bsdf = nodes.get("Principled BSDF")
    mat.node_tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    nodes.active = tex
    return mat


def mesh_object(name, verts, faces, uv, material):
    """An object from (V, 3) Blender-axes vertices, (F, 3) faces and per-vertex (V, 2) UVs."""
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([tuple(v) for v in verts], [], [tuple(f) for f in faces])
    layer = mesh.uv_layers.new(name="UVMap")
    loop_vert = np.zeros(len(mesh.loops), np.int64)
    mesh.loops.foreach_get("vertex_index", loop_vert)
    layer.data.foreach_set("uv", uv[loop_vert].astype(np.float32).ravel())
    mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), bool))
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    obj.data.materials.append(material)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def floor(cfg):
    """A square floor at y = 0 (world), its texture repeated every floor_tiles_m metres."""
    half = cfg["wall_radius_m"] * 1.2
    v = np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0], [-half, half, 0]], float)
    uv = (v[:, :2] + half) / cfg["floor_tiles_m"]
    return mesh_object("floor", v, np.array([[0, 1, 2], [0, 2, 3]]), uv,
                       textured_material("floor", cfg["floor_png"]))


def wall(cfg, segments=96):
    """An open cylinder around the scene (inside visible), its texture wrapped once around."""
    r, h = cfg["wall_radius_m"], cfg["wall_height_m"]
    a = np.linspace(0, 2 * math.pi, segments + 1)
    ring = np.stack([r * np.cos(a), r * np.sin(a)], -1)
    v = np.concatenate([np.c_[ring, np.zeros(len(a))], np.c_[ring, np.full(len(a), h)]])
    uv = np.concatenate([np.c_[a / (2 * math.pi), np.zeros(len(a))], np.c_[a / (2 * math.pi), np.ones(len(a))]])
    n = len(a)
    faces = [[i, i + n, i + 1] for i in range(segments)] + [[i + 1, i + n, i + 1 + n] for i in range(segments)]
    return mesh_object("wall", v, np.array(faces), uv, textured_material("wall", cfg["wall_png"]))


def set_camera(cam, r_wc, t_wc):
    """Place the Blender camera from world -> OpenCV camera extrinsics."""
    r_cw = r_wc.T
    centre = -r_cw @ t_wc
    m = np.eye(4)
    m[:3, :3] = WORLD_TO_BLENDER @ r_cw @ CV_TO_BLENDER_CAMERA
    m[:3, 3] = WORLD_TO_BLENDER @ centre
    cam.matrix_world = mathutils.Matrix(m.tolist())   # a plain list of rows loses the translation


def setup_render(scene, cfg):
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x, scene.render.resolution_y = cfg["width"], cfg["height"]
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.display.render_aa = "FXAA"
    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.color_type = "TEXTURE"
    shading.show_shadows = True
    shading.shadow_intensity = 0.4
    shading.show_cavity = False
    scene.display.light_direction = (0.4, -0.3, 0.85)
    scene.world = bpy.data.worlds.new("sky")
    scene.world.color = (0.55, 0.62, 0.72)
    scene.view_settings.view_transform = "Standard"


def mask_mode(scene, background):
    """Flat white people on black: the silhouette pass."""
    for obj in background:
        obj.hide_render = True
    shading = scene.display.shading
    shading.light, shading.color_type, shading.single_color = "FLAT", "SINGLE", (1.0, 1.0, 1.0)
    shading.show_shadows = False
    scene.display.render_aa = "OFF"
    scene.world.color = (0.0, 0.0, 0.0)


def main(argv):
    scene_npz, out_dir = Path(argv[0]), Path(argv[1])
    data = np.load(scene_npz)
    cfg = json.loads(str(data["config"]))
    verts, faces, uv = data["verts"], data["faces"], data["uv"]
    r_wc, t_wc = data["R_wc"], data["t_wc"]
    n_people, n_frames = verts.shape[:2]

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    setup_render(scene, cfg)
    background = [floor(cfg), wall(cfg)]
    people = [mesh_object(f"person{p}", verts[p, 0] @ WORLD_TO_BLENDER.T, faces, uv,
                          textured_material(f"clothes{p}", cfg["palettes"][p], "Closest")) for p in range(n_people)]
    cam_data = bpy.data.cameras.new("camera")
    cam_data.sensor_fit, cam_data.sensor_width = "HORIZONTAL", SENSOR_MM
    cam_data.lens = cfg["fx"] * SENSOR_MM / cfg["width"]
    cam_data.clip_start, cam_data.clip_end = 0.05, 200.0
    cam = bpy.data.objects.new("camera", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam

    passes = [("frame", None)] + ([("mask", background)] if cfg.get("masks") else [])
    for prefix, hide in passes:
        if hide is not None:
            mask_mode(scene, hide)
        for t in range(n_frames):
            for p, obj in enumerate(people):
                obj.data.vertices.foreach_set("co", (verts[p, t] @ WORLD_TO_BLENDER.T).astype(np.float32).ravel())
                obj.data.update()
            set_camera(cam, r_wc[t].astype(float), t_wc[t].astype(float))
            scene.render.filepath = str(out_dir / f"{prefix}_{t:05d}.png")
            bpy.ops.render.render(write_still=True)
            print(f"V2M_RENDERED {prefix} {t + 1}/{n_frames}", flush=True)


if __name__ == "__main__":
    main(sys.argv[sys.argv.index("--") + 1:])
