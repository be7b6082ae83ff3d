"""Diagonal-plus-low-rank (DPLR) state-space model: kernel, discretisation and O(N) stepping
(S4, Gu, Goel & Ré, ICLR 2022, Sec. 3.3, Algorithm 1, Lemmas C.2-C.4).

Parametrisation (one mode of each conjugate pair, M = N/2):
    Λ complex (H, M), P complex (R, H, M), B complex (H, M), C complex (H, M) or (C_ch, H, M), Δ real (H,).
The real N-dimensional system they stand for lives on the conjugate-symmetric state x_f = [x, x̄]:

    A = diag(Λ, Λ̄) - P_f P_f^*,  P_f = [P; P̄] (N, R),  B_f = [B; B̄],  C_f = [C, C̄],   y = Re(C_f x_f) = 2 Re(C x).

Bilinear discretisation: Ā = (I - Δ/2 A)^{-1}(I + Δ/2 A), B̄ = (I - Δ/2 A)^{-1} Δ B, and K[l] = C_f Ā^l B̄_f.

Kernel, the S4 way (Algorithm 1). Its truncated generating function at the L-th roots of unity ω_k = exp(-2πik/L) is

    K̂(ω) = Σ_{l<L} K[l] ω^l = C̃ (I - ω Ā)^{-1} B̄,        C̃ = C_f (I - Ā^L),
         = 2/(1+ω) · C̃ (z/Δ - A)^{-1} B_f,               z = 2 (1-ω)/(1+ω) = 2i tan(πk/L),

and with the Woodbury identity for A = D - P_f P_f^* (R(z) = (z/Δ - D)^{-1}, diagonal):

    K̂(ω) = 2/(1+ω) [k00 - k01 (I + k11)^{-1} k10],   k_ab = Δ Σ_n u_n v_n / (z - Δ λ_n)  (Cauchy sums, conj pairs)

with (u, v) = (C̃, B), (C̃, P), (P̄, B), (P̄, P). The kernel is real, so only the L//2 + 1 nodes of `rfft` are needed;
at ω = -1 (even L) the formula is 0·∞ and the limit K̂(-1) = C̃_f B_f Δ/2 = Δ Re Σ_n C̃_n B_n is used instead. Then
K = irfft(K̂). All four Cauchy sums share the poles Δλ and are evaluated in one chunked pass (`ssmkit.ops.cauchy`,
``conj=True``), so no (H, N, L) tensor is formed.

C̃ = C(I - Ā^L) needs Ā^L: computed in the real coordinates [Re x; Im x] of the state (an N×N real matrix, see
`dplr_dense`) by log2(L) squarings. `dplr_ctilde` exposes it so a layer can cache C̃ per L when parameters are frozen.

Accuracy (float64, checked in tests/ssm/test_dplr.py against materialised powers of the dense complex Ā, L <= 1000,
Δ in [1e-3, 1e-1]): measured 2e-14 (legs), 8e-14 (legt), 2e-13 (lagt), 4e-13 (fout with Re Λ shifted by -1e-4)
relative to max|K|; the test asserts <= 1e-10, far inside the issue's 1e-5. The generating-function route does not
diagonalise A, so the ill-conditioned LegS eigenvectors never enter; what can cost digits is a node z close to a pole
Δλ (Re Λ near 0), which is why a mode exactly at 0 is refused. float32 (complex64), L = 1000: ~1e-6 (legs, legt) and
~5e-6 (lagt) relative, tested <= 1e-5 for legs; but when Δ·|Re Λ| is tiny the generating function has near-poles on
the unit circle whose float32 rounding the inverse FFT spreads: fout (Re Λ = -1e-4) at Δ = 1e-3 is off by ~2e-4
relative in float32 (the materialising Cauchy reference too: 5e-5). Compute such kernels in float64 if that matters.

Stepping (the recurrent view) without diagonalising Ā (the reference implementation diagonalises the LegS DPLR
matrix, whose eigenvectors are ill-conditioned, and is wrong by 0.60 relative at N=64): keep the DPLR form and the state
x (…, H, M) complex (one mode per pair, x_f = [x, x̄]); one bilinear step is

    x' = (2/Δ - A)^{-1} [(2/Δ + A) x + 2 B u]

where (2/Δ + A) x = (2/Δ + Λ) x - P s, s = 2 Re(P^* x) (real, R) and (2/Δ - A)^{-1} = (D0 + P_f P_f^*)^{-1},
D0 = 2/Δ - Λ, is applied with Woodbury: E y - E P W^{-1} (2 Re(P^* E y)), E = 1/D0, W = I + 2 Re(P^* E P) (R×R, real,
W >= I since Re E > 0 for Re Λ <= 0: well conditioned). O(H·M·R) per token, exact up to rounding (`dplr_step`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ssmkit.ops.cauchy import cauchy


def dplr_kernel(Lambda: Tensor, P: Tensor, B: Tensor, C: Tensor, dt: Tensor, L: int, *, impl: str = "auto") -> Tensor:
    """K (H, L) real (or (C_ch, H, L) if C is (C_ch, H, M)): K[l] = Re(C_f Ā^l B̄_f), bilinear, as in S4.

    Λ, B complex (H, M); P complex (R, H, M); C complex (H, M) or (C_ch, H, M) — the plain C (the factor (I - Ā^L) is
    applied inside); dt real (H,) > 0; L >= 1. ``impl`` is passed to the Cauchy op ("reference" materialises).
    """
    _check(Lambda, P, B, C, dt, L)
    Ct = dplr_ctilde(Lambda, P, C, dt, L)
    return dplr_kernel_from_ctilde(Lambda, P, B, Ct, dt, L, impl=impl)


def dplr_ctilde(Lambda: Tensor, P: Tensor, C: Tensor, dt: Tensor, L: int) -> Tensor:
    """C̃ = C_f (I - Ā^L) in the same one-mode-per-pair form as C: ([C_ch,] H, M) complex."""
    _check(Lambda, P, None, C, dt, L)
    C_r = 2 * torch.cat([C.real, -C.imag], dim=-1)  # ([C_ch,] H, N): real form, see dplr_dense
    dA, _ = dplr_discrete(Lambda, P, torch.zeros_like(Lambda), dt)  # (H, N, N) real
    CAL = _vec_matrix_power(C_r, dA, L)  # C_r Ā^L  ([C_ch,] H, N)
    Ct_r = C_r - CAL
    M = Lambda.shape[-1]
    return torch.complex(Ct_r[..., :M], -Ct_r[..., M:]) / 2  # C_r = 2 [Re C, -Im C]


def dplr_kernel_from_ctilde(
    Lambda: Tensor, P: Tensor, B: Tensor, Ct: Tensor, dt: Tensor, L: int, *, impl: str = "auto"
) -> Tensor:
    """The generating-function part of `dplr_kernel`, given C̃ = `dplr_ctilde(...)`: ([C_ch,] H, L) real."""
    _check(Lambda, P, B, Ct, dt, L)
    if bool((Lambda == 0).any()):
        raise ValueError(
            "dplr_kernel: Lambda has a mode exactly at 0 (e.g. the fout init): the Cauchy pole then sits on the node "
            "omega = 1 and the generating function is 0·inf there. Keep Re Lambda < 0, e.g. Re Lambda <= -1e-4 as S4's "
            "parametrisation does."
        )
    cdtype = Lambda.dtype
    rdtype = Lambda.real.dtype
    R, Cch = P.shape[0], (Ct.shape[0] if Ct.dim() == 3 else 1)
    n_nodes = L // 2 if L % 2 == 0 else L // 2 + 1  # rfft nodes except ω = -1
    k = torch.arange(n_nodes, dtype=torch.float64)
    z = torch.complex(torch.zeros_like(k), 2 * torch.tan(math.pi * k / L)).to(cdtype)  # 2(1-ω)/(1+ω), (n_nodes,)
    omega = torch.exp(torch.complex(torch.zeros_like(k), -2 * math.pi * k / L))
    scale = (2 / (1 + omega)).to(cdtype)  # (n_nodes,)

    dt_c = dt.to(rdtype).unsqueeze(-1)  # (H, 1)
    w = dt_c * Lambda  # (H, M) poles Δλ
    left = torch.cat([Ct.reshape(Cch, *Lambda.shape), P.conj()])  # (C_ch + R, H, M): C̃, P̄_r
    right = torch.cat([B.unsqueeze(0), P])  # (1 + R, H, M): B, P_s
    v = dt_c * left.unsqueeze(1) * right.unsqueeze(0)  # (C_ch + R, 1 + R, H, M), with the factor Δ of k_ab
    kk = cauchy(v, z, w, conj=True, impl=impl)  # (C_ch + R, 1 + R, H, n_nodes)
    if R == 1:  # unbind: its backward stacks the gradients into one buffer (slicing would zero-fill one per slice)
        *k_C, k_P = kk.unbind(0)  # C_ch x (2, H, n), (2, H, n)
        k10, k11 = k_P.unbind(0)  # (H, n) each
        t = k10 / (1 + k11)  # (H, n): (1 + k11)^{-1} k10
        Kf = torch.stack([kc[0] - kc[1] * t for kc in k_C])  # (C_ch, H, n)
    else:
        k00, k01 = kk[:Cch, 0], kk[:Cch, 1:]  # (C_ch, H, n), (C_ch, R, H, n)
        k10, k11 = kk[Cch:, 0], kk[Cch:, 1:]  # (R, H, n), (R, R, H, n)
        Wm = torch.eye(R, dtype=cdtype) + k11.permute(2, 3, 0, 1)  # (H, n, R, R): I + k11
        X = torch.linalg.solve(Wm, k10.permute(1, 2, 0).unsqueeze(-1)).squeeze(-1)  # (H, n, R)
        Kf = k00 - (k01 * X.permute(2, 0, 1)).sum(1)  # (C_ch, H, n)
    Kf = Kf * scale
    if L % 2 == 0:  # ω = -1: K̂ = Δ Re Σ C̃ B
        nyq = dt_c * (Ct.reshape(Cch, *Lambda.shape) * B).sum(-1, keepdim=True).real  # (C_ch, H, 1)
        Kf = torch.cat([Kf, nyq.to(cdtype)], dim=-1)
    K = torch.fft.irfft(Kf, n=L, dim=-1)  # (C_ch, H, L) real
    return K if Ct.dim() == 3 else K[0]


def dplr_dense(Lambda: Tensor, P: Tensor, B: Tensor, C: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The same system in real coordinates [Re x; Im x] (N = 2M): (A_r (H, N, N), B_r (H, N), C_r ([C_ch,] H, N)).

    A_r = [[diag Re Λ, -diag Im Λ], [diag Im Λ, diag Re Λ]] - 2 Σ_r p_r p_rᵀ with p_r = [Re P_r; Im P_r];
    B_r = [Re B; Im B]; C_r = 2 [Re C, -Im C]  (so y = C_r x_r = 2 Re(C x)). All real; the dense reference.
    """
    lr, li = Lambda.real, Lambda.imag  # (H, M)
    top = torch.cat([torch.diag_embed(lr), torch.diag_embed(-li)], dim=-1)  # (H, M, N)
    bottom = torch.cat([torch.diag_embed(li), torch.diag_embed(lr)], dim=-1)
    p = torch.cat([P.real, P.imag], dim=-1)  # (R, H, N)
    A_r = torch.cat([top, bottom], dim=-2) - 2 * torch.einsum("rhi,rhj->hij", p, p)  # (H, N, N)
    B_r = torch.cat([B.real, B.imag], dim=-1)  # (H, N)
    C_r = 2 * torch.cat([C.real, -C.imag], dim=-1)  # ([C_ch,] H, N)
    return A_r, B_r, C_r


