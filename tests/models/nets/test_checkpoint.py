"""Our checkpoints hold plain data only (config dict, tensors, version strings), never a pickled class
of ours: moving or renaming a module (as the video2mesh.* layout did with the old top-level `models`)
must not orphan files written before."""
from __future__ import annotations

import dataclasses
import pickletools
import zipfile

import torch

from video2mesh.models.nets import checkpoint
from video2mesh.models.nets.embedder import EmbedderConfig, PoseEmbedder


def _pickled_globals(path) -> set[str]:
    """Every 'module name' a torch.save zip's pickle refers to (protocol 2: GLOBAL opcodes)."""
    with zipfile.ZipFile(path) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    return {str(arg) for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}


def test_checkpoint_pickles_no_module_of_ours_and_rebuilds(tmp_path):
    torch.manual_seed(0)
    cfg = EmbedderConfig()
    net = PoseEmbedder(cfg)
    path = net.save(tmp_path / "e.pt", meta={"steps": 3, "note": "x"})
    refs = _pickled_globals(path)
    assert refs and all(r.split()[0].split(".")[0] in ("torch", "collections") for r in refs), refs
    torch.load(path, map_location="cpu", weights_only=True)                   # the safe loader accepts it
    back = PoseEmbedder.from_checkpoint(path)
    assert dataclasses.asdict(back.cfg) == dataclasses.asdict(cfg)
    assert all(torch.equal(back.state_dict()[k], v) for k, v in net.state_dict().items())
    assert checkpoint.load(path, kind="pose_embedder")["meta"] == {"steps": 3, "note": "x"}
