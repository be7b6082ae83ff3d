"""Krylov products: the matrix [b, A b, A² b, ..., A^{L-1} b] and the kernel K[l] = c A^l b  (LSSL, Gu et al.,
NeurIPS 2021, Sec. 4 / Appendix: "computing the Krylov function by repeated squaring").

Without c the full (..., N, L) Krylov matrix is the result, built by doubling:
X_{0..2k-1} = [X_{0..k-1}, A^k X_{0..k-1}] with A^k squared each round (log2 L matrix products, not an L-step loop).

With c (the convolution kernel of a dense SSM) that matrix is never formed. Writing l = j·m + i (m ≈ √L a power of two):

    K[j·m + i] = (c A^{j m}) (A^i b),

so the kernel is one batched matrix product of the rows c A^{jm} (j < J = ceil(L/m), shape (J, N)) with the columns
A^i b (i < m, shape (N, m)); both are built by doubling, with A^m and its squares. Memory O(N (J + m)) = O(N √L) per
batch element instead of O(N L), and the gradient is again matrix products (plain autograd).

Shapes: A (..., N, N), b (..., N), c (..., N) (same batch dims; complex or real), L >= 1.
Returns (..., N, L) without c, (..., L) with c.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

IMPLS = ("auto", "fast", "reference")


def krylov(L: int, A: Tensor, b: Tensor, c: Tensor | None = None, *, impl: str = "auto") -> Tensor:
    """[b, Ab, ..., A^{L-1} b] (..., N, L), or with c the kernel (c A^l b)_{l<L} (..., L).

    ``impl``: "fast" / "auto" (doubling; with c, the factored product that never forms (..., N, L)),
    "reference" (an L-step loop x <- A x).
    """
    _check(L, A, b, c, impl)
    if impl == "reference":
        return krylov_reference(L, A, b, c)
    if c is None:
        return _krylov_doubling(L, A, b.unsqueeze(-1))  # (..., N, L)
    m = 1 << max(0, math.ceil(math.log2(L) / 2))  # block length, a power of two near √L
    J = -(-L // m)
    cols = _krylov_doubling(m, A, b.unsqueeze(-1))  # (..., N, m): A^i b
    A_m = _matrix_power_2k(A, m)  # (..., N, N): A^m
    rows = _krylov_doubling(J, A_m.transpose(-1, -2), c.unsqueeze(-1)).transpose(-1, -2)  # (..., J, N): c A^{jm}
    return (rows @ cols).flatten(-2)[..., :L]  # (..., J, m) -> (..., L)


def krylov_reference(L: int, A: Tensor, b: Tensor, c: Tensor | None = None) -> Tensor:
    """L-step loop: x_0 = b, x_{l+1} = A x_l; stacks the x_l (..., N, L) or contracts them with c (..., L)."""
    x, xs = b, []
    for _ in range(L):
        xs.append(x)
        x = (A @ x.unsqueeze(-1)).squeeze(-1)
    X = torch.stack(xs, dim=-1)  # (..., N, L)
    return X if c is None else (c.unsqueeze(-1) * X).sum(-2)


def _krylov_doubling(n: int, A: Tensor, X: Tensor) -> Tensor:
    """[X, A X, ..., A^{n-1} X] for X (..., N, 1): doubling with squared A. Returns (..., N, n)."""
    A_k = A
    while X.shape[-1] < n:
        X = torch.cat([X, A_k @ X], dim=-1)  # (..., N, 2k)
        if X.shape[-1] < n:
            A_k = A_k @ A_k
    return X[..., :n]


def _matrix_power_2k(A: Tensor, m: int) -> Tensor:
    """A^m for m a power of two, by log2(m) squarings."""
    P = A
    for _ in range(int(math.log2(m))):
        P = P @ P
    return P


def _check(L, A, b, c, impl):
    if impl not in IMPLS:
        raise ValueError(f"krylov: impl must be one of {IMPLS}, got {impl!r}")
    if not isinstance(L, int) or isinstance(L, bool) or L < 1:
        raise ValueError(f"krylov: L must be an int >= 1, got {L!r}")
    if not isinstance(A, Tensor) or A.dim() < 2 or A.shape[-1] != A.shape[-2]:
        got = tuple(A.shape) if isinstance(A, Tensor) else type(A).__name__
        raise ValueError(f"krylov: A must be a tensor of shape (..., N, N), got {got}")
    want = tuple(A.shape[:-1])
    if not isinstance(b, Tensor) or tuple(b.shape) != want:
        got = tuple(b.shape) if isinstance(b, Tensor) else type(b).__name__
        raise ValueError(f"krylov: b must have shape {want} (A's batch dims and N), got {got}")
    if c is not None and (not isinstance(c, Tensor) or tuple(c.shape) != want):
        got = tuple(c.shape) if isinstance(c, Tensor) else type(c).__name__
        raise ValueError(f"krylov: c must have shape {want} (A's batch dims and N), got {got}")
