"""S4D: the diagonal state-space layer (Gu, Gupta, Goel, Ré, "On the Parameterization and Initialization of Diagonal
State Space Models", NeurIPS 2022).

A real N-dimensional system whose A is diagonal in conjugate pairs; one mode of each pair is kept (S4D §3), n = N/2
modes (S4D-Real: N real modes, each its own conjugate; see `hippo.diag_init`):

    x'(t) = Λ x(t) + B u(t),   Λ = -exp(log_A_real) + i A_imag   (complex, (H, n); Re Λ < 0 by construction)
    Ā, B̄ = zoh: exp(Δ Λ), (exp(Δ Λ) - 1)/Λ · B;   bilinear: (1 + Δ Λ/2)/(1 - Δ Λ/2), Δ B/(1 - Δ Λ/2)   (S4D eq. (6))
    x_k = Ā x_{k-1} + B̄ u_k,   y_k = 2 Re(C x_k) + D u_k                   (the pair's conjugate gives the factor 2)
    K[l] = 2 Re Σ_n C_n B̄_n Ā_n^l                                           (S4D eq. (5), a Vandermonde product)

Inits (`hippo.diag_init`): legs (S4D-LegS, the diagonal of the LegS NPLR form), inv (S4D-Inv), lin (S4D-Lin), real
(S4D-Real), rand. Since |Ā| < 1 whenever Re Λ < 0 (both rules), every init is stable for every Δ > 0.

Recurrent work is O(H·N) per token. `step_chunk` is parallel: the chunk's own input goes through the convolution,
the carried state x0 adds 2 Re Σ_n C_n Ā_n^(l+1) x0_n (`ops.vandermonde`), and the new state is
Ā^L x0 + Σ_j Ā^(L-1-j) B̄ u_j (the transposed Vandermonde product, factored the same way): memory O(B·H·N·√L) beyond
the output, never O(H·N·L).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmkit.hippo import diag_init
from ssmkit.layers.ssm_common import (
    SSMLayer,
    as_complex,
    check_choice,
    check_int,
    check_n_ssm,
    complex_parameter,
    ssm_parameter,
    tile_ssm,
)
from ssmkit.ops import vandermonde
from ssmkit.ops.vandermonde import powers
from ssmkit.ssm import diag_discrete, diag_kernel

INITS = ("legs", "inv", "lin", "real", "rand")
DISCS = ("zoh", "bilinear")


class S4D(SSMLayer):
    """Diagonal SSM layer. x (B, L, H) -> (B, L, H).

    Args:
        d_model: H. d_state: N (even; N/2 complex modes are stored).
        init: legs, inv, lin, real, rand (S4D §4). disc: zoh (default, as the paper) or bilinear.
        channels: output channels per input channel (rows of C sharing one state), mixed back to H by a linear layer.
        bidirectional: second set of C rows read the state of the reversed sequence (anticausal kernel); no step mode.
        dropout: on the output. dt_min, dt_max: log-uniform Δ init range.
        lr: optimiser lr hint for the SSM parameters: one number (or None = the optimiser's lr) for Λ, B and log Δ, or
            a mapping {dt, A, B} (A = Λ), groups not named at the optimiser's lr, as the S4 code's kernel `lr`
            (`ssm_common.ssm_lrs`). The paper: 1e-3.
        weight_decay: for the same parameters (the paper: 0).
        n_ssm: the number of distinct (Λ, B) shared across the H channels, channel h using copy h mod n_ssm; H must be
            a multiple. None (default) = H. As the S4 code's `n_ssm` (its diagonal kernel too), Δ and C stay per
            channel.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        init: str = "legs",
        disc: str = "zoh",
        channels: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        lr: float | dict[str, float | None] | None = 1e-3,
        weight_decay: float | None = 0.0,
        n_ssm: int | None = None,
    ) -> None:
        check_int("d_model", d_model)
        super().__init__(d_model, channels, bidirectional, dropout, dt_min, dt_max, (d_model,), lr, weight_decay)
        self.init = check_choice("init", init, INITS)
        self.d_state = check_int("d_state", d_state, minimum=1, even=init != "real")
        self.disc = check_choice("disc", disc, DISCS)
        Lambda, B = diag_init(init, d_state)  # complex128 (n,), (n,): n = N/2 pairs, or N real modes for "real"
        self.n_ssm = check_n_ssm(n_ssm, d_model)
        H, S, n = d_model, self.n_ssm, Lambda.shape[-1]
        self.n_modes = n
        if bool((Lambda.real >= 0).any()):
            raise ValueError(f"init {init!r} gave an eigenvalue with Re >= 0; S4D needs Re Λ < 0")
        Lambda = Lambda.expand(S, n)
        dtype = torch.get_default_dtype()
        lr_A, lr_B = self.ssm_lr["A"], self.ssm_lr["B"]
        self.log_A_real = ssm_parameter(torch.log(-Lambda.real).to(dtype).clone(), lr_A, weight_decay)  # (S, n) real
        self.A_imag = ssm_parameter(Lambda.imag.to(dtype).clone(), lr_A, weight_decay)  # (S, n) real
        self.B = ssm_parameter(complex_parameter(B.expand(S, n)), lr_B, weight_decay)  # (S, n, 2) = complex (S, n)
        # C (S, channels, H, n, 2) = complex, unit variance (S4D code)
        C = torch.randn(self.n_directions, channels, H, n, dtype=torch.complex128)
        self.C = nn.Parameter(complex_parameter(C))

    def Lambda(self) -> Tensor:
        """Λ = -exp(log_A_real) + i A_imag, complex (H, n) (the n_ssm copies tiled over H)."""
        return tile_ssm(torch.complex(-torch.exp(self.log_A_real), self.A_imag), self.d_model)

    def B_complex(self) -> Tensor:
        """B, complex (H, n) (the n_ssm copies tiled over H)."""
        return tile_ssm(as_complex(self.B), self.d_model)

    # ---- convolutional view -------------------------------------------------------------------------------------
    def kernel(self, L: int, rate: float = 1.0) -> Tensor:  # -> (S, channels, H, L) real
        C = as_complex(self.C)  # (S, channels, H, n)
        S, M, H, n = C.shape
        K = diag_kernel(self.Lambda(), self.B_complex(), C.reshape(S * M, H, n), self.dt(rate), L, disc=self.disc)
        return K.view(S, M, H, L)

    # ---- recurrent view -----------------------------------------------------------------------------------------
    def discrete(self, rate: float = 1.0) -> tuple[Tensor, Tensor]:
        """Ā, B̄ complex (H, n), computed in float64 and rounded once, as `diag_kernel` does (cached without grad)."""

        def compute() -> tuple[Tensor, Tensor]:
            Lambda, B = self.Lambda(), self.B_complex()
            Ab, Bb = diag_discrete(
                Lambda.to(torch.complex128), B.to(torch.complex128), self.dt(rate).double(), self.disc
            )
            return Ab.to(Lambda.dtype), Bb.to(Lambda.dtype)

        return self._cached("discrete", rate, compute)

    def initial_state(self, batch_size: int, device: Any = None, dtype: Any = None) -> Tensor:
        """x = 0, complex (B, H, n) (complex64 for a float32 layer, complex128 for float64)."""
        check_int("batch_size", batch_size)
        device = self.C.device if device is None else device
        real = self._real_dtype(dtype)
        return torch.zeros(batch_size, self.d_model, self.n_modes, device=device, dtype=real.to_complex())

    def step(self, x_t: Tensor, state: Tensor, rate: float = 1.0) -> tuple[Tensor, Tensor]:  # (B, H) -> (B, H)
        self._check_step(x_t, rate)
        self._check_state(state, x_t.shape[0])
        Ab, Bb = self.discrete(rate)
        state = Ab * state + Bb * x_t.unsqueeze(-1)  # (B, H, n) complex
        y = 2 * torch.einsum("mhn,bhn->bmh", as_complex(self.C)[0], state).real  # (B, channels, H)
        return self._output(y, x_t), state

    def step_chunk(self, x: Tensor, state: Tensor, rate: float = 1.0) -> tuple[Tensor, Tensor]:  # (B, L, H)
        self._check_chunk(x, rate)
        self._check_state(state, x.shape[0])
        L = x.shape[1]
        y = self._convolve(x, self.kernel(L, rate))  # (B, L, channels, H): the chunk's own input
        Ab, Bb = self.discrete(rate)
        # carried state: y[l] += 2 Re Σ_n C_mn Ā_n^l (Ā x0)_n, a Vandermonde product (no (H, n, L) tensor)
        v = as_complex(self.C)[0] * (Ab * state).unsqueeze(1)  # (B, channels, H, n)
        y = y + 2 * vandermonde(v, Ab, L).real.permute(0, 3, 1, 2)  # (B, L, channels, H)
        return self._output(y, x), _state_after(state, x, Ab, Bb)

    def _check_state(self, state: Tensor, batch: int) -> None:
        shape = (batch, self.d_model, self.n_modes)
        if not isinstance(state, Tensor) or tuple(state.shape) != shape or not state.is_complex():
            got = f"{tuple(state.shape)} {state.dtype}" if isinstance(state, Tensor) else type(state).__name__
            raise ValueError(f"state must be a complex tensor of shape (B, H, n_modes) = {shape}; got {got}")


