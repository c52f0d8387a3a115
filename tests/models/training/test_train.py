"""Training loops: a real (short, seeded) embedder learning check, gradient routing, exact resume,
and the evaluation protocols' frame selection checked with an oracle model."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from video2mesh.models.training import evaluate as E
from video2mesh.models.training import losses as L
from video2mesh.models.training import synthetic_data as S
from video2mesh.models.training import train as T
from video2mesh.models.training import train_embedder as TE
from video2mesh.models.nets.embedder import EmbedderConfig, PoseEmbedder

TINY = (("feature_dim", 32), ("gru_hidden", 16), ("regressor_hidden", 32), ("dyn_hidden_per_group", 8))


@pytest.fixture(scope="module")
def smpl_files(synthetic_smpl_dir, synthetic_h36m_regressor):
    return str(synthetic_smpl_dir), synthetic_h36m_regressor


@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory):
    torch.manual_seed(0)
    emb = PoseEmbedder(EmbedderConfig(hidden=32, embed_dim=32))
    return str(emb.eval().save(tmp_path_factory.mktemp("emb") / "embedder.pt"))


def _state_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_embedder_learns_cross_view_retrieval(synthetic_body, tmp_path):
    # 48 distinct poses (one per synthetic motion), each seen from fresh random cameras at test time.
    pool = S.pose3d_pool(synthetic_body, 64 * 48, seed=0)[::64]
    # Poem's recipe (per-view BN, He-normal init, EMA 0.9999 with TF's warm-up) except the optimiser:
    # Adagrad 0.02 (the default) barely moves in 150 steps (measured: top-1 0.083 -> 0.090), so this
    # short check uses Adam 3e-3. No dropout: with 150 steps it only slows the check down.
    cfg = TE.EmbedderTrainConfig(out_dir=str(tmp_path / "e"), steps=150, batch=48, hidden=128, dropout=0.0,
                                optimizer="adam", lr=3e-3, log_every=50, ckpt_every=1000, device="cpu")
    torch.manual_seed(cfg.seed)
    untrained = PoseEmbedder(EmbedderConfig(hidden=128))
    before = np.mean([TE.retrieval_accuracy(untrained, pool, seed=s)[0] for s in (5, 6, 7)])
    model = TE.train_embedder(cfg, pool)
    after, chance = zip(*[TE.retrieval_accuracy(model, pool, seed=s) for s in (5, 6, 7)])
    after, chance = float(np.mean(after)), float(np.mean(chance))
    # Stated margins: top-1 at least 0.10 above the same network before training and 8x chance.
    # Measured with the previous recipe (Adam 3e-3, one BN batch, PyTorch init): before 0.063, after 0.25,
    # chance 0.022; this recipe passes the same margins (12.7 min on a loaded 2-core machine).
    assert after >= before + 0.10, (before, after)
    assert after >= 8 * chance, (after, chance)


def test_embedder_resume_equals_uninterrupted(synthetic_body, tmp_path):
    pool = S.pose3d_pool(synthetic_body, 64, seed=1)
    base = dict(batch=16, hidden=16, log_every=1, ckpt_every=2, device="cpu")
    whole = TE.train_embedder(TE.EmbedderTrainConfig(out_dir=str(tmp_path / "a"), steps=4, **base), pool)
    TE.train_embedder(TE.EmbedderTrainConfig(out_dir=str(tmp_path / "b"), steps=2, **base), pool)
    resumed = TE.train_embedder(TE.EmbedderTrainConfig(out_dir=str(tmp_path / "b"), steps=4, **base), pool)
    assert _state_equal(whole.state_dict(), resumed.state_dict())
    rows = (tmp_path / "b" / "log.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows] == ["step", "1", "2", "3", "4"]


def test_gradient_reaches_every_trainable_part_and_not_the_embedder(smpl_files, tiny_embedder):
    from video2mesh.models.nets.model import V2MModel

    cfg = T.TrainConfig(smpl_dir=smpl_files[0], j_regressor_h36m=smpl_files[1], embedder=tiny_embedder,
                        synthetic_videos=1, synthetic_frames=12, seqlen=8, model_overrides=TINY, device="cpu")
    body = T.build_body(cfg.smpl_dir, cfg.j_regressor_h36m, torch.device("cpu"))
    emb = T.load_embedder(tiny_embedder, torch.device("cpu"))
    db = T.training_db(cfg, body, 32)
    ds = T.datasets.VibeWindows(db, T.datasets.WindowSpec(seqlen=8, stride=4))
    batch = {k: torch.stack([ds[0][k], ds[1][k]]) for k in ds[0]}
    torch.manual_seed(0)
    model = V2MModel(T.build_model_config(cfg))
    terms = T.model_losses(model, emb, body, batch, L.LossWeights())
    assert {"g_total", "dt", "unc", "total"} <= set(terms)
    terms["total"].backward()
    assert all(p.grad is not None for p in model.parameters())
    assert all(p.grad is None for p in emb.parameters())
    # Known exact zeros, and only these: SRNet initialises the context projection w_g to 0, so the
    # BN after it sees a constant and its scale has a zero gradient at step 0 only. (The projection
    # has no bias in "multiply" mode: before BatchNorm it would never get a gradient.)
    redundant = lambda n: False  # noqa: E731
    zero = {n for n, p in model.named_parameters() if p.grad.abs().sum() == 0}
    assert all("context_bn" in n and n.endswith("weight") for n in zero), zero
    torch.optim.SGD(model.parameters(), lr=1e-2).step()
    model.zero_grad()
    T.model_losses(model, emb, body, batch, L.LossWeights())["total"].backward()
    for name, p in model.named_parameters():
        assert redundant(name) or p.grad.abs().sum() > 0, f"no gradient reaches {name}"
    assert all(p.grad is None for p in emb.parameters())
    # Each extra term on its own also reaches the part it is meant to train.
    model.zero_grad()
    T.model_losses(model, emb, body, batch, L.LossWeights(lambda_g=0, lambda_unc=0))["total"].backward()
    assert all(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if n.startswith("dynamics.") and not redundant(n))


@pytest.mark.slow
def test_model_resume_equals_uninterrupted(smpl_files, tiny_embedder, tmp_path):
    base = dict(smpl_dir=smpl_files[0], j_regressor_h36m=smpl_files[1], embedder=tiny_embedder, synthetic_videos=1,
                synthetic_frames=12, seqlen=8, batch=2, log_every=1, ckpt_every=1, model_overrides=TINY, device="cpu",
                lr=1e-3)
    whole = T.train(T.TrainConfig(out_dir=str(tmp_path / "a"), steps=3, **base))
    T.train(T.TrainConfig(out_dir=str(tmp_path / "b"), steps=2, **base))
    stopped = torch.load(tmp_path / "b" / "state.pt", weights_only=False)["model"]
    resumed = T.train(T.TrainConfig(out_dir=str(tmp_path / "b"), steps=3, **base))
    assert _state_equal(whole.state_dict(), resumed.state_dict())
    assert not _state_equal(whole.state_dict(), stopped)             # the resumed step did change the weights
    rows = (tmp_path / "b" / "log.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows] == ["step", "1", "2", "3"]


class _Oracle(torch.nn.Module):
    """Returns each window's ground-truth SMPL (looked up by frame): the metrics must then be zero."""

    def __init__(self, db):
        super().__init__()
        from video2mesh.models.maths.rotations import axis_angle_to_rotmat

        self.cfg = SimpleNamespace(use_static=False, use_dynamic=False)
        self.rot = axis_angle_to_rotmat(torch.as_tensor(db["pose"]).reshape(-1, 24, 3))
        self.betas = torch.as_tensor(db["shape"])

    def forward(self, f, u=None, d=None):
        frames = f[..., 0].long()                         # the test stores the row index in feature 0
        return SimpleNamespace(rotmat=self.rot[frames], betas=self.betas[frames])


