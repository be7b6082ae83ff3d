"""Vandermonde product: K[l] = Σ_n v_n x_n^l, l = 0..L-1  (S4D, Gu et al., NeurIPS 2022, Eq. (5) / Sec. 3.1).

The diagonal SSM kernel K[l] = Σ_n C_n B̄_n Ā_n^l is a Vandermonde matrix-vector product. Materialising x_n^l for all
(n, l) costs O(N·L) memory per channel (and autograd keeps it). The sum factors instead: with l = j·c + i,

    K[j·c + i] = Σ_n (v_n x_n^{j c}) · x_n^i,

a batched matrix product (J, N) @ (N, c) per channel, J = ceil(L / c), c ≈ √L. Only the powers x^i (i < c) and
x^{jc} (j < J) are held — O(N·√L) per channel — and the gradient is again matrix products, so plain autograd is
already lean here (no custom backward needed). Powers are built by doubling
(x^{0..2k-1} = [x^{0..k-1}, x^k·x^{0..k-1}]), as accurate as repeated multiplication.

Precision: the powers are formed in double precision and rounded once to v's precision, so in float32 the error does
not grow with l (powers of a float32-rounded x would drift in phase by ~l·6e-8 rad per unit angle). Pass x in float64
(e.g. a float64 discretisation of float32 parameters) to keep that accuracy; the result has v's precision.

Shapes: v (*S, *Hb, N), x (*Hb, N) (complex or real), L >= 1 -> (*S, *Hb, L). The leading dims *S of v share x (e.g.
several output channels C of one diagonal system).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

IMPLS = ("auto", "fast", "reference")


def vandermonde(v: Tensor, x: Tensor, L: int, *, real_part: bool = False, impl: str = "auto") -> Tensor:
    """Σ_n v_n x_n^l for l = 0..L-1.  v (*S, *Hb, N), x (*Hb, N) -> (*S, *Hb, L).

    ``real_part=True`` returns only Re Σ_n v_n x_n^l (real), computed as one real matmul
    [Re(v x^{jc}), -Im(v x^{jc})] @ [Re x^i; Im x^i] — half the flops of the complex product (the S4D kernel needs only
    the real part). ``impl``: "fast" / "auto" (factored into a batched matmul, memory O(N √L) per channel),
    "reference" (materialises x^l as a (*Hb, L, N) tensor).
    """
    _check(v, x, L, impl)
    if impl == "reference":
        out = vandermonde_reference(v, x, L)
        return out.real if real_part and out.is_complex() else out
    c = 1 << max(0, math.ceil(math.log2(L) / 2))  # block length, a power of two near √L
    J = -(-L // c)  # number of blocks
    dtype = _result_dtype(v, x)
    x = x.to(torch.complex128 if x.is_complex() else torch.float64)  # powers in double precision (O(N √L), cheap)
    x_i = powers(x, c)  # (*Hb, c, N): x^i, i < c
    x_c = x_i[..., -1, :] * x  # (*Hb, N): x^c
    x_jc = powers(x_c, J)  # (*Hb, J, N): x^{jc}, j < J
    x_i, x_jc = x_i.to(dtype), x_jc.to(dtype)  # rounded once to the working precision
    left = v.to(dtype).unsqueeze(-2) * x_jc  # (*S, *Hb, J, N): v x^{jc}
    if real_part and left.is_complex():
        left = torch.cat([left.real, -left.imag], dim=-1)  # (*S, *Hb, J, 2N) real
        x_i = torch.cat([x_i.real, x_i.imag], dim=-1)  # (*Hb, c, 2N) real
    K = left @ x_i.transpose(-1, -2)  # (*S, *Hb, J, c): K[j, i] = Σ_n v x^{jc} x^i
    return K.flatten(-2)[..., :L]  # (*S, *Hb, L)


def vandermonde_reference(v: Tensor, x: Tensor, L: int) -> Tensor:
    """Materialising evaluation: X[l, n] = x_n^l as a (*Hb, L, N) tensor, then Σ_n v_n X[l, n]."""
    dtype = _result_dtype(v, x)
    X = powers(x.to(torch.complex128 if x.is_complex() else torch.float64), L).to(dtype)  # (*Hb, L, N)
    return (v.to(dtype).unsqueeze(-2) * X).sum(-1)  # (*S, *Hb, L)


def _result_dtype(v: Tensor, x: Tensor) -> torch.dtype:
    """v's precision, complex if v or x is: x may be passed in higher precision than v (e.g. Ā from a float64
    discretisation) without promoting the product."""
    real = v.real.dtype if v.is_complex() else v.dtype
    if v.is_complex() or x.is_complex():
        return torch.complex128 if real == torch.float64 else torch.complex64
    return real


def powers(x: Tensor, n: int) -> Tensor:
    """x^0, x^1, ..., x^{n-1} stacked on a new second-to-last dim: (..., N) -> (..., n, N), built by doubling."""
    p = torch.ones_like(x).unsqueeze(-2)  # (..., 1, N): x^0
    x_k = x.unsqueeze(-2)  # x^k with k = current length
    while p.shape[-2] < n:
        p = torch.cat([p, p * x_k], dim=-2)  # (..., 2k, N)
        x_k = x_k * x_k
    return p[..., :n, :]


def _check(v, x, L, impl):
    if impl not in IMPLS:
        raise ValueError(f"vandermonde: impl must be one of {IMPLS}, got {impl!r}")
    for name, t in (("v", v), ("x", x)):
        if not isinstance(t, Tensor):
            raise TypeError(f"vandermonde: {name} must be a torch.Tensor, got {type(t).__name__}")
    if not isinstance(L, int) or isinstance(L, bool) or L < 1:
        raise ValueError(f"vandermonde: L must be an int >= 1, got {L!r}")
    if x.dim() < 1 or v.dim() < x.dim() or v.shape[v.dim() - x.dim() :] != x.shape:
        raise ValueError(
            f"vandermonde: need x (*Hb, N) and v (*S, *Hb, N) with matching trailing dims; got v {tuple(v.shape)}, "
            f"x {tuple(x.shape)}"
        )
