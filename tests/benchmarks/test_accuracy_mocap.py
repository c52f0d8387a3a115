"""Mocap reading for the accuracy benchmark: joint-name mapping, units, up axis, facing, resampling."""
from __future__ import annotations

import numpy as np
import pytest

from video2mesh.benchmarks.accuracy import mocap as M
from video2mesh.pipeline.errors import InputError

from .bvh_helpers import HUMANOID, write_bvh

CMU_EXPECTED = {"left_hip": "LeftHip", "left_knee": "LeftKnee", "left_ankle": "LeftAnkle", "left_toe": "LeftToe",
                "left_shoulder": "LeftShoulder", "left_elbow": "LeftElbow", "left_wrist": "LeftWrist",
                "right_wrist": "RightWrist", "neck": "Neck", "head": "Head"}
BANDAI_EXPECTED = {"left_hip": "UpperLeg_L", "left_knee": "LowerLeg_L", "left_ankle": "Foot_L", "left_toe": "Toes_L",
                   "left_shoulder": "UpperArm_L", "left_elbow": "LowerArm_L", "left_wrist": "Hand_L",
                   "right_shoulder": "UpperArm_R", "neck": "Neck", "head": "Head"}


@pytest.mark.parametrize("name, expected, unit", [("scaled_131_01.bvh", CMU_EXPECTED, "m"),
                                                  ("131_02.bvh", CMU_EXPECTED, "cmu"),
                                                  ("bandai/dataset-2_walk_normal_001.bvh", BANDAI_EXPECTED, "cm")])
def test_real_skeletons_map_and_their_units_are_found(shared_data, name, expected, unit):
    from video2mesh.models.training.datasets import read_bvh

    path = shared_data / "mocap" / name
    names = read_bvh(path).names
    idx = M.map_joints(names)
    assert set(idx) == set(M.CANONICAL)
    assert {c: names[idx[c]] for c in expected} == expected
    m = M.load_mocap(path, frames=90)
    assert m.unit == unit and m.up_axis == "+Y" and m.fps == 30.0 and m.joints.shape == (90, len(M.CANONICAL), 3)
    assert 0.7 < m.leg_m < 0.95                       # an adult's leg in metres, whatever the file's unit
    _assert_faces_plus_z(m.joints[0])


def _assert_faces_plus_z(j0):
    c = {n: i for i, n in enumerate(M.CANONICAL)}
    left = j0[c["left_hip"]] - j0[c["right_hip"]] + j0[c["left_shoulder"]] - j0[c["right_shoulder"]]
    fwd = np.cross(left, [0, 1, 0])
    assert fwd[2] / np.linalg.norm(fwd) > 0.999
    hips = 0.5 * (j0[c["left_hip"]] + j0[c["right_hip"]])
    assert abs(hips[0]) < 1e-6 and abs(hips[2]) < 1e-6


def test_mixamo_bip_and_side_suffix_names():
    assert M.split_name("mixamorig:LeftUpLeg") == ("L", "upleg")
    assert M.split_name("Bip01 R Thigh") == ("R", "thigh")
    assert M.split_name("UpperArm_L") == ("L", "upperarm")
    assert M.split_name("lhand") == ("L", "hand") and M.split_name("LHipJoint") == ("", "lhipjoint")
    assert M.split_name("lowerneck") == ("", "lowerneck")
    mixamo = [f"mixamorig:{n}" for n, _, _ in HUMANOID]
    idx = M.map_joints(mixamo)
    # Mixamo's LeftShoulder is the clavicle: the shoulder joint is LeftArm; its LeftHand is the wrist.
    assert mixamo[idx["left_shoulder"]] == "mixamorig:LeftArm" and mixamo[idx["left_wrist"]] == "mixamorig:LeftHand"
    assert mixamo[idx["left_knee"]] == "mixamorig:LeftLeg" and mixamo[idx["right_toe"]] == "mixamorig:RightToeBase"


def test_unmappable_skeleton_is_one_line_naming_the_joint(tmp_path):
    names = {n: f"bone{i}" for i, (n, _, _) in enumerate(HUMANOID)}
    names["Hips"] = "Hips"
    path = write_bvh(tmp_path / "odd.bvh", np.zeros((3, 3)), names=names)
    with pytest.raises(InputError) as e:
        M.load_mocap(path)
    msg = str(e.value)
    assert "\n" not in msg and "odd.bvh" in msg and "left_hip" in msg and "JOINT_BASES" in msg


def test_a_missing_toe_is_allowed_a_missing_knee_is_not():
    names = [n for n, _, _ in HUMANOID if "Toe" not in n]
    assert "left_toe" not in M.map_joints(names)
    with pytest.raises(InputError, match="left_knee"):
        M.map_joints([n for n in names if n != "LeftLeg"])


@pytest.mark.parametrize("leg, unit", [(0.8, "m"), (80.0, "cm"), (800.0, "mm"), (14.2, "cmu"), (33.0, "inch"),
                                       (0.62, "m"), (95.0, "cm")])
def test_unit_from_leg_length(leg, unit):
    assert M.detect_unit(leg) == unit


def test_same_motion_in_cm_z_up_gives_the_same_metres_y_up(tmp_path):
    """One sideways walk written in metres Y-up and in centimetres Z-up: identical canonical joints."""
    walk = np.stack([np.linspace(0, 1.2, 40), np.zeros(40), np.zeros(40)], -1)   # 1.2 m along +X (sideways)
    a = M.load_mocap(write_bvh(tmp_path / "m.bvh", walk))
    b = M.load_mocap(write_bvh(tmp_path / "cm.bvh", walk, unit_m=0.01, z_up=True))
    assert (a.unit, a.up_axis, b.unit, b.up_axis) == ("m", "+Y", "cm", "+Z")
    np.testing.assert_allclose(a.joints, b.joints, atol=1e-5)
    # The person faces +Z at rest (left = +X), so the sideways walk stays along +X after facing normalisation.
    c = {n: i for i, n in enumerate(M.CANONICAL)}
    hips = 0.5 * (a.joints[:, c["left_hip"]] + a.joints[:, c["right_hip"]])
    np.testing.assert_allclose(hips[-1] - hips[0], [1.2, 0, 0], atol=1e-6)
    _assert_faces_plus_z(a.joints[0])


def test_resample_120_to_30_takes_every_fourth_frame_and_interpolates_between():
    x = np.random.default_rng(0).standard_normal((121, 2, 3))
    y = M.resample(x, 120.0, 30.0, None)
    np.testing.assert_allclose(y, x[::4])
    z = M.resample(x, 120.0, 48.0, 5)                    # t = k / 48 s -> source index 2.5 k
    np.testing.assert_allclose(z[1], 0.5 * (x[2] + x[3]))
    assert len(z) == 5


def test_a_file_that_is_not_bvh_is_one_line(tmp_path):
    (tmp_path / "notes.bvh").write_text("this is not a motion file\n")
    with pytest.raises(InputError) as e:
        M.load_mocap(tmp_path / "notes.bvh")
    assert "notes.bvh" in str(e.value) and "\n" not in str(e.value)
