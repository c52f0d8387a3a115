"""Report metrics against closed forms on synthetic motion."""
from __future__ import annotations

import numpy as np
import pytest

from video2mesh.models.metrics import motion as mm

FPS = 30.0


def constant_velocity(t=40, j=24):
    rng = np.random.default_rng(0)
    x0, v = rng.normal(size=(j, 3)), rng.normal(0, 0.01, size=(j, 3))
    return x0 + v * np.arange(t)[:, None, None]


def sinusoid(freq_hz, amp_m, t, axis=0, j=24):
    x = np.zeros((t, j, 3))
    x[:, :, axis] = amp_m * np.sin(2 * np.pi * freq_hz / FPS * np.arange(t))[:, None]
    return x


def test_constant_velocity_has_zero_acceleration_and_jitter():
    x = constant_velocity()
    np.testing.assert_allclose(mm.acceleration_mm(x), 0, atol=1e-9)
    jit = mm.jitter(x, FPS)
    np.testing.assert_allclose(jit.rms_mm, 0, atol=1e-9)


def test_sinusoid_acceleration_matches_closed_form():
    a, f, t = 0.02, 2.0, 50
    w = 2 * np.pi * f / FPS
    got = mm.acceleration_mm(sinusoid(f, a, t))
    # second difference of A sin(w t) is -4 sin^2(w/2) A sin(w t)
    want = 1000 * 4 * a * np.sin(w / 2) ** 2 * np.abs(np.sin(w * np.arange(1, t - 1)))
    np.testing.assert_allclose(got, np.repeat(want[:, None], 24, 1), atol=1e-9)


def test_jitter_splits_energy_at_the_cutoff():
    # M = T - 2 = 60 acceleration samples: 1.5 Hz and 10 Hz both fall on exact FFT bins at 30 fps.
    t, lo, hi, a_lo, a_hi = 62, 1.5, 10.0, 0.05, 0.002
    x = sinusoid(lo, a_lo, t) + sinusoid(hi, a_hi, t, axis=1) + constant_velocity(t)
    amp = lambda f, a: 1000 * 4 * a * np.sin(np.pi * f / FPS) ** 2  # noqa: E731  acceleration amplitude
    jit = mm.jitter(x, FPS, cutoff_hz=6.0)
    np.testing.assert_allclose(jit.rms_mm, amp(hi, a_hi) / np.sqrt(2), rtol=1e-9)
    np.testing.assert_allclose(jit.ratio, amp(hi, a_hi) ** 2 / (amp(hi, a_hi) ** 2 + amp(lo, a_lo) ** 2), rtol=1e-9)
    only_low = mm.jitter(sinusoid(lo, a_lo, t), FPS, cutoff_hz=6.0)
    np.testing.assert_allclose(only_low.rms_mm, 0, atol=1e-9)


def test_foot_sliding_counts_horizontal_motion_only_while_in_contact():
    t = 20
    feet = np.zeros((t, 1, 3))
    feet[:, 0, 0] = 0.003 * np.arange(t)             # slides 3 mm/frame along x
    feet[10:, 0, 1] = 0.2                            # lifted 20 cm from frame 10 on
    feet[10:, 0, 0] += 0.5                           # moves a lot while lifted: not sliding
    r = mm.foot_sliding(feet, contact_height_m=0.05, contact_vspeed_mm=10.0)
    assert r.contact[:10, 0].all() and not r.contact[10:, 0].any()
    assert r.contact_share[0] == pytest.approx(0.5)
    assert r.sliding_mm[0] == pytest.approx(3.0)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"\(T, J, 3\)"):
        mm.acceleration_mm(np.zeros((10, 3)))


def test_jitter_cutoff_leaves_a_band_at_low_frame_rates():
    """At 12 fps the 6 Hz cutoff is Nyquist: the effective cutoff drops to fps / 4 so noise still shows."""
    assert mm.effective_cutoff_hz(6.0, 30.0) == 6.0
    assert mm.effective_cutoff_hz(6.0, 12.0) == 3.0
    rng = np.random.default_rng(0)
    noisy = rng.normal(0, 0.01, (39, 2, 3))  # white noise: energy in every band
    for n in (38, 39):  # both parities: the Nyquist bin exists only for one of them
        j = mm.jitter(noisy[:n], 12.0, mm.effective_cutoff_hz(6.0, 12.0))
        assert (j.rms_mm > 1.0).all() and (j.ratio > 0.2).all()
