"""Multi-head self-attention (Vaswani et al., 2017) behind the ssmkit layer protocol, as a baseline.

    q, k, v = x W_q, x W_k, x W_v  (per head, rotary positions on q, k: Su et al., 2021, RoFormer eq. 34)
    y = softmax(q kᵀ / √d_head + mask) v,  then W_o

torch's `scaled_dot_product_attention` computes the softmax. Causal attention streams with a KV cache: the state is
(k, v), each (B, heads, T, d_head) for the T tokens seen so far; a step attends to the cache plus itself, so memory
and work grow with T (that is the point of the comparison with SSMs). Non-causal attention sees the future: it is
`bidirectional` and has no step. Rotary positions need no maximum length. An attention layer has no Δ: `rate` = 1.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmkit.layers.base import SequenceLayer, check_sequence, check_token
from ssmkit.models.heads import valid_mask


class Transformer(SequenceLayer):
    """Self-attention, d_model -> d_model, `n_heads` heads, causal (streamable) or not (bidirectional)."""

    takes_lengths = True  # the block passes `lengths` so padded keys are masked out

    def __init__(self, d_model: int, n_heads: int = 4, causal: bool = True) -> None:
        super().__init__()
        if not (isinstance(n_heads, int) and n_heads >= 1 and d_model % n_heads == 0 and (d_model // n_heads) % 2 == 0):
            raise ValueError(
                f"n_heads must divide d_model={d_model} into an even head size (rotary positions rotate pairs), "
                f"got n_heads={n_heads!r}"
            )
        self.d_model, self.n_heads, self.causal = d_model, n_heads, bool(causal)
        self.bidirectional = not self.causal
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, rate: float = 1.0, lengths: Tensor | None = None) -> Tensor:  # (B, L, H)
        check_sequence(x, self.d_model)
        _check_no_rate(rate)
        B, L, _ = x.shape
        q, k, v = self._qkv(x, offset=0)  # (B, nh, L, dh) each
        mask = None
        if lengths is not None and not self.causal:  # padded keys never attended to
            mask = valid_mask(lengths.to(x.device), L)[:, None, None, :]  # (B, 1, 1, L)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal)  # (B, nh, L, dh)
        return self.out(y.transpose(1, 2).reshape(B, L, self.d_model))

    def initial_state(self, batch_size: int, device: Any = None, dtype: Any = None) -> tuple[Tensor, Tensor]:
        w = self.qkv.weight
        empty = torch.zeros(
            batch_size, self.n_heads, 0, self.d_model // self.n_heads, device=device or w.device, dtype=dtype or w.dtype
        )  # (B, nh, T=0, dh): an empty KV cache
        return empty, empty.clone()

    def step(self, x_t: Tensor, state: tuple[Tensor, Tensor], rate: float = 1.0) -> tuple[Tensor, Any]:
        check_token(x_t, self.d_model)
        y, state = self.step_chunk(x_t[:, None], state, rate)
        return y[:, 0], state

    def step_chunk(self, x: Tensor, state: tuple[Tensor, Tensor], rate: float = 1.0) -> tuple[Tensor, Any]:
        self._no_step_if_bidirectional()
        check_sequence(x, self.d_model)
        _check_no_rate(rate)
        B, Lc, _ = x.shape
        k_cache, v_cache = state  # (B, nh, T, dh)
        T = k_cache.shape[2]
        q, k, v = self._qkv(x, offset=T)  # (B, nh, Lc, dh)
        k, v = torch.cat([k_cache, k], dim=2), torch.cat([v_cache, v], dim=2)  # (B, nh, T + Lc, dh)
        # query i (absolute position T + i) sees keys 0 .. T + i
        mask = torch.arange(T + Lc, device=x.device)[None, :] <= (T + torch.arange(Lc, device=x.device))[:, None]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, nh, Lc, dh)
        return self.out(y.transpose(1, 2).reshape(B, Lc, self.d_model)), (k, v)

    def _qkv(self, x: Tensor, offset: int) -> tuple[Tensor, Tensor, Tensor]:
        B, L, _ = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)  # (B, nh, L, dh) each
        positions = torch.arange(offset, offset + L, device=x.device, dtype=x.dtype)
        return rotary(q, positions), rotary(k, positions), v


def rotary(x: Tensor, positions: Tensor) -> Tensor:
    """Rotate channel pairs (x_j, x_{j + d/2}) by angle position · 10000^{-2j/d} (RoFormer eq. 34). x (..., L, d)."""
    half = x.shape[-1] // 2
    freq = 10000.0 ** (-torch.arange(half, device=x.device, dtype=x.dtype) / half)  # (d/2,)
    angle = positions[:, None] * freq[None, :]  # (L, d/2)
    cos, sin = angle.cos(), angle.sin()
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def _check_no_rate(rate: float) -> None:
    if rate != 1.0:
        raise ValueError(f"rate={rate!r}: attention has no step size Δ to rescale; only rate=1.0 is accepted")
