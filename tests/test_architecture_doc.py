"""docs/architecture.md stays true: its stage table names every registered stage, its module and its
inputs, and its run orders are the runner's."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from video2mesh import stages
from video2mesh.pipeline.runner import Runner
from video2mesh.stages._methods import METHODS

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _table() -> dict[str, tuple[str, tuple[str, ...]]]:
    text = DOC.read_text()
    block = text.split("<!-- stage table")[1].split("<!-- end of stage table -->")[0]
    rows = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 3 and cells[0].startswith("`"):
            inputs = () if cells[2] == "-" else tuple(c.strip() for c in cells[2].split(","))
            rows[cells[0].strip("`")] = (cells[1], inputs)
    return rows


def _order(targets: tuple[str, ...]) -> list[str]:
    """The runner's own topological order (Runner.order reads nothing but `stages`)."""
    return Runner.order(SimpleNamespace(stages=stages.all_stages()), list(targets))


def test_the_stage_table_is_the_registry():
    modules = {m.STAGE.name: f"stages/{m.__name__.rpartition('.')[2]}.py" for m in stages._modules() if hasattr(m, "STAGE")}
    want = {n: (modules[n], tuple(s.inputs)) for n, s in stages.all_stages().items()}
    assert _table() == want


def test_the_run_orders_are_the_runners():
    text = DOC.read_text()
    for name, method in METHODS.items():
        line = re.search(rf"^- {re.escape(name)}: (.+)$", text, re.M)
        assert line, f"docs/architecture.md lacks the run order of {name}"
        assert line.group(1).split(" → ") == _order(method.targets)
