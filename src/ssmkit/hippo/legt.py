"""O(N) products and GBT solves with the LegT matrix (HiPPO, Gu et al. 2020, Thm. 1).

LegT (window 1, the "paper" convention) is A = -R S R with R = diag(r), r_n = sqrt(2n+1), and
S = tril(1) + triu_strict(sigma sigma^T), sigma_n = (-1)^n (1 on and below the diagonal, (-1)^(n-k) above).

- S v = cumsum(v) + sigma * (sum over m > n of sigma_m v_m): two cumulative sums, so A x costs O(N).
- S^{-1} = T is tridiagonal (the Legendre derivative identity): T_{n,n+1} = 1/2, T_{n+1,n} = -1/2, T_00 = T_{N-1,N-1}
  = 1/2 (T = [1] for N = 1), all other entries 0. Hence (I + gamma R S R) y = z becomes, with w = R y,
  (T R^{-2} + gamma I) w = T R^{-1} z: a tridiagonal system G w = T b. For gamma > 0 its LU pivots d_n are positive
  and both substitution recurrences have coefficients of modulus < 1 (checked for N up to 512, gamma 1e-8 .. 1e3), so
  elimination without pivoting is stable. The pivots depend only on gamma (fixed for a time-invariant step): they
  are computed once by `legt_factors`; each solve is then two first-order recurrences (`linear_recurrence`), O(N).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssmkit.hippo.recurrence import linear_recurrence


def _r_sigma(N: int, dtype: torch.dtype, device=None) -> tuple[Tensor, Tensor]:
    n = torch.arange(N, dtype=dtype, device=device)
    return torch.sqrt(2 * n + 1), 1 - 2 * (n % 2)


def legt_mult(x: Tensor) -> Tensor:
    """A x for the window-1 LegT A = -R S R; x (..., N). O(N)."""
    r, sigma = _r_sigma(x.shape[-1], x.dtype, x.device)
    v = r * x
    sv = sigma * v
    above = torch.flip(torch.cumsum(torch.flip(sv, [-1]), -1), [-1]) - sv  # sum_{m>n} sigma_m v_m
    return -r * (torch.cumsum(v, -1) + sigma * above)


def legt_factors(N: int, gamma: float, dtype: torch.dtype = torch.float64, device=None) -> tuple[Tensor, ...]:
    """LU factors of G = T R^{-2} + gamma I (gamma > 0): pivots d (N,), lower multipliers l (N-1,), upper G (N-1,)."""
    r2 = 2 * torch.arange(N, dtype=torch.float64) + 1  # r_n^2
    diag = torch.full((N,), gamma, dtype=torch.float64)
    diag[0] += 0.5 / r2[0]
    diag[-1] += 0.5 / r2[-1]
    upper = 0.5 / r2[1:]  # G_{n,n+1}
    lower = -0.5 / r2[:-1]  # G_{n+1,n}
    d = [diag[0].item()]
    for n in range(N - 1):  # once per gamma; pivots stay > 0
        d.append(diag[n + 1].item() - lower[n].item() * upper[n].item() / d[-1])
    d = torch.tensor(d, dtype=torch.float64)
    return tuple(x.to(dtype=dtype, device=device) for x in (d, lower / d[:-1], upper))


def legt_solve(z: Tensor, gamma: float, factors: tuple[Tensor, ...], block: int = 16) -> Tensor:
    """y with (I + gamma R S R) y = z, i.e. (I - gamma A) y = z for the window-1 LegT A; z (..., N). O(N)."""
    d, l, upper = factors
    r, _ = _r_sigma(z.shape[-1], z.dtype, z.device)
    b = z / r  # R^{-1} z
    Tb = torch.zeros_like(b)  # T b
    Tb[..., :-1] += 0.5 * b[..., 1:]
    Tb[..., 1:] -= 0.5 * b[..., :-1]
    Tb[..., 0] += 0.5 * b[..., 0]
    Tb[..., -1] += 0.5 * b[..., -1]
    # forward substitution g_{n+1} = Tb_{n+1} - l_n g_n, g_0 = Tb_0
    g, g_last = linear_recurrence(-l, Tb[..., 1:], h0=Tb[..., 0], block=block)
    g = torch.cat([g, g_last[..., None]], dim=-1)
    # back substitution w_n = g_n / d_n - (G_{n,n+1} / d_n) w_{n+1}, run on the reversed index
    gd = g / d
    w, w_first = linear_recurrence(
        torch.flip(-upper / d[:-1], [0]), torch.flip(gd[..., :-1], [-1]), h0=gd[..., -1], block=block
    )
    w = torch.flip(torch.cat([w, w_first[..., None]], dim=-1), [-1])
    return w / r
