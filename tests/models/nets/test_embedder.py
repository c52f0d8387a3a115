"""Pr-VIPE embedder: normalisation closed form and invariances, shapes, matching probability formula."""
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


def test_normalize_closed_form():
    kp = _pose()
    out = normalize_coco13(kp)
    # Largest pairwise distance among shoulders/hips is the diagonal 2*sqrt(2); scale = sqrt(2).
    expect = (kp[list(COCO13), :2] / math.sqrt(2)).flatten()
    assert out.shape == (26,)
    assert torch.allclose(out, expect, atol=1e-6)


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
