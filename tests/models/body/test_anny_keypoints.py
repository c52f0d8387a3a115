"""The 23 benchmark keypoints: foot vertex ids against their geometric rule, COCO part against the fit's."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.stages.licence_free_helpers import anny_body


@pytest.fixture(scope="module")
def body():
    return anny_body()


@pytest.fixture(scope="module")
def rest(body):
    with torch.no_grad():
        sk = body.skeleton(torch.full((1, 6), 0.5, dtype=body.dtype))
    return sk, sk.rest_vertices.numpy().astype(np.float64)


def test_foot_vertices_follow_their_rule_on_the_template(body, rest):
    from video2mesh.models.body.anny_keypoints import FOOT_VERTICES, choose_foot_vertices, dominant_bones

    ids = choose_foot_vertices(rest[1], dominant_bones(body), body.bone_names)
    np.testing.assert_array_equal(ids, FOOT_VERTICES)


def test_foot_vertices_sit_where_their_names_say(body, rest):
    """Independent of the rule: left on +x and the mirror of right; heel behind the ankle, toes ahead;
    big toe medial of small toe; all on the sole at rest (model axes: z up, facing -y)."""
    from video2mesh.models.body.anny_keypoints import FOOT_VERTICES

    sk, v = rest
    p = v[FOOT_VERTICES]                                              # (6, 3)
    left, right = p[:3], p[3:]
    np.testing.assert_allclose(left * [-1, 1, 1], right, atol=1e-5)
    assert (left[:, 0] > 0).all()
    ankle = sk.heads[body.bone_names.index("foot.L")].numpy()
    big, small, heel = left
    assert heel[1] > ankle[1] + 0.03 and big[1] < ankle[1] - 0.12 and small[1] < ankle[1] - 0.09
    assert abs(big[0]) < abs(small[0]) - 0.03
    assert (p[:, 2] < v[:, 2].min() + 0.02).all()


def test_keypoints23_coco_part_equals_the_fits_keypoints(body):
    """keypoints23 on Anny's skinned vertices == AnnyBody.keypoints (the fit's definition) for random poses;
    numpy and torch inputs agree; feet are the chosen vertices."""
    from video2mesh.models.body.anny_keypoints import FOOT_VERTICES, JOINT_NAMES_23, keypoints23

    g = torch.Generator().manual_seed(1)
    rot = torch.randn(2, len(body.bone_names), 3, generator=g, dtype=body.dtype) * 0.2
    phen = torch.rand(1, 6, generator=g, dtype=body.dtype)
    with torch.no_grad():
        verts = body.posed(rot, phen)["vertices"]
        ref = body.keypoints(rot, phen)
        kp = keypoints23(body, verts)
    assert kp.shape == (2, 23, 3) and len(JOINT_NAMES_23) == 23
    assert torch.allclose(kp[:, :17], ref, atol=1e-5)
    assert torch.equal(kp[:, 17:], verts[:, FOOT_VERTICES])
    np.testing.assert_allclose(keypoints23(body, verts.numpy()), kp.numpy(), atol=1e-6)
