"""Pooling over time and the decoders that turn backbone features (B, L, H) into a task's outputs.

    sequence: pool (mean over valid steps, or the last valid step) -> Linear(H, d_output)       -> (B, d_output)
    steps:    Linear(H, d_output) at every step (per-step classification or regression)       -> (B, L, d_output)
    forecast: pool -> Linear(H, horizon · d_output), the future after the window               -> (B, horizon, d_output)

`pool` honours `lengths`, so padded positions never change the result.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

POOLS = ("mean", "last", "none")
HEADS = ("sequence", "steps", "forecast")


def valid_mask(lengths: Tensor, L: int) -> Tensor:
    """(B,) lengths -> (B, L) bool, True on each row's valid prefix t < lengths[b]."""
    return torch.arange(L, device=lengths.device)[None, :] < lengths[:, None]


def pool(x: Tensor, mode: str, lengths: Tensor | None = None) -> Tensor:
    """(B, L, H) -> (B, H) for "mean" / "last" (over each row's first lengths[b] steps); "none" returns x."""
    if mode == "none":
        return x
    B, L, _ = x.shape
    if lengths is None:
        return x.mean(dim=1) if mode == "mean" else x[:, -1]
    lengths = lengths.to(x.device)
    if mode == "mean":
        mask = valid_mask(lengths, L).to(x.dtype)  # (B, L)
        return (x * mask[..., None]).sum(dim=1) / lengths[:, None].to(x.dtype)
    if mode == "last":
        return x[torch.arange(B, device=x.device), lengths - 1]  # (B, H)
    raise ValueError(f"pool must be one of {POOLS}, got {mode!r}")


class Head(nn.Module):
    """Decoder for one of HEADS; applied to pooled features (B, H) or per-step features (B, L, H)."""

    def __init__(self, kind: str, d_model: int, d_output: int, horizon: int = 1) -> None:
        super().__init__()
        if kind not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {kind!r}")
        if kind == "forecast" and not (isinstance(horizon, int) and horizon >= 1):
            raise ValueError(f"horizon must be a positive int for a forecast head, got {horizon!r}")
        self.kind, self.d_output, self.horizon = kind, d_output, horizon
        self.linear = nn.Linear(d_model, d_output * (horizon if kind == "forecast" else 1))

    def forward(self, z: Tensor) -> Tensor:
        y = self.linear(z)
        if self.kind == "forecast":
            return y.view(*y.shape[:-1], self.horizon, self.d_output)  # (..., horizon, d_output)
        return y
