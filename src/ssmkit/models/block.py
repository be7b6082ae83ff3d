"""The residual block of the deep SSM backbone, and the sequence layers it can hold, by name.

S4 (Gu et al., 2022, §4 / App. D.2) and the LRU paper (Orvieto et al., 2023, §2 and Fig. 1) stack the same block:

    postnorm (deep S4):  x <- Norm(x + Dropout(FF(GELU(Layer(x)))))
    prenorm  (deep LRU): x <- x + Dropout(FF(GELU(Layer(Norm(x)))))

with Norm = LayerNorm or BatchNorm over channels, FF = GLU (Linear H -> 2H, then a ⊙ σ(b)) or an MLP
(Linear H -> e·H, GELU, Linear e·H -> H), or nothing. Dropout is elementwise, or with `tie_dropout` one mask per
(sequence, channel) shared over time (the S4 code's DropoutNd / nn.Dropout1d, which its example script trains
with). Every piece but `Layer` acts per token, so the block streams whenever its layer does: `step` / `step_chunk`
wrap the layer's own (BatchNorm then uses its running statistics, i.e. streaming equals the parallel pass in eval
mode).

Padded batches: `lengths` (B,) marks the valid prefix of each row. Padded positions are zeroed before the layer
(a causal layer never looks ahead; a bidirectional convolution then sees zeros there, as if the row were shorter),
attention masks padded keys, and BatchNorm's batch statistics are taken over valid tokens only: padding never leaks.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmkit.layers import LRU, LSSL, S4, S4D, SequenceLayer, make_recurrent
from ssmkit.layers.base import State
from ssmkit.models.heads import valid_mask
from ssmkit.models.lstm import LSTM
from ssmkit.models.transformer import Transformer


def _ladder_rung(variant: str) -> Callable[..., SequenceLayer]:
    """A rung of the LRU paper's ablation ladder (layers/ladder.py) as a layer constructor (d_model, d_state, ...)."""

    def build(d_model: int, d_state: int = 64, **options: Any) -> SequenceLayer:
        return make_recurrent(variant, d_model, d_state, **options)

    build.__name__ = variant
    return build


# name -> layer constructor; each takes (d_model, **its own options)
LAYERS: dict[str, Callable[..., SequenceLayer]] = {
    "s4": S4,
    "s4d": S4D,
    "lssl": LSSL,
    "lru": LRU,
    "complex_diag_exp": _ladder_rung("complex_diag_exp"),
    "complex_diag": _ladder_rung("complex_diag"),
    "linear_dense": _ladder_rung("linear_dense"),
    "tanh_rnn": _ladder_rung("tanh_rnn"),
    "lstm": LSTM,
    "transformer": Transformer,
}
# layers whose paper uses the prenorm block (the LRU family: Orvieto et al. 2023, Fig. 1); the others default to
# postnorm (deep S4, Gu et al. 2022)
PRENORM_BY_DEFAULT: set[str] = {"lru", "complex_diag_exp", "complex_diag", "linear_dense", "tanh_rnn"}

NORMS = ("layer", "batch", "none")
FFS = ("glu", "mlp", "none")


def make_layer(name: str, d_model: int, **options: Any) -> SequenceLayer:
    """Build the layer `name` with its options; an unknown name or option is a ValueError listing the valid ones."""
    if name not in LAYERS:
        raise ValueError(f"unknown layer {name!r}; valid layers: {', '.join(sorted(LAYERS))}")
    build = LAYERS[name]
    params = inspect.signature(build).parameters
    valid = [p for p in params if p != "d_model" and params[p].kind is not inspect.Parameter.VAR_KEYWORD]
    has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = sorted(set(options) - set(valid))
    if unknown and not has_var_kw:
        raise ValueError(f"layer {name!r} has no option(s) {unknown}; valid options: {valid}")
    missing = [p for p in valid if params[p].default is inspect.Parameter.empty and p not in options]
    if missing:
        raise ValueError(f"layer {name!r} needs option(s) {missing} (in model.layer_options); valid options: {valid}")
    try:
        return build(d_model, **options)
    except TypeError as e:  # a constructor behind **options (the ladder rungs) refused an option
        raise ValueError(f"layer {name!r}: {e}; valid options: {valid} and the rung's own") from e


