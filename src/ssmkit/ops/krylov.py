"""Krylov products: the matrix [b, A b, A² b, ..., A^{L-1} b] and the kernel K[l] = c A^l b  (LSSL, Gu et al.,
NeurIPS 2021, Sec. 4 / Appendix: "computing the Krylov function by repeated squaring").

Without c the full (..., N, L) Krylov matrix is the result, built by doubling:
X_{0..2k-1} = [X_{0..k-1}, A^k X_{0..k-1}] with A^k squared each round (log2 L matrix products, not an L-step loop).

With c (the convolution kernel of a dense SSM) that matrix is never formed. Writing l = j·m + i (m ≈ √L a power of two):

    K[j·m + i] = (c A^{j m}) (A^i b),

so the kernel is one batched matrix product of the rows c A^{jm} (j < J = ceil(L/m), shape (J, N)) with the columns
A^i b (i < m, shape (N, m)); both are built by doubling, with A^m and its squares. Memory O(N (J + m)) = O(N √L) per
batch element instead of O(N L), and the gradient is again matrix products (plain autograd).

Shapes: A (..., N, N), b (*Eb, ..., N), c (*Ec, ..., N), complex or real, L >= 1. The extra leading dims *Eb, *Ec
(e.g. a batch of states, several output rows) share A and broadcast against each other.
Returns (*Eb, ..., N, L) without c, (*E, ..., L) with c, E = broadcast(Eb, Ec).

`krylov_state` is the transposed product, the state of the recurrence x_k = A x_{k-1} + b u_k after L inputs:

    x_L = A^L x_0 + Σ_{l<L} A^(L-1-l) b u_l = A^L x_0 + Σ_l A^l b ũ_l,   ũ_l = u_(L-1-l),

factored the same way: with l = j·m + i, v_j = Σ_i (A^i b) ũ_(jm+i) is one batched matmul of the columns A^i b with
the blocks of ũ, and Σ_j A^(jm) v_j is summed as a tree, v_j + A^(m 2^r) v_(j+2^r) per round (log2 J matmuls with
the squared powers). Memory O(N (m + J)) per batch element, never (..., N, L). This is how a dense SSM layer carries
its state across a chunk in parallel (LSSL, `step_chunk`). `krylov_state_reference` is the L-step loop.
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
    rows = _krylov_doubling(J, A_m.transpose(-1, -2), c.unsqueeze(-1)).transpose(-1, -2)  # (*Ec, ..., J, N): c A^{jm}
    return (rows @ cols).flatten(-2)[..., :L]  # (*E, ..., J, m) -> (*E, ..., L)


def krylov_state(A: Tensor, b: Tensor, u: Tensor, x0: Tensor | None = None, *, impl: str = "auto") -> Tensor:
    """x_L of x_k = A x_{k-1} + b u_k, k = 1..L, from x_0 (zeros if None): A^L x_0 + Σ_l A^(L-1-l) b u_l.

    A (..., N, N), b (..., N), u (*E, ..., L) real or complex, x0 (*E, ..., N) -> (*E, ..., N). ``impl``: "fast" /
    "auto" (factored matmul plus a tree sum, module docstring), "reference" (the L-step loop).
    """
    _check_state(A, b, u, x0, impl)
    if impl == "reference":
        return krylov_state_reference(A, b, u, x0)
    L = u.shape[-1]
    m = 1 << max(0, math.ceil(math.log2(L) / 2))  # block length, a power of two near √L
    J = -(-L // m)
    cols = _krylov_doubling(m, A, b.unsqueeze(-1))  # (..., N, m): A^i b
    u_rev = torch.nn.functional.pad(u.flip(-1), (0, J * m - L))  # (*E, ..., J·m): ũ, zero-padded
    v = cols @ u_rev.unflatten(-1, (J, m)).transpose(-1, -2).to(cols.dtype)  # (*E, ..., N, J): v_j
    P = _matrix_power_2k(A, m)  # A^m
    while v.shape[-1] > 1:  # tree sum of Σ_j A^(jm) v_j: pairs (v_2k, v_2k+1) -> v_2k + P v_2k+1, P squared
        if v.shape[-1] % 2:
            v = torch.nn.functional.pad(v, (0, 1))
        v = v[..., 0::2] + P @ v[..., 1::2]  # (*E, ..., N, J/2)
        P = P @ P
    x = v.squeeze(-1)  # (*E, ..., N)
    if x0 is not None:
        x = x + (_matrix_power(A, L) @ x0.unsqueeze(-1)).squeeze(-1)
    return x


def krylov_state_reference(A: Tensor, b: Tensor, u: Tensor, x0: Tensor | None = None) -> Tensor:
    """The L-step loop x <- A x + b u_l for `krylov_state`."""
    x = torch.zeros(u.shape[:-1] + b.shape[-1:], dtype=torch.promote_types(A.dtype, u.dtype), device=A.device)
    x = x if x0 is None else x + x0
    for l in range(u.shape[-1]):
        x = (A @ x.unsqueeze(-1)).squeeze(-1) + b * u[..., l, None]
    return x


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


def _matrix_power(A: Tensor, n: int) -> Tensor:
    """A^n (n >= 1) by binary powering: about 2 log2(n) matrix products."""
    out, P = None, A
    while n > 0:
        if n & 1:
            out = P if out is None else out @ P
        n >>= 1
        if n > 0:
            P = P @ P
    return out


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
    _check_vector("krylov", "b", b, A)
    if c is not None:
        _check_vector("krylov", "c", c, A)
        try:
            torch.broadcast_shapes(b.shape[: b.dim() - A.dim() + 1], c.shape[: c.dim() - A.dim() + 1])
        except RuntimeError:
            raise ValueError(
                f"krylov: the extra leading dims of b {tuple(b.shape)} and c {tuple(c.shape)} do not broadcast"
            ) from None


def _check_vector(fn: str, name: str, v, A: Tensor) -> None:
    """v must be (*E, ..., N) with (..., N) = A's batch dims and N."""
    want = tuple(A.shape[:-1])
    if not isinstance(v, Tensor) or v.dim() < len(want) or tuple(v.shape[v.dim() - len(want) :]) != want:
        got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
        raise ValueError(
            f"{fn}: {name} must have shape (*E, {', '.join(map(str, want))}) (A's batch dims and N), got {got}"
        )


