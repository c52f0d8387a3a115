"""Pr-VIPE embedder: normalisation closed form and invariances, shapes, matching probability formula."""
import dataclasses
import math

import pytest
import torch

from video2mesh.models.nets.embedder import (COCO13, EmbedderConfig, PoseEmbedder, matching_prob, normalize_coco13, sample)


def _pose():
    kp = torch.zeros(17, 3)
    kp[:, :2] = torch.randn(17, 2, generator=torch.Generator().manual_seed(0))
    kp[11, :2], kp[12, :2] = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0])   # hips
    kp[5, :2], kp[6, :2] = torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 2.0])     # shoulders
    return kp


def test_normalize_closed_form_is_poems():
    kp = _pose()
    out = normalize_coco13(kp)
    # Poem (KeypointProfile2D: scale_unit 0.5, reduce_max over the six shoulder/hip pairs): the largest
    # distance, the diagonal 2*sqrt(2), maps to 0.5, so points are multiplied by 0.5 / (2*sqrt(2)).
    # (Before the fix they were divided by 0.5 * 2*sqrt(2): 4x larger.)
    expect = (kp[list(COCO13), :2] * 0.5 / (2 * math.sqrt(2))).flatten()
    assert out.shape == (26,)
    assert torch.allclose(out, expect, atol=1e-6)
    pts = out.reshape(13, 2)
    anchors = pts[[1, 2, 7, 8]]
    assert torch.cdist(anchors, anchors).max().item() == pytest.approx(0.5, abs=1e-6)


def test_legacy_checkpoint_keeps_its_input_scale(tmp_path):
    # A checkpoint written before the fix (no input_span in its config) saw inputs 4x larger: loading it
    # must feed it what it was trained on, so its outputs do not change.
    from video2mesh.models.nets import checkpoint

    torch.manual_seed(0)
    legacy_cfg = EmbedderConfig(hidden=16, embed_dim=4, init="torch", bn_eps=1e-5, bn_momentum=0.1, input_span=2.0)
    m = PoseEmbedder(legacy_cfg).eval()
    cfg = {k: v for k, v in dataclasses.asdict(legacy_cfg).items() if k not in ("input_span", "init", "bn_eps", "bn_momentum")}
    path = tmp_path / "old.pt"
    torch.save({"format": checkpoint.FORMAT, "kind": "pose_embedder", "config": cfg, "state_dict": m.state_dict(),
                "versions": {}, "meta": {}}, path)
    old = PoseEmbedder.from_checkpoint(path)
    kp = _pose()[None]
    x_old = normalize_coco13(kp) * 4                                  # what the old normalisation produced
    plain = PoseEmbedder(dataclasses.replace(legacy_cfg, input_span=0.5)).eval()
    plain.load_state_dict(m.state_dict())
    assert torch.allclose(old.embed_keypoints(kp)[0], plain(x_old)[0], atol=1e-6)
    assert old.cfg.input_span == 2.0 and old.cfg.bn_eps == 1e-5


def test_he_normal_init_statistics():
    torch.manual_seed(0)
    m = PoseEmbedder(EmbedderConfig(hidden=1024))
    w = m.blocks[0].body[0][0].weight.detach()
    # TF he_normal: truncated normal with the variance 2 / fan_in of the untruncated one.
    assert w.std().item() == pytest.approx(math.sqrt(2 / 1024), rel=0.02)
    assert w.abs().max().item() <= 2 * math.sqrt(2 / 1024) / 0.87962566103423978 + 1e-6


def test_normalize_invariant_to_image_translation_and_scale():
    kp = _pose()[None].repeat(4, 1, 1)
    moved = kp.clone()
    moved[..., :2] = kp[..., :2] * 37.0 + torch.tensor([300.0, 120.0])
    assert torch.allclose(normalize_coco13(kp), normalize_coco13(moved), atol=1e-5)


def test_normalize_bad_shape():
    with pytest.raises(ValueError, match="17, 2"):
        normalize_coco13(torch.zeros(4, 13, 2))


def test_embedder_shapes_and_sigma_positive():
    cfg = EmbedderConfig(hidden=32)
    m = PoseEmbedder(cfg).eval()
    mu, sigma = m.embed_keypoints(_pose()[None, None].repeat(2, 3, 1, 1))
    assert mu.shape == sigma.shape == (2, 3, 32)
    assert (sigma > 0).all()
    assert m.raw_a.item() == pytest.approx(-0.65) and m.b.item() == pytest.approx(-0.5)


def test_matching_prob_formula():
    raw_a, b = torch.tensor(-0.65), torch.tensor(-0.5)
    a = math.exp(-0.65)  # ELU(x) + 1 = exp(x) for x < 0
    z1, z2 = torch.zeros(3, 32), torch.zeros(3, 32)
    z2[:, 0] = torch.tensor([0.0, 1.0, 4.0])
    p = matching_prob(z1, z2, raw_a, b)
    expect = [0.9 / (1 + math.exp(a * d + 0.5)) + 0.05 for d in (0.0, 1.0, 4.0)]
    assert torch.allclose(p, torch.tensor(expect), atol=1e-6)
    assert (p > 0.05).all() and (p < 0.95).all()


def test_sample_statistics():
    mu, sigma = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.5, 2.0]])
    z = sample(mu, sigma, 20000, torch.Generator().manual_seed(0))
    assert z.shape == (1, 20000, 2)
    assert torch.allclose(z.mean(1), mu, atol=0.05) and torch.allclose(z.std(1), sigma, atol=0.05)


def test_checkpoint_roundtrip(tmp_path):
    m = PoseEmbedder(EmbedderConfig(hidden=16, embed_dim=4)).eval()
    p = m.save(tmp_path / "emb.pt")
    m2 = PoseEmbedder.from_checkpoint(p)
    x = torch.randn(5, 26)
    assert all(torch.equal(a, b) for a, b in zip(m(x), m2(x)))
    with pytest.raises(ValueError, match="pose_embedder"):
        from video2mesh.models.nets.model import V2MModel
        V2MModel.from_checkpoint(p)
