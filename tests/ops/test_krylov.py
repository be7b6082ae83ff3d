"""ssmkit.ops.krylov: doubling / factored kernel == the L-step loop, values and gradients."""

import pytest
import torch

from ssmkit.ops import krylov, krylov_reference, krylov_state

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


def test_extra_leading_dims_of_b_and_c_broadcast():
    # b (E_b, 1, ..., N) and c (E_c, ..., N) share A: e.g. a batch of states read by several output rows
    A, b, c = _inputs()
    bb = torch.randn(2, 1, 3, 4, dtype=F64)
    cc = torch.randn(5, 3, 4, dtype=F64)
    out = krylov(23, A, bb, cc)
    assert out.shape == (2, 5, 3, 23)
    torch.testing.assert_close(out, krylov_reference(23, A, bb, cc), rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(out[1, 2], krylov(23, A, bb[1, 0], cc[2]), rtol=1e-12, atol=1e-13)
    assert krylov(9, A, bb).shape == (2, 1, 3, 4, 9)


@pytest.mark.parametrize("L", [1, 2, 3, 7, 16, 37, 100])
@pytest.mark.parametrize("with_x0", [False, True])
def test_state_fast_equals_loop_values_and_grads(L, with_x0):
    A, b, _ = _inputs()
    u = torch.randn(2, 3, L, dtype=F64)  # (E, H, L): a batch of input sequences sharing A, b
    x0 = torch.randn(2, 3, 4, dtype=F64) if with_x0 else None
    leaves = [t.requires_grad_(True) for t in (A, b, u) + ((x0,) if with_x0 else ())]
    outs, grads = [], []
    for impl in ("fast", "reference"):
        out = krylov_state(A, b, u, x0, impl=impl)
        outs.append(out)
        w = torch.linspace(-1, 2, out.numel(), dtype=F64).view_as(out)
        g = torch.autograd.grad((out * w).sum(), leaves, allow_unused=True)  # A unused by the fast path at L = 1
        grads.append([torch.zeros_like(t) if gi is None else gi for gi, t in zip(g, leaves, strict=True)])
    assert outs[0].shape == (2, 3, 4)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-11, atol=1e-12)
    for a, b_ in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(a, b_, rtol=1e-10, atol=1e-11)


def test_state_is_the_recurrence_and_complex():
    A, b, _ = _inputs(dtype=torch.complex128)
    u = torch.randn(3, 29, dtype=F64)
    x0 = torch.randn(3, 4, dtype=torch.complex128)
    x = x0
    for l in range(29):
        x = torch.linalg.matrix_power(A, 1) @ x.unsqueeze(-1)
        x = x.squeeze(-1) + b * u[:, l, None]
    torch.testing.assert_close(krylov_state(A, b, u, x0), x, rtol=1e-11, atol=1e-12)


def test_state_bad_input():
    A, b, _ = _inputs()
    u = torch.randn(3, 10, dtype=F64)
    with pytest.raises(ValueError, match="krylov_state: b must have shape"):
        krylov_state(A, b[:2], u)
    with pytest.raises(ValueError, match=r"krylov_state: u must have shape \(\*E, 3, L\)"):
        krylov_state(A, b, u[:2])
    with pytest.raises(ValueError, match="L >= 1"):
        krylov_state(A, b, u[:, :0])
    with pytest.raises(ValueError, match="krylov_state: x0 must have shape"):
        krylov_state(A, b, u, torch.zeros(3, 5, dtype=F64))
    with pytest.raises(ValueError, match="impl must be one of"):
        krylov_state(A, b, u, impl="gpu")
    with pytest.raises(ValueError, match="do not broadcast"):
        krylov(4, A, torch.randn(2, 3, 4, dtype=F64), torch.randn(5, 3, 4, dtype=F64))
