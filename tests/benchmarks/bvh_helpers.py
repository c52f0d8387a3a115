"""Hand-built BVH files for the accuracy benchmark's tests: a humanoid in any naming, unit and up axis."""
from __future__ import annotations

from pathlib import Path

import numpy as np

# (CMU-style name, parent, rest offset in metres, Y up, facing +Z: the person's left is +X)
HUMANOID = [
    ("Hips", None, (0.0, 0.95, 0.0)),
    ("LeftUpLeg", "Hips", (0.1, -0.05, 0.0)), ("LeftLeg", "LeftUpLeg", (0.0, -0.42, 0.0)),
    ("LeftFoot", "LeftLeg", (0.0, -0.41, 0.0)), ("LeftToeBase", "LeftFoot", (0.0, -0.06, 0.13)),
    ("RightUpLeg", "Hips", (-0.1, -0.05, 0.0)), ("RightLeg", "RightUpLeg", (0.0, -0.42, 0.0)),
    ("RightFoot", "RightLeg", (0.0, -0.41, 0.0)), ("RightToeBase", "RightFoot", (0.0, -0.06, 0.13)),
    ("Spine", "Hips", (0.0, 0.25, 0.0)), ("Neck", "Spine", (0.0, 0.27, 0.0)), ("Head", "Neck", (0.0, 0.12, 0.0)),
    ("LeftShoulder", "Spine", (0.05, 0.22, 0.0)), ("LeftArm", "LeftShoulder", (0.13, 0.0, 0.0)),
    ("LeftForeArm", "LeftArm", (0.0, -0.28, 0.0)), ("LeftHand", "LeftForeArm", (0.0, -0.25, 0.0)),
    ("RightShoulder", "Spine", (-0.05, 0.22, 0.0)), ("RightArm", "RightShoulder", (-0.13, 0.0, 0.0)),
    ("RightForeArm", "RightArm", (0.0, -0.28, 0.0)), ("RightHand", "RightForeArm", (0.0, -0.25, 0.0)),
]
Z_UP = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])   # Y-up -> Z-up: (x, y, z) -> (x, -z, y)


def write_bvh(path: Path, root_path: np.ndarray, names: dict[str, str] | None = None, unit_m: float = 1.0,
              z_up: bool = False, fps: float = 30.0) -> Path:
    """A rest-pose BVH whose root moves along root_path (T, 3) (metres, Y up); joints renamed by `names`
    (CMU-style name -> name in the file), lengths in units of `unit_m` metres, optionally Z up."""
    names = names or {}
    conv = (Z_UP if z_up else np.eye(3)) / unit_m
    children: dict[str | None, list] = {}
    for n, p, off in HUMANOID:
        children.setdefault(p, []).append((n, off))
    lines = ["HIERARCHY"]

    def emit(name, off, depth, root):
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if root else 'JOINT'} {names.get(name, name)}")
        lines.append(pad + "{")
        o = conv @ (np.zeros(3) if root else np.array(off))
        lines.append(f"{pad}  OFFSET {o[0]:.6f} {o[1]:.6f} {o[2]:.6f}")
        ch = "6 Xposition Yposition Zposition Zrotation Xrotation Yrotation" if root else "3 Zrotation Xrotation Yrotation"
        lines.append(f"{pad}  CHANNELS {ch}")
        kids = children.get(name, [])
        for c, co in kids:
            emit(c, co, depth + 1, False)
        if not kids:
            lines.extend([pad + "  End Site", pad + "  {", pad + "    OFFSET 0 0.05 0", pad + "  }"])
        lines.append(pad + "}")

    emit("Hips", None, 0, True)
    hips = np.array(HUMANOID[0][2])
    lines.extend(["MOTION", f"Frames: {len(root_path)}", f"Frame Time: {1 / fps:.7f}"])
    for p in root_path:
        t = conv @ (hips + p)
        lines.append(" ".join(f"{v:.6f}" for v in [*t, 0, 0, 0] + [0] * (3 * (len(HUMANOID) - 1))))
    path.write_text("\n".join(lines) + "\n")
    return path