def _state_after(x0: Tensor, u: Tensor, Ab: Tensor, Bb: Tensor) -> Tensor:
    """Ā^L x0 + B̄ Σ_j Ā^(L-1-j) u_j:  x0 (B, H, n) complex, u (B, L, H) real, Ā, B̄ (H, n) -> (B, H, n).

    Σ_l ũ_l Ā^l with ũ_l = u_(L-1-l) is a polynomial in Ā (the transposed Vandermonde product). Factored like
    `ops.vandermonde`, l = j c + i with c ~ √L: Σ_j Ā^(jc) (Σ_i ũ_(jc+i) Ā^i), one batched matmul; memory
    O(B·H·n·√L). Powers are formed in float64 and rounded once.
    """
    L = u.shape[1]
    c = 1 << max(0, math.ceil(math.log2(L) / 2))  # block length, a power of two near √L
    J = -(-L // c)
    x = Ab.to(torch.complex128)
    x_i = powers(x, c)  # (H, c, n): Ā^i, i < c
    x_c = x_i[..., -1, :] * x  # (H, n): Ā^c
    x_jc = powers(x_c, J)  # (H, J, n): Ā^(jc), j < J
    r = L - (J - 1) * c  # 1..c: L = (J-1) c + r
    x_L = x_jc[..., -1, :] * (x_c if r == c else x_i[..., r, :])  # (H, n): Ā^L
    u_rev = F.pad(u.flip(1).transpose(1, 2), (0, J * c - L))  # (B, H, J·c): ũ, zero-padded
    dtype = Ab.dtype
    inner = u_rev.view(*u_rev.shape[:2], J, c).to(dtype) @ x_i.to(dtype)  # (B, H, J, n): Σ_i ũ_(jc+i) Ā^i
    poly = (inner * x_jc.to(dtype)).sum(-2)  # (B, H, n)
    return x_L.to(dtype) * x0 + Bb * poly
