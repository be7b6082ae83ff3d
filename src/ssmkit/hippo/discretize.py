"""Discretisation of the continuous system x' = A x + B u with step dt into x_k = Ab x_{k-1} + Bb u_k.

The rules (LSSL, Gu et al. NeurIPS 2021, Sec. 2; HiPPO, Gu et al. 2020, discretisation appendix; Zhang et al.
2007 for the generalised bilinear transform, GBT):

    gbt(alpha):      Ab = (I - alpha dt A)^{-1} (I + (1 - alpha) dt A),   Bb = (I - alpha dt A)^{-1} dt B
    euler:           alpha = 0      Ab = I + dt A,                Bb = dt B                (forward Euler, order 1)
    backward_euler:  alpha = 1      Ab = (I - dt A)^{-1},         Bb = (I - dt A)^{-1} dt B (order 1)
    bilinear:        alpha = 1/2    Tustin / trapezoid rule                                 (order 2)
    zoh:             Ab = exp(dt A), Bb = A^{-1} (exp(dt A) - I) B  (exact for u held constant over each step)

Dense form: A (..., N, N), B (..., N). Diagonal form (A holds the diagonal, same shape as B, real or complex):
A (..., N), B (..., N), computed elementwise. dt is a Python number or a tensor broadcastable to the leading
dimensions (...). Everything is torch operations, so gradients flow to A, B and dt.

ZOH, dense: exp of the augmented block matrix [[A, B], [0, 0]] dt = [[exp(dt A), Bb], [0, 1]] (Van Loan 1978), which
needs no inverse of A (A may be singular). Diagonal: Bb = B dt phi1(dt A) with phi1(z) = (exp(z) - 1)/z, phi1(0) = 1.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

METHODS = ("euler", "backward_euler", "bilinear", "gbt", "zoh")
_GBT_ALPHA = {"euler": 0.0, "backward_euler": 1.0, "bilinear": 0.5}


def discretize(
    A: Tensor, B: Tensor, dt: float | Tensor, method: str, alpha: float | None = None, *, validate: bool = True
) -> tuple[Tensor, Tensor]:
    """Discretise (A, B) with step dt by `method`: returns (Ab, Bb), same layout as (A, B).

    A: (..., N, N) dense or (..., N) diagonal (diagonal exactly when A.shape == B.shape); B: (..., N);
    dt: scalar or tensor broadcastable to the leading dims (...), finite and > 0.
    method: "euler", "backward_euler", "bilinear", "gbt" (needs alpha in [0, 1]) or "zoh".
    validate=False skips the value checks on dt (no host sync), for use inside a training step.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if method == "gbt":
        if alpha is None or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be a number in [0, 1] for method 'gbt'; got {alpha!r}")
        alpha = float(alpha)
    elif alpha is not None:
        raise ValueError(f"alpha is only used with method 'gbt'; got alpha={alpha!r} with method {method!r}")
    else:
        alpha = _GBT_ALPHA.get(method)
    if not isinstance(A, Tensor) or not isinstance(B, Tensor):
        raise TypeError(f"A and B must be torch tensors; got {type(A).__name__} and {type(B).__name__}")
    diagonal = A.shape == B.shape
    lead = _check_shapes(A, B, diagonal)
    dt = _as_dt(dt, A, B, lead, validate)
    if diagonal:
        return _diagonal(A, B, dt, method, alpha)
    return _dense(A, B, dt, method, alpha)


def _check_shapes(A: Tensor, B: Tensor, diagonal: bool) -> torch.Size:
    if B.dim() < 1:
        raise ValueError("B must have shape (..., N); got a 0-dim tensor")
    if diagonal:
        return A.shape[:-1]
    if A.dim() < 2 or A.shape[-1] != A.shape[-2] or A.shape[-1] != B.shape[-1]:
        raise ValueError(
            f"A and B must be dense (A (..., N, N), B (..., N)) or diagonal (A and B both (..., N)); "
            f"got A {tuple(A.shape)} and B {tuple(B.shape)}"
        )
    try:
        return torch.broadcast_shapes(A.shape[:-2], B.shape[:-1])
    except RuntimeError:
        raise ValueError(
            f"the leading dimensions of A {tuple(A.shape)} and B {tuple(B.shape)} do not broadcast"
        ) from None


