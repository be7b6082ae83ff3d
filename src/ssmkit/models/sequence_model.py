"""The deep sequence model of the S4 and LRU papers: encoder -> residual blocks -> pooling -> decoder.

    u (B, L) tokens or (B, L, d_input) reals
    x = Embedding(u) or Linear(u)                    (B, L, H)     encoder
    x = Block_n(... Block_1(x))                      (B, L, H)     n_layers residual blocks (models/block.py)
    y = Head(pool(x))                                              decoder (models/heads.py)

Streaming: `initial_state(B)`, then `step(u_t, state)` per token or `step_chunk(u, state)` per chunk. Either returns the
head's output for every prefix seen so far — the prediction as if the sequence ended there (mean pooling keeps a
running sum in the state) — so the last one equals `forward` on the whole sequence, and for a `steps` head every one of
them equals the parallel output at that step (in eval mode).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ssmkit.layers.base import State
from ssmkit.models.block import PRENORM_BY_DEFAULT, Block, make_layer
from ssmkit.models.heads import HEADS, POOLS, Head, pool


class SequenceModel(nn.Module):
    """Encoder -> n_layers blocks (each holding the sequence layer `layer` with `layer_options`) -> pool -> head.

    prenorm=None picks the layer's paper default: prenorm for the LRU family, postnorm otherwise (deep S4).
    tie_dropout=True shares each block's dropout mask over time (one per sequence and channel), as the S4 code does.
    """

    def __init__(
        self,
        d_output: int,
        *,
        d_input: int = 1,
        vocab_size: int | None = None,
        d_model: int = 64,
        n_layers: int = 4,
        layer: str = "s4d",
        layer_options: dict[str, Any] | None = None,
        norm: str = "layer",
        prenorm: bool | None = None,
        ff: str = "glu",
        ff_expand: int = 2,
        dropout: float = 0.0,
        tie_dropout: bool = False,
        head: str = "sequence",
        pool: str = "mean",
        horizon: int = 1,
    ) -> None:
        super().__init__()
        for arg, val in (("d_output", d_output), ("d_input", d_input), ("d_model", d_model), ("n_layers", n_layers)):
            if not (isinstance(val, int) and val >= 1):
                raise ValueError(f"{arg} must be a positive int, got {val!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        if head == "steps" and pool != "none" or head == "sequence" and pool == "none":
            raise ValueError(f"head={head!r} needs pool={'none' if head == 'steps' else 'mean or last'}, got {pool!r}")
        self.vocab_size, self.d_input, self.d_model = vocab_size, d_input, d_model
        self.head_kind, self.pool_mode = head, pool
        if vocab_size is not None:
            self.encoder: nn.Module = nn.Embedding(vocab_size, d_model)
        else:
            self.encoder = nn.Linear(d_input, d_model)
        prenorm = (layer in PRENORM_BY_DEFAULT) if prenorm is None else prenorm
        self.blocks = nn.ModuleList(
            Block(
                make_layer(layer, d_model, **(layer_options or {})), norm, prenorm, ff, ff_expand, dropout, tie_dropout
            )
            for _ in range(n_layers)
        )
        # forecast with pool="none": the S4 code's masked future, the last `horizon` per-step outputs are the forecast
        self.horizon = horizon
        self.head = Head("steps" if pool == "none" else head, d_model, d_output, horizon)

    # ---- parallel ----------------------------------------------------------------------------------------------
    def features(self, u: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:  # -> (B, L, H)
        x = self._encode(u)
        for block in self.blocks:
            x = block(x, lengths=lengths, rate=rate)
        return x

    def forward(self, u: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        y = self.head(pool(self.features(u, lengths, rate), self.pool_mode, lengths))
        return y[:, -self.horizon :] if self.head_kind == "forecast" and self.pool_mode == "none" else y

    # ---- streaming ---------------------------------------------------------------------------------------------
    def initial_state(self, batch_size: int, device: Any = None, dtype: Any = None) -> State:
        """(block states, running feature sum (B, H), steps seen ()) — tensors and tuples only."""
        p = self.head.linear.weight
        device, dtype = device or p.device, dtype or p.dtype
        blocks = tuple(b.initial_state(batch_size, device=device, dtype=dtype) for b in self.blocks)
        total = torch.zeros(batch_size, self.d_model, device=device, dtype=dtype)  # (B, H)
        return blocks, total, torch.zeros((), device=device, dtype=dtype)

    def step(self, u_t: Tensor, state: State, rate: float = 1.0) -> tuple[Tensor, State]:
        """One token: u_t (B,) tokens or (B, d_input) -> the head's output for the prefix ending here. O(1) in L."""
        block_states, total, count = state
        x = self._encode(u_t[:, None])[:, 0]  # (B, H)
        new_states = []
        for block, s in zip(self.blocks, block_states, strict=True):
            x, s = block.step(x, s, rate=rate)  # each layer's own recurrence
            new_states.append(s)
        total, count = total + x, count + 1
        z = total / count if self.pool_mode == "mean" else x
        return self.head(z), (tuple(new_states), total, count)

    def step_chunk(self, u: Tensor, state: State, rate: float = 1.0) -> tuple[Tensor, State]:
        """A chunk (B, Lc[, d_input]) -> the head's output for each of its Lc prefixes (B, Lc, ...), new state."""
        block_states, total, count = state
        x = self._encode(u)  # (B, Lc, H)
        new_states = []
        for block, s in zip(self.blocks, block_states, strict=True):
            x, s = block.step_chunk(x, s, rate=rate)
            new_states.append(s)
        Lc = x.shape[1]
        seen = count + torch.arange(1, Lc + 1, dtype=x.dtype, device=x.device)  # (Lc,) steps seen at each prefix
        running = total[:, None] + x.cumsum(dim=1)  # (B, Lc, H)
        z = running / seen[None, :, None] if self.pool_mode == "mean" else x
        return self.head(z), (tuple(new_states), running[:, -1], count + Lc)

    def _encode(self, u: Tensor) -> Tensor:
        if self.vocab_size is not None:
            if u.is_floating_point():
                raise TypeError(f"this model reads tokens (vocab_size={self.vocab_size}): u must be an integer tensor")
            return self.encoder(u)
        if not u.is_floating_point():
            raise TypeError("this model reads real-valued inputs (B, L, d_input): u must be a floating-point tensor")
        if u.dim() != 3 or u.shape[-1] != self.d_input:
            raise ValueError(f"u must have shape (B, L, d_input={self.d_input}), got {tuple(u.shape)}")
        return self.encoder(u)
