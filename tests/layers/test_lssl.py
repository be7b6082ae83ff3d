"""LSSL layer: stability of every measure and disc, LSSL-f, rate, bad input, state_dict, gradients.

The contract (parallel == step == chunks) runs over every measure x disc x direction from cases_s4.py."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from ssmkit.layers import LSSL

from . import ssm_checks
from .cases_s4 import EULER_DT, EULER_UNSTABLE, LSSL_DISCS, LSSL_INITS

make = functools.partial(LSSL, 3, d_state=8)
STABLE_INITS = tuple(m for m in LSSL_INITS if m != "random")  # "random" is an unstable baseline by design


@pytest.mark.parametrize("disc", LSSL_DISCS)
@pytest.mark.parametrize("init", STABLE_INITS)
def test_stable_for_every_init_and_dt_in_range(init, disc):
    if disc == "euler" and init in EULER_UNSTABLE:
        with pytest.raises(ValueError, match="euler"):
            LSSL(2, d_state=16, init=init, disc=disc, **EULER_DT)
        return
    kw = EULER_DT if disc == "euler" else {}
    layer = LSSL(2, d_state=16, init=init, disc=disc, **kw).double()
    for dt in (layer.dt_min, math.sqrt(layer.dt_min * layer.dt_max), layer.dt_max):
        with torch.no_grad():
            layer.log_dt.fill_(math.log(dt))
        Ab, _ = layer.discrete()
        assert torch.linalg.eigvals(Ab).abs().max() <= 1 + 1e-12


def test_euler_outside_its_stability_region_is_rejected():
    with pytest.raises(ValueError, match="unstable for dt_max"):
        LSSL(2, d_state=16, init="legs", disc="euler", dt_max=0.2)


@pytest.mark.parametrize("init", STABLE_INITS)
def test_finite_at_one_million_steps(init):
    ssm_checks.check_long_sequence(LSSL(1, d_state=4, init=init))


def test_fixed_A_is_a_buffer_and_learned_A_a_parameter():
    fixed, learned = make(learn_A=False), make(learn_A=True)
    names = dict(fixed.named_parameters())
    assert "A" not in names and "B" not in names and "A" in dict(fixed.named_buffers())
    assert {"A", "B", "log_dt", "C", "D"} <= set(dict(learned.named_parameters()))
    assert torch.equal(fixed.A, learned.A)


def test_copies_have_their_own_timescales():
    layer = make(channels=4)
    assert layer.log_dt.shape == (4, 3)
    assert layer.log_dt.unique().numel() == 12


def test_rate_is_a_scaled_dt():
    ssm_checks.check_rate(make)


def test_bad_input_is_rejected():
    ssm_checks.check_bad_input(make())
    ssm_checks.check_bidirectional_has_no_step(make(bidirectional=True))
    with pytest.raises(ValueError, match="init"):
        LSSL(3, init="chebyshev")
    with pytest.raises(ValueError, match="disc"):
        LSSL(3, disc="rk4")
    with pytest.raises(ValueError, match="channels"):
        LSSL(3, channels=0)


def test_state_dict_roundtrip():
    ssm_checks.check_state_dict_roundtrip(functools.partial(make, channels=2, bidirectional=True))
    ssm_checks.check_state_dict_roundtrip(functools.partial(make, learn_A=False))


def test_gradients_reach_every_parameter():
    ssm_checks.check_gradients(functools.partial(make, channels=2, bidirectional=True))


def test_step_chunk_gradients():
    ssm_checks.check_chunk_gradients(make)


def test_step_cache_follows_parameter_updates():
    ssm_checks.check_step_cache_invalidation(make)


@pytest.mark.parametrize("init, disc", [("legs", "bilinear"), ("legt", "zoh"), ("lmu", "backward_euler")])
def test_long_chunk_from_nonzero_state(init, disc):
    ssm_checks.check_long_chunk_from_nonzero_state(make(init=init, disc=disc, channels=2))


def test_step_chunk_has_no_per_token_loop(monkeypatch):
    ssm_checks.check_step_chunk_has_no_per_token_loop(make(channels=2), monkeypatch)
