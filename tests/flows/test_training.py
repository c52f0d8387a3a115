"""Training flows call the same entry point as the commands (logic through .fn, no Prefect server)."""
from __future__ import annotations

import json


def test_train_embedder_flow_writes_a_loadable_checkpoint(synthetic_smpl_dir, tmp_path):
    from video2mesh.flows.training import train_embedder_flow
    from video2mesh.models.nets.embedder import PoseEmbedder

    out = tmp_path / "emb"
    assert train_embedder_flow.fn(["--out", str(out), "--smpl-dir", str(synthetic_smpl_dir), "--synthetic-poses", "32",
                                   "--steps", "2", "--batch", "8", "--hidden", "8", "--device", "cpu"]) == 0
    emb = PoseEmbedder.from_checkpoint(out / "embedder.pt")
    assert emb.cfg.hidden == 8
    assert json.loads((out / "summary.json").read_text())["config"]["steps"] == 2