class TokenBatchNorm(nn.Module):
    """BatchNorm over channels with statistics over all (valid) tokens of the batch: x (..., H), mask (B, L) or None."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(d_model)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None:
            return self.bn(x.reshape(-1, x.shape[-1])).view_as(x)
        out = torch.zeros_like(x)
        out[mask] = self.bn(x[mask])  # (N_valid, H): padding never enters the batch statistics
        return out


class Block(nn.Module):
    """Norm -> sequence layer -> GELU -> GLU / MLP -> dropout -> residual, pre- or post-norm. (B, L, H) -> (B, L, H)."""

    def __init__(
        self,
        layer: SequenceLayer,
        norm: str = "layer",
        prenorm: bool = False,
        ff: str = "glu",
        ff_expand: int = 2,
        dropout: float = 0.0,
        tie_dropout: bool = False,
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if ff not in FFS:
            raise ValueError(f"ff must be one of {FFS}, got {ff!r}")
        if not (0.0 <= dropout < 1.0):
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        H = layer.d_model
        self.layer, self.norm_kind, self.prenorm = layer, norm, bool(prenorm)
        self.norm = {"layer": lambda: nn.LayerNorm(H), "batch": lambda: TokenBatchNorm(H), "none": nn.Identity}[norm]()
        if ff == "glu":
            self.ff = nn.Sequential(nn.Linear(H, 2 * H), nn.GLU(dim=-1))
        elif ff == "mlp":
            self.ff = nn.Sequential(nn.Linear(H, ff_expand * H), nn.GELU(), nn.Linear(ff_expand * H, H))
        else:
            self.ff = nn.Identity()
        if not isinstance(tie_dropout, bool):
            raise TypeError(f"tie_dropout must be a bool, got {tie_dropout!r}")
        self.dropout = TiedDropout(dropout) if tie_dropout else nn.Dropout(dropout)

    @property
    def bidirectional(self) -> bool:
        return self.layer.bidirectional

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:  # (B, L, H)
        mask = None if lengths is None else valid_mask(lengths, x.shape[1]).to(x.device)  # (B, L) bool
        z = self._norm(x, mask) if self.prenorm else x
        if mask is not None:
            z = z * mask[..., None]
        if lengths is not None and getattr(self.layer, "takes_lengths", False):
            z = self.layer(z, rate=rate, lengths=lengths)
        else:
            z = self.layer(z, rate=rate)
        return self._residual(x, z, mask)

    def initial_state(self, batch_size: int, device: Any = None, dtype: Any = None) -> State:
        return self.layer.initial_state(batch_size, device=device, dtype=dtype)

    def step(self, x_t: Tensor, state: State, rate: float = 1.0) -> tuple[Tensor, State]:  # (B, H)
        z = self._norm(x_t) if self.prenorm else x_t
        z, state = self.layer.step(z, state, rate=rate)
        return self._residual(x_t, z), state

    def step_chunk(self, x: Tensor, state: State, rate: float = 1.0) -> tuple[Tensor, State]:  # (B, L, H)
        z = self._norm(x) if self.prenorm else x
        z, state = self.layer.step_chunk(z, state, rate=rate)
        return self._residual(x, z), state

    def _residual(self, x: Tensor, z: Tensor, mask: Tensor | None = None) -> Tensor:
        x = x + self.dropout(self.ff(F.gelu(z)))
        return x if self.prenorm else self._norm(x, mask)

    def _norm(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.norm(x, mask) if self.norm_kind == "batch" else self.norm(x)


class TiedDropout(nn.Module):
    """Dropout with one mask per (sequence, channel), shared over time: x (B, L, H) -> x · m / (1 - p) with
    m ~ Bernoulli(1 - p) of shape (B, 1, H) (S4 code, DropoutNd with tie=True; torch's nn.Dropout1d in (B, H, L)).
    A token (B, H) gets an elementwise mask; identity in eval mode."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.dim() < 3:
            return F.dropout(x, self.p, training=True)
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)  # (B, 1, H)
        mask = torch.empty(shape, device=x.device, dtype=x.dtype).bernoulli_(1.0 - self.p) / (1.0 - self.p)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
