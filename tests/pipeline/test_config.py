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


def test_a_number_in_e_notation_is_a_number():
    # PyYAML (YAML 1.1) reads "1e9" as a string; --set tracklets.nested_max_drift=1e9 means the number
    assert c.parse_sets(["detect.conf=1e9"]) == {"detect": {"conf": "1e9"}}
    assert c.from_mapping(Cfg, c.parse_sets(["x.conf=1e9"])["x"]).conf == 1e9
    assert c.from_mapping(Cfg, {"conf": "2.5E-3"}).conf == 0.0025
    with pytest.raises(ConfigError, match="expected a number"):
        c.from_mapping(Cfg, {"conf": "1e"})


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


def test_ranges_checked_with_the_range_in_the_message():
    from typing import Annotated

    @dataclass(frozen=True)
    class R:
        iters: Annotated[int, c.Range(1, 100)] = 10
        cutoff: Annotated[float, c.Range(0, None, lo_open=True)] = 6.0
        opt: Annotated[float, c.Range(0, 1)] | None = None

    assert c.from_mapping(R, {"iters": 1, "cutoff": 1e-9, "opt": 1}) == R(1, 1e-9, 1.0)
    for key, value, msg in (("iters", -5, "r.iters=-5 is out of range: allowed 1 <= iters <= 100"),
                            ("iters", 101, "allowed 1 <= iters <= 100"), ("cutoff", 0, "allowed 0 < cutoff"),
                            ("cutoff", float("nan"), "out of range"), ("opt", 1.5, "allowed 0 <= opt <= 1")):
        with pytest.raises(ConfigError, match=msg.replace("(", r"\(")):
            c.from_mapping(R, {key: value}, where="r.")
    assert [(n, a) for n, _, a in c.describe(R)] == [("iters", "1 <= x <= 100"), ("cutoff", "0 < x"),
                                                   ("opt", "0 <= x <= 1 or null")]


def test_every_number_setting_of_every_stage_declares_a_range_its_default_meets():
    """So `--set stage.key=<anything>` is checked before any work (no crash deep inside a stage)."""
    import dataclasses
    import typing

    from video2mesh import stages

    for name, st in stages.all_stages().items():
        hints = typing.get_type_hints(st.config, include_extras=True)
        for f in dataclasses.fields(st.config):
            tp = hints[f.name]
            args = [a for a in typing.get_args(tp) if a is not type(None)] if typing.get_origin(tp) is not typing.Annotated else []
            base = typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else (args[0] if len(args) == 1 else tp)
            if base in (int, float):
                assert c.allowed(tp), f"{name}.{f.name} ({base.__name__}) has no Range"
        c.check_ranges(st.config(), where=f"{name}.")  # the defaults are inside their ranges
