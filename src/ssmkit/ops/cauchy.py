"""Cauchy kernel: k(z_l) = Σ_n v_n / (z_l - w_n)  (S4, Gu et al., ICLR 2022, Sec. 3.3 and Lemma C.3).

The S4 generating function at L/2+1 roots of unity is a handful of Cauchy sums over the same poles w = Δ·Λ. Evaluated
naively (materialise the (..., L, N) matrix 1/(z_l - w_n)) it costs O(L·N) memory per channel and, under autograd,
stores that matrix several times — the reason the widely used reference S4 kernel needs ~22 GiB at H=256, N=64,
L=16384. The fast path here

- chunks over L and never holds more than one (H, chunk, N) block;
- has a custom backward that recomputes each block instead of storing it;
- evaluates several numerators v that share the same poles w in one pass (the 4 products of the Woodbury step);
- with ``conj=True`` (a real system: modes come in conjugate pairs) sums each pair as one fraction,
  v/(z-w) + v̄/(z-w̄) = (a z + b) / (z² + β z + α) with real a = 2 Re v, b = -2 Re(v w̄), β = -2 Re w, α = |w|²,
  so only N/2 reciprocals per node are needed and the whole inner loop runs on real tensors (real matmuls).

``z`` is a constant on the fast path (no gradient; the nodes are fixed roots of unity in S4); if it requires grad,
``impl="auto"`` uses the reference.

Shapes: v (*S, *Hb, N) complex, w (*Hb, N) complex, z (L,) complex -> (*S, *Hb, L) complex. The leading dims *S of v
are numerators sharing the poles w.
"""

from __future__ import annotations

import torch
from torch import Tensor

IMPLS = ("auto", "fast", "reference")
_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}
_BLOCK_ELEMENTS = 1 << 21  # elements of one (H, chunk, N) block (8 MiB in float32): cache-sized, few loop steps