def dplr_discrete(Lambda: Tensor, P: Tensor, B: Tensor, dt: Tensor) -> tuple[Tensor, Tensor]:
    """Bilinear (Ā_r (H, N, N), B̄_r (H, N)), real, in the coordinates of `dplr_dense` (state [Re x; Im x]).

    Dense O(N²) per token — the reference for `dplr_step` and for |eig Ā| checks. Built column by column with the
    Woodbury step (`dplr_step` on the N basis states), so no dense solve is needed; accurate to the working precision.
    """
    _check(Lambda, P, B, None, dt, 1)
    H, M = Lambda.shape
    rdtype = Lambda.real.dtype
    eye = torch.eye(2 * M, dtype=rdtype, device=Lambda.device)
    X = torch.complex(eye[:, :M], eye[:, M:]).unsqueeze(1).expand(2 * M, H, M)  # (N, H, M): basis of [Re x; Im x]
    zero_u = torch.zeros(2 * M, H, dtype=rdtype, device=Lambda.device)
    cols = dplr_step(Lambda, P, B, dt, X, zero_u)  # (N, H, M): Ā applied to each basis state
    dA = torch.cat([cols.real, cols.imag], dim=-1).permute(1, 2, 0)  # (H, N, N)
    x_B = dplr_step(Lambda, P, B, dt, torch.zeros_like(X[0]), torch.ones_like(zero_u[0]))  # (H, M): B̄ (x = 0, u = 1)
    return dA, torch.cat([x_B.real, x_B.imag], dim=-1)


