"""The Transformer and LSTM baselines pass the same layer contract as every SSM layer (tests/layers/contract.py)."""

import pytest
import torch

from ssmkit.layers.base import BidirectionalStepError
from ssmkit.models import LSTM, Transformer

from ..layers.contract import assert_layer_contract


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "make",
    [lambda: LSTM(8), lambda: Transformer(8, n_heads=2, causal=True), lambda: Transformer(8, n_heads=2, causal=False)],
    ids=["lstm", "transformer_causal", "transformer_bidirectional"],
)
def test_baseline_contract(make, dtype):
    assert_layer_contract(make(), dtype=dtype, tol=1e-5 if dtype == torch.float32 else 1e-10)


def test_bidirectional_transformer_has_no_step():
    layer = Transformer(8, n_heads=2, causal=False)
    with pytest.raises(BidirectionalStepError):
        layer.step(torch.randn(2, 8), layer.initial_state(2))


def test_causal_transformer_ignores_the_future():
    layer = Transformer(8, n_heads=2).double()
    x = torch.randn(1, 10, 8, dtype=torch.float64)
    y = layer(x)
    x2 = x.clone()
    x2[:, 6:] = torch.randn(1, 4, 8, dtype=torch.float64)
    assert torch.allclose(layer(x2)[:, :6], y[:, :6], atol=1e-12)


def test_lstm_forget_bias_starts_at_one():
    layer = LSTM(4)
    assert torch.equal(layer.lstm.bias_ih_l0[4:8] + layer.lstm.bias_hh_l0[4:8], torch.ones(4))


def test_bad_options_are_clear():
    with pytest.raises(ValueError, match="n_heads"):
        Transformer(8, n_heads=3)
    with pytest.raises(ValueError, match="rate"):
        LSTM(4)(torch.randn(1, 3, 4), rate=2.0)
