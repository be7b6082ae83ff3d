"""ssmkit.ops.vandermonde: factored product == materialised reference == the defining sum, values and gradients."""

import pytest
import torch

from ssmkit.ops import vandermonde, vandermonde_reference
from ssmkit.ops.vandermonde import powers

C128 = torch.complex128


def _inputs(S=(2,), Hb=(3,), N=5):
    v = torch.randn(*S, *Hb, N, dtype=C128)
    x = (torch.rand(*Hb, N, dtype=torch.float64) * 0.5 + 0.5) * torch.exp(
        1j * 3 * torch.rand(*Hb, N, dtype=torch.float64)
    )
    return v, x


def test_reference_is_the_defining_sum():
    v, x = _inputs(S=(), Hb=(2,), N=3)
    out = vandermonde_reference(v, x, 6)
    for h in range(2):
        for l in range(6):
            assert abs(out[h, l] - sum(v[h, n] * x[h, n] ** l for n in range(3))) < 1e-13


def test_powers_by_doubling():
    x = torch.tensor([0.9 + 0.2j, -0.5 + 0j], dtype=C128)
    p = powers(x, 11)
    assert p.shape == (11, 2)
    for l in range(11):
        torch.testing.assert_close(p[l], x**l, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("L", [1, 2, 3, 5, 16, 17, 100, 257])
@pytest.mark.parametrize("shapes", [((2,), (3,)), ((), (4,)), ((2,), ())])
def test_fast_equals_reference_values_and_grads(L, shapes):
    S, Hb = shapes
    v, x = _inputs(S=S, Hb=Hb)
    v.requires_grad_(True)
    x.requires_grad_(True)
    g = torch.randn(*S, *Hb, L, dtype=C128)
    outs, grads = [], []
    for impl in ("fast", "reference"):
        out = vandermonde(v, x, L, impl=impl)
        outs.append(out)
        grads.append(torch.autograd.grad((out * g.conj()).real.sum(), (v, x), materialize_grads=True))
    assert outs[0].shape == (*S, *Hb, L)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    for a, b in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-11)


def test_real_inputs():
    v, x = torch.randn(3, 4, dtype=torch.float64), torch.rand(3, 4, dtype=torch.float64)
    torch.testing.assert_close(vandermonde(v, x, 50), vandermonde_reference(v, x, 50), rtol=1e-12, atol=1e-13)


def test_bad_input():
    v, x = _inputs()
    with pytest.raises(ValueError, match="L must be an int >= 1"):
        vandermonde(v, x, 0)
    with pytest.raises(ValueError, match="matching trailing dims"):
        vandermonde(v, x[:, :-1], 4)
    with pytest.raises(ValueError, match="impl"):
        vandermonde(v, x, 4, impl="triton")


@pytest.mark.parametrize("L", [1, 6, 100])
def test_real_part(L):
    v, x = _inputs()
    v.requires_grad_(True)
    x.requires_grad_(True)
    outs, grads = [], []
    for impl in ("fast", "reference"):
        out = vandermonde(v, x, L, real_part=True, impl=impl)
        assert not out.is_complex()
        outs.append(out)
        grads.append(torch.autograd.grad(out.sum(), (v, x), materialize_grads=True))
    torch.testing.assert_close(outs[0], vandermonde(v, x, L).real.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    for a, b in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-11)
