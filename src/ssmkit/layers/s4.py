"""S4: the structured state-space layer with a diagonal-plus-low-rank A (Gu, Goel, Ré, "Efficiently Modeling Long
Sequences with Structured State Spaces", ICLR 2022).

A real N-dimensional system written in the (unitary) eigenbasis of the normal part of a HiPPO matrix, one mode of
each conjugate pair kept (S4 §3.3, Thm. 1; `hippo.dplr`):

    A = diag(Λ, conj Λ) - [P, conj P][P, conj P]^*      Λ complex (H, N/2), P complex (R, H, N/2)
    x' = A x + [B; conj B] u,   y = [C, conj C] x + D u = 2 Re(C x_half) + D u
    Ā = (I - Δ/2 A)^{-1} (I + Δ/2 A),  B̄ = Δ (I - Δ/2 A)^{-1} B            (bilinear, S4 eq. (3))
    K[l] = 2 Re(C Ā^l B̄)   by the generating function at the roots of unity, a Cauchy kernel and the Woodbury
                           identity, then an inverse FFT (S4 Alg. 1, `ssm.dplr_kernel`)

Re Λ = -exp(log_A_real) < 0 keeps A stable whatever P is learned (A + A^* = 2 Re Λ - 2 P P^* is negative definite),
so |eig Ā| < 1. The init clamps Re Λ <= -1e-4 (LegT / FouT / LagT have Re Λ = 0), as the S4 code does.

Recurrent mode uses the DPLR structure directly (S4 §3.4 / App. C.2: Ā = A1 A0, with A0 = 2/Δ + A and
A1 = (2/Δ - A)^{-1} applied by Woodbury), O(H·N·R) per token, never a diagonalisation: the eigenvectors of the LegS
matrix are exponentially ill-conditioned, which is why a diagonalised step (as in the S4 reference code's "diagonal"
mode) is off by 0.6 relative at N = 64, while this one agrees with the convolution (tests/layers/test_s4.py).
`step_chunk` is parallel over the chunk (no loop over its L tokens), with x_0 the carried state:

    y_l = (K * u)_l + 2 Re(C Ā^(l+1) x_0) + D u_l,      x_L = Ā^L x_0 + Σ_j Ā^(L-1-j) B̄ u_j,

the first term the layer's own DPLR kernel, the other two a Krylov product and its transpose (`ops.krylov`,
`ops.krylov_state`) on the dense real form of Ā (`ssm.dplr_discrete`, built by Woodbury steps, O(H N²) to form,
powers by squaring — stable, since A + A^* = 2 Re Λ - 2 P P^* <= 0 makes Ā a contraction), in the kernel's dtype.
Memory O(B·H·N·√L) beyond the output, never (B, H, N, L).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ssmkit.hippo import dplr
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
from ssmkit.ops.krylov import krylov, krylov_state
from ssmkit.ssm import dplr_dense, dplr_discrete, dplr_kernel, dplr_step

INITS = ("legs", "legt", "lagt", "fout")
_MIN_RANK = {"legs": 1, "legt": 2, "lagt": 1, "fout": 1}
_MAX_RE_LAMBDA = -1e-4  # Re Λ is clamped below this at init so that log(-Re Λ) exists (S4 code)


class S4(SSMLayer):
    """DPLR state-space layer. x (B, L, H) -> (B, L, H).

    Args:
        d_model: H. d_state: N (even; N/2 complex modes are stored).
        init: the HiPPO measure of the DPLR init (`hippo.dplr`): legs (default), legt, lagt, fout.
        rank: R of the low-rank term (legt needs 2; default: the measure's minimum).
        channels: output channels per input channel (rows of C sharing one state), mixed back to H by a linear layer.
        bidirectional: second set of C rows for an anticausal kernel; no step mode then.
        dropout: on the output. dt_min, dt_max: log-uniform Δ init range.
        lr: optimiser lr hint for the SSM parameters: one number (or None = the optimiser's lr) for Λ, P, B and log Δ,
            or a mapping {dt, A, B} (A = Λ and P), groups not named at the optimiser's lr, as the S4 code's kernel
            `lr` (`ssm_common.ssm_lrs`). The paper: 1e-3; its LRA configs: {dt: None, A: 1e-3, B: 1e-3}.
        weight_decay: for the same parameters (the paper: 0).
        n_ssm: the number of distinct (Λ, P, B) shared across the H channels, channel h using copy h mod n_ssm; H must
            be a multiple. None (default) = H, one SSM per channel. As the S4 code's `n_ssm`, Δ and C stay per
            channel (its inv_dt has H rows), so channels sharing an SSM still differ in Δ and C. The S4 repo's
            sCIFAR, LRA Image and Speech Commands configs use n_ssm = 2.
        disc: only "bilinear" (the DPLR kernel's discretisation, S4 eq. (3)); accepted for a uniform API.
        kernel_dtype: real dtype the convolution kernel is computed in, then rounded to the layer's dtype. float64 by
            default: in float32 the generating-function route loses up to ~5e-5 relative (fout, lagt, whose poles
            sit near the unit circle; measured in tests/layers/test_s4.py), in float64 ~1e-14. None = the layer's
            own dtype (faster where float64 is slow, e.g. consumer GPUs).
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        init: str = "legs",
        rank: int | None = None,
        disc: str = "bilinear",
        channels: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        lr: float | dict[str, float | None] | None = 1e-3,
        weight_decay: float | None = 0.0,
        kernel_dtype: torch.dtype | None = torch.float64,
        n_ssm: int | None = None,
    ) -> None:
        check_int("d_model", d_model)
        super().__init__(d_model, channels, bidirectional, dropout, dt_min, dt_max, (d_model,), lr, weight_decay)
        self.d_state = check_int("d_state", d_state, minimum=2, even=True)
        self.init = check_choice("init", init, INITS)
        self.disc = check_choice("disc", disc, ("bilinear",))
        if kernel_dtype not in (None, torch.float32, torch.float64):
            raise ValueError(f"kernel_dtype must be None, torch.float32 or torch.float64; got {kernel_dtype!r}")
        self.kernel_dtype = kernel_dtype
        self.rank = _MIN_RANK[init] if rank is None else check_int("rank", rank)
        if self.rank < _MIN_RANK[init]:
            raise ValueError(f"rank must be >= {_MIN_RANK[init]} for init {init!r}; got {rank!r}")
        self.n_ssm = check_n_ssm(n_ssm, d_model)
        H, S, N2 = d_model, self.n_ssm, d_state // 2
        Lambda, P, B = dplr(init, d_state, self.rank)  # complex128 (N/2,), (R, N/2), (N/2,)
        dtype = torch.get_default_dtype()
        re = Lambda.real.clamp(max=_MAX_RE_LAMBDA)
        lr_A, lr_B = self.ssm_lr["A"], self.ssm_lr["B"]
        self.log_A_real = ssm_parameter(torch.log(-re).expand(S, N2).to(dtype).clone(), lr_A, weight_decay)  # (S, N/2)
        self.A_imag = ssm_parameter(Lambda.imag.expand(S, N2).to(dtype).clone(), lr_A, weight_decay)  # (S, N/2)
        self.P = ssm_parameter(complex_parameter(P.unsqueeze(1).expand(self.rank, S, N2)), lr_A, weight_decay)
        self.B = ssm_parameter(complex_parameter(B.expand(S, N2)), lr_B, weight_decay)  # (S, N/2, 2)
        C = torch.randn(self.n_directions, channels, H, N2, dtype=torch.complex128)  # unit variance, as S4
        self.C = nn.Parameter(complex_parameter(C))  # (S, channels, H, N/2, 2)

    def Lambda(self) -> Tensor:
        """Λ = -exp(log_A_real) + i A_imag, complex (H, N/2) (the n_ssm copies tiled over H)."""
        return tile_ssm(torch.complex(-torch.exp(self.log_A_real), self.A_imag), self.d_model)

    def _dplr(self) -> tuple[Tensor, Tensor, Tensor]:
        """Λ (H, N/2), P (R, H, N/2), B (H, N/2), complex: each channel's own system, n_ssm copies tiled over H."""
        H = self.d_model
        return self.Lambda(), tile_ssm(as_complex(self.P), H, dim=1), tile_ssm(as_complex(self.B), H)

    # ---- convolutional view -------------------------------------------------------------------------------------
    def kernel(self, L: int, rate: float = 1.0) -> Tensor:  # -> (S, channels, H, L) real, the layer's dtype
        real = self.kernel_dtype or self.log_dt.dtype
        cplx = real.to_complex()
        Lambda, P, B = (t.to(cplx) for t in self._dplr())
        C = as_complex(self.C).to(cplx)  # (S, channels, H, N/2)
        S, M, H, N2 = C.shape
        K = dplr_kernel(Lambda, P, B, C.reshape(S * M, H, N2), self.dt(rate).to(real), L)  # (S·M, H, L)
        return K.view(S, M, H, L).to(self.log_dt.dtype)

    # ---- recurrent view -----------------------------------------------------------------------------------------
    def discrete(self, rate: float = 1.0) -> tuple[Tensor, Tensor]:
        """The bilinear (Ā (H, N, N), B̄ (H, N)) as dense real matrices on [Re x; Im x] (`ssm.dplr_discrete`).

        A reference for tests and eigenvalue checks; `step` never forms it (O(N²) per token).
        """
        return dplr_discrete(*self._dplr(), self.dt(rate))

    def initial_state(self, batch_size: int, device: Any = None, dtype: Any = None) -> Tensor:
        """x = 0, complex (B, H, N/2) (complex64 for a float32 layer, complex128 for float64)."""
        check_int("batch_size", batch_size)
        device = self.C.device if device is None else device
        real = self._real_dtype(dtype)
        return torch.zeros(batch_size, self.d_model, self.d_state // 2, device=device, dtype=real.to_complex())

    def step(self, x_t: Tensor, state: Tensor, rate: float = 1.0) -> tuple[Tensor, Tensor]:  # (B, H) -> (B, H)
        self._check_step(x_t, rate)
        self._check_state(state, x_t.shape[0])
        y, state = self._advance(x_t, state, self._dplr(), self.dt(rate))
        return self._output(y, x_t), state

    def step_chunk(self, x: Tensor, state: Tensor, rate: float = 1.0) -> tuple[Tensor, Tensor]:  # (B, L, H)
        self._check_chunk(x, rate)
        self._check_state(state, x.shape[0])
        L, N2 = x.shape[1], self.d_state // 2
        y = self._convolve(x, self._cached("kernel", (rate, L), lambda: self.kernel(L, rate)))  # (B, L, channels, H)
        real = self.kernel_dtype or self.log_dt.dtype
        Lambda, P, B = (t.to(real.to_complex()) for t in self._dplr())
        Ab, Bb = dplr_discrete(Lambda, P, B, self.dt(rate).to(real))  # (H, N, N), (H, N) real, state [Re x; Im x]
        _, _, C_r = dplr_dense(Lambda, P, B, as_complex(self.C)[0].to(Lambda.dtype))  # (channels, H, N): 2 Re(C x)
        x0 = torch.cat([state.real, state.imag], dim=-1).to(real)  # (B, H, N)
        x1 = (Ab @ x0.unsqueeze(-1)).squeeze(-1)  # (B, H, N): Ā x_0
        y0 = krylov(L, Ab, x1.unsqueeze(1), C_r)  # (B, channels, H, L): C_r Ā^l (Ā x_0)
        y = y + y0.permute(0, 3, 1, 2).to(y.dtype)
        xL = krylov_state(Ab, Bb, x.transpose(1, 2).to(real), x0)  # (B, H, N)
        state = torch.complex(xL[..., :N2], xL[..., N2:]).to(state.dtype)  # (B, H, N/2)
        return self._output(y, x), state

    def _advance(self, u: Tensor, x: Tensor, dplr: tuple[Tensor, Tensor, Tensor], dt: Tensor) -> tuple[Tensor, Tensor]:
        """x <- Ā x + B̄ u (DPLR Woodbury step, O(H N R²)); y = 2 Re(C x).

        u (B, H) real, x (B, H, N/2) complex -> y (B, channels, H) real, x.
        """
        x = dplr_step(*dplr, dt, x, u)  # (B, H, N/2) complex
        y = 2 * torch.einsum("mhn,bhn->bmh", as_complex(self.C)[0], x).real  # (B, channels, H)
        return y, x

    def _check_state(self, state: Tensor, batch: int) -> None:
        shape = (batch, self.d_model, self.d_state // 2)
        if not isinstance(state, Tensor) or tuple(state.shape) != shape or not state.is_complex():
            got = f"{tuple(state.shape)} {state.dtype}" if isinstance(state, Tensor) else type(state).__name__
            raise ValueError(f"state must be a complex tensor of shape (B, H, N/2) = {shape}; got {got}")
