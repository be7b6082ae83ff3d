"""Convolution kernel of a diagonal state-space model (S4D, Gu, Gupta, Goel & Ré, NeurIPS 2022, Sec. 3, Eq. (5)).

A real N-dimensional system with diagonal complex A whose modes come in conjugate pairs is stored by one mode of each
pair: A, B, C complex (H, N/2). Its kernel is

    K[l] = Σ_{n<N} C_n B̄_n Ā_n^l = 2 Re Σ_{n<N/2} C_n B̄_n Ā_n^l,        l = 0..L-1,

with the discretisations (per mode, elementwise; `ssmkit.hippo.discretize` in its diagonal form)

    zoh:      Ā = exp(Δ A),                        B̄ = (Ā - 1) / A · B
    bilinear: Ā = (1 + Δ A / 2) / (1 - Δ A / 2),   B̄ = Δ B / (1 - Δ A / 2).

The sum over n is a Vandermonde product (`ssmkit.ops.vandermonde`), computed without an (H, N, L) tensor. Ā and B̄
are formed in float64 whatever the input precision (O(H N), cheap), so float32 kernels carry no phase drift from a
rounded Ā.

Channels: C of shape (C_ch, H, N/2) gives C_ch kernels (C_ch, H, L) sharing A, B, Δ (S4's `channels`), in one product.

Accuracy (tests/ssm/test_diag.py, against the loop x <- Ā x on the full conjugate-pair system): ~1e-14 relative in
float64 for all five S4D inits and both discretisations (L <= 1000; asserted 1e-10); float32 ~2e-6 (LegS, N = 64,
L = 4096; asserted 1e-5).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssmkit.hippo import discretize
from ssmkit.ops.vandermonde import vandermonde

DISCRETIZATIONS = ("zoh", "bilinear")


def diag_kernel(
    A: Tensor, B: Tensor, C: Tensor, dt: Tensor, L: int, disc: str = "zoh", *, impl: str = "auto"
) -> Tensor:
    """K (H, L) real, K[l] = 2 Re Σ_n C_n B̄_n Ā_n^l.

    A, B complex (H, N/2); C complex (H, N/2), or (C_ch, H, N/2) for C_ch output channels sharing A, B, Δ (then K is
    (C_ch, H, L)); dt real (H,) > 0; L >= 1; disc "zoh" or "bilinear". ``impl`` is passed to the Vandermonde op
    ("auto" / "fast": factored matmul; "reference": materialised powers).
    """
    _check(A, B, C, dt, L, disc)
    dA, dB = diag_discrete(A.to(torch.complex128), B.to(torch.complex128), dt.to(torch.float64), disc)  # (H, N/2)
    # discretised in float64 (O(H N), cheap) so float32 kernels do not inherit a phase drift from a rounded Ā
    return 2 * vandermonde(C * dB.to(C.dtype), dA, L, real_part=True, impl=impl)  # ([C_ch,] H, L), C's precision


def diag_discrete(A: Tensor, B: Tensor, dt: Tensor, disc: str = "zoh") -> tuple[Tensor, Tensor]:
    """(Ā, B̄), each complex (H, N/2), for stepping: x_k = Ā x_{k-1} + B̄ u_k, y_k = 2 Re Σ_n C_n x_k,n."""
    if disc not in DISCRETIZATIONS:
        raise ValueError(f"diag_discrete: disc must be one of {DISCRETIZATIONS}, got {disc!r}")
    return discretize(A, B, dt, disc, validate=False)


def diag_kernel_reference(A: Tensor, B: Tensor, C: Tensor, dt: Tensor, L: int, disc: str = "zoh") -> Tensor:
    """The same kernel through materialised powers (the (H, N/2, L) tensor the fast path avoids)."""
    return diag_kernel(A, B, C, dt, L, disc, impl="reference")


def _check(A, B, C, dt, L, disc):
    if disc not in DISCRETIZATIONS:
        raise ValueError(f"diag_kernel: disc must be one of {DISCRETIZATIONS}, got {disc!r}")
    if not isinstance(L, int) or isinstance(L, bool) or L < 1:
        raise ValueError(f"diag_kernel: L must be an int >= 1, got {L!r}")
    for name, t in (("A", A), ("B", B), ("C", C), ("dt", dt)):
        if not isinstance(t, Tensor):
            raise TypeError(f"diag_kernel: {name} must be a torch.Tensor, got {type(t).__name__}")
    if A.dim() != 2:
        raise ValueError(f"diag_kernel: A must have shape (H, N/2), got {tuple(A.shape)}")
    if B.shape != A.shape:
        raise ValueError(f"diag_kernel: B must have A's shape (H, N/2) = {tuple(A.shape)}, got {tuple(B.shape)}")
    if C.dim() not in (2, 3) or C.shape[-2:] != A.shape:
        raise ValueError(
            f"diag_kernel: C must have shape (H, N/2) = {tuple(A.shape)} or (C_ch, H, N/2), got {tuple(C.shape)}"
        )
    if dt.shape != A.shape[:1] or dt.is_complex():
        raise ValueError(f"diag_kernel: dt must be real of shape (H,) = ({A.shape[0]},), got {tuple(dt.shape)}")
    if not A.is_complex():
        raise TypeError(f"diag_kernel: A must be complex (one mode per conjugate pair), got {A.dtype}")
