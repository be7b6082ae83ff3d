"""An LSTM (Hochreiter & Schmidhuber, 1997) behind the ssmkit layer protocol, as a baseline for the deep backbone.

    i, f, g, o = σ(W_i [x_t, h_{t-1}]), σ(W_f ·), tanh(W_g ·), σ(W_o ·)
    c_t = f ⊙ c_{t-1} + i ⊙ g,    h_t = o ⊙ tanh(c_t),    y_t = h_t

torch's cuDNN/CPU `nn.LSTM` computes it; the forget-gate bias starts at 1 (Jozefowicz et al., 2015), the usual fair
setting for long sequences. State is (h, c), each (B, H), real. An LSTM has no step size Δ, so `rate` must be 1.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ssmkit.layers.base import SequenceLayer, check_sequence, check_token


class LSTM(SequenceLayer):
    """One LSTM layer, d_model -> d_model, batch-first; `step` / `step_chunk` carry (h, c)."""

    def __init__(self, d_model: int, forget_bias: float = 1.0) -> None:
        super().__init__()
        if not (isinstance(d_model, int) and d_model >= 1):
            raise ValueError(f"d_model must be a positive int, got {d_model!r}")
        self.d_model = d_model
        self.lstm = nn.LSTM(d_model, d_model, batch_first=True)
        with torch.no_grad():  # gate order in torch: input, forget, cell, output
            self.lstm.bias_ih_l0[d_model : 2 * d_model].fill_(forget_bias)
            self.lstm.bias_hh_l0[d_model : 2 * d_model].zero_()

    def forward(self, x: Tensor, rate: float = 1.0) -> Tensor:  # (B, L, H) -> (B, L, H)
        check_sequence(x, self.d_model)
        _check_no_rate(rate)
        y, _ = self.lstm(x)
        return y

    def initial_state(self, batch_size: int, device: Any = None, dtype: Any = None) -> tuple[Tensor, Tensor]:
        w = self.lstm.weight_hh_l0
        h = torch.zeros(batch_size, self.d_model, device=device or w.device, dtype=dtype or w.dtype)  # (B, H)
        return h, h.clone()

    def step(self, x_t: Tensor, state: tuple[Tensor, Tensor], rate: float = 1.0) -> tuple[Tensor, Any]:
        check_token(x_t, self.d_model)
        y, state = self.step_chunk(x_t[:, None], state, rate)  # (B, 1, H)
        return y[:, 0], state

    def step_chunk(self, x: Tensor, state: tuple[Tensor, Tensor], rate: float = 1.0) -> tuple[Tensor, Any]:
        check_sequence(x, self.d_model)
        _check_no_rate(rate)
        h, c = state  # (B, H) each
        y, (h, c) = self.lstm(x, (h[None], c[None]))  # torch wants (num_layers=1, B, H)
        return y, (h[0], c[0])


def _check_no_rate(rate: float) -> None:
    if rate != 1.0:
        raise ValueError(f"rate={rate!r}: an LSTM has no step size Δ to rescale; only rate=1.0 is accepted")
