import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from video2mesh.pipeline.artifacts import Artifact, fixed, stack
from video2mesh.pipeline.errors import StageFailed
from video2mesh.pipeline.hashing import digest_obj
from video2mesh.pipeline.store import ArtifactStore

ART = Artifact("demo", 1, pa.schema([("frame", pa.int64()), ("kp", fixed(6)), ("ok", pa.bool_())]))


def _df(n=5):
    return pd.DataFrame({"frame": np.arange(n), "kp": list(np.arange(n * 6, dtype=np.float32).reshape(n, 6)), "ok": [True] * n})


def test_roundtrip_fixed_size_lists(tmp_path):
    store = ArtifactStore(tmp_path)
    d = store.stage_dir("ab" * 32, "demo", "k1")
    store.write_part(d, 0, ART.to_table(_df(5)))
    store.write_part(d, 1, ART.to_table(_df(3)))
    assert store.ref(d) is None, "no manifest, no artifact"
    ref = store.finish(d, ART, 2, {"stage": "demo", "key": "k1"})
    assert ref.rows == 8
    back = store.read_df(d)
    np.testing.assert_array_equal(stack(back["kp"], 6)[:5], np.arange(30, dtype=np.float32).reshape(5, 6))
    assert store.read_table(d).schema.field("kp").type == fixed(6)
    m = json.loads((d / "manifest.json").read_text())
    assert [p["file"] for p in m["parts"]] == ["part-00000.parquet", "part-00001.parquet"]
    assert not list(d.glob(".*tmp*")), "temporary files are renamed away"


def test_parts_are_deterministic_bytes(tmp_path):
    store = ArtifactStore(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    store.write_part(a, 0, ART.to_table(_df()))
    store.write_part(b, 0, ART.to_table(_df()))
    assert (a / "part-00000.parquet").read_bytes() == (b / "part-00000.parquet").read_bytes()


def test_schema_mismatch_names_the_column():
    with pytest.raises(StageFailed, match="missing \\['ok'\\]"):
        ART.to_table(_df().drop(columns="ok"))
    bad = _df()
    bad["kp"] = list(np.zeros((5, 5)))
    with pytest.raises(StageFailed, match="width 5"):
        ART.to_table(bad)


def test_empty_table_is_valid():
    t = ART.to_table(ART.empty())
    assert t.num_rows == 0 and t.schema.equals(ART.schema)


def test_digest_is_order_and_number_format_independent():
    assert digest_obj({"a": 1, "b": 2.0}) == digest_obj({"b": 2, "a": 1})
    assert digest_obj({"a": 1}) != digest_obj({"a": 1.5})
