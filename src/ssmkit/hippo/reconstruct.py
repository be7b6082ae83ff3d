"""Reconstruction of the history from HiPPO coefficients: f(s) ~ sum_n c_n(t) g_n^(t)(s) (HiPPO Sec. 2).

Time conventions (shared with `HiPPO`): c(t) summarises the history f(s), s <= t. `s` are the times at which to
evaluate the approximation; `t` the time the coefficients refer to; theta the window length (legt, fout) or the
timescale (lagt), in the same units. The measures and bases, x = (t - s) / theta the scaled lag:

- legs: uniform measure on [0, t]; g_n(s) = sqrt(2n+1) P_n(2 s/t - 1) (P_n Legendre). Covers the whole history.
- legt: uniform on the window [t - theta, t]; g_n(s) = sqrt(2n+1) P_n(1 - 2x). Only the window.
- fout: uniform on [t - theta, t]; g = 1, sqrt(2) cos(2 pi m x), sqrt(2) sin(2 pi m x) in the slots 0, 2m, 2m+1
  (slot 1, sin(0), is 0). Only the window.
- lagt: exponential measure exp(-x) on x >= 0 (all the past, exponentially down-weighted); g_n = L_n(x)
  (L_n Laguerre). Accurate where the weight is not negligible, a few theta back.
- lmu: the Legendre Memory Unit (Voelker et al. 2019) is LegT in another basis, x_n = (-1)^n sqrt(2n+1) c_n(legt)
  (`online.py`); hence g_n(s) = P_n(2x - 1), the shifted Legendre polynomials of the LMU paper. Only the window.
- glagt: generalised Laguerre, alpha in (-1, 1), beta > 0. The state's impulse response is
  exp(A x) B = kappa Lhat_n(x) exp(-(1 + beta) x / 2), Lhat_n = L_n^(alpha) / sqrt(Gamma(n+alpha+1)/n!) orthonormal
  under x^alpha exp(-x), kappa = beta^((1-alpha)/2) / sqrt(Gamma(1 - alpha)) (from transition's B). The HiPPO
  tilted measure (App. D) reads it back with g_n(x) = Lhat_n(x) x^alpha exp(-(1 - beta) x / 2) / kappa:
  int exp(A x) B g_m dx = delta_nm, i.e. the orthogonal projection of the history in L2 of
  mu(x) = kappa^2 x^(-alpha) exp(-beta x). Memory over all of the past with the weight mu (beta = 1, alpha = 0 is
  lagt with the weight exp(-x)). For alpha < 0 the basis is infinite at x = 0.
- foud: rotation with a decaying diagonal, A = R - I/2 (`transition`). Its impulse response is
  exp(-x/2) g_n(x) with g the FouT basis, so c_n = int_0^1 g_n(x) F(x) dx with
  F(x) = sum_{k>=0} exp(-(x + k)/2) f(t - theta (x + k)): the history weighted by exp(-x/2) and folded onto one
  window (the basis has period 1). `reconstruct` returns the truncated Fourier series of F at x in [0, 1) — this
  weighted, folded history, not f itself (every window of the past adds to it, with weight exp(-k/2)).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ssmkit.hippo.transition import glagt_norms

RECONSTRUCT_MEASURES = ("legs", "legt", "lagt", "glagt", "fout", "foud", "lmu")


def legendre(n: int, x: Tensor) -> Tensor:
    """P_0..P_{n-1} at x: (..., n), by the three-term recurrence (m+1) P_{m+1} = (2m+1) x P_m - m P_{m-1}."""
    P = [torch.ones_like(x), x]
    for m in range(1, n - 1):
        P.append(((2 * m + 1) * x * P[m] - m * P[m - 1]) / (m + 1))
    return torch.stack(P[:n], dim=-1)


def laguerre(n: int, x: Tensor) -> Tensor:
    """L_0..L_{n-1} at x: (..., n), by (m+1) L_{m+1} = (2m+1-x) L_m - m L_{m-1}."""
    L = [torch.ones_like(x), 1 - x]
    for m in range(1, n - 1):
        L.append(((2 * m + 1 - x) * L[m] - m * L[m - 1]) / (m + 1))
    return torch.stack(L[:n], dim=-1)


def glaguerre(n: int, alpha: float, x: Tensor) -> Tensor:
    """Generalised Laguerre L_0^(a)..L_{n-1}^(a) at x: (..., n), (m+1) L_{m+1} = (2m+1+a-x) L_m - (m+a) L_{m-1}."""
    L = [torch.ones_like(x), 1 + alpha - x]
    for m in range(1, n - 1):
        L.append(((2 * m + 1 + alpha - x) * L[m] - (m + alpha) * L[m - 1]) / (m + 1))
    return torch.stack(L[:n], dim=-1)


def fourier(n: int, x: Tensor) -> Tensor:
    """The FouT basis (slots 1, 0, sqrt2 cos(2 pi m x), sqrt2 sin(2 pi m x), ...) at x: (..., n), n even."""
    m = torch.arange(n // 2, dtype=x.dtype, device=x.device)
    arg = 2 * math.pi * x[..., None] * m  # (..., n/2)
    G = torch.stack([math.sqrt(2) * torch.cos(arg), math.sqrt(2) * torch.sin(arg)], dim=-1).flatten(-2)  # (..., n)
    G[..., 0] = 1.0
    return G


def basis(measure: str, N: int, s: Tensor, t: Tensor, theta: float = 1.0, alpha: float = 0.0, beta: float = 0.01):
    """The basis functions g_n^(t)(s): shape broadcast(s, t) + (N,). alpha, beta: glagt's parameters."""
    r = torch.sqrt(2 * torch.arange(N, dtype=s.dtype, device=s.device) + 1)
    if measure == "legs":
        return legendre(N, 2 * s / t - 1) * r
    x = (t - s) / theta
    if measure == "legt":
        return legendre(N, 1 - 2 * x) * r
    if measure == "lmu":
        return legendre(N, 2 * x - 1)
    if measure in ("fout", "foud"):
        return fourier(N, x)
    if measure == "glagt":
        norms = glagt_norms(N, alpha).to(dtype=s.dtype, device=s.device)
        kappa = beta ** ((1 - alpha) / 2) / math.sqrt(math.gamma(1 - alpha))
        tilt = x**alpha * torch.exp(-(1 - beta) * x / 2) / kappa  # (...,)
        return glaguerre(N, alpha, x) / norms * tilt[..., None]
    return laguerre(N, x)


