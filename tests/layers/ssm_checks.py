"""Checks shared by the LSSL, S4 and S4D tests (each test module calls them with its own layer factory)."""

from __future__ import annotations

import math

import pytest
import torch

from ssmkit.layers.base import BidirectionalStepError

from .contract import rel_err


def _x(H, B=2, L=23, dtype=torch.float64, seed=3):
    return torch.randn(B, L, H, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def check_rate(make) -> None:
    """A rate-r call equals the same layer with Δ multiplied by r, in parallel, step and chunk mode."""
    layer = make().double().eval()
    x = _x(layer.d_model)
    with torch.no_grad():
        y_rate = layer(x, rate=2.0)
        state = layer.initial_state(x.shape[0])
        ys_rate = []
        for t in range(x.shape[1]):
            y_t, state = layer.step(x[:, t], state, rate=2.0)
            ys_rate.append(y_t)
        y_chunk_rate, _ = layer.step_chunk(x, layer.initial_state(x.shape[0]), rate=2.0)
        layer.log_dt.add_(math.log(2.0))
        y_doubled = layer(x)
        state = layer.initial_state(x.shape[0])
        ys = []
        for t in range(x.shape[1]):
            y_t, state = layer.step(x[:, t], state)
            ys.append(y_t)
    assert rel_err(y_rate, y_doubled) < 1e-12
    with torch.no_grad():
        layer.log_dt.sub_(math.log(2.0))
        assert rel_err(layer(x), y_rate) > 1e-6  # and rate really changes the output
    assert rel_err(torch.stack(ys_rate, 1), torch.stack(ys, 1)) < 1e-12
    assert rel_err(y_chunk_rate, y_doubled) < 1e-12


def check_bad_input(layer) -> None:
    """Wrong rank or shape, mismatched H, L < 1, non-finite x, bad rate or state: clear errors."""
    H = layer.d_model
    with pytest.raises(ValueError, match=r"\(B, L, H\)"):
        layer(torch.randn(4, H))
    with pytest.raises(ValueError, match="d_model"):
        layer(torch.randn(2, 5, H + 1))
    with pytest.raises(ValueError, match="L=0"):
        layer(torch.randn(2, 0, H))
    bad = torch.randn(2, 5, H)
    bad[0, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        layer(bad)
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.ones(2, 5, H, dtype=torch.long))
    with pytest.raises(ValueError, match="rate"):
        layer(torch.randn(2, 5, H), rate=0.0)
    state = layer.initial_state(2)
    with pytest.raises(ValueError, match=r"\(B, H\)"):
        layer.step(torch.randn(2, H + 1), state)
    with pytest.raises(ValueError, match=r"\(B, H\)"):
        layer.step(torch.randn(2, 5, H), state)
    inf = torch.randn(2, H)
    inf[1, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        layer.step(inf, state)
    with pytest.raises(ValueError, match="state"):
        layer.step(torch.randn(3, H), state)  # batch of the state does not match
    with pytest.raises(ValueError, match="state"):
        layer.step_chunk(torch.randn(3, 4, H), state)
    with pytest.raises(ValueError, match="L=0"):
        layer.step_chunk(torch.randn(2, 0, H), state)


def check_bidirectional_has_no_step(layer) -> None:
    state = layer.initial_state(1)
    with pytest.raises(BidirectionalStepError, match="bidirectional"):
        layer.step(torch.randn(1, layer.d_model), state)
    with pytest.raises(BidirectionalStepError, match="bidirectional"):
        layer.step_chunk(torch.randn(1, 3, layer.d_model), state)


def check_state_dict_roundtrip(make) -> None:
    torch.manual_seed(1)
    a = make().double().eval()
    torch.manual_seed(2)
    b = make().double().eval()
    x = _x(a.d_model)
    assert rel_err(b(x), a(x)) > 1e-3  # different seeds, different layers
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        assert torch.equal(b(x), a(x))
    for p in a.state_dict().values():
        assert not p.is_complex()  # complex parameters are stored as real tensors


def check_gradients(make) -> None:
    """Every parameter gets a finite, nonzero gradient from the parallel mode."""
    layer = make().double().train()
    x = _x(layer.d_model)
    layer(x).pow(2).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None, f"no gradient reaches {name}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient on {name}"
        assert p.grad.abs().max() > 0, f"zero gradient on {name}"


def check_chunk_gradients(make) -> None:
    """step_chunk is differentiable (truncated BPTT) and agrees with the parallel mode's gradient on x."""
    layer = make().double().eval()
    x = _x(layer.d_model, L=11).requires_grad_(True)
    g_par = torch.autograd.grad(layer(x).pow(2).sum(), x)[0]
    state = layer.initial_state(x.shape[0])
    y1, state = layer.step_chunk(x[:, :4], state)
    y2, _ = layer.step_chunk(x[:, 4:], state)
    g_chunk = torch.autograd.grad(torch.cat([y1, y2], 1).pow(2).sum(), x)[0]
    assert rel_err(g_chunk, g_par) < 1e-8


def check_long_sequence(layer, L: int = 10**6) -> None:
    """Finite kernel and output at L = 10^6 (float32, the training dtype)."""
    layer = layer.float().eval()
    with torch.no_grad():
        K = layer.kernel(L)
        assert torch.isfinite(K).all()
        y = layer(torch.randn(1, L, layer.d_model))
        assert torch.isfinite(y).all()


def check_step_cache_invalidation(make) -> None:
    """The no-grad cache of the discrete system follows in-place parameter updates (optimiser steps, load)."""
    layer = make().double().eval()
    x = _x(layer.d_model, B=1, L=1)[:, 0]
    with torch.no_grad():
        before, _ = layer.step(x, layer.initial_state(1))
        for p in layer.parameters():
            p.mul_(1.1)
        after, _ = layer.step(x, layer.initial_state(1))
        with torch.enable_grad():
            fresh, _ = layer.step(x, layer.initial_state(1))  # no cache with autograd on
    assert rel_err(after, fresh) < 1e-14
    assert rel_err(after, before) > 1e-6


def check_long_chunk_from_nonzero_state(layer, L: int = 150, tol: float = 1e-10) -> None:
    """One L-step chunk from a random (nonzero) state equals L calls of step: outputs and final state (float64).

    The chunk is computed in parallel (factored Krylov / Vandermonde sums in blocks of ~√L), so L spans several blocks.
    """
    layer = layer.double().eval()
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, L, layer.d_model, dtype=torch.float64, generator=g)
    state0 = layer.initial_state(2)
    noise = torch.randn(state0.shape, dtype=state0.dtype, generator=g)
    state = state0 + noise
    with torch.no_grad():
        y_chunk, s_chunk = layer.step_chunk(x, state)
        ys = []
        for t in range(L):
            y_t, state = layer.step(x[:, t], state)
            ys.append(y_t)
    assert rel_err(y_chunk, torch.stack(ys, 1)) < tol
    as_real = torch.view_as_real if state.is_complex() else (lambda t: t)
    assert rel_err(as_real(s_chunk), as_real(state)) < tol


def check_step_chunk_has_no_per_token_loop(layer, monkeypatch) -> None:
    """step_chunk is parallel: it never goes through the one-token recurrence (`_advance`), yet equals it."""
    layer = layer.double().eval()
    x = torch.randn(2, 20, layer.d_model, dtype=torch.float64)
    state = layer.initial_state(2)
    with torch.no_grad():
        ys = []
        for t in range(20):
            y_t, state = layer.step(x[:, t], state)
            ys.append(y_t)

        def no_loop(*args, **kwargs):
            raise AssertionError("step_chunk stepped token by token")

        monkeypatch.setattr(layer, "_advance", no_loop)
        y_chunk, _ = layer.step_chunk(x, layer.initial_state(2))
    assert rel_err(y_chunk, torch.stack(ys, 1)) < 1e-10


def check_n_ssm_is_tiled_sharing(make, names) -> None:
    """A layer with n_ssm = 2 over H = 4 (its shared parameters `names` perturbed so the two SSMs differ) equals the
    same layer with one SSM per channel holding copy h mod 2 in channel h (the S4 code's tiling), in the convolution
    and in the step; with the contract (parallel == step == step_chunk) on top."""
    from .contract import assert_layer_contract

    torch.manual_seed(0)
    shared = make(4, n_ssm=2).double()
    full = make(4).double()
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name in names:
            p = getattr(shared, name)
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype) * p.abs().clamp_min(0.1))
        state = shared.state_dict()
        for name in names:
            dim = 1 if name == "P" else 0  # P is (R, S, N/2, 2)
            state[name] = torch.cat([state[name]] * 2, dim=dim)  # (.., S, ..) -> (.., H, ..): channel h -> copy h mod S
        full.load_state_dict(state)
    assert tuple(getattr(shared, names[0]).shape)[0 if names[0] != "P" else 1] == 2
    x = _x(4)
    with torch.no_grad():
        assert rel_err(shared(x), full(x)) < 1e-12
        assert not torch.allclose(full(x)[..., 0], full(x)[..., 1])  # the two SSMs differ
    assert_layer_contract(shared, dtype=torch.float64)
    assert_layer_contract(shared, dtype=torch.float32)


def check_bad_n_ssm(make) -> None:
    with pytest.raises(ValueError, match="n_ssm must divide d_model"):
        make(4, n_ssm=3)
    with pytest.raises(ValueError, match="n_ssm must be an integer"):
        make(4, n_ssm=0)
