"""The ablation ladder of Orvieto et al. 2023 ("Resurrecting Recurrent Neural Networks for Long Sequences", Figure 1 and
Table 1): from a vanilla RNN to the LRU, one change per rung. Rerunning the ablation is changing one word:

    make_recurrent("tanh_rnn" | "linear_dense" | "complex_diag" | "complex_diag_exp" | "lru", d_model, d_state, ...)

| rung               | recurrence                                       | layer                                  |
|--------------------|--------------------------------------------------|----------------------------------------|
| `tanh_rnn`         | x_k = tanh(A x_{k-1} + B u_k), A (N, N) real     | DenseRNN("tanh"): sequential only      |
| `linear_dense`     | x_k = A x_{k-1} + B u_k                          | DenseRNN(None): forward is a loop      |
| `complex_diag`     | x_k = diag(λ) x_{k-1} + B u_k, λ = λ_re + i λ_im | LRU("plain", gamma_norm=False)         |
| `complex_diag_exp` | λ = exp(-exp(ν_log) + i exp(θ_log))              | LRU("exp", gamma_norm=False)           |
| `lru`              | x_k = diag(λ) x_{k-1} + γ ⊙ (B u_k)              | LRU()                                  |

and y_k = C x_k + D ⊙ u_k (Re(C x_k) for the complex rungs). The dense rungs use the paper's Glorot init (Sections
3.1-3.2): A with Glorot-normal entries N(0, 1/N), whose eigenvalues fill the unit disk (the circular law the paper uses
to motivate the ring init of the diagonal rungs); B ~ N(0, 1)/sqrt(H), C ~ N(0, 1)/sqrt(N) (the LRU code's scaling for
real matrices); D ~ N(0, 1). `linear_dense` could be run in parallel by diagonalising A (that is exactly the next rung);
this class does not: its forward is the loop, as is the nonlinear rung's, which has no parallel form at all. Neither has
a continuous-time reading, so `rate` != 1 raises. Bidirectional: a second set of A, B, C (suffix `_reverse`) runs on the
reversed sequence and its output is added, as for the LRU.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ssmkit.layers.base import SequenceLayer, State, check_lr_hint, check_rate, check_sequence, check_token
from ssmkit.layers.lru import LRU
from ssmkit.optim import set_hint

VARIANTS = ("tanh_rnn", "linear_dense", "complex_diag", "complex_diag_exp", "lru")
NONLINEARITIES = ("tanh", None)


class DenseRNN(SequenceLayer):
    """x_k = f(A x_{k-1} + B u_k), y_k = C x_k + D ⊙ u_k with dense real A; f = tanh or identity. State (B, N) real.

    `lr`: an optimiser hint for A (that learning rate and no weight decay), as the diagonal rungs' λ parameters get;
    None (the default) trains A with the global learning rate and weight decay, like B and C.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        *,
        nonlinearity: str | None = "tanh",
        bidirectional: bool = False,
        dropout: float = 0.0,
        lr: float | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("d_model", d_model), ("d_state", d_state)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}")
        if not (0.0 <= dropout < 1.0):
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        check_lr_hint(lr, "A")
        self.d_model, self.d_state = d_model, d_state
        self.nonlinearity, self.bidirectional = nonlinearity, bidirectional
        self.directions = ("", "_reverse") if bidirectional else ("",)
        H, N = d_model, d_state
        for suffix in self.directions:
            A = nn.Parameter(torch.randn(N, N) / math.sqrt(N))  # (N, N) Glorot
            self.register_parameter("A" + suffix, A if lr is None else set_hint(A, lr=lr, weight_decay=0.0))
            self.register_parameter("B" + suffix, nn.Parameter(torch.randn(N, H) / math.sqrt(H)))  # (N, H)
            self.register_parameter("C" + suffix, nn.Parameter(torch.randn(H, N) / math.sqrt(N)))  # (H, N)
        self.D = nn.Parameter(torch.randn(H))  # (H,)
        self.dropout = nn.Dropout(dropout)

    def _step(self, x: Tensor, u_t: Tensor, suffix: str) -> Tensor:
        """One step of the recurrence: (B, N), (B, H) -> (B, N)."""
        pre = x @ getattr(self, "A" + suffix).T + u_t @ getattr(self, "B" + suffix).T
        return torch.tanh(pre) if self.nonlinearity == "tanh" else pre

    def _run(self, u: Tensor, x: Tensor, suffix: str) -> tuple[Tensor, Tensor]:
        """The loop over time (no parallel form here): u (B, L, H), x (B, N) -> y without D (B, L, H), last state."""
        states = []
        for u_t in u.unbind(1):  # (B, H) each
            x = self._step(x, u_t, suffix)
            states.append(x)
        return torch.stack(states, dim=1) @ getattr(self, "C" + suffix).T, x

    def forward(self, x: Tensor, rate: float = 1.0) -> Tensor:  # (B, L, H) -> (B, L, H)
        check_sequence(x, self.d_model)
        _only_unit_rate(rate)
        y = x * self.D
        for suffix in self.directions:
            u = x.flip(1) if suffix else x
            y_dir, _ = self._run(u, self.initial_state(x.shape[0], x.device, x.dtype), suffix)
            y = y + (y_dir.flip(1) if suffix else y_dir)
        return self.dropout(y)

    def initial_state(self, batch_size: int, device=None, dtype=None) -> State:
        """Zeros (B, N), real."""
        return torch.zeros(batch_size, self.d_state, dtype=dtype or self.D.dtype, device=device or self.D.device)

    def step(self, x_t: Tensor, state: State, rate: float = 1.0) -> tuple[Tensor, State]:  # (B, H) -> (B, H)
        self._no_step_if_bidirectional()
        check_token(x_t, self.d_model)
        _only_unit_rate(rate)
        self._check_state(state, x_t.shape[0])
        state = self._step(state, x_t, "")
        return self.dropout(state @ self.C.T + self.D * x_t), state

    def step_chunk(self, x: Tensor, state: State, rate: float = 1.0) -> tuple[Tensor, State]:  # (B, L, H)
        self._no_step_if_bidirectional()
        check_sequence(x, self.d_model)
        _only_unit_rate(rate)
        self._check_state(state, x.shape[0])
        y, state = self._run(x, state, "")
        return self.dropout(y + self.D * x), state

    def _check_state(self, state: State, batch: int) -> None:
        if not isinstance(state, Tensor) or state.is_complex() or state.shape != (batch, self.d_state):
            got = tuple(state.shape) if isinstance(state, Tensor) else type(state).__name__
            raise ValueError(f"state must be a real tensor of shape (B, N) = ({batch}, {self.d_state}), got {got}")

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, d_state={self.d_state}, nonlinearity={self.nonlinearity!r}, "
            f"bidirectional={self.bidirectional}"
        )


def _only_unit_rate(rate: float) -> None:
    check_rate(rate)
    if rate != 1.0:
        raise ValueError(
            f"rate={rate}: a dense discrete-time RNN has no continuous-time reading to resample; use rate=1 "
            "(the LRU's exponential parameterisation supports rate)"
        )


def make_recurrent(variant: str, d_model: int, d_state: int, **kwargs) -> SequenceLayer:
    """The rung `variant` of the ladder (see the module docstring).

    kwargs go to the layer's constructor, which checks them: DenseRNN takes bidirectional, dropout, lr; the diagonal
    rungs take LRU's r_min, r_max, max_phase, bidirectional, dropout, lr, scan_impl.
    """
    if variant == "tanh_rnn":
        return DenseRNN(d_model, d_state, nonlinearity="tanh", **kwargs)
    if variant == "linear_dense":
        return DenseRNN(d_model, d_state, nonlinearity=None, **kwargs)
    if variant == "complex_diag":
        return LRU(d_model, d_state, parameterization="plain", gamma_norm=False, **kwargs)
    if variant == "complex_diag_exp":
        return LRU(d_model, d_state, parameterization="exp", gamma_norm=False, **kwargs)
    if variant == "lru":
        return LRU(d_model, d_state, **kwargs)
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