def reconstruct(
    c: Tensor,
    measure: str,
    s: Tensor,
    t: float | Tensor,
    *,
    theta: float = 1.0,
    measure_kwargs: dict[str, float] | None = None,
) -> Tensor:
    """Evaluate the approximation held by c at the times s: c (..., N), s (P,), t scalar or (...) -> (..., P).

    t: the time each coefficient vector refers to (for a trajectory from `HiPPO`, `hippo.times(L)`), broadcastable
    to c.shape[:-1]. theta: the window (legt, fout, lmu) or timescale (lagt, glagt, foud) the coefficients were
    computed with. measure_kwargs: glagt's {"alpha", "beta"} (defaults 0 and 0.01, as `transition`).
    """
    if measure not in RECONSTRUCT_MEASURES:
        raise ValueError(f"measure must be one of {', '.join(RECONSTRUCT_MEASURES)}; got {measure!r}")
    if not isinstance(c, Tensor) or c.dim() < 1:
        raise ValueError("c must be a tensor of shape (..., N)")
    N = c.shape[-1]
    if measure in ("fout", "foud") and N % 2:
        raise ValueError(f"N (the last dim of c) must be even for {measure}; got {N}")
    kw = dict(measure_kwargs or {})
    allowed = ("alpha", "beta") if measure == "glagt" else ()
    if set(kw) - set(allowed):
        raise ValueError(
            f"measure_kwargs {sorted(set(kw) - set(allowed))} are not accepted for {measure!r}; "
            f"accepted: {', '.join(allowed) or 'none'}"
        )
    alpha, beta = float(kw.get("alpha", 0.0)), float(kw.get("beta", 0.01))
    if measure == "glagt" and not (-1 < alpha < 1 and beta > 0):
        raise ValueError(f"glagt needs alpha in (-1, 1) and beta > 0; got alpha={alpha}, beta={beta}")
    if not (isinstance(theta, (int, float)) and math.isfinite(theta) and theta > 0):
        raise ValueError(f"theta must be a finite number > 0; got {theta!r}")
    s = torch.as_tensor(s, dtype=c.dtype, device=c.device)
    t = torch.as_tensor(t, dtype=c.dtype, device=c.device)
    if s.dim() != 1:
        raise ValueError(f"s must be a 1-d tensor of times; got shape {tuple(s.shape)}")
    if measure == "legs" and not bool(torch.all(t > 0)):
        raise ValueError("t must be > 0 for legs (the history is [0, t])")
    try:
        torch.broadcast_shapes(t.shape, c.shape[:-1])
    except RuntimeError:
        raise ValueError(f"t of shape {tuple(t.shape)} does not broadcast against c's leading dims") from None
    G = basis(measure, N, s, t[..., None], theta, alpha, beta)  # (..., P, N)
    return (G @ c[..., None]).squeeze(-1)
