"""The protocol every ssmkit sequence layer follows (DESIGN.md, "The layer API").

Shapes are batch-first. With B batch, L length, H = d_model channels:

    y = layer(x, rate=1.0)                 # (B, L, H) -> (B, L, H); parallel (convolution or scan)
    state = layer.initial_state(B)         # zeros, the layer's dtype and device
    y_t, state = layer.step(x_t, state)    # (B, H) -> (B, H); one token, O(H N) work
    y, state = layer.step_chunk(x, state)  # (B, L, H); a chunk with carried state, == L calls of step

`rate` rescales the step size, Δ -> rate · Δ: a model trained at one sampling rate run at another (rate = 2 when
the input is sampled at half the training rate, so each step spans twice the time, as in the S4 paper's half-rate
Speech Commands test). State is an opaque tensor (or tuple of tensors); the layer itself is never mutated by stepping.
A bidirectional layer has no causal recurrence: its `step` / `step_chunk` raise `BidirectionalStepError`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

State = Any  # a Tensor or a (nested) tuple of Tensors


class BidirectionalStepError(RuntimeError):
    """Raised by `step` / `step_chunk` on a bidirectional layer: it has no causal recurrence."""


class NonFiniteError(ValueError):
    """A tensor holds NaN or inf: bad input data or, inside a model, activations that overflowed (a divergence)."""


class SequenceLayer(nn.Module):
    """Base class: holds `d_model`, `bidirectional` and the input checks shared by every layer."""

    d_model: int
    bidirectional: bool = False

    def forward(self, x: Tensor, rate: float = 1.0) -> Tensor:  # (B, L, H) -> (B, L, H)
        raise NotImplementedError

    def initial_state(self, batch_size: int, device: Any = None, dtype: Any = None) -> State:
        raise NotImplementedError

    def step(self, x_t: Tensor, state: State, rate: float = 1.0) -> tuple[Tensor, State]:
        raise NotImplementedError

    def step_chunk(self, x: Tensor, state: State, rate: float = 1.0) -> tuple[Tensor, State]:
        raise NotImplementedError

    # ---- checks shared by every layer -------------------------------------------------------------------------
    def _no_step_if_bidirectional(self) -> None:
        if self.bidirectional:
            raise BidirectionalStepError(
                f"{type(self).__name__} is bidirectional: it sees the future, so it has no step-by-step (recurrent) "
                "mode; build it with bidirectional=False to stream"
            )


def check_sequence(x: Tensor, d_model: int, name: str = "x") -> None:
    """Check a parallel-mode input: (B, L, H) floating, H == d_model, L >= 1, all finite."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, L, H), got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"{name} must have shape (B, L, H) = (batch, length, d_model={d_model}), got {tuple(x.shape)}")
    if x.shape[-1] != d_model:
        raise ValueError(f"{name} has {x.shape[-1]} channels in its last dimension; this layer has d_model={d_model}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} has length L={x.shape[1]}; need L >= 1")
    check_float_finite(x, name)


def check_token(x_t: Tensor, d_model: int, name: str = "x_t") -> None:
    """Check a step-mode input: (B, H) floating, H == d_model, all finite."""
    if not isinstance(x_t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, H), got {type(x_t).__name__}")
    if x_t.dim() != 2 or x_t.shape[-1] != d_model:
        raise ValueError(f"{name} must have shape (B, H) = (batch, d_model={d_model}), got {tuple(x_t.shape)}")
    check_float_finite(x_t, name)


def check_float_finite(x: Tensor, name: str) -> None:
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if not torch.isfinite(x).all():
        raise NonFiniteError(f"{name} contains NaN or inf values")


def check_lr_hint(lr: float | None, parameters: str) -> None:
    """A layer's optimiser hint `lr` for `parameters` (e.g. "ν, θ, γ"): None (the global lr) or a positive number."""
    if lr is not None and not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0):
        raise ValueError(f"lr (the learning rate hint for {parameters}) must be positive or None, got {lr!r}")


def check_rate(rate: float) -> None:
    if not (isinstance(rate, (int, float)) and rate > 0 and rate == rate and rate != float("inf")):
        raise ValueError(f"rate must be a finite positive number (the sampling-rate factor), got {rate!r}")
