"""HiPPO function approximation: band-limited signals, the reconstruction targets, determinism, bad options."""

import numpy as np
import pytest
import torch

from ssmkit.data.function_approx import function_approx_task, white_signal
from ssmkit.data.registry import get_task

SMALL = {"n_train": 4, "n_val": 2, "n_test": 2}


def test_white_signal_is_band_limited_starts_at_zero_and_has_the_rms():
    rng = np.random.default_rng(0)
    L, dt, freq = 1000, 1e-3, 20.0
    u = white_signal(rng, L, dt, freq, rms=0.5)
    assert u.shape == (L,) and u[0] == 0.0
    assert np.sqrt(np.mean(u**2)) == pytest.approx(0.5)
    spectrum = np.abs(np.fft.rfft(u))
    f = np.fft.rfftfreq(L, d=dt)
    assert np.all(spectrum[f > freq] < 1e-9 * spectrum.max())  # nothing above freq (the shift only moves f = 0)
    assert np.all(spectrum[(f > 0) & (f <= freq)] > 0)


@pytest.mark.parametrize(("target", "d_output"), [("signal", 1), ("delay", 1), ("window", 5), ("history", 5)])
def test_targets_reconstruct_the_past(target, d_output):
    task = function_approx_task(length=200, freq=30.0, target=target, delay=17, window=40, n_points=5, **SMALL)
    assert (task.kind, task.d_input, task.d_output, task.l_max) == ("regress_steps", 1, d_output, 200)
    x, y = task.train[1]
    assert x.shape == (200, 1) and y.shape == (200, d_output) and x.dtype == y.dtype == torch.float32
    u = x[:, 0]
    for t in (0, 5, 16, 17, 99, 199):
        if target == "signal":
            expected = [u[t]]
        elif target == "delay":
            expected = [u[t - 17] if t >= 17 else 0.0]
        elif target == "window":  # lags 0, 10, 20, 30, 40
            expected = [u[t - lag] if t >= lag else 0.0 for lag in (0, 10, 20, 30, 40)]
        else:  # history: 5 points evenly over [0, t], both ends included
            expected = [u[round(j * t / 4)] for j in range(5)]
        torch.testing.assert_close(y[t], torch.tensor(expected, dtype=torch.float32))
    if target == "window":
        assert task.info["lags"] == [0, 10, 20, 30, 40]


def test_deterministic_per_seed_and_split():
    a = get_task("function_approx", length=64, freq=50.0, seed=1, **SMALL)
    b = function_approx_task(length=64, freq=50.0, seed=1, **SMALL)
    c = function_approx_task(length=64, freq=50.0, seed=2, **SMALL)
    assert torch.equal(a.test[1][0], b.test[1][0]) and torch.equal(a.train[3][1], b.train[3][1])
    assert not torch.equal(a.train[0][0], c.train[0][0])
    assert not torch.equal(a.train[0][0], a.val[0][0])  # the splits are different draws
    assert (len(a.train), len(a.val), len(a.test)) == (4, 2, 2)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"freq": 0.5}, r"freq must lie between the lowest frequency"),  # 1 / (1024 · 1e-3) ≈ 0.98 Hz
        ({"freq": 600.0}, r"Nyquist frequency 0.5 / dt = 500"),
        ({"target": "future"}, r"target must be one of"),
        ({"target": "delay", "delay": 1024}, r"delay must be an int in \[0, length\)"),
        ({"target": "window", "window": 0}, r"window must be an int in \[1, length\)"),
        ({"n_points": 1}, r"n_points must be an int >= 2"),
        ({"length": 1}, r"length must be an int >= 2"),
        ({"n_train": 0}, r"n_train, n_val, n_test must be positive ints"),
    ],
)
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        function_approx_task(**options)
