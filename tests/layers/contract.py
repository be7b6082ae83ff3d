"""The contract every sequence layer passes (DESIGN.md): parallel == step by step == chunked.

Layer test modules call `assert_layer_contract(layer, dtype)`; tests/layers/test_contract.py runs it over every
layer x init x discretisation x direction listed in the `CASES` of the tests/layers/cases_*.py modules.
"""

from __future__ import annotations

import pytest
import torch

from ssmkit.layers.base import BidirectionalStepError

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (both real)."""
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def assert_layer_contract(
    layer, dtype=torch.float64, batch=2, length=37, tol=None, rate=1.0, chunks=(5, 1, 13), device="cpu"
):
    """parallel == step-by-step == step_chunk over uneven chunks, from the zero state, within `tol` relative."""
    tol = TOL[dtype] if tol is None else tol
    layer = layer.to(device=device, dtype=dtype).eval()
    H = layer.d_model
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, length, H, generator=g, dtype=dtype).to(device)
    with torch.no_grad():
        y = layer(x, rate=rate)
        assert y.shape == (batch, length, H), f"forward returned {tuple(y.shape)}"
        assert y.dtype == dtype
        if layer.bidirectional:
            with pytest.raises(BidirectionalStepError):
                layer.step(x[:, 0], layer.initial_state(batch))
            with pytest.raises(BidirectionalStepError):
                layer.step_chunk(x, layer.initial_state(batch))
            return
        # step by step
        state = layer.initial_state(batch)
        ys = []
        for t in range(length):
            y_t, state = layer.step(x[:, t], state, rate=rate)
            assert y_t.shape == (batch, H)
            ys.append(y_t)
        y_step = torch.stack(ys, dim=1)
        err = rel_err(y_step, y)
        assert err <= tol, f"step-by-step vs parallel: relative error {err:.3e} > {tol:.1e}"
        # chunked, uneven chunks, state carried
        state = layer.initial_state(batch)
        outs, start = [], 0
        sizes = list(chunks) + [length - sum(chunks)]
        for size in sizes:
            y_c, state = layer.step_chunk(x[:, start : start + size], state, rate=rate)
            outs.append(y_c)
            start += size
        y_chunk = torch.cat(outs, dim=1)
        err = rel_err(y_chunk, y)
        assert err <= tol, f"step_chunk vs parallel: relative error {err:.3e} > {tol:.1e}"
        # the final states agree too
        state_steps = _flatten(state)
        state2 = layer.initial_state(batch)
        for t in range(length):
            _, state2 = layer.step(x[:, t], state2, rate=rate)
        for s1, s2 in zip(state_steps, _flatten(state2), strict=True):
            err = rel_err(
                torch.view_as_real(s1) if s1.is_complex() else s1,
                torch.view_as_real(s2) if s2.is_complex() else s2,
            )
            assert err <= tol * 10, f"final state after chunks vs after steps: relative error {err:.3e}"


def _flatten(state):
    if isinstance(state, torch.Tensor):
        return [state]
    return [t for s in state for t in _flatten(s)]
