"""The JSON file `v2m bench accuracy` and `v2m bench crowd` write (one writer for both)."""
from __future__ import annotations

import json

import numpy as np

from video2mesh.benchmarks.accuracy.bench import write_json


def test_numpy_numbers_become_json_numbers_in_a_new_folder(tmp_path, capsys):
    path = tmp_path / "new" / "folder" / "bench.json"
    doc = {"overall": {"recall": np.float32(0.75), "frames": np.int64(40)}, "clips": [{"mpjpe_mm": np.float64(61.5)}]}
    write_json(doc, path)
    assert json.loads(path.read_text()) == {"overall": {"recall": 0.75, "frames": 40.0}, "clips": [{"mpjpe_mm": 61.5}]}
    assert path.read_text().endswith("}\n") and capsys.readouterr().out == f"wrote {path}\n"


def test_bench_crowd_writes_its_document_through_it(tmp_path):
    """No clip and no video: the document still has every key, written where --json says."""
    from video2mesh.benchmarks.accuracy.crowd import run_crowd
    from video2mesh.flows.spec import RunSpec

    path = tmp_path / "j" / "crowd.json"
    doc = run_crowd([], None, [], frames=10, spec=RunSpec(out=str(tmp_path / "out")), root=tmp_path, json_path=str(path))
    assert json.loads(path.read_text()) == json.loads(json.dumps(doc, default=float))
    assert doc["rendered"] == [] and doc["real"] == [] and doc["machine"]["cpus"] > 0
