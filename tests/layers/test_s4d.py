"""S4D layer: stability of every init, rate, bad input, state_dict, gradients, chunked state (contract: cases_s4.py)."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from ssmkit.layers import S4D

from . import ssm_checks
from .cases_s4 import S4D_DISCS, S4D_INITS
from .contract import assert_layer_contract

make = functools.partial(S4D, 3, d_state=8)


@pytest.mark.parametrize("disc", S4D_DISCS)
@pytest.mark.parametrize("init", S4D_INITS)
def test_stable_for_every_init_and_dt_in_range(init, disc):
    layer = S4D(2, d_state=16, init=init, disc=disc, dt_min=1e-3, dt_max=1e-1).double()
    for dt in (1e-3, 1e-2, 1e-1):
        with torch.no_grad():
            layer.log_dt.fill_(math.log(dt))
        Ab, _ = layer.discrete()
        assert Ab.abs().max() <= 1.0


@pytest.mark.parametrize("init", S4D_INITS)
def test_finite_at_one_million_steps(init):
    ssm_checks.check_long_sequence(S4D(1, d_state=4, init=init, disc="zoh"))


def test_finite_at_one_million_steps_bilinear_bidirectional():
    ssm_checks.check_long_sequence(S4D(1, d_state=4, init="lin", disc="bilinear", bidirectional=True))


def test_rate_is_a_scaled_dt():
    ssm_checks.check_rate(make)


def test_bad_input_is_rejected():
    ssm_checks.check_bad_input(make())
    ssm_checks.check_bidirectional_has_no_step(make(bidirectional=True))
    with pytest.raises(ValueError, match="init"):
        S4D(3, init="legt")
    with pytest.raises(ValueError, match="disc"):
        S4D(3, disc="euler")
    with pytest.raises(ValueError, match="d_state"):
        S4D(3, d_state=7)
    with pytest.raises(ValueError, match="dt_min"):
        S4D(3, dt_min=0.1, dt_max=0.01)


def test_state_dict_roundtrip():
    ssm_checks.check_state_dict_roundtrip(functools.partial(make, channels=2, bidirectional=True))


def test_gradients_reach_every_parameter():
    ssm_checks.check_gradients(functools.partial(make, channels=2, bidirectional=True))


def test_step_chunk_gradients():
    ssm_checks.check_chunk_gradients(make)


def test_step_cache_follows_parameter_updates():
    ssm_checks.check_step_cache_invalidation(make)


def test_long_chunk_spans_several_blocks():
    """step_chunk's Vandermonde sums run in blocks: a 150-step chunk from a nonzero state still equals stepping."""
    layer = make(init="lin").double()
    x = torch.randn(2, 150, 3, dtype=torch.float64)
    state = layer.initial_state(2) + torch.randn(2, 3, 4, dtype=torch.complex128)
    with torch.no_grad():
        y_chunk, s_chunk = layer.step_chunk(x, state)
        ys = []
        for t in range(x.shape[1]):
            y_t, state = layer.step(x[:, t], state)
            ys.append(y_t)
    assert (torch.stack(ys, 1) - y_chunk).abs().max() / y_chunk.abs().max() < 1e-10
    assert (s_chunk - state).abs().max() / state.abs().max() < 1e-10


def test_contract_at_larger_state():
    assert_layer_contract(S4D(4, d_state=64, init="legs"), dtype=torch.float64)
    assert_layer_contract(S4D(4, d_state=64, init="legs"), dtype=torch.float32)


def test_n_ssm_shares_A_and_B_across_channels_as_tiled_copies():
    ssm_checks.check_n_ssm_is_tiled_sharing(functools.partial(S4D, d_state=8), ("log_A_real", "A_imag", "B"))
    ssm_checks.check_bad_n_ssm(functools.partial(S4D, d_state=8))
