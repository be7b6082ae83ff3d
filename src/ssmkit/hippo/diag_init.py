"""Diagonal initialisations of S4D (Gu, Gupta, Goel, Re, "On the Parameterization and Initialization of Diagonal
State Space Models", NeurIPS 2022, Sec. 4).

A diagonal SSM keeps N/2 complex modes and uses conjugate symmetry: its kernel is
K_l = 2 Re sum_n C_n B_n Ab_n^l (S4D Sec. 3, a Vandermonde product). The initialisers (n = 0, ..., N/2 - 1):

- ``legs``  S4D-LegS: Lambda = the eigenvalues of the normal part of HiPPO-LegS (-1/2 + i w_n, Im <= 0, as `nplr`)
            and B = V^* B_LegS, its input matrix in the eigenbasis (the diagonal part of `nplr("legs", N)`).
            The S4 code's "legsd" also halves B (S4D's analysis of S4D-LegS uses B/2); the kernel is linear in B,
            so that is an overall factor 2 which the learned C can absorb, but the initial kernel here is twice as
            large. This B puts most of its weight on the fastest mode (abs(B) = 20.4 at abs(Im Lambda) = 325 for
            N = 32; benchmarks/s4d_init_diagnose.py). The S4 repository's current "diag-legs" pairs the same Lambda
            with B = 1 instead (its dplr.py, B_init="constant" unless B_init="legs" is passed), as ``inv`` below
            does with frequencies that approximate these.
- ``inv``   S4D-Inv: Lambda_n = -1/2 + i (N/pi) (N/(2n+1) - 1), B_n = 1 (S4D Sec. 4).
- ``lin``   S4D-Lin: Lambda_n = -1/2 + i pi n, B_n = 1 (S4D Sec. 4).
- ``real``  S4D-Real: Lambda_n = -(n+1) for n = 0, ..., N-1, B_n = 1. These are N real modes, not N/2 pairs: a real
            mode is its own conjugate, so it cannot share a slot with another. We return all N of them (Lambda and
            B of length N, imaginary parts 0). K = 2 Re sum_n C_n B_n Ab_n^l over the returned modes is then the
            paper's real diagonal SSM with C scaled by 2, which the learned C absorbs. (Returning N/2 modes -(n+1),
            n < N/2, as the S4 code's "real" does, would be a different, half-size model.) N need not be even.
- ``rand``  random imaginary parts (the S4 code's "random"): Lambda_n = -1/2 + i z_n, z_n ~ N(0, 1), B_n = 1.

All tensors are complex128.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ssmkit.hippo.nplr import nplr
from ssmkit.hippo.transition import check_state_size

DIAG_INITS = ("legs", "inv", "lin", "real", "rand")


def diag_init(init: str, N: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """S4D initialiser `init` for state size N: (Lambda, B), complex128, shape (N/2,) — (N,) for "real".

    N must be even except for "real". `generator` seeds "rand".
    """
    if not isinstance(init, str) or init not in DIAG_INITS:
        raise ValueError(f"init must be one of {', '.join(DIAG_INITS)}; got {init!r}")
    check_state_size(N, even=init != "real")
    if init == "legs":
        Lambda, _, B, _ = nplr("legs", N)
        return Lambda, B
    if init == "real":
        Lambda = -(torch.arange(N, dtype=torch.float64) + 1)  # (N,) real modes
        return Lambda.to(torch.complex128), torch.ones(N, dtype=torch.complex128)
    n = torch.arange(N // 2, dtype=torch.float64)
    if init == "inv":
        imag = N / math.pi * (N / (2 * n + 1) - 1)
    elif init == "lin":
        imag = math.pi * n
    else:  # rand
        imag = torch.randn(N // 2, dtype=torch.float64, generator=generator)
    Lambda = torch.complex(torch.full_like(imag, -0.5), imag)  # (N/2,)
    return Lambda, torch.ones(N // 2, dtype=torch.complex128)