def _check_state(A, b, u, x0, impl):
    if impl not in IMPLS:
        raise ValueError(f"krylov_state: impl must be one of {IMPLS}, got {impl!r}")
    if not isinstance(A, Tensor) or A.dim() < 2 or A.shape[-1] != A.shape[-2]:
        got = tuple(A.shape) if isinstance(A, Tensor) else type(A).__name__
        raise ValueError(f"krylov_state: A must be a tensor of shape (..., N, N), got {got}")
    if not isinstance(b, Tensor) or tuple(b.shape) != tuple(A.shape[:-1]):
        got = tuple(b.shape) if isinstance(b, Tensor) else type(b).__name__
        raise ValueError(f"krylov_state: b must have shape {tuple(A.shape[:-1])} (A's batch dims and N), got {got}")
    lead = tuple(A.shape[:-2])
    if not isinstance(u, Tensor) or u.dim() < len(lead) + 1 or tuple(u.shape[u.dim() - 1 - len(lead) : -1]) != lead:
        got = tuple(u.shape) if isinstance(u, Tensor) else type(u).__name__
        raise ValueError(f"krylov_state: u must have shape (*E, {', '.join(map(str, lead + ('L',)))}), got {got}")
    if u.shape[-1] < 1:
        raise ValueError(f"krylov_state: u must hold L >= 1 inputs in its last dim, got shape {tuple(u.shape)}")
    if x0 is not None and (not isinstance(x0, Tensor) or tuple(x0.shape) != tuple(u.shape[:-1]) + (A.shape[-1],)):
        got = tuple(x0.shape) if isinstance(x0, Tensor) else type(x0).__name__
        raise ValueError(
            f"krylov_state: x0 must have shape {tuple(u.shape[:-1]) + (A.shape[-1],)} (u's without L, and N), got {got}"
        )