def dplr_kernel_reference(Lambda: Tensor, P: Tensor, B: Tensor, C: Tensor, dt: Tensor, L: int) -> Tensor:
    """K[l] = C_r Ā_r^l B̄_r by an L-step loop on the dense real form (materialises every state; small L only)."""
    _check(Lambda, P, B, C, dt, L)
    dA, dB = dplr_discrete(Lambda, P, B, dt)  # (H, N, N), (H, N)
    _, _, C_r = dplr_dense(Lambda, P, B, C)  # ([C_ch,] H, N)
    x, ys = dB, []
    for _ in range(L):
        ys.append((C_r * x).sum(-1))  # ([C_ch,] H)
        x = (dA @ x.unsqueeze(-1)).squeeze(-1)
    return torch.stack(ys, dim=-1)


def dplr_step(Lambda: Tensor, P: Tensor, B: Tensor, dt: Tensor, x: Tensor, u: Tensor) -> Tensor:
    """One bilinear step x' = Ā x + B̄ u of the DPLR system in O(H·M·R²), without diagonalising Ā.

    x complex (..., H, M): one mode of each conjugate pair (full state [x, x̄]); u real (..., H). Returns x' like x.
    The output is y = 2 Re Σ_m C_m x'_m (+ D u). See the module docstring for the Woodbury form.
    """
    _check(Lambda, P, B, None, dt, 1)
    if not isinstance(x, Tensor) or not x.is_complex() or x.shape[-2:] != Lambda.shape:
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"dplr_step: x must be complex of shape (..., H, M) = (..., {tuple(Lambda.shape)}), got {got}")
    if not isinstance(u, Tensor) or u.is_complex() or u.shape != x.shape[:-1]:
        got = tuple(u.shape) if isinstance(u, Tensor) else type(u).__name__
        raise ValueError(f"dplr_step: u must be real of shape {tuple(x.shape[:-1])} (x's shape without M), got {got}")
    dt = dt.to(Lambda.real.dtype).unsqueeze(-1)  # (H, 1)
    two_dt = 2 / dt
    Pm = P.movedim(0, -1)  # (H, M, R)
    s = 2 * torch.einsum("hmr,...hm->...hr", Pm.conj(), x).real  # (..., H, R): P_f^* x_f
    y1 = (two_dt + Lambda) * x - torch.einsum("hmr,...hr->...hm", Pm, s.to(x.dtype)) + 2 * B * u.unsqueeze(-1)
    E = 1 / (two_dt - Lambda)  # (H, M)
    W = torch.eye(P.shape[0], dtype=dt.dtype) + 2 * torch.einsum("hmr,hm,hms->hrs", Pm.conj(), E, Pm).real  # (H, R, R)
    Ey = E * y1  # (..., H, M)
    t = 2 * torch.einsum("hmr,...hm->...hr", Pm.conj(), Ey).real  # (..., H, R)
    if P.shape[0] == 1:
        c = t / W[..., 0]  # (..., H, 1)
    else:
        c = torch.linalg.solve(W, t.unsqueeze(-1)).squeeze(-1)  # (..., H, R): W^{-1} t
    return Ey - E * torch.einsum("hmr,...hr->...hm", Pm, c.to(x.dtype))


