"""The fit stage's known-stature settings: parsing, one-line errors, cache key, what reaches the fit."""
from __future__ import annotations

import pytest

from video2mesh.pipeline import config as c
from video2mesh.pipeline.errors import ConfigError
from video2mesh.stages import fit_anny

from .test_fit_anny import _key_runner


def _cfg(*sets: str) -> fit_anny.FitAnnyConfig:
    return c.from_mapping(fit_anny.FitAnnyConfig, c.parse_sets(list(sets)).get("fit", {}), "fit.")


def test_stature_settings_reach_each_tracks_fit():
    cfg = _cfg("fit.stature_m=1.82", "fit.stature_by_person={2: 1.55, '7': 1.9}")
    assert cfg.stature_by_person == {2: 1.55, 7: 1.9}
    assert (cfg.stature(1), cfg.stature(2), cfg.stature(7)) == (1.82, 1.55, 1.9)
    base = fit_anny._fit_config(cfg, 30.0)
    known = fit_anny._with_stature(base, cfg, 2)
    assert (known.stature_m, known.free_3d_scale) == (1.55, True)
    default = fit_anny.FitAnnyConfig()
    assert default.stature(0) is None
    # unknown stature: the fit's settings are exactly those of before (outputs unchanged)
    assert fit_anny._with_stature(fit_anny._fit_config(default, 30.0), default, 0) == fit_anny._fit_config(default, 30.0)
    assert (base.stature_m, base.free_3d_scale) == (0.0, False)


def test_stature_changes_the_stage_key():
    keys = {_key_runner(cfg).stage_key("fit", {"probe": "p", "tracklets": "t", "blazepose": "b"})
            for cfg in (fit_anny.FitAnnyConfig(), _cfg("fit.stature_m=1.82"), _cfg("fit.stature_m=1.83"),
                        _cfg("fit.stature_by_person={1: 1.82}"))}
    assert len(keys) == 4


@pytest.mark.parametrize("item, msg", [
    ("fit.stature_m=3", "allowed 0.5 <= stature_m <= 2.5"),
    ("fit.stature_m=tall", "expected a number"),
    ("fit.stature_m=182", "out of range"),
    ("fit.stature_by_person=1.8", "expected a mapping"),
    ("fit.stature_by_person={a: 1.8}", "not a track id"),
    ("fit.stature_by_person={1: 182}", "stature in metres"),
    ("fit.stature_by_person={1: true}", "stature in metres"),
])
def test_bad_statures_are_one_line_errors(item, msg):
    with pytest.raises(ConfigError, match=msg) as e:
        _cfg(item)
    assert "\n" not in str(e.value)
