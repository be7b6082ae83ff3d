"""ssmkit.ops.fftconv: FFT == direct convolution == the defining sums, causal and bidirectional, with channels."""

import pytest
import torch

from ssmkit.ops import fftconv

F64 = torch.float64


def _loop(u, K, D, bidirectional):
    """y[t] = Σ_{s<=t} K_f[t-s] u[s] (+ Σ_{s>t} K_b[s-t-1] u[s]) + D u[t], for K (H, L) / (2, H, L)."""
    Bsz, L, H = u.shape
    y = torch.zeros_like(u)
    Kf = K[0] if bidirectional else K
    for t in range(L):
        for s in range(L):
            if s <= t:
                y[:, t] += Kf[:, t - s] * u[:, s]
            elif bidirectional:
                y[:, t] += K[1][:, s - t - 1] * u[:, s]
    return y + (D * u if D is not None else 0)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_D", [False, True])
def test_matches_defining_sum(bidirectional, with_D):
    u = torch.randn(2, 7, 3, dtype=F64)
    K = torch.randn(*((2,) if bidirectional else ()), 3, 7, dtype=F64)
    D = torch.randn(3, dtype=F64) if with_D else None
    want = _loop(u, K, D, bidirectional)
    for impl in ("fast", "reference"):
        torch.testing.assert_close(fftconv(u, K, D, bidirectional=bidirectional, impl=impl), want)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("Lk", [5, 9, 13])
def test_channels_and_kernel_length(bidirectional, Lk):
    u = torch.randn(2, 9, 3, dtype=F64, requires_grad=True)
    K = torch.randn(*((2,) if bidirectional else ()), 4, 3, Lk, dtype=F64, requires_grad=True)
    D = torch.randn(4, 3, dtype=F64, requires_grad=True)
    g = torch.randn(2, 9, 4, 3, dtype=F64)
    outs, grads = [], []
    for impl in ("fast", "reference"):
        y = fftconv(u, K, D, bidirectional=bidirectional, impl=impl)
        outs.append(y)
        grads.append(torch.autograd.grad((y * g).sum(), (u, K, D)))
    assert outs[0].shape == (2, 9, 4, 3)
    torch.testing.assert_close(outs[0], outs[1])
    for a, b in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(a, b)
    # channel c equals the single-channel convolution with K[..., c, :, :]
    Kc = K[:, 1] if bidirectional else K[1]
    torch.testing.assert_close(outs[0][:, :, 1], fftconv(u, Kc, D[1], bidirectional=bidirectional))


def test_float32_accuracy():
    u = torch.randn(2, 1000, 4, dtype=F64)
    K = torch.randn(4, 1000, dtype=F64) * torch.exp(-torch.arange(1000) / 200)
    exact = fftconv(u, K, impl="reference")
    y32 = fftconv(u.float(), K.float())
    assert ((y32.double() - exact).abs().max() / exact.abs().max()) < 1e-5


def test_bad_input():
    u = torch.randn(2, 7, 3)
    with pytest.raises(ValueError, match=r"u must be a tensor of shape \(B, L, H\)"):
        fftconv(u[0], torch.randn(3, 7))
    with pytest.raises(ValueError, match="H=3"):
        fftconv(u, torch.randn(4, 7))
    with pytest.raises(ValueError, match=r"\(2, H, L\)"):
        fftconv(u, torch.randn(3, 3, 7), bidirectional=True)
    with pytest.raises(ValueError, match="D must have shape"):
        fftconv(u, torch.randn(3, 7), torch.randn(4))
    with pytest.raises(ValueError, match="L >= 1"):
        fftconv(u[:, :0], torch.randn(3, 7))


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("channels", [False, True])
def test_gradcheck_fast(bidirectional, channels):
    """The FFT path has a hand-written backward: torch.autograd.gradcheck in float64 (u, K and D)."""
    u = torch.randn(2, 6, 3, dtype=F64, requires_grad=True)
    shape = ((2,) if bidirectional else ()) + ((2,) if channels else ()) + (3, 5)
    K = torch.randn(*shape, dtype=F64, requires_grad=True)
    D = torch.randn(*((2,) if channels else ()), 3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda u, K, D: fftconv(u, K, D, bidirectional=bidirectional, impl="fast"), (u, K, D)
    )