def _vec_matrix_power(v: Tensor, A: Tensor, L: int) -> Tensor:
    """v A^L by binary powering: v (..., H, N), A (H, N, N); log2(L) squarings of A."""
    out, A_k, n = v, A, L
    while n > 0:
        if n & 1:
            out = (out.unsqueeze(-2) @ A_k).squeeze(-2)
        n >>= 1
        if n > 0:
            A_k = A_k @ A_k
    return out


def _check(Lambda, P, B, C, dt, L):
    if not isinstance(L, int) or isinstance(L, bool) or L < 1:
        raise ValueError(f"dplr: L must be an int >= 1, got {L!r}")
    named = (("Lambda", Lambda), ("P", P), ("B", B), ("C", C), ("dt", dt))
    for name, t in named:
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"dplr: {name} must be a torch.Tensor, got {type(t).__name__}")
    if Lambda.dim() != 2 or not Lambda.is_complex():
        raise ValueError(f"dplr: Lambda must be complex of shape (H, M=N/2), got {Lambda.dtype} {tuple(Lambda.shape)}")
    H, M = Lambda.shape
    if P.dim() != 3 or P.shape[1:] != (H, M) or P.shape[0] < 1 or not P.is_complex():
        raise ValueError(f"dplr: P must be complex of shape (R, H, M) = (R, {H}, {M}), got {tuple(P.shape)}")
    if B is not None and (B.shape != (H, M) or not B.is_complex()):
        raise ValueError(f"dplr: B must be complex of shape (H, M) = ({H}, {M}), got {B.dtype} {tuple(B.shape)}")
    if C is not None and (C.dim() not in (2, 3) or C.shape[-2:] != (H, M) or not C.is_complex()):
        raise ValueError(f"dplr: C must be complex of shape (H, M) = ({H}, {M}) or (C_ch, H, M), got {tuple(C.shape)}")
    if dt.shape != (H,) or dt.is_complex():
        raise ValueError(f"dplr: dt must be real of shape (H,) = ({H},), got {tuple(dt.shape)}")