@pytest.mark.parametrize("protocol", ["vibe", "tcmr"])
def test_protocols_select_the_documented_frames(smpl_files, protocol):
    body = T.build_body(*smpl_files, torch.device("cpu"))
    db = S.make_db(body, S.SyntheticConfig(n_videos=2, n_frames=40, feature_dim=4, seed=2))
    db["features"][:, 0] = np.arange(len(db["features"]))
    m = E.evaluate(_Oracle(db), None, body, db, protocol)
    assert m.protocol == protocol
    assert m.n_frames == (2 * 32 if protocol == "vibe" else 2 * (40 - 15))
    assert m.mpjpe_mm == pytest.approx(0, abs=1e-3) and m.pa_mpjpe_mm == pytest.approx(0, abs=1e-3)
    assert m.mpvpe_mm == pytest.approx(0, abs=1e-3) and m.accel_err_mm_per_frame2 == pytest.approx(0, abs=1e-3)
    with pytest.raises(ValueError, match="unknown protocol"):
        E.evaluate(_Oracle(db), None, body, db, "h36m")


@pytest.mark.slow
def test_command_line_train_embedder_train_eval(synthetic_smpl_dir, smpl_files, tmp_path):
    import json

    emb, run, res = tmp_path / "emb", tmp_path / "run", tmp_path / "eval.json"
    common = ["--smpl-dir", smpl_files[0], "--device", "cpu"]
    assert T.main(["train-embedder", "--out", str(emb), "--synthetic-poses", "64", "--steps", "2", "--batch", "16",
                   "--hidden", "16", *common]) == 0
    tiny = ["--set", *[f"{k}={v}" for k, v in TINY]]
    assert T.main(["train", "--out", str(run), "--preset", "full", "--embedder", str(emb / "embedder.pt"),
                   "--j-regressor-h36m", smpl_files[1], "--steps", "2", "--batch", "2", "--seqlen", "8",
                   "--synthetic-videos", "1", "--synthetic-frames", "12", *tiny, *common]) == 0
    assert T.main(["eval", "--checkpoint", str(run / "model.pt"), "--embedder", str(emb / "embedder.pt"),
                   "--j-regressor-h36m", smpl_files[1], "--synthetic-videos", "1", "--synthetic-frames", "20",
                   "--out", str(res), *common]) == 0
    rows = json.loads(res.read_text())
    assert [r["protocol"] for r in rows] == ["vibe", "tcmr"]
    assert rows[0]["n_frames"] == 16 and rows[1]["n_frames"] == 20 - 15
    assert all(np.isfinite([r["mpjpe_mm"], r["pa_mpjpe_mm"], r["mpvpe_mm"], r["accel_err_mm_per_s2"]]).all() for r in rows)
    with pytest.raises(ValueError, match="needs the pose embedder"):
        T.main(["train", "--out", str(run), "--j-regressor-h36m", smpl_files[1], *common])
    with pytest.raises(SystemExit, match="FIELD=INT"):
        T.main(["train", "--out", str(run), "--set", "gru_hidden", "--j-regressor-h36m", "x", *common])
