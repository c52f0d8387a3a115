"""probe: the video's content digest, frame rate, exact frame count and size (one row)."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from video2mesh.pipeline.artifacts import Artifact
from video2mesh.pipeline.stage import Chunk, Context, Stage

VIDEO = Artifact(
    "probe",
    version=1,
    schema=pa.schema([
        ("digest", pa.string()),
        ("fps", pa.float64()),
        ("n_frames", pa.int64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("size_bytes", pa.int64()),
    ]),
    doc="One row: what the video is. The runner reads it back instead of decoding the file again.",
)


@dataclass(frozen=True)
class ProbeConfig:
    """Probing has no parameters; the key is the file's sha256."""


def compute(ctx: Context, cfg: ProbeConfig, chunk: Chunk) -> pd.DataFrame:
    v = ctx.video
    return pd.DataFrame([{
        "digest": v.digest, "fps": v.fps, "n_frames": v.n_frames,
        "width": v.width, "height": v.height, "size_bytes": v.size_bytes,
    }])


STAGE = Stage(name="probe", version=1, config=ProbeConfig, output=VIDEO, compute=compute,
              doc="content digest, fps, frame count, size")