def _as_dt(dt: float | Tensor, A: Tensor, B: Tensor, lead: torch.Size, validate: bool) -> Tensor:
    if isinstance(dt, bool) or not isinstance(dt, (int, float, Tensor)):
        raise TypeError(f"dt must be a positive number or a tensor; got {type(dt).__name__}")
    real_dtype = torch.promote_types(
        A.real.dtype if A.is_complex() else A.dtype, B.real.dtype if B.is_complex() else B.dtype
    )
    dt = torch.as_tensor(dt, dtype=real_dtype if not isinstance(dt, Tensor) else None, device=A.device)
    if dt.is_complex():
        raise ValueError(f"dt must be real; got dtype {dt.dtype}")
    if validate and not bool(torch.all(torch.isfinite(dt) & (dt > 0))):
        raise ValueError(f"dt must be finite and > 0 (accepted: positive finite numbers); got {dt}")
    try:
        torch.broadcast_shapes(dt.shape, lead)
    except RuntimeError:
        raise ValueError(
            f"dt of shape {tuple(dt.shape)} does not broadcast against the leading dimensions {tuple(lead)} of A, B"
        ) from None
    return dt


def _diagonal(A: Tensor, B: Tensor, dt: Tensor, method: str, alpha: float | None) -> tuple[Tensor, Tensor]:
    dt = dt[..., None]  # (..., 1)
    dtA = dt * A  # (..., N)
    if method == "zoh":
        Ab = torch.exp(dtA)
        return Ab, B * dt * _phi1(dtA)
    denom = 1 - alpha * dtA  # (..., N)
    return (1 + (1 - alpha) * dtA) / denom, dt * B / denom


def _phi1(z: Tensor) -> Tensor:
    """(exp(z) - 1) / z elementwise, with the limit 1 at z = 0 (gradient-safe)."""
    small = z.abs() < 1e-4
    z_safe = torch.where(small, torch.ones_like(z), z)
    exact = torch.expm1(z_safe) / z_safe
    series = 1 + z / 2 + z * z / 6  # truncation error ~ |z|^3 / 24 < 5e-14 below the switch
    return torch.where(small, series, exact)


def _dense(A: Tensor, B: Tensor, dt: Tensor, method: str, alpha: float | None) -> tuple[Tensor, Tensor]:
    N = A.shape[-1]
    dtype = torch.promote_types(torch.promote_types(A.dtype, B.dtype), dt.dtype)
    A, B, dt = A.to(dtype), B.to(dtype), dt.to(dtype)
    lead = torch.broadcast_shapes(A.shape[:-2], B.shape[:-1], dt.shape)
    A = A.expand(*lead, N, N)
    B = B.expand(*lead, N)
    dt = dt.expand(lead)
    dtA = dt[..., None, None] * A  # (..., N, N)
    dtB = dt[..., None] * B  # (..., N)
    if method == "zoh":
        M = torch.cat(
            [torch.cat([dtA, dtB[..., None]], dim=-1), torch.zeros(*lead, 1, N + 1, dtype=dtype, device=A.device)],
            dim=-2,
        )  # (..., N+1, N+1): [[A, B], [0, 0]] dt
        E = torch.linalg.matrix_exp(M)
        return E[..., :N, :N], E[..., :N, N]
    I = torch.eye(N, dtype=dtype, device=A.device)
    if alpha == 0.0:
        return I + dtA, dtB
    lhs = I - alpha * dtA  # (..., N, N)
    rhs = torch.cat([I + (1 - alpha) * dtA, dtB[..., None]], dim=-1)  # (..., N, N+1)
    sol = torch.linalg.solve(lhs, rhs)
    return sol[..., :N], sol[..., N]
