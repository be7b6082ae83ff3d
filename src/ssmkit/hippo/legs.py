"""Scale-invariant HiPPO-LegS: the online update with step-dependent A/k, B/k, in O(N) work per step.

HiPPO (Gu et al. 2020), Sec. 3 (Thm. 2) and its discretisation appendix: the LegS coefficients follow the
time-varying ODE c'(t) = (1/t) A c(t) + (1/t) B f(t) (our A is already negated). With samples f_k at times
t_k = k dt (k = 1, 2, ...) and step dt, every discretisation rule sees dt A / t_k = A / k, so the update is
independent of dt:

    (I - alpha A/k) c_k = (I + (1 - alpha) A/k) c_{k-1} + (1/k) B f_k        (GBT, Zhang et al. 2007)

alpha = 0 forward Euler, 1/2 bilinear (the paper's default), 1 backward Euler.

O(N) structure. LegS A = -(diag(delta) + tril_strict(u v^T)) with delta_n = n + 1 and u = v = r, r_n = sqrt(2n+1).
- A c needs one cumulative sum:  (A c)_n = -delta_n c_n - u_n sum_{m<n} v_m c_m.
- (I - beta A) y = z is lower triangular: with S_n = sum_{m<n} v_m y_m,
      y_n = (z_n - beta u_n S_n) / (1 + beta delta_n),   S_{n+1} = a_n S_n + e_n,
      a_n = 1 - beta u_n v_n / (1 + beta delta_n),       e_n = v_n z_n / (1 + beta delta_n),
  a scalar linear recurrence in n, evaluated in blocks by `recurrence.linear_recurrence` (a coefficient that
  vanishes, as a_n does at n = k/alpha, ends a block). Work per step O(N), about N / block Python iterations.

`legs_reference` is the plain version: dense triangular solves, the spec the fast path is tested against.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssmkit.hippo.recurrence import linear_recurrence


def legs_structure(N: int, dtype: torch.dtype = torch.float64, device=None) -> tuple[Tensor, Tensor, Tensor]:
    """(delta, u, v), each (N,): LegS A = -(diag(delta) + tril_strict(u v^T)), B = u."""
    n = torch.arange(N, dtype=dtype, device=device)
    r = torch.sqrt(2 * n + 1)
    return n + 1, r, r


def lower_mult(c: Tensor, delta: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """A c for A = -(diag(delta) + tril_strict(u v^T)); c (..., N). O(N) by a cumulative sum."""
    vc = v * c  # (..., N)
    below = torch.cumsum(vc, dim=-1) - vc  # sum_{m<n} v_m c_m
    return -(delta * c + u * below)


def lower_solve(z: Tensor, beta: float, delta: Tensor, u: Tensor, v: Tensor, block: int = 16) -> Tensor:
    """y with (I - beta A) y = z, A = -(diag(delta) + tril_strict(u v^T)); z (..., N). O(N) (module docstring)."""
    den = 1 + beta * delta  # (N,)
    a = 1 - beta * u * v / den  # (N,) recurrence coefficients
    S, _ = linear_recurrence(a, v * z / den, block=block)  # (..., N): S_n = sum_{m<n} v_m y_m
    return (z - beta * u * S) / den


def legs_step(c: Tensor, f_k: Tensor, k: int, alpha: float, structure: tuple[Tensor, Tensor, Tensor], block: int = 16):
    """One scale-invariant LegS GBT step at sample k (1-indexed time): c (..., N), f_k (...,) -> c_k (..., N)."""
    delta, u, v = structure
    z = c + u * (f_k[..., None] / k)  # B = u
    if alpha != 1.0:
        z = z + (1 - alpha) / k * lower_mult(c, delta, u, v)
    if alpha == 0.0:
        return z
    return lower_solve(z, alpha / k, delta, u, v, block)


def legs_fast(f: Tensor, N: int, alpha: float, c0: Tensor | None = None, k0: int = 1, block: int = 16) -> Tensor:
    """Coefficients c (B, L, N) of the scale-invariant LegS update over f (B, L), sample j at time k = k0 + j.

    c0 (B, N): the state before the first sample (zeros if None). O(N) per step (module docstring).
    """
    Bsz, L = f.shape
    structure = legs_structure(N, f.dtype, f.device)
    c = torch.zeros(Bsz, N, dtype=f.dtype, device=f.device) if c0 is None else c0
    out = []
    for j in range(L):
        c = legs_step(c, f[:, j], k0 + j, alpha, structure, block)
        out.append(c)
    return torch.stack(out, dim=1)


def legs_reference(f: Tensor, N: int, alpha: float, c0: Tensor | None = None, k0: int = 1) -> Tensor:
    """Plain reference for `legs_fast`: dense matrices A/k and triangular solves, O(N^2) per step."""
    Bsz, L = f.shape
    n = torch.arange(N, dtype=f.dtype, device=f.device)
    r = torch.sqrt(2 * n + 1)
    A = -torch.tril(r[:, None] * r[None, :], diagonal=-1) - torch.diag(n + 1)  # LegS A (N, N)
    I = torch.eye(N, dtype=f.dtype, device=f.device)
    c = torch.zeros(Bsz, N, dtype=f.dtype, device=f.device) if c0 is None else c0
    out = []
    for j in range(L):
        k = k0 + j
        z = c @ (I + (1 - alpha) * A / k).T + f[:, j, None] * r / k  # (B, N)
        c = torch.linalg.solve_triangular(I - alpha * A / k, z.T, upper=False).T
        out.append(c)
    return torch.stack(out, dim=1)
