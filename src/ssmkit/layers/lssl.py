"""LSSL: the Linear State-Space Layer with a dense HiPPO A (Gu et al., "Combining Recurrent, Convolutional, and
Continuous-time Models with Linear State-Space Layers", NeurIPS 2021).

Per input channel h and copy c (LSSL §4: H features, M copies with different timescales Δ):

    x'(t) = A x(t) + B u(t),   y(t) = C x(t) + D u(t)                       (LSSL eq. (1))
    Ā, B̄ = discretize(A, B, Δ_ch)   (GBT family / ZOH, LSSL eq. (3))
    x_k = Ā x_{k-1} + B̄ u_k,   y_k = C x_k + D u_k                          (LSSL eq. (4), recurrent view)
    y = K * u + D u,   K = (C B̄, C Ā B̄, ..., C Ā^{L-1} B̄)                 (LSSL eq. (5), convolutional view)

A (N, N) and B (N,) come from `hippo.transition(init, N)` and are shared by all H·channels copies, as in the paper;
`learn_A=True` trains them (LSSL), `learn_A=False` keeps them fixed as buffers (LSSL-f, the paper's fixed-A ablation).
Each copy (channel c, feature h) has its own Δ (log Δ (channels, H), log-uniform in [dt_min, dt_max]) and its own C;
the channels·H outputs are mixed back to H by a linear layer when channels > 1 (LSSL §4, the "M copies" mixed by a
position-wise linear map).

Work: the kernel by `ssm.dense_kernel` (powers of Ā by doubling); one step is a dense matrix-vector product,
O(channels·H·N²) per token. `step_chunk` is parallel over the chunk (no loop over its L tokens): with x_0 the carried
state,

    y_l = (K * u)_l + C Ā^(l+1) x_0 + D u_l,      x_L = Ā^L x_0 + Σ_j Ā^(L-1-j) B̄ u_j,

the first term the layer's convolution, the second a Krylov product C Ā^l (Ā x_0) (`ops.krylov`) and the state its
transpose (`ops.krylov_state`), both factored so that no (B, H, N, L) tensor is formed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ssmkit.hippo import transition
from ssmkit.layers.ssm_common import SSMLayer, check_choice, check_int, ssm_parameter
from ssmkit.ops.krylov import krylov, krylov_state
from ssmkit.ssm import dense_discrete, dense_kernel

MEASURES = ("legs", "legt", "lagt", "glagt", "fout", "foud", "lmu", "random", "diagonal")
DISCS = ("bilinear", "zoh", "backward_euler", "euler")


class LSSL(SSMLayer):
    """Dense-A state-space layer. x (B, L, H) -> (B, L, H).

    Args:
        d_model: H, input and output channels.
        d_state: N, state size per copy.
        init: the HiPPO measure of A, B (`hippo.transition`): legs, legt, lagt, glagt, fout, foud, lmu, random,
            diagonal.
        learn_A: train A and B (LSSL) or keep them fixed (LSSL-f).
        disc: bilinear (the paper's default), zoh, backward_euler, euler. Forward Euler is only stable for
            Δ <= -2 Re λ / |λ|² over the eigenvalues λ of A: a dt_max above that bound is a ValueError.
        channels: M copies per feature, each with its own Δ and C, mixed back to H by a linear layer if M > 1.
        bidirectional: add an anticausal kernel (its own C) over the future of the sequence; no step mode then.
        dropout: on the output.
        dt_min, dt_max: range of the log-uniform Δ init.
        lr, weight_decay: optimiser hints for A, B and log Δ (None = the optimiser's default); lr may also be a
            mapping {dt, A, B}, groups not named at the optimiser's lr (`ssm_common.ssm_lrs`).
        measure_kwargs: extra keyword arguments for `hippo.transition` (e.g. {"convention": "paper"}).
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        init: str = "legs",
        learn_A: bool = True,
        disc: str = "bilinear",
        channels: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        lr: float | dict[str, float | None] | None = 1e-3,
        weight_decay: float | None = 0.0,
        measure_kwargs: dict[str, Any] | None = None,
    ) -> None:
        check_int("channels", channels)
        check_int("d_model", d_model)
        super().__init__(
            d_model, channels, bidirectional, dropout, dt_min, dt_max, (channels, d_model), lr, weight_decay
        )
        self.d_state = N = check_int("d_state", d_state)
        self.init = check_choice("init", init, MEASURES)
        self.disc = check_choice("disc", disc, DISCS)
        self.learn_A = bool(learn_A)
        A, B = transition(init, N, **(measure_kwargs or {}))  # (N, N), (N,) float64
        if disc == "euler":
            _check_euler_stable(A, self.dt_max)
        dtype = torch.get_default_dtype()
        if self.learn_A:
            self.A = ssm_parameter(A.to(dtype), self.ssm_lr["A"], weight_decay)  # (N, N) real
            self.B = ssm_parameter(B.to(dtype), self.ssm_lr["B"], weight_decay)  # (N,) real
        else:
            self.register_buffer("A", A.to(dtype))
            self.register_buffer("B", B.to(dtype))
        # C (S, channels, H, N) real: one row per direction, copy and feature
        self.C = nn.Parameter(torch.randn(self.n_directions, channels, d_model, N) / N**0.5)

    # ---- convolutional view -------------------------------------------------------------------------------------
    def kernel(self, L: int, rate: float = 1.0) -> Tensor:  # -> (S, channels, H, L) real
        S, M, H, N = self.C.shape
        dt = self.dt(rate).reshape(M * H).repeat(S)  # (S·M·H,)
        A = self.A.expand(S * M * H, N, N)
        B = self.B.expand(S * M * H, N)
        K = dense_kernel(A, B, self.C.reshape(S * M * H, N), dt, L, disc=self.disc)  # (S·M·H, L)
        return K.view(S, M, H, L)

    # ---- recurrent view -----------------------------------------------------------------------------------------
    def discrete(self, rate: float = 1.0) -> tuple[Tensor, Tensor]:
        """Ā (M·H, N, N), B̄ (M·H, N) real, one per copy (cached in no-grad mode)."""

        def compute() -> tuple[Tensor, Tensor]:
            M, H, N = self.channels, self.d_model, self.d_state
            dt = self.dt(rate).reshape(M * H)  # (M·H,)
            return dense_discrete(self.A.expand(M * H, N, N), self.B.expand(M * H, N), dt, self.disc)

        return self._cached("discrete", rate, compute)

    def initial_state(self, batch_size: int, device: Any = None, dtype: Any = None) -> Tensor:
        """x = 0, (B, channels·H, N) real."""
        check_int("batch_size", batch_size)
        device = self.C.device if device is None else device
        return torch.zeros(
            batch_size, self.channels * self.d_model, self.d_state, device=device, dtype=self._real_dtype(dtype)
        )

    def step(self, x_t: Tensor, state: Tensor, rate: float = 1.0) -> tuple[Tensor, Tensor]:  # (B, H) -> (B, H)
        self._check_step(x_t, rate)
        self._check_state(state, x_t.shape[0])
        Ab, Bb = self.discrete(rate)
        y, state = self._advance(x_t, state, Ab, Bb)
        return self._output(y, x_t), state

    def step_chunk(self, x: Tensor, state: Tensor, rate: float = 1.0) -> tuple[Tensor, Tensor]:  # (B, L, H)
        self._check_chunk(x, rate)
        self._check_state(state, x.shape[0])
        Bsz, L, H = x.shape
        M, N = self.channels, self.d_state
        Ab, Bb = self.discrete(rate)  # (M·H, N, N), (M·H, N)
        y = self._convolve(x, self._cached("kernel", (rate, L), lambda: self.kernel(L, rate)))  # (B, L, M, H)
        # carried state: y_l += C Ā^l (Ā x_0), a Krylov product over the chunk
        x1 = torch.einsum("knm,bkm->bkn", Ab, state)  # (B, M·H, N): Ā x_0
        y0 = krylov(L, Ab, x1, self.C[0].reshape(M * H, N))  # (B, M·H, L)
        y = y + y0.view(Bsz, M, H, L).permute(0, 3, 1, 2)  # (B, L, M, H)
        u = x.transpose(1, 2).unsqueeze(1).expand(Bsz, M, H, L).reshape(Bsz, M * H, L)  # every copy reads its feature
        return self._output(y, x), krylov_state(Ab, Bb, u, state)  # state (B, M·H, N)

    def _advance(self, u: Tensor, x: Tensor, Ab: Tensor, Bb: Tensor) -> tuple[Tensor, Tensor]:
        """x <- Ā x + B̄ u; y = C x. u (B, H), x (B, M·H, N) -> y (B, M, H), x."""
        Bsz, H = u.shape
        M, N = self.channels, self.d_state
        u = u.unsqueeze(1).expand(Bsz, M, H).reshape(Bsz, M * H)  # (B, M·H): every copy reads its feature
        x = torch.einsum("knm,bkm->bkn", Ab, x) + Bb * u.unsqueeze(-1)  # (B, M·H, N)
        y = (x.view(Bsz, M, H, N) * self.C[0]).sum(-1)  # (B, M, H)
        return y, x

    def _check_state(self, state: Tensor, batch: int) -> None:
        shape = (batch, self.channels * self.d_model, self.d_state)
        if not isinstance(state, Tensor) or tuple(state.shape) != shape:
            got = tuple(state.shape) if isinstance(state, Tensor) else type(state).__name__
            raise ValueError(f"state must be a tensor of shape (B, channels·H, N) = {shape}; got {got}")


def _check_euler_stable(A: Tensor, dt_max: float) -> None:
    """Forward Euler: |1 + Δ λ| <= 1 for every eigenvalue λ of A iff Δ <= min -2 Re λ / |λ|²."""
    lam = torch.linalg.eigvals(A)  # complex128 (N,)
    if bool((lam.real >= 0).any()):
        raise ValueError("disc='euler' needs every eigenvalue of A in the open left half-plane; use bilinear or zoh")
    bound = float((-2 * lam.real / lam.abs() ** 2).min())
    if dt_max > bound * (1 + 1e-9):
        raise ValueError(
            f"disc='euler' is unstable for dt_max={dt_max:g} with this A: forward Euler needs Δ <= {bound:.4g} "
            "(-2 Re λ / |λ|² over A's eigenvalues); lower dt_max or use disc='bilinear' / 'zoh'"
        )
