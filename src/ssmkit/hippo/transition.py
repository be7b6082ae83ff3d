"""HiPPO transition matrices (A, B) for each measure.

HiPPO (Gu et al., "HiPPO: Recurrent Memory with Optimal Polynomial Projections", NeurIPS 2020) keeps the coefficients
c(t) of the projection of the history of a signal f onto an orthogonal basis; they follow the linear ODE

    x'(t) = A x(t) + B f(t)                       (HiPPO Sec. 2, derivations in its appendix; A already negated)

The conventions are those of the S4 reference code's `transition` (state-spaces/s4, src/models/hippo/hippo.py), so that
weights and results carry over; the HiPPO paper writes c' = -A c + B f, i.e. its A is the negative of ours.

Measures (N is the state size; n, k index rows and columns from 0; r_n = sqrt(2n + 1)):

- ``legs``   scaled Legendre (HiPPO Thm. 2): A_nk = -r_n r_k (n > k), -(n + 1) (n = k), 0 (n < k);
             B_n = r_n. Used time-varying, x' = A/t x + B/t f (the measure is uniform on [0, t]).
- ``legt``   translated Legendre (HiPPO Thm. 1): A_nk = -r_n r_k (n >= k), -r_n r_k (-1)^(n-k) (n < k); B_n = r_n.
             convention="s4" (default) halves A and B, i.e. the sliding window has length theta = 2 in the ODE's time
             units; convention="paper" is the HiPPO paper's window theta = 1.
- ``lagt``   translated Laguerre (HiPPO Thm. 1). convention="s4": A = I/2 - tril(1) (diagonal -1/2, -1 below),
             B_n = beta: the basis exp(-x/2) L_n(x) of x = t - s, orthonormal in L2[0, inf). convention="paper":
             A = -tril(1) (diagonal -1), B_n = beta: basis L_n(x) under the measure exp(-x).
- ``glagt``  generalised Laguerre with parameters alpha (> -1, < 1) and beta (> 0), as in the S4 code (its "tilt").
- ``fout``   translated Fourier (HiPPO appendix, Fourier measures): the projection onto the Fourier basis of the window
             [t - theta, t]. State layout [1, (dead), cos_1, sin_1, cos_2, sin_2, ...]: slot 2m is
             sqrt(2) cos(2 pi m x), slot 2m + 1 is sqrt(2) sin(2 pi m x), x = (t - s)/theta; slot 1 is sin(0) = 0 and
             stays 0. With e = (1, 0, sqrt 2, 0, sqrt 2, 0, ...) and R the rotation R[2m, 2m+1] = -2 pi m,
             R[2m+1, 2m] = +2 pi m, the window-1 operator is A = R - 2 e e^T, B = 2 e: the sample leaving the window
             is estimated by the truncated Fourier series at the window's edge, which converges to the mean of the two
             ends, f(t - theta) ~ 2 e^T x - f(t). convention="s4" (default, the S4 code): window theta = 2, i.e. A and
             B halved, A = R/2 - e e^T (rotation at pi m), B = e. convention="paper": window 1 (rotation at 2 pi m).
             (Taking f(t - theta) ~ e^T x instead, i.e. A = R - e e^T, B = e, tracks the projection poorly.)
- ``foud``   Fourier with a decaying diagonal instead of the endpoint term (S4 code's "fourier_diag"): rotation at
             2 pi m, A -= I/2, same B. Close to S4D-Lin.
- ``lmu``    the Legendre Memory Unit (Voelker et al., NeurIPS 2019): A_nk = (2n+1) * (-1 if n < k else (-1)^(n-k+1)),
             B_n = (2n+1) (-1)^n; equal to LegT up to a diagonal change of basis and the window length.
- ``random`` A ~ N(0, 1)/N entries, B ~ N(0, 1): a baseline, not stable in general.
- ``diagonal`` A = -diag(exp(z)), z ~ N(0, 1), B ~ N(0, 1): a stable diagonal baseline.

All matrices are float64 torch tensors, A (N, N) and B (N,).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MEASURES = ("legs", "legt", "lagt", "glagt", "fout", "foud", "lmu", "random", "diagonal")
CONVENTIONS = ("s4", "paper")

# Which keyword arguments each measure accepts (anything else is an error, never silently ignored).
_MEASURE_KWARGS: dict[str, tuple[str, ...]] = {
    "legs": (),
    "legt": ("convention",),
    "lagt": ("beta", "convention"),
    "glagt": ("alpha", "beta"),
    "fout": ("convention",),
    "foud": (),
    "lmu": (),
    "random": ("generator",),
    "diagonal": ("generator",),
}


def check_measure(measure: str, allowed: tuple[str, ...] = MEASURES, name: str = "measure") -> str:
    """Raise ValueError unless `measure` is one of `allowed`; return it."""
    if not isinstance(measure, str) or measure not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {measure!r}")
    return measure


def check_state_size(N: int, even: bool = False, name: str = "N") -> int:
    """Raise ValueError unless N is an int >= 1 (and even, where the state comes in conjugate pairs)."""
    if isinstance(N, bool) or not isinstance(N, int) or N < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {N!r}")
    if even and N % 2 != 0:
        raise ValueError(f"{name} must be even (the state comes in conjugate pairs, N/2 of them); got {N}")
    return N


def transition(measure: str, N: int, **kwargs) -> tuple[Tensor, Tensor]:
    """HiPPO (A, B) for `measure` with state size N: A (N, N), B (N,), both float64.

    Keyword arguments: legt/fout `convention` ("s4" default, or "paper": window 1 instead of 2); lagt `beta` (1.0)
    and `convention`; glagt `alpha` (0.0) and `beta` (0.01); random/diagonal `generator` (a torch.Generator, else
    the global RNG).
    See the module docstring for the formulas and the differences between the conventions.
    """
    check_measure(measure)
    check_state_size(N, even=measure in ("fout", "foud"))
    unknown = sorted(set(kwargs) - set(_MEASURE_KWARGS[measure]))
    if unknown:
        accepted = ", ".join(_MEASURE_KWARGS[measure]) or "none"
        raise ValueError(f"transition({measure!r}) got unknown keyword argument(s) {unknown}; accepted: {accepted}")
    convention = kwargs.pop("convention", "s4")
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {', '.join(CONVENTIONS)}; got {convention!r}")
    if measure == "legs":
        return _legs(N)
    if measure == "legt":
        return _legt(N, window=2.0 if convention == "s4" else 1.0)
    if measure == "lagt":
        return _lagt(N, beta=float(kwargs.get("beta", 1.0)), diagonal=-0.5 if convention == "s4" else -1.0)
    if measure == "glagt":
        return _glagt(N, alpha=float(kwargs.get("alpha", 0.0)), beta=float(kwargs.get("beta", 0.01)))
    if measure == "fout":
        return _fout(N, window=2.0 if convention == "s4" else 1.0)
    if measure == "foud":
        return _foud(N)
    if measure == "lmu":
        return _lmu(N)
    generator = kwargs.get("generator")
    if measure == "random":
        A = torch.randn(N, N, dtype=torch.float64, generator=generator) / N
        return A, torch.randn(N, dtype=torch.float64, generator=generator)
    # diagonal
    A = -torch.diag(torch.exp(torch.randn(N, dtype=torch.float64, generator=generator)))
    return A, torch.randn(N, dtype=torch.float64, generator=generator)


def _legs(N: int) -> tuple[Tensor, Tensor]:
    n = torch.arange(N, dtype=torch.float64)
    r = torch.sqrt(2 * n + 1)  # (N,)
    A = -torch.tril(r[:, None] * r[None, :], diagonal=-1) - torch.diag(n + 1)  # (N, N)
    return A, r.clone()


def _legt(N: int, window: float) -> tuple[Tensor, Tensor]:
    n = torch.arange(N, dtype=torch.float64)
    r = torch.sqrt(2 * n + 1)
    row, col = n[:, None], n[None, :]
    sign = torch.where(row >= col, torch.ones(()), (-1.0) ** (row - col))  # 1 on/below the diagonal, (-1)^(n-k) above
    A = -(r[:, None] * sign * r[None, :]) / window  # (N, N)
    return A, r / window


def _lagt(N: int, beta: float, diagonal: float) -> tuple[Tensor, Tensor]:
    A = -torch.tril(torch.ones(N, N, dtype=torch.float64), diagonal=-1) + diagonal * torch.eye(N, dtype=torch.float64)
    return A, beta * torch.ones(N, dtype=torch.float64)


def _glagt(N: int, alpha: float, beta: float) -> tuple[Tensor, Tensor]:
    if not (-1.0 < alpha < 1.0):
        raise ValueError(f"alpha must lie in (-1, 1) for glagt; got {alpha}")
    if not beta > 0.0:
        raise ValueError(f"beta must be > 0 for glagt; got {beta}")
    n = torch.arange(N, dtype=torch.float64)
    A = -torch.eye(N, dtype=torch.float64) * (1 + beta) / 2 - torch.tril(torch.ones(N, N, dtype=torch.float64), -1)
    # binom(alpha + n, n) = Gamma(alpha + n + 1) / (Gamma(n + 1) Gamma(alpha + 1))
    B = torch.exp(torch.lgamma(alpha + n + 1) - torch.lgamma(n + 1) - math.lgamma(alpha + 1))
    L = glagt_norms(N, alpha)
    A = A * L[None, :] / L[:, None]
    B = B / L * math.exp(-0.5 * math.lgamma(1 - alpha)) * beta ** ((1 - alpha) / 2)
    return A, B


def glagt_norms(N: int, alpha: float) -> Tensor:
    """L_n = sqrt(Gamma(n + alpha + 1) / Gamma(n + 1)), n < N: the norm of the generalised Laguerre polynomial
    L_n^(alpha) under the weight x^alpha exp(-x); glagt's state is in the orthonormal basis L_n^(alpha) / L_n."""
    n = torch.arange(N, dtype=torch.float64)
    return torch.exp(0.5 * (torch.lgamma(n + alpha + 1) - torch.lgamma(n + 1)))


