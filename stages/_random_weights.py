"""Every weight file of the SMPL path with random weights, in the official layouts, in one folder.

For the full-path test and the pipeline benchmark: real architectures (so the compute cost is real),
meaningless outputs. Each file comes from the writer next to the loader it serves.
"""
from __future__ import annotations

from pathlib import Path

SMPL_PATH_ASSETS = ("yolo", "hrnet_w32_coco", "resnet50_spin", "vibe", "embedder", "smpl_neutral")


def write_random_weights(folder: str | Path, names: tuple[str, ...] = SMPL_PATH_ASSETS, seed: int = 0) -> dict[str, Path]:
    """Write the named assets into `folder` (skipping files already there); returns {asset: path},
    ready for `--weights NAME=PATH` or AssetRegistry(overrides=...)."""
    from video2mesh.models.body import synthetic_smpl

    from . import detect, features, mesh, pose2d

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    writers = {
        "yolo": ("yolo11n_random.pt", lambda p: detect.write_random_checkpoint(p, seed=seed)),
        "hrnet_w32_coco": ("hrnet_w32_random.pth", lambda p: pose2d.write_random_checkpoint(p, seed=seed)),
        "resnet50_spin": ("spin_random.pt", lambda p: features.write_random_checkpoint(p, seed=seed)),
        "vibe": ("vibe_random.pth.tar", lambda p: mesh.write_random_vibe(p, seed=seed)),
        "embedder": ("embedder_random.pt", lambda p: mesh.write_random_embedder(p, seed=seed)),
        "v2m_model": ("v2m_model_random.pt", lambda p: mesh.write_random_v2m(p, seed=seed)),
        "smpl_neutral": ("SMPL_NEUTRAL.pkl", lambda p: synthetic_smpl.write(p.parent, "NEUTRAL", seed=seed)),
        "smpl_male": ("SMPL_MALE.pkl", lambda p: synthetic_smpl.write(p.parent, "MALE", seed=seed + 1)),
        "smpl_female": ("SMPL_FEMALE.pkl", lambda p: synthetic_smpl.write(p.parent, "FEMALE", seed=seed + 2)),
    }
    unknown = sorted(set(names) - set(writers))
    if unknown:
        raise ValueError(f"no random-weight writer for {unknown}; known: {sorted(writers)}")
    out = {}
    for name in names:
        filename, write = writers[name]
        path = folder / filename
        if not path.is_file():
            write(path)
        out[name] = path
    return out
