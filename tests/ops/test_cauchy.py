"""ssmkit.ops.cauchy: fast (chunked, custom backward) == reference == the defining sum, values and gradients."""

import pytest
import torch

from ssmkit.ops import cauchy, cauchy_reference

C128 = torch.complex128


def _inputs(S=(2,), Hb=(3,), N=5, L=7, dtype=C128):
    v = torch.randn(*S, *Hb, N, dtype=dtype)
    w = torch.complex(-torch.rand(*Hb, N) - 0.1, 3 * torch.randn(*Hb, N)).to(dtype)
    z = torch.complex(0.3 * torch.randn(L), 4 * torch.randn(L)).to(dtype)
    return v, z, w


@pytest.mark.parametrize("conj", [False, True])
def test_reference_is_the_defining_sum(conj):
    v, z, w = _inputs(S=(), Hb=(2,), N=3, L=4)
    out = cauchy_reference(v, z, w, conj=conj)
    for h in range(2):
        for l in range(4):
            want = sum(v[h, n] / (z[l] - w[h, n]) for n in range(3))
            if conj:
                want = want + sum(v[h, n].conj() / (z[l] - w[h, n].conj()) for n in range(3))
            assert abs(out[h, l] - want) < 1e-12


@pytest.mark.parametrize("conj", [False, True])
@pytest.mark.parametrize("shapes", [((2,), (3,)), ((), (4,)), ((2, 3), (2,)), ((), ())])
@pytest.mark.parametrize("chunk", [1, 3, None])
def test_fast_equals_reference_values_and_grads(conj, shapes, chunk):
    S, Hb = shapes
    v, z, w = _inputs(S=S, Hb=Hb)
    v.requires_grad_(True)
    w.requires_grad_(True)
    g = torch.randn(*S, *Hb, z.shape[0], dtype=C128)
    outs, grads = [], []
    for impl in ("fast", "reference"):
        out = cauchy(v, z, w, conj=conj, impl=impl, chunk=chunk)
        outs.append(out)
        grads.append(torch.autograd.grad((out * g.conj()).real.sum(), (v, w)))
    assert outs[0].shape == (*S, *Hb, z.shape[0])
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    for a, b in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("conj", [False, True])
def test_gradcheck_fast(conj):
    v, z, w = _inputs(S=(2,), Hb=(2,), N=3, L=5)
    v.requires_grad_(True)
    w.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v, w: cauchy(v, z, w, conj=conj, impl="fast", chunk=2), (v, w))


def test_conj_on_purely_imaginary_nodes():
    """The S4 nodes z = 2i tan(πk/L) take the purely imaginary branch of the fast path."""
    v, _, w = _inputs(S=(4,), Hb=(3,), N=6)
    z = torch.complex(
        torch.zeros(9, dtype=torch.float64), 2 * torch.tan(torch.pi * torch.arange(9, dtype=torch.float64) / 20)
    )
    torch.testing.assert_close(cauchy(v, z, w, conj=True), cauchy_reference(v, z, w, conj=True), rtol=1e-12, atol=0)


@pytest.mark.parametrize("conj", [False, True])
def test_complex64_accuracy(conj):
    v, z, w = _inputs(S=(4,), Hb=(8,), N=32, L=100)
    exact = cauchy_reference(v, z, w, conj=conj)
    fast = cauchy(v.to(torch.complex64), z.to(torch.complex64), w.to(torch.complex64), conj=conj)
    assert fast.dtype == torch.complex64
    assert ((fast.to(C128) - exact).abs().max() / exact.abs().max()) < 1e-5


def test_z_with_grad_uses_reference_on_auto_and_is_refused_by_fast():
    v, z, w = _inputs()
    z.requires_grad_(True)
    cauchy(v, z, w).abs().sum().backward()
    assert z.grad is not None
    with pytest.raises(ValueError, match="z requires grad"):
        cauchy(v, z, w, impl="fast")


def test_bad_input():
    v, z, w = _inputs()
    with pytest.raises(ValueError, match="z must have shape"):
        cauchy(v, z.reshape(1, -1), w)
    with pytest.raises(ValueError, match="trailing dims"):
        cauchy(v, z, w[:, :-1])
    with pytest.raises(ValueError, match="impl"):
        cauchy(v, z, w, impl="cuda")
    with pytest.raises(ValueError, match="L >= 1"):
        cauchy(v, z[:0], w)
    with pytest.raises(TypeError, match="v must be a torch.Tensor"):
        cauchy([1.0], z, w)
