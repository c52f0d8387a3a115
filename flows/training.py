"""Prefect flows for training and evaluation: thin wrappers over video2mesh.models.training.train (results are paths).

Each flow takes the same arguments as its command (`v2m train-embedder`, `v2m train`, `v2m eval`),
so a deployment can schedule exactly what a user runs by hand. Retries are off: a training run
resumes from its own state.pt when run again with the same output folder.
"""
from __future__ import annotations

from prefect import flow

from video2mesh.models.training import train


def _run(cmd: str, args: list[str]) -> int:
    return train.main([cmd, *args])


@flow(name="train-embedder")
def train_embedder_flow(args: list[str]) -> int:
    """Pr-VIPE pretraining on random-camera views of 3D poses (`v2m train-embedder` arguments)."""
    return _run("train-embedder", args)


@flow(name="train")
def train_flow(args: list[str]) -> int:
    """Mesh model training for one preset (`v2m train` arguments)."""
    return _run("train", args)


@flow(name="eval")
def eval_flow(args: list[str]) -> int:
    """Evaluation under the VIBE and/or TCMR protocol (`v2m eval` arguments)."""
    return _run("eval", args)
