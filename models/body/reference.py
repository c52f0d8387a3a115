"""Reference poses (T-pose, A-pose) of an export skeleton, and SMPL's joints under standard rig names.

Retargeting tools (Blender add-ons, Unreal's IK Retargeter, Mixamo's uploader) match a source to a
target by pose: both skeletons should stand in the same pose on one frame. Many peers put a T-pose
at frame 0 of the file for that. The export skeletons here are "rest-aligned": every bone's rest
frame is the world's, a bone's local rotation is relative to its parent's, and the root's local
rotation identity means standing upright, facing +Z, in the Y-up export frame.

`reference_local` turns each arm so that the shoulder -> elbow -> wrist chain points along the pose's
arm direction (T: level, along +X for the left arm and -X for the right; A: 45 deg below level), and
leaves every other bone at its rest rotation (legs, spine, fingers as the rig's bind pose has them).
"""
from __future__ import annotations

import numpy as np

# Per rig: (upper arm, forearm, hand) bone names of each side; the left side is the person's left.
ARM_CHAINS: dict[str, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    "anny": (("upperarm01.L", "lowerarm01.L", "wrist.L"), ("upperarm01.R", "lowerarm01.R", "wrist.R")),
    "mixamo": (("mixamorig:LeftArm", "mixamorig:LeftForeArm", "mixamorig:LeftHand"),
               ("mixamorig:RightArm", "mixamorig:RightForeArm", "mixamorig:RightHand")),
    "game_engine": (("upperarm_l", "lowerarm_l", "hand_l"), ("upperarm_r", "lowerarm_r", "hand_r")),
    "smpl": (("L_Shoulder", "L_Elbow", "L_Wrist"), ("R_Shoulder", "R_Elbow", "R_Wrist")),
}
POSES = ("none", "rest", "t", "a")
A_POSE_DEG = 45.0   # arms this far below level in the A-pose (the usual authoring A-pose is 40-45 deg)

# SMPL's 24 joints under standard rig names. The hierarchies match joint for joint (Mixamo's Spine2 and
# Unreal's spine_03 carry the neck and both clavicles as SMPL's Spine3 does), and SMPL's rest is a T-pose
# like theirs, so a name-matching retargeter maps them directly; proportions stay SMPL's. SMPL's one
# "hand" joint (the knuckles) takes the middle finger's base name; no bones are invented.
SMPL_RIG_NAMES: dict[str, tuple[str, ...]] = {
    "mixamo": tuple("mixamorig:" + n for n in (
        "Hips", "LeftUpLeg", "RightUpLeg", "Spine", "LeftLeg", "RightLeg", "Spine1", "LeftFoot", "RightFoot",
        "Spine2", "LeftToeBase", "RightToeBase", "Neck", "LeftShoulder", "RightShoulder", "Head", "LeftArm",
        "RightArm", "LeftForeArm", "RightForeArm", "LeftHand", "RightHand", "LeftHandMiddle1", "RightHandMiddle1")),
    "game_engine": (
        "pelvis", "thigh_l", "thigh_r", "spine_01", "calf_l", "calf_r", "spine_02", "foot_l", "foot_r",
        "spine_03", "ball_l", "ball_r", "neck_01", "clavicle_l", "clavicle_r", "head", "upperarm_l",
        "upperarm_r", "lowerarm_l", "lowerarm_r", "hand_l", "hand_r", "middle_01_l", "middle_01_r"),
}
for _names in SMPL_RIG_NAMES.values():
    assert len(_names) == 24 and len(set(_names)) == 24


def arm_direction(pose: str, side: int) -> np.ndarray:
    """Unit direction (3,) of the left (side 0, +X) or right (side 1, -X) arm in `pose` ('t' or 'a'), Y up."""
    lateral = 1.0 if side == 0 else -1.0
    drop = 0.0 if pose == "t" else np.deg2rad(A_POSE_DEG)
    return np.array([lateral * np.cos(drop), -np.sin(drop), 0.0])


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3) taking the direction of a (3,) onto that of b (3,)."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.dot(a, b))
    if s < 1e-12:
        if c > 0:
            return np.eye(3)
        perp = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])   # half turn about any normal
        perp /= np.linalg.norm(perp)
        return 2.0 * np.outer(perp, perp) - np.eye(3)
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * kx @ kx


def rest_heads(offsets: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """(J, 3) rest joint positions of a rest-aligned skeleton from its offsets (root at its offset)."""
    heads = np.zeros_like(offsets, dtype=np.float64)
    heads[0] = offsets[0]
    for k in range(1, len(parents)):
        heads[k] = heads[parents[k]] + offsets[k]
    return heads


def reference_local(rig: str, names: tuple[str, ...], parents: np.ndarray, offsets: np.ndarray, pose: str) -> np.ndarray:
    """Local rotations (J, 3, 3) of the reference `pose` ('rest', 't' or 'a') of a rest-aligned skeleton.

    The root is identity (upright, facing +Z). For 't'/'a' each upper arm turns its elbow onto the arm
    direction, then each forearm turns its wrist onto it (a straight arm); the rest stay at rest.
    """
    if pose not in POSES[1:]:
        raise ValueError(f"reference pose must be one of {list(POSES[1:])}, got {pose!r}")
    local = np.tile(np.eye(3), (len(names), 1, 1))
    if pose == "rest":
        return local
    if rig not in ARM_CHAINS:
        raise ValueError(f"no arm chain known for rig {rig!r}; known: {sorted(ARM_CHAINS)}")
    heads = rest_heads(offsets, parents)
    index = {n: i for i, n in enumerate(names)}
    for side, chain in enumerate(ARM_CHAINS[rig]):
        upper, fore, hand = (index[n] for n in chain)
        target = arm_direction(pose, side)
        world_upper = rotation_between(heads[fore] - heads[upper], target)
        local[upper] = world_upper        # every bone above the upper arm stays at rest (world = identity)
        world_fore = rotation_between(world_upper @ (heads[hand] - heads[fore]), target) @ world_upper
        local[fore] = world_upper.T @ world_fore   # bones between (Anny's twist segment) keep identity
    return local
