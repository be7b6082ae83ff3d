"""Long convolution y = K * u + D u by FFT  (S4, Gu et al., ICLR 2022, Sec. 3.1, "convolutional view").

Causal:        y[t] = Σ_{s <= t} K[t - s] u[s] + D u[t].
Bidirectional: y[t] = Σ_{s <= t} K_f[t - s] u[s] + Σ_{s > t} K_b[s - t - 1] u[s] + D u[t],
               K = stack(K_f, K_b) on a leading dim of size 2: K[0] looks at the past (lag 0 included), K[1] at the
               future, its entry 0 acting on the next token. (The same convention as the S4 code, which splits its
               channels in two and flips the second half.)

The fast path zero-pads to length 2L (no wrap-around) and multiplies rfft's; the reference is a direct convolution
(torch conv1d, O(L²) time, no large buffers) used to check it. The skip D u is folded into the kernel's lag 0
(K[0] + D), so it costs nothing beyond the convolution.

Fast path, forward and backward (a hand-written backward, `_FFTConv`): with n = 2L, U = rfft(u, n), K̂ = rfft(K, n),
G = rfft(dy, n) (time on the last axis, u and dy zero-padded):

    y  = irfft(U K̂)[:L]                      (circular convolution of length 2L == the linear one)
    du = irfft(Σ_c G_c conj(K̂_c))[:L]         du[s] = Σ_t dy[t] K[t - s]      (a correlation)
    dK = irfft(Σ_b G_b conj(U_b))[:Lk]        dK[j] = Σ_t dy[t] u[t - j]

Four batched real FFTs per call (two forward, two backward). Autograd through torch.fft would instead take the
backward of rfft(u, n) as a full complex FFT of length n of a zero-filled spectrum, and work on tensors whose time
axis is innermost while the rest of the model has channels innermost; here the time axis is moved inside the padded
buffer (one copy in, one out, both ways) and every FFT runs on contiguous rows.

Shapes: u (B, L, H) real, batch-first. K (H, Lk) or with output channels (C, H, Lk); bidirectional: (2, H, Lk) or
(2, C, H, Lk). Lk < L is zero-padded, Lk > L truncated. D: None, (H,) or (C, H).
Output: (B, L, H), or (B, L, C, H) when K has channels.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

IMPLS = ("auto", "fast", "reference")


def fftconv(
    u: Tensor, K: Tensor, D: Tensor | None = None, *, bidirectional: bool = False, impl: str = "auto"
) -> Tensor:
    """y = K * u (+ D u).  u (B, L, H); K (H, Lk) / (C, H, Lk) [with a leading 2 if bidirectional] -> y (B, L, [C,] H).

    ``impl``: "fast" / "auto" (FFT of length 2L, hand-written backward), "reference" (direct convolution, autograd).
    """
    has_channels = _check(u, K, D, bidirectional, impl)
    L = u.shape[1]
    K = _fit_length(K, L)  # (..., L)
    if bidirectional:
        K = torch.cat([K[0], K[1].new_zeros(K[1].shape[:-1] + (1,)), K[1, ..., :-1].flip(-1)], dim=-1)  # (..., 2L)
        # full two-sided kernel on a circle of length 2L: index t - s (mod 2L); K_b[j] sits at 2L - 1 - j
    Kc = K if has_channels else K.unsqueeze(0)  # (C, H, Lk')
    Dc = None if D is None else (D if D.dim() == 2 else D.unsqueeze(0))  # (C, H) or (1, H)
    if impl == "reference":
        y = _conv_reference(u, Kc, bidirectional)  # (B, L, C, H)
        if Dc is not None:
            y = y + u.unsqueeze(-2) * Dc
    else:
        if Dc is not None:  # D u is the convolution with D at lag 0: K[0] + D
            Kc = torch.cat([Kc[..., :1] + Dc.unsqueeze(-1), Kc[..., 1:]], dim=-1)  # (C, H, Lk')
        y = _FFTConv.apply(u, Kc)  # (B, L, C, H)
    return y if has_channels else y.squeeze(-2)


def _rfft_time(x: Tensor, n: int) -> Tensor:
    """rfft over the time axis of x (B, L, *rest), zero-padded to n: -> (B, *rest, n/2+1) complex, time last.

    The padded buffer has time innermost, so the FFT runs on contiguous rows (one transposing copy into it)."""
    L = x.shape[1]
    buf = x.new_empty(x.shape[:1] + x.shape[2:] + (n,))  # (B, *rest, n) real
    buf[..., :L] = x.movedim(1, -1)
    buf[..., L:] = 0  # only the padding is zeroed
    return torch.fft.rfft(buf, dim=-1)


def _time_second(y: Tensor, L: int) -> Tensor:
    """(B, *rest, n) real -> its first L steps as a contiguous (B, L, *rest) (the model's layout)."""
    return y[..., :L].movedim(-1, 1).contiguous()


class _FFTConv(torch.autograd.Function):
    """y = K * u by FFT of length n = 2L with the backward of the module docstring.

    u (B, L, H) real, K (C, H, Lk) real with Lk in {L, 2L} (2L: a two-sided kernel on the circle) -> y (B, L, C, H).
    """

    @staticmethod
    def forward(ctx, u: Tensor, K: Tensor) -> Tensor:
        L, Lk = u.shape[1], K.shape[-1]
        n = 2 * L
        dtype = torch.promote_types(u.dtype, K.dtype)
        if dtype not in (torch.float32, torch.float64):  # torch's CPU FFT has no half precision
            dtype = torch.float32
        u_f = _rfft_time(u.to(dtype), n)  # (B, H, n/2+1) complex
        K_f = torch.fft.rfft(K.to(dtype), n=n, dim=-1)  # (C, H, n/2+1) complex
        y = torch.fft.irfft(u_f.unsqueeze(1) * K_f, n=n, dim=-1)  # (B, C, H, n) real
        ctx.save_for_backward(u_f, K_f)
        ctx.shapes = (L, Lk, u.dtype, K.dtype)
        return _time_second(y, L).to(torch.promote_types(u.dtype, K.dtype))  # (B, L, C, H)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        u_f, K_f = ctx.saved_tensors
        L, Lk, u_dtype, K_dtype = ctx.shapes
        n = 2 * L
        G = _rfft_time(dy.to(u_f.real.dtype), n)  # (B, C, H, n/2+1) complex
        du = dK = None
        if ctx.needs_input_grad[0]:
            GK = G * K_f.conj().resolve_conj()  # (B, C, H, n/2+1)
            GK = GK.squeeze(1) if GK.shape[1] == 1 else GK.sum(1)  # (B, H, n/2+1)
            du = _time_second(torch.fft.irfft(GK, n=n, dim=-1), L).to(u_dtype)  # (B, L, H)
        if ctx.needs_input_grad[1]:
            # Σ_b G conj(U) = conj(Σ_b conj(G) U), formed in G's own storage: a product with a lazily conjugated
            # operand would first copy it (measured ~3x slower than this in-place form)
            G = G.conj_physical_().mul_(u_f.unsqueeze(1))  # (B, C, H, n/2+1): conj(G) U
            GU = G.sum(0).conj()  # (C, H, n/2+1)
            dK = torch.fft.irfft(GU, n=n, dim=-1)[..., :Lk].to(K_dtype)  # (C, H, Lk)
        return du, dK


def _conv_reference(u: Tensor, K: Tensor, bidirectional: bool) -> Tensor:
    """Direct convolution with conv1d: u (B, L, H), K (C, H, Lk) -> (B, L, C, H)."""
    Bsz, L, H = u.shape
    C = K.shape[0]
    x = u.transpose(1, 2)  # (B, H, L)
    if bidirectional:  # K (C, H, 2L): lag d = t - s in (-L, L); lag d >= 0 at K[d], d < 0 at K[2L + d]
        lags = torch.cat([K[..., L + 1 :], K[..., :L]], dim=-1)  # (C, H, 2L - 1): lags -(L-1) .. L-1
        pad = (L - 1, L - 1)
    else:
        lags, pad = K, (L - 1, 0)
    w = lags.flip(-1).permute(1, 0, 2).reshape(H * C, 1, -1)  # conv1d correlates: flip to convolve
    y = F.conv1d(F.pad(x, pad), w, groups=H)  # (B, H*C, L)
    return y.reshape(Bsz, H, C, L).permute(0, 3, 2, 1)  # (B, L, C, H)


def _fit_length(K: Tensor, L: int) -> Tensor:
    Lk = K.shape[-1]
    return K[..., :L] if Lk >= L else F.pad(K, (0, L - Lk))


def _check(u, K, D, bidirectional, impl) -> bool:
    if impl not in IMPLS:
        raise ValueError(f"fftconv: impl must be one of {IMPLS}, got {impl!r}")
    if not isinstance(u, Tensor) or u.dim() != 3:
        got = tuple(u.shape) if isinstance(u, Tensor) else type(u).__name__
        raise ValueError(f"fftconv: u must be a tensor of shape (B, L, H), got {got}")
    if u.shape[1] < 1:
        raise ValueError(f"fftconv: u has length L={u.shape[1]}; need L >= 1")
    H = u.shape[-1]
    if not isinstance(K, Tensor):
        raise TypeError(f"fftconv: K must be a torch.Tensor, got {type(K).__name__}")
    k_dims = K.dim() - (1 if bidirectional else 0)
    want = "(2, H, L) or (2, C, H, L)" if bidirectional else "(H, L) or (C, H, L)"
    if k_dims not in (2, 3) or (bidirectional and K.shape[0] != 2) or K.shape[-2] != H or K.shape[-1] < 1:
        raise ValueError(f"fftconv: K must have shape {want} with H={H} (from u), got {tuple(K.shape)}")
    has_channels = k_dims == 3
    if D is not None:
        want_D = (K.shape[-3], H) if has_channels else (H,)
        if not isinstance(D, Tensor) or (tuple(D.shape) != want_D and tuple(D.shape) != (H,)):
            got = tuple(D.shape) if isinstance(D, Tensor) else type(D).__name__
            raise ValueError(f"fftconv: D must have shape {want_D} (or (H,)), got {got}")
    return has_channels