def _fourier_B(N: int) -> Tensor:
    B = torch.zeros(N, dtype=torch.float64)
    B[0::2] = math.sqrt(2.0)
    B[0] = 1.0
    return B


def _fourier_rotation(N: int, omega: float) -> Tensor:
    """Block rotation: A[2m, 2m+1] = -omega m, A[2m+1, 2m] = +omega m (frequency m of the pair (2m, 2m+1))."""
    A = torch.zeros(N, N, dtype=torch.float64)
    for m in range(1, N // 2):
        A[2 * m, 2 * m + 1] = -omega * m
        A[2 * m + 1, 2 * m] = omega * m
    return A


def _fout(N: int, window: float) -> tuple[Tensor, Tensor]:
    B = _fourier_B(N)
    A = _fourier_rotation(N, 2 * math.pi) - 2 * B[:, None] * B[None, :]
    return A / window, 2 * B / window


def _foud(N: int) -> tuple[Tensor, Tensor]:
    A = _fourier_rotation(N, 2 * math.pi) - 0.5 * torch.eye(N, dtype=torch.float64)
    return A, _fourier_B(N)


def _lmu(N: int) -> tuple[Tensor, Tensor]:
    n = torch.arange(N, dtype=torch.float64)
    row, col = n[:, None], n[None, :]
    R = (2 * n + 1)[:, None]
    A = torch.where(row < col, -torch.ones(()), (-1.0) ** (row - col + 1)) * R
    B = (-1.0) ** n * (2 * n + 1)
    return A, B
