"""Artifact declarations: one name, one Arrow schema and one schema version per artifact.

Tables are long-form (one row per frame, or per frame and track). Arrays per row are fixed-size
list columns (keypoints 17x3 -> 51 floats, homography 9, feature 2048, pose 72...).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import StageFailed


@dataclass(frozen=True)
class Artifact:
    """A named table schema. `version` changes whenever the schema or its meaning changes."""

    name: str
    version: int
    schema: pa.Schema
    doc: str = ""

    def to_table(self, df: pd.DataFrame) -> pa.Table:
        """Convert a stage's DataFrame to an Arrow table of exactly this schema.

        Fixed-size list columns accept a column of equal-length arrays or lists. Raises
        StageFailed naming the missing, extra or misshapen column.
        """
        missing = [f.name for f in self.schema if f.name not in df.columns]
        extra = [c for c in df.columns if c not in self.schema.names]
        if missing or extra:
            raise StageFailed(
                f"artifact {self.name!r}: columns do not match its schema "
                f"(missing {missing}, unexpected {extra})"
            )
        arrays = [_to_arrow(df[f.name], f, self.name) for f in self.schema]
        return pa.Table.from_arrays(arrays, schema=self.schema.remove_metadata())

    def empty(self) -> pd.DataFrame:
        """An empty DataFrame with this artifact's columns (a valid result with no rows)."""
        return self.schema.empty_table().to_pandas()


def fixed(n: int, value_type: pa.DataType = pa.float32()) -> pa.DataType:
    """Fixed-size list type of n values (float32 unless stated)."""
    return pa.list_(value_type, n)


def stack(column: pd.Series | pa.ChunkedArray, width: int | None = None, dtype=np.float32) -> np.ndarray:
    """(N, width) array from a fixed-size list column read back from Parquet."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
        flat = column.flatten().to_numpy(zero_copy_only=False)
        width = column.type.list_size
        return flat.reshape(len(column), width).astype(dtype, copy=False)
    if len(column) == 0:
        return np.zeros((0, width or 0), dtype=dtype)
    return np.stack([np.asarray(v, dtype=dtype) for v in column.to_numpy()])


def _to_arrow(series: pd.Series, field: pa.Field, artifact: str) -> pa.Array:
    t = field.type
    if pa.types.is_fixed_size_list(t):
        n = t.list_size
        if len(series) == 0:
            return pa.array([], type=t)
        values = series.to_numpy()
        if isinstance(values, np.ndarray) and values.dtype != object and values.ndim == 2:
            mat = values
        else:
            mat = np.stack([np.asarray(v).reshape(-1) for v in values])
        if mat.shape[1] != n:
            raise StageFailed(f"artifact {artifact!r}: column {field.name!r} has width {mat.shape[1]}, schema says {n}")
        flat = pa.array(mat.reshape(-1).astype(t.value_type.to_pandas_dtype(), copy=False), type=t.value_type)
        return pa.FixedSizeListArray.from_arrays(flat, n)
    try:
        return pa.array(series.to_numpy(), type=t, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise StageFailed(f"artifact {artifact!r}: column {field.name!r} does not fit type {t}: {e}") from e
