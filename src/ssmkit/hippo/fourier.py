"""O(N) products and GBT solves with the Fourier HiPPO matrices fout and foud (HiPPO, Gu et al. 2020, App. D).

Both are a block rotation plus a diagonal plus a rank-one term (`transition`, window-1 conventions):

    A = R_omega + d I - rho e e^T,    R_omega[2m, 2m+1] = -omega m,  R_omega[2m+1, 2m] = +omega m,

fout: omega = 2 pi, d = 0, rho = 2, e = (1, 0, sqrt 2, 0, sqrt 2, 0, ...);  foud: omega = 2 pi, d = -1/2, rho = 0.

- A x: the rotation acts on each pair (x_2m, x_2m+1) separately, the rank-one term is one dot product: O(N).
- (I - gamma A) y = z: M_0 = (1 - gamma d) I - gamma R_omega is block diagonal with 2x2 blocks [[a, b], [-b, a]]
  (a = 1 - gamma d, b = gamma omega m), inverted in closed form 1/(a^2 + b^2) [[a, -b], [b, a]]; the rank-one term
  is added back by Sherman-Morrison,
      y = M_0^{-1} z - M_0^{-1} e (gamma rho e^T M_0^{-1} z) / (1 + gamma rho e^T M_0^{-1} e).
  For gamma >= 0 and d <= 0, a >= 1 and the denominator is >= 1 (e^T M_0^{-1} e = sum e_m^2 a / (a^2 + b_m^2) > 0):
  no cancellation. O(N).
"""

from __future__ import annotations

import torch
from torch import Tensor


def rotation_mult(x: Tensor, omega: float) -> Tensor:
    """R_omega x for x (..., N), N even: pair m = (x_2m, x_2m+1) -> omega m (-x_2m+1, x_2m)."""
    pairs = x.unflatten(-1, (-1, 2))  # (..., N/2, 2)
    m = omega * _freqs(x)  # (N/2,)
    return (m[:, None] * pairs.flip(-1) * pairs.new_tensor([-1.0, 1.0])).flatten(-2)


def fourier_mult(x: Tensor, omega: float, d: float, rho: float, e: Tensor) -> Tensor:
    """A x for A = R_omega + d I - rho e e^T (module docstring); x (..., N). O(N)."""
    Ax = rotation_mult(x, omega) + d * x
    if rho:
        Ax = Ax - rho * e * (x @ e)[..., None]
    return Ax


def fourier_solve(z: Tensor, gamma: float, omega: float, d: float, rho: float, e: Tensor) -> Tensor:
    """y with (I - gamma A) y = z, A = R_omega + d I - rho e e^T; z (..., N), gamma >= 0. O(N)."""
    y = _block_solve(z, gamma, omega, d)
    if not rho:
        return y
    Me = _block_solve(e, gamma, omega, d)  # (N,) M_0^{-1} e
    return y - Me * (gamma * rho * (y @ e) / (1 + gamma * rho * (Me @ e)))[..., None]


def _block_solve(z: Tensor, gamma: float, omega: float, d: float) -> Tensor:
    """M_0^{-1} z, M_0 = (1 - gamma d) I - gamma R_omega: per pair [[a, b], [-b, a]]^{-1} = [[a, -b], [b, a]]/det."""
    a = 1 - gamma * d
    b = gamma * omega * _freqs(z)  # (N/2,)
    det = a * a + b * b
    pairs = z.unflatten(-1, (-1, 2))  # (..., N/2, 2): (z_2m, z_2m+1)
    first = (a * pairs[..., 0] - b * pairs[..., 1]) / det
    second = (b * pairs[..., 0] + a * pairs[..., 1]) / det
    return torch.stack([first, second], dim=-1).flatten(-2)  # (..., N): slots 2m, 2m+1 interleaved


def _freqs(x: Tensor) -> Tensor:
    """m = 0..N/2-1, the frequency of pair (2m, 2m+1)."""
    return torch.arange(x.shape[-1] // 2, dtype=x.dtype, device=x.device)
