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

These are the bases of the "paper" conventions of `transition` scaled by theta (A/theta, B/theta), which `HiPPO`
uses; S4's legt is the theta = 2 case. Outside the support (s < 0 for legs, x > 1 for legt/fout) the returned values
are the basis functions extrapolated, not a memory of the signal.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

RECONSTRUCT_MEASURES = ("legs", "legt", "lagt", "fout")


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


def fourier(n: int, x: Tensor) -> Tensor:
    """The FouT basis (slots 1, 0, sqrt2 cos(2 pi m x), sqrt2 sin(2 pi m x), ...) at x: (..., n), n even."""
    m = torch.arange(n // 2, dtype=x.dtype, device=x.device)
    arg = 2 * math.pi * x[..., None] * m  # (..., n/2)
    G = torch.stack([math.sqrt(2) * torch.cos(arg), math.sqrt(2) * torch.sin(arg)], dim=-1).flatten(-2)  # (..., n)
    G[..., 0] = 1.0
    return G


def basis(measure: str, N: int, s: Tensor, t: Tensor, theta: float = 1.0) -> Tensor:
    """The basis functions g_n^(t)(s): shape broadcast(s, t) + (N,)."""
    if measure == "legs":
        return legendre(N, 2 * s / t - 1) * torch.sqrt(2 * torch.arange(N, dtype=s.dtype, device=s.device) + 1)
    x = (t - s) / theta
    if measure == "legt":
        return legendre(N, 1 - 2 * x) * torch.sqrt(2 * torch.arange(N, dtype=s.dtype, device=s.device) + 1)
    if measure == "fout":
        return fourier(N, x)
    return laguerre(N, x)


def reconstruct(c: Tensor, measure: str, s: Tensor, t: float | Tensor, *, theta: float = 1.0) -> Tensor:
    """Evaluate the approximation held by c at the times s: c (..., N), s (P,), t scalar or (...) -> (..., P).

    t: the time each coefficient vector refers to (for a trajectory from `HiPPO`, `hippo.times(L)`), broadcastable
    to c.shape[:-1]. theta: the window (legt, fout) or timescale (lagt) the coefficients were computed with.
    """
    if measure not in RECONSTRUCT_MEASURES:
        raise ValueError(f"measure must be one of {', '.join(RECONSTRUCT_MEASURES)}; got {measure!r}")
    if not isinstance(c, Tensor) or c.dim() < 1:
        raise ValueError("c must be a tensor of shape (..., N)")
    N = c.shape[-1]
    if measure == "fout" and N % 2:
        raise ValueError(f"N (the last dim of c) must be even for fout; got {N}")
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
    G = basis(measure, N, s, t[..., None], theta)  # (..., P, N)
    return (G @ c[..., None]).squeeze(-1)
