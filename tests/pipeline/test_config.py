from dataclasses import dataclass
from typing import Literal

import pytest

from video2mesh.pipeline import config as c
from video2mesh.pipeline.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    k: int = 3


@dataclass(frozen=True)
class Cfg:
    conf: float = 0.5
    n: int = 2
    mode: Literal["a", "b"] = "a"
    size: tuple[int, int] = (4, 3)
    inner: Inner = Inner()
    name: str | None = None


def test_defaults_and_coercion():
    cfg = c.from_mapping(Cfg, {"conf": 1, "n": 4.0, "size": [8, 6], "inner": {"k": 5}})
    assert cfg == Cfg(conf=1.0, n=4, size=(8, 6), inner=Inner(5))
    assert isinstance(cfg.conf, float) and isinstance(cfg.n, int)


def test_unknown_key_is_an_error_naming_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) detect\.cnof.*conf"):
        c.from_mapping(Cfg, {"cnof": 0.3}, where="detect.")
    with pytest.raises(ConfigError, match="inner.q"):
        c.from_mapping(Cfg, {"inner": {"q": 1}}, where="")


@pytest.mark.parametrize("bad", [{"n": 2.5}, {"n": True}, {"conf": "x"}, {"mode": "c"}, {"size": [1]}])
def test_wrong_types_are_errors(bad):
    with pytest.raises(ConfigError):
        c.from_mapping(Cfg, bad)


def test_parse_sets_and_merge():
    sets = c.parse_sets(["detect.conf=0.3", "tracklets.min_len=10", "flow.backend=dis"])
    assert sets == {"detect": {"conf": 0.3}, "tracklets": {"min_len": 10}, "flow": {"backend": "dis"}}
    merged = c.merge({"detect": {"conf": 0.1, "imgsz": 640}}, sets)
    assert merged["detect"] == {"conf": 0.3, "imgsz": 640}
    with pytest.raises(ConfigError, match="STAGE.KEY=VALUE"):
        c.parse_sets(["conf=0.3"])


def test_load_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        c.load_yaml(tmp_path / "nope.yaml")
    p = tmp_path / "bad.yaml"
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        c.load_yaml(p)


def test_yaml_booleans_become_the_literal_word_they_were_written_as():
    """`--set fit.smoothing=off`: YAML 1.1 reads `off` as False; a Literal of words takes it back."""
    from video2mesh.pipeline.config import from_mapping, parse_sets
    from video2mesh.stages.fit_anny import FitAnnyConfig

    raw = parse_sets(["fit.smoothing=off"])
    assert raw["fit"]["smoothing"] is False
    assert from_mapping(FitAnnyConfig, raw["fit"]).smoothing == "off"
    assert from_mapping(FitAnnyConfig, {"smoothing": "strong"}).smoothing == "strong"
