"""The FFT convolution's hand-written backward (ops.fftconv._FFTConv) against autograd through the direct reference."""

import pytest
import torch

from ssmkit.ops import fftconv

F64 = torch.float64


def _grads(u, K, D, g, bidirectional, impl):
    y = fftconv(u, K, D, bidirectional=bidirectional, impl=impl)
    inputs = tuple(t for t in (u, K, D) if t is not None)
    return y, torch.autograd.grad((y * g).sum(), inputs)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("channels", [None, 3])
@pytest.mark.parametrize("with_D", [False, True])
def test_fast_equals_reference_values_and_gradients(bidirectional, channels, with_D):
    torch.manual_seed(0)
    B, L, H = 2, 11, 4
    ch = () if channels is None else (channels,)
    u = torch.randn(B, L, H, dtype=F64, requires_grad=True)
    K = torch.randn(*((2,) if bidirectional else ()), *ch, H, L, dtype=F64, requires_grad=True)
    D = torch.randn(*ch, H, dtype=F64, requires_grad=True) if with_D else None
    g = torch.randn(B, L, *ch, H, dtype=F64)
    y_fast, g_fast = _grads(u, K, D, g, bidirectional, "fast")
    y_ref, g_ref = _grads(u, K, D, g, bidirectional, "reference")
    torch.testing.assert_close(y_fast, y_ref)
    for a, b in zip(g_fast, g_ref, strict=True):
        torch.testing.assert_close(a, b)


def test_gradcheck():
    u = torch.randn(2, 6, 3, dtype=F64, requires_grad=True)
    K = torch.randn(3, 6, dtype=F64, requires_grad=True)
    D = torch.randn(3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda u, K, D: fftconv(u, K, D, impl="fast"), (u, K, D))


def test_float32_gradients_close_to_float64():
    torch.manual_seed(1)
    u = torch.randn(3, 500, 8, dtype=F64, requires_grad=True)
    K = (torch.randn(8, 500, dtype=F64) * torch.exp(-torch.arange(500) / 100)).requires_grad_()
    g = torch.randn(3, 500, 8, dtype=F64)
    _, want = _grads(u, K, None, g, False, "reference")
    u32 = u.detach().float().requires_grad_()
    K32 = K.detach().float().requires_grad_()
    _, got = _grads(u32, K32, None, g.float(), False, "fast")
    for a, b in zip(got, want, strict=True):
        assert a.dtype == torch.float32
        assert ((a.double() - b).abs().max() / b.abs().max()) < 1e-5


def test_backward_twice_with_retained_graph_and_strided_grad():
    """The backward must not alter what it saved (a retained graph is backpropagated again) and must accept any
    gradient layout."""
    u = torch.randn(2, 9, 3, dtype=F64, requires_grad=True)
    K = torch.randn(3, 9, dtype=F64, requires_grad=True)
    y = fftconv(u, K, impl="fast")
    g = torch.randn(2, 3, 9, dtype=F64).transpose(1, 2)  # (B, L, H), not contiguous
    first = torch.autograd.grad(y, (u, K), g, retain_graph=True)
    second = torch.autograd.grad(y, (u, K), g)
    _, want = _grads(u, K, None, g, False, "reference")
    for a, b, c in zip(first, second, want, strict=True):
        torch.testing.assert_close(a, c)
        torch.testing.assert_close(b, c)


def test_only_one_input_needs_grad():
    u = torch.randn(2, 7, 3, dtype=F64, requires_grad=True)
    K = torch.randn(3, 7, dtype=F64)
    (du,) = torch.autograd.grad(fftconv(u, K, impl="fast").sum(), (u,))
    (want,) = torch.autograd.grad(fftconv(u, K, impl="reference").sum(), (u,))
    torch.testing.assert_close(du, want)