def cauchy(
    v: Tensor, z: Tensor, w: Tensor, *, conj: bool = False, impl: str = "auto", chunk: int | None = None
) -> Tensor:
    """Σ_n v_n / (z_l - w_n), and with ``conj=True`` Σ_n v_n/(z_l - w_n) + conj(v_n)/(z_l - conj(w_n)).

    v: (*S, *Hb, N) complex; z: (L,) complex; w: (*Hb, N) complex  ->  (*S, *Hb, L) complex.
    ``impl``: "fast" (chunked, custom backward), "reference" (materialises the (..., L, N) matrix), "auto" (fast
    unless z requires grad). ``chunk``: nodes per block on the fast path (default: a block of ~2M elements).
    """
    v, z, w = _check(v, z, w, impl)
    if impl == "reference" or (impl == "auto" and z.requires_grad):
        return cauchy_reference(v, z, w, conj=conj)
    if z.requires_grad:
        raise ValueError("cauchy: the fast path treats z as a constant; z requires grad, use impl='reference'")
    lead = v.shape[: v.dim() - w.dim()]  # *S
    Hb, N, L = w.shape[:-1], w.shape[-1], z.shape[0]
    v = v.reshape(-1, max(1, _numel(Hb)), N)  # (S, H, N)
    w = w.reshape(-1, N)  # (H, N)
    if chunk is None:
        chunk = max(1, _BLOCK_ELEMENTS // max(1, w.shape[0] * N))
    if conj:
        a = 2 * v.real  # (S, H, N) real
        b = -2 * (v * w.conj()).real  # (S, H, N) real
        alpha = w.real.square() + w.imag.square()  # (H, N) real
        beta = -2 * w.real  # (H, N) real
        out = _CauchyConj.apply(a, b, alpha, beta, z.real.contiguous(), z.imag.contiguous(), chunk)  # (S, H, L)
    else:
        out = _Cauchy.apply(v.permute(1, 2, 0), z, w, chunk).permute(2, 0, 1)  # (S, H, L)
    return out.reshape(*lead, *Hb, L)


def cauchy_reference(v: Tensor, z: Tensor, w: Tensor, *, conj: bool = False) -> Tensor:
    """Plain materialising evaluation (the spec): r = 1 / (z_l - w_n) as a (*Hb, L, N) matrix, summed against v."""
    r = 1 / (z.unsqueeze(-1) - w.unsqueeze(-2))  # (*Hb, L, N)
    out = (v.unsqueeze(-2) * r).sum(-1)  # (*S, *Hb, L)
    if conj:
        r_bar = 1 / (z.unsqueeze(-1) - w.conj().unsqueeze(-2))  # (*Hb, L, N)
        out = out + (v.conj().unsqueeze(-2) * r_bar).sum(-1)
    return out


# ---- fast paths -----------------------------------------------------------------------------------------------------
class _Cauchy(torch.autograd.Function):
    """out[h, l, s] = Σ_n v[h, n, s] / (z_l - w[h, n]), chunked over l; backward recomputes each block.

    d out / d v = r, d out / d w = v r² (holomorphic), so grad_v = r^H g and grad_w = Σ_s conj(v) ⊙ (r²)^H g.
    """

    @staticmethod
    def forward(ctx, v: Tensor, z: Tensor, w: Tensor, chunk: int) -> Tensor:
        ctx.save_for_backward(v, z, w)
        ctx.chunk = chunk
        blocks = []
        for l0 in range(0, z.shape[0], chunk):
            r = (z[l0 : l0 + chunk].unsqueeze(-1) - w.unsqueeze(-2)).reciprocal_()  # (H, Lc, N) complex
            blocks.append(r @ v)  # (H, Lc, S)
        return torch.cat(blocks, dim=1)  # (H, L, S)

    @staticmethod
    def backward(ctx, g: Tensor):
        v, z, w = ctx.saved_tensors
        grad_v = torch.zeros_like(v) if ctx.needs_input_grad[0] else None
        grad_w_s = torch.zeros_like(v) if ctx.needs_input_grad[2] else None  # (H, N, S) before the sum over s
        for l0 in range(0, z.shape[0], ctx.chunk):
            r = (z[l0 : l0 + ctx.chunk].unsqueeze(-1) - w.unsqueeze(-2)).reciprocal_()  # (H, Lc, N)
            gc = g[:, l0 : l0 + ctx.chunk]  # (H, Lc, S)
            if grad_v is not None:
                grad_v += r.conj().transpose(-1, -2) @ gc
            if grad_w_s is not None:
                grad_w_s += (r * r).conj().transpose(-1, -2) @ gc
        grad_w = (v.conj() * grad_w_s).sum(-1) if grad_w_s is not None else None
        return grad_v, None, grad_w, None


class _CauchyConj(torch.autograd.Function):
    """out[s, h, l] = Σ_n (a z_l + b) / (z_l² + β z_l + α), all on real tensors, chunked over l.

    With r = 1/q, q = z² + β z + α (complex, per (l, n)) and g the incoming (complex) gradient, for real parameters
    grad_x = Re Σ_l conj(∂out/∂x) g:  grad_a = Re(r^H z̄ g), grad_b = Re(r^H g),
    grad_α = -Σ_s [a Re((r²)^H z̄ g) + b Re((r²)^H g)],  grad_β = -Σ_s [a Re((r²)^H z̄² g) + b Re((r²)^H z̄ g)].
    Each Re(M^H G) is one real matmul: Re(M)^T Re(G) + Im(M)^T Im(G), accumulated block by block.
    """

    @staticmethod
    def forward(ctx, a, b, alpha, beta, x, y, chunk):  # a, b (S, H, N); alpha, beta (H, N); x, y (L,): all real
        ctx.save_for_backward(a, b, alpha, beta, x, y)
        ctx.chunk = chunk
        S, L = a.shape[0], x.shape[0]
        ab = torch.cat([a, b]).permute(1, 2, 0)  # (H, N, 2S)
        out = torch.empty(S, a.shape[1], L, dtype=_COMPLEX[a.dtype], device=a.device)  # (S, H, L) complex
        out_ri = torch.view_as_real(out)  # (S, H, L, 2)
        blocks = _Blocks(alpha, beta, x, y, chunk)
        for l0 in range(0, L, chunk):
            xc, yc = x[l0 : l0 + chunk, None], y[l0 : l0 + chunk, None]  # (Lc, 1)
            rr, ri = blocks.reciprocal_q(l0)  # (H, Lc, N) each: Re, Im of 1/q
            P, Q = torch.bmm(rr, ab), torch.bmm(ri, ab)  # Re / Im of r @ [a, b]: (H, Lc, 2S)
            Pa, Pb, Qa, Qb = P[..., :S], P[..., S:], Q[..., :S], Q[..., S:]
            out_ri[:, :, l0 : l0 + chunk, 0] = (xc * Pa - yc * Qa + Pb).permute(2, 0, 1)  # Re(z (r@a) + r@b)
            out_ri[:, :, l0 : l0 + chunk, 1] = (xc * Qa + yc * Pa + Qb).permute(2, 0, 1)  # Im(...)
        return out

    @staticmethod
    def backward(ctx, g):  # g (S, H, L) complex
        a, b, alpha, beta, x, y = ctx.saved_tensors
        S, H, N = a.shape
        M1 = a.new_zeros(H, 2 * S, N)  # [Re r^H g, Re r^H z̄g]^T
        M2r = a.new_zeros(H, 3 * S, N)  # Re(r)² - Im(r)² part of [Re (r²)^H (g, z̄g, z̄²g)]^T
        M2i = a.new_zeros(H, 3 * S, N)  # Re(r) Im(r) part
        blocks = _Blocks(alpha, beta, x, y, ctx.chunk)
        z_bar = torch.complex(x, -y)  # (L,)
        for l0 in range(0, x.shape[0], ctx.chunk):
            sl = slice(l0, l0 + ctx.chunk)
            gc = g[:, :, sl]  # (S, H, Lc) complex
            gz = gc * z_bar[sl]  # z̄ g
            G = torch.cat([gc, gz, gz * z_bar[sl]]).transpose(0, 1)  # (H, 3S, Lc) complex: [g, z̄g, z̄²g]
            G_r, G_i = G.real, G.imag
            rr, ri = blocks.reciprocal_q(l0)  # (H, Lc, N)
            M1.baddbmm_(G_r[:, : 2 * S], rr).baddbmm_(G_i[:, : 2 * S], ri)
            r2r, r2i_half = blocks.square(rr, ri)  # Re r², Im r² / 2 (overwrites rr)
            M2r.baddbmm_(G_r, r2r)
            M2i.baddbmm_(G_i, r2i_half)
        M1, M2 = M1.transpose(0, 1), (M2r + 2 * M2i).transpose(0, 1)  # (2S, H, N), (3S, H, N)
        grad_a, grad_b = M1[S:], M1[:S]
        grad_alpha = -(a * M2[S : 2 * S] + b * M2[:S]).sum(0)
        grad_beta = -(a * M2[2 * S :] + b * M2[S : 2 * S]).sum(0)
        return grad_a, grad_b, grad_alpha, grad_beta, None, None, None


class _Blocks:
    """Re and Im of r = 1 / q, q = z² + β z + α, one block of nodes at a time, in reused buffers.

    For z = x + iy (x, y: (Lc, 1)) and real α, β (H, N): q = (x² - y² + β x + α) + i y (2x + β), 1/q = conj(q)/|q|².
    Purely imaginary nodes (the S4 case) skip the x terms. The (H, Lc, N) buffers are allocated once per call and
    reused for every block: fresh multi-MiB allocations would cost a page fault per 4 KiB each time.
    """

    def __init__(self, alpha: Tensor, beta: Tensor, x: Tensor, y: Tensor, chunk: int):
        self.alpha, self.beta, self.x, self.y, self.chunk = alpha.unsqueeze(-2), beta.unsqueeze(-2), x, y, chunk
        self.neg_beta = -self.beta  # (H, 1, N)
        self.imaginary = bool((x == 0).all())
        self.buffers: dict[int, tuple[Tensor, Tensor, Tensor, Tensor]] = {}

    def _get(self, n: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if n not in self.buffers:
            shape = (self.alpha.shape[0], n, self.alpha.shape[-1])
            self.buffers[n] = tuple(self.alpha.new_empty(shape) for _ in range(4))
        return self.buffers[n]

    def reciprocal_q(self, l0: int) -> tuple[Tensor, Tensor]:
        x, y = self.x[l0 : l0 + self.chunk, None], self.y[l0 : l0 + self.chunk, None]  # (Lc, 1)
        qr, qi_neg, inv, _ = self._get(y.shape[0])
        if self.imaginary:
            torch.sub(self.alpha, y * y, out=qr)  # Re q = α - y²
            torch.mul(self.neg_beta, y, out=qi_neg)  # -Im q = -β y
        else:
            torch.addcmul(self.alpha + (x * x - y * y), self.beta, x, out=qr)
            torch.mul(-y, 2 * x + self.beta, out=qi_neg)
        torch.mul(qr, qr, out=inv).addcmul_(qi_neg, qi_neg).reciprocal_()  # 1 / |q|²
        return qr.mul_(inv), qi_neg.mul_(inv)

    def square(self, rr: Tensor, ri: Tensor) -> tuple[Tensor, Tensor]:
        """(Re r², Im r² / 2) = (rr² - ri², rr·ri); overwrites rr."""
        r2r = self._get(rr.shape[1])[3]
        torch.mul(rr, rr, out=r2r).addcmul_(ri, ri, value=-1)
        return r2r, rr.mul_(ri)


# ---- input checks ---------------------------------------------------------------------------------------------------
def _check(v, z, w, impl):
    if impl not in IMPLS:
        raise ValueError(f"cauchy: impl must be one of {IMPLS}, got {impl!r}")
    for name, t in (("v", v), ("z", z), ("w", w)):
        if not isinstance(t, Tensor):
            raise TypeError(f"cauchy: {name} must be a torch.Tensor, got {type(t).__name__}")
    if z.dim() != 1 or z.shape[0] < 1:
        raise ValueError(f"cauchy: z must have shape (L,) with L >= 1, got {tuple(z.shape)}")
    if w.dim() < 1 or v.dim() < w.dim():
        raise ValueError(f"cauchy: need w (*Hb, N) and v (*S, *Hb, N); got v {tuple(v.shape)}, w {tuple(w.shape)}")
    if v.shape[v.dim() - w.dim() :] != w.shape:
        raise ValueError(f"cauchy: the trailing dims of v {tuple(v.shape)} must equal w's shape {tuple(w.shape)}")
    dtype = torch.promote_types(torch.promote_types(v.dtype, z.dtype), w.dtype)
    if not dtype.is_complex:
        dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    return v.to(dtype), z.to(dtype), w.to(dtype)


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
