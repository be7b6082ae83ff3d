"""The two-tower (dual encoder) model of LRA Retrieval: one shared backbone reads each document, the two pooled
vectors are compared. (Tay et al. 2021, "Long Range Arena", §3.3 "Retrieval": "a two-tower model ... the encoded
representations are combined ... [X1, X2, X1 * X2, X1 - X2]"; the S4 code's retrieval decoder does the same.)

    u_in (B, L, 2) tokens, column j = document j (0 = padding)
    x_j = Blocks(Embedding(u_in[..., j]))            (B, L, H)   the SequenceModel encoder + blocks, shared
    u, v = pool(x_0, len_0), pool(x_1, len_1)          (B, H)      each over its own document's length
    y = MLP([u, v, u * v, u - v])                      (B, d_output)   Linear(4H, H) -> GELU -> Linear(H, d_output)

Both documents go through the backbone as one batch of 2B rows, each row with its own length, so padding in either
document never reaches its pooled vector (models/block.py masks padded steps before every layer and keeps them out of
BatchNorm's statistics; models/heads.py pools over valid steps only). A document's length is one past its last
non-padding token.

Streaming: `initial_state(B)`, `step(u_t (B, 2), state)`, `step_chunk(u (B, Lc, 2), state)` read both documents in
step, token by token, and return the prediction as if both ended here. A document that has already ended (padding
from here on) keeps its pooled vector: its running sum, count and last feature only advance on its own tokens. A
causal backbone then streams to exactly its parallel output; a bidirectional one (the papers' Retrieval setting)
raises `BidirectionalStepError` from its layers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ssmkit.layers.base import State
from ssmkit.models.heads import pool
from ssmkit.models.sequence_model import SequenceModel

PAIR_POOLS = ("mean", "last")


class DualEncoder(nn.Module):
    """Shared SequenceModel encoder + blocks over each of two token documents, then MLP([u, v, u*v, u-v]).

    Takes SequenceModel's backbone arguments (layer, layer_options, d_model, n_layers, norm, prenorm, ff, ff_expand,
    dropout); `pool` is "mean" or "last" (per document). Inputs are tokens: vocab_size is required and `pad_token`
    (default 0) marks padding.
    """

    head_kind = "sequence"

    def __init__(
        self,
        d_output: int,
        *,
        vocab_size: int,
        pool: str = "mean",
        pad_token: int = 0,
        **backbone: Any,
    ) -> None:
        super().__init__()
        if not (isinstance(vocab_size, int) and vocab_size >= 2):
            raise ValueError(f"vocab_size must be an int >= 2 (the dual encoder reads tokens), got {vocab_size!r}")
        if pool not in PAIR_POOLS:
            raise ValueError(f"pool must be one of {PAIR_POOLS} for the dual encoder, got {pool!r}")
        for key in ("head", "horizon", "d_input"):
            if key in backbone:
                raise ValueError(f"DualEncoder has no {key!r} argument: it always classifies a pair of token documents")
        trunk = SequenceModel(1, vocab_size=vocab_size, pool=pool, **backbone)  # its head is not used
        self.encoder, self.blocks = trunk.encoder, trunk.blocks  # shared by both documents
        self.vocab_size, self.d_model, self.pool_mode, self.pad_token = vocab_size, trunk.d_model, pool, pad_token
        H = self.d_model
        self.decoder = nn.Sequential(nn.Linear(4 * H, H), nn.GELU(), nn.Linear(H, d_output))

    # ---- parallel ----------------------------------------------------------------------------------------------
    def forward(self, u: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        """u (B, L, 2) tokens -> logits (B, d_output). `lengths` (the pair's, from pad_collate) is not needed: each
        document's own length is read from its padding."""
        a, b = self.encode(u, rate)
        return self.decoder(combine(a, b))

    def encode(self, u: Tensor, rate: float = 1.0) -> tuple[Tensor, Tensor]:
        """u (B, L, 2) tokens -> the pooled vectors of document 0 and document 1, each (B, H)."""
        self._check_pair(u, "u")
        B, L, _ = u.shape
        docs = u.permute(2, 0, 1).reshape(2 * B, L)  # (2B, L): rows 0..B-1 document 0, B..2B-1 document 1
        lengths = document_lengths(docs, self.pad_token)  # (2B,)
        x = self.encoder(docs)  # (2B, L, H)
        for block in self.blocks:
            x = block(x, lengths=lengths, rate=rate)
        z = pool(x, self.pool_mode, lengths)  # (2B, H)
        return z[:B], z[B:]

    # ---- streaming ---------------------------------------------------------------------------------------------
    def initial_state(self, batch_size: int, device: Any = None, dtype: Any = None) -> State:
        """(block states for 2B rows, running sum (2B, H), valid steps seen (2B,), last valid feature (2B, H))."""
        p = self.decoder[0].weight
        device, dtype = device or p.device, dtype or p.dtype
        rows = 2 * batch_size
        blocks = tuple(b.initial_state(rows, device=device, dtype=dtype) for b in self.blocks)
        zeros = torch.zeros(rows, self.d_model, device=device, dtype=dtype)
        return blocks, zeros, torch.zeros(rows, device=device, dtype=dtype), zeros.clone()

    def step(self, u_t: Tensor, state: State, rate: float = 1.0) -> tuple[Tensor, State]:
        """u_t (B, 2) tokens -> logits (B, d_output) for the pair read so far, new state."""
        y, state = self.step_chunk(u_t[:, None], state, rate)
        return y[:, 0], state

    def step_chunk(self, u: Tensor, state: State, rate: float = 1.0) -> tuple[Tensor, State]:
        """u (B, Lc, 2) tokens -> logits (B, Lc, d_output), one per prefix, and the new state."""
        self._check_pair(u, "u")
        B, Lc, _ = u.shape
        block_states, total, count, last = state
        docs = u.permute(2, 0, 1).reshape(2 * B, Lc)  # (2B, Lc)
        x = self.encoder(docs)
        new_states = []
        for block, s in zip(self.blocks, block_states, strict=True):
            x, s = block.step_chunk(x, s, rate=rate)  # causal: outputs at real tokens never see later padding
            new_states.append(s)
        valid = (docs != self.pad_token).to(x.dtype)  # (2B, Lc)
        running = total[:, None] + (x * valid[..., None]).cumsum(dim=1)  # (2B, Lc, H)
        seen = count[:, None] + valid.cumsum(dim=1)  # (2B, Lc)
        steps = torch.arange(Lc, device=x.device).expand(2 * B, Lc)
        at = torch.where(valid > 0, steps, -1).cummax(dim=1).values  # (2B, Lc) last valid step of this chunk, or -1
        in_chunk = x.gather(1, at.clamp(min=0)[..., None].expand(-1, -1, x.shape[-1]))  # (2B, Lc, H)
        latest = torch.where((at >= 0)[..., None], in_chunk, last[:, None])  # (2B, Lc, H)
        if self.pool_mode == "mean":
            z = running / seen.clamp(min=1)[..., None]
        else:
            z = latest
        y = self.decoder(combine(z[:B], z[B:]))  # (B, Lc, d_output)
        return y, (tuple(new_states), running[:, -1], seen[:, -1], latest[:, -1])

    def _check_pair(self, u: Tensor, name: str) -> None:
        if u.is_floating_point():
            raise TypeError(f"{name} must hold integer tokens (two documents side by side), got {u.dtype}")
        if u.dim() != 3 or u.shape[-1] != 2:
            raise ValueError(
                f"{name} must have shape (B, L, 2): two token documents side by side, got {tuple(u.shape)}"
            )


def combine(a: Tensor, b: Tensor) -> Tensor:
    """[a, b, a * b, a - b] along the last axis: (..., H), (..., H) -> (..., 4H) (LRA's dual-encoder features)."""
    return torch.cat([a, b, a * b, a - b], dim=-1)


def document_lengths(docs: Tensor, pad_token: int = 0) -> Tensor:
    """(R, L) tokens -> (R,) long: one past the last non-padding token (at least 1, so an empty document pools its
    first, padding, step rather than dividing by zero)."""
    positions = torch.arange(1, docs.shape[1] + 1, device=docs.device)  # (L,)
    return ((docs != pad_token) * positions).amax(dim=1).clamp(min=1)
