"""FBX through Blender in background mode: our GLB in, an FBX with skeleton, skinned mesh and baked animation out.

No FBX library on the package registries writes skinned animation under a licence we can ship, so the
project drives Blender (GPL; a separate program we call, found on PATH) when the user asks for FBX.
Export settings that matter to animators: the clip's fps set on the scene before import (so keys land on
whole frames), the frame range from the action, no extra leaf bones, key reduction off (Blender's default
simplification moves a root by millimetres), Y up, metres (unit scale 1); the GLB's video camera, when it
has one, goes along.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

BLENDER_HINT = "FBX export needs Blender: apt-get install blender python3-numpy (Debian/Ubuntu), or put `blender` on PATH"
TIMEOUT_S = 600

_SCRIPT = r'''
import sys
import bpy
import numpy as np

# Debian's Blender 3.4 glTF importer still uses np.bool, which numpy 1.24 removed: alias it in this
# Blender process only (the importer is otherwise fine).
if not hasattr(np, "bool"):
    np.bool = bool
src, dst, fps = sys.argv[sys.argv.index("--") + 1:][:3]
fps = float(fps)
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.fps = max(1, round(fps))
scene.render.fps_base = scene.render.fps / fps
bpy.ops.import_scene.gltf(filepath=src)
arm = next(o for o in scene.objects if o.type == "ARMATURE")
f0, f1 = arm.animation_data.action.frame_range
scene.frame_start, scene.frame_end = int(round(f0)), int(round(f1))
bpy.ops.export_scene.fbx(filepath=dst, use_selection=False, object_types={"ARMATURE", "MESH", "CAMERA"},
                         apply_unit_scale=True, global_scale=1.0, axis_forward="-Z", axis_up="Y",
                         add_leaf_bones=False, bake_anim=True, bake_anim_use_all_bones=True,
                         bake_anim_use_nla_strips=False, bake_anim_use_all_actions=False,
                         bake_anim_force_startend_keying=True, bake_anim_step=1.0, bake_anim_simplify_factor=0.0)
print("V2M_FBX_OK", scene.frame_start, scene.frame_end)
'''


def blender_path() -> str | None:
    return shutil.which("blender")


def fbx_from_glb(glb: bytes, fps: float) -> bytes:
    """FBX bytes of a skinned, animated GLB (as `gltf.skinned_glb` writes it), converted by Blender."""
    exe = blender_path()
    if exe is None:
        raise FileNotFoundError(BLENDER_HINT)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst, script = Path(tmp) / "in.glb", Path(tmp) / "out.fbx", Path(tmp) / "to_fbx.py"
        src.write_bytes(glb)
        script.write_text(_SCRIPT)
        p = subprocess.run([exe, "-b", "--factory-startup", "--python", str(script), "--", str(src), str(dst), repr(float(fps))],
                           capture_output=True, text=True, timeout=TIMEOUT_S)
        if p.returncode != 0 or "V2M_FBX_OK" not in p.stdout or not dst.exists():
            tail = " | ".join((p.stdout + p.stderr).strip().splitlines()[-5:])
            raise RuntimeError(f"Blender could not convert the GLB to FBX (exit {p.returncode}): {tail}")
        return dst.read_bytes()
