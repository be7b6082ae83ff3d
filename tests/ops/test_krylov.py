"""ssmkit.ops.krylov: doubling / factored kernel == the L-step loop, values and gradients."""

import pytest
import torch

from ssmkit.ops import krylov, krylov_reference

F64 = torch.float64


def _inputs(batch=(3,), N=4, dtype=F64):
    A = torch.randn(*batch, N, N, dtype=dtype) / N**0.5
    return A, torch.randn(*batch, N, dtype=dtype), torch.randn(*batch, N, dtype=dtype)


def test_reference_is_the_definition():
    A, b, c = _inputs(batch=())
    X = krylov_reference(5, A, b)
    for l in range(5):
        torch.testing.assert_close(X[:, l], torch.linalg.matrix_power(A, l) @ b)
    torch.testing.assert_close(krylov_reference(5, A, b, c), c @ X)


@pytest.mark.parametrize("L", [1, 2, 3, 8, 13, 64, 100])
@pytest.mark.parametrize("with_c", [False, True])
def test_fast_equals_reference_values_and_grads(L, with_c):
    A, b, c = _inputs()
    for t in (A, b, c):
        t.requires_grad_(True)
    cc = c if with_c else None
    outs, grads = [], []
    for impl in ("fast", "reference"):
        out = krylov(L, A, b, cc, impl=impl)
        outs.append(out)
        g = torch.ones_like(out) + torch.arange(out.numel(), dtype=F64).reshape(out.shape) / out.numel()
        grads.append(torch.autograd.grad((out * g).sum(), (A, b, c), allow_unused=True))
    assert outs[0].shape == ((3, L) if with_c else (3, 4, L))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-11, atol=1e-12)
    for a, b_ in zip(grads[0], grads[1], strict=True):
        if a is None:
            assert b_ is None
        else:
            torch.testing.assert_close(a, b_, rtol=1e-10, atol=1e-11)


def test_complex():
    A, b, c = _inputs(dtype=torch.complex128)
    torch.testing.assert_close(krylov(37, A, b, c), krylov_reference(37, A, b, c))


def test_bad_input():
    A, b, c = _inputs()
    with pytest.raises(ValueError, match="L must be an int >= 1"):
        krylov(0, A, b, c)
    with pytest.raises(ValueError, match=r"A must be a tensor of shape \(..., N, N\)"):
        krylov(4, A[..., :3], b)
    with pytest.raises(ValueError, match="b must have shape"):
        krylov(4, A, b[:2])
    with pytest.raises(ValueError, match="c must have shape"):
        krylov(4, A, b, c[..., :2])
