"""Long convolution y = K * u + D u by FFT  (S4, Gu et al., ICLR 2022, Sec. 3.1, "convolutional view").

Causal:        y[t] = Σ_{s <= t} K[t - s] u[s] + D u[t].
Bidirectional: y[t] = Σ_{s <= t} K_f[t - s] u[s] + Σ_{s > t} K_b[s - t - 1] u[s] + D u[t],
               K = stack(K_f, K_b) on a leading dim of size 2: K[0] looks at the past (lag 0 included), K[1] at the
               future, its entry 0 acting on the next token. (The same convention as the S4 code, which splits its
               channels in two and flips the second half.)

The fast path zero-pads to length 2L (no wrap-around) and multiplies rfft's; the reference is a direct convolution
(torch conv1d, O(L²) time, no large buffers) used to check it.

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

    ``impl``: "fast" / "auto" (FFT of length 2L), "reference" (direct convolution).
    """
    has_channels = _check(u, K, D, bidirectional, impl)
    L = u.shape[1]
    K = _fit_length(K, L)  # (..., L)
    if bidirectional:
        K = torch.cat([K[0], K[1].new_zeros(K[1].shape[:-1] + (1,)), K[1, ..., :-1].flip(-1)], dim=-1)  # (..., 2L)
        # full two-sided kernel on a circle of length 2L: index t - s (mod 2L); K_b[j] sits at 2L - 1 - j
    Kc = K if has_channels else K.unsqueeze(0)  # (C, H, Lk')
    if impl == "reference":
        y = _conv_reference(u, Kc, bidirectional)  # (B, L, C, H)
    else:
        y = _conv_fft(u, Kc)  # (B, L, C, H)
    if D is not None:
        Dc = D if D.dim() == 2 else D.unsqueeze(0)  # (C, H)
        y = y + u.unsqueeze(-2) * Dc
    return y if has_channels else y.squeeze(-2)


def _conv_fft(u: Tensor, K: Tensor) -> Tensor:
    """u (B, L, H), K (C, H, Lk) with Lk in {L, 2L} -> (B, L, C, H); circular convolution of length 2L."""
    L = u.shape[1]
    n = 2 * L
    u_f = torch.fft.rfft(u, n=n, dim=1)  # (B, n/2+1, H) complex
    K_f = torch.fft.rfft(K, n=n, dim=-1)  # (C, H, n/2+1) complex
    y = torch.fft.irfft(u_f.unsqueeze(2) * K_f.permute(2, 0, 1), n=n, dim=1)  # (B, n, C, H)
    return y[:, :L]


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
