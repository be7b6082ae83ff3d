"""ssmkit.ssm.diag_kernel (S4D): K[l] = 2 Re Σ C B̄ Ā^l against a direct float64 evaluation; channels; stability."""

import pytest
import torch

from ssmkit.hippo import diag_init
from ssmkit.ssm import diag_discrete, diag_kernel

F64, C128 = torch.float64, torch.complex128
INITS = ("legs", "inv", "lin", "real", "rand")


def _direct_kernel(A, B, C, dt, L, disc):
    """Textbook per-mode formulas, then the full conjugate-pair system's powers by a loop."""
    dtA = dt[:, None] * A
    if disc == "zoh":
        Ab, Bb = torch.exp(dtA), (torch.exp(dtA) - 1) / A * B
    else:
        Ab, Bb = (1 + dtA / 2) / (1 - dtA / 2), dt[:, None] * B / (1 - dtA / 2)
    Ab_f, Bb_f, C_f = (torch.cat([t, t.conj()], -1) for t in (Ab, Bb, C))
    x, ks = Bb_f, []
    for _ in range(L):
        ks.append((C_f * x).sum(-1))
        x = Ab_f * x
    K = torch.stack(ks, -1)
    assert K.imag.abs().max() <= 1e-12 * K.abs().max()
    return K.real


def _system(init="legs", H=3, N=16):
    A, B = diag_init(init, N)
    A, B = A.expand(H, -1).clone(), B.expand(H, -1).clone()
    C = torch.randn(H, A.shape[-1], dtype=C128)
    dt = torch.logspace(-3, -1, H, dtype=F64)
    return A, B, C, dt


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
def test_equals_direct_evaluation(init, disc):
    A, B, C, dt = _system(init)
    for L in (1, 5, 1000):
        K = diag_kernel(A, B, C, dt, L, disc)
        want = _direct_kernel(A, B, C, dt, L, disc)
        assert K.shape == (3, L) and not K.is_complex()
        assert ((K - want).abs().max() / want.abs().max()) < 1e-10


@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
def test_channels(disc):
    A, B, _, dt = _system()
    C = torch.randn(4, 3, A.shape[-1], dtype=C128)
    K = diag_kernel(A, B, C, dt, 50, disc)
    assert K.shape == (4, 3, 50)
    torch.testing.assert_close(K[2], diag_kernel(A, B, C[2], dt, 50, disc))


@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
def test_fast_equals_reference_with_grads(disc):
    A, B, C, dt = _system("inv", H=2, N=8)
    A.requires_grad_(True), B.requires_grad_(True), C.requires_grad_(True), dt.requires_grad_(True)
    outs, grads = [], []
    for impl in ("fast", "reference"):
        K = diag_kernel(A, B, C, dt, 77, disc, impl=impl)
        outs.append(K)
        grads.append(torch.autograd.grad((K * torch.linspace(-1, 1, 77, dtype=F64)).sum(), (A, B, C, dt)))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-11, atol=1e-12)
    for a, b in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("init", INITS)
def test_stable_and_finite_at_a_million_steps(init):
    A, B, C, dt = _system(init, H=2, N=8)
    for disc in ("zoh", "bilinear"):
        Ab, _ = diag_discrete(A, B, dt, disc)
        assert Ab.abs().max() <= 1
        K = diag_kernel(A, B, C, dt, 10**6, disc)
        assert K.shape == (2, 10**6) and torch.isfinite(K).all()


def test_float32_matches_float64():
    A, B, C, dt = _system("legs", N=64)
    K64 = diag_kernel(A, B, C, dt, 4096)
    K32 = diag_kernel(A.to(torch.complex64), B.to(torch.complex64), C.to(torch.complex64), dt.float(), 4096)
    assert K32.dtype == torch.float32
    assert ((K32.double() - K64).abs().max() / K64.abs().max()) < 1e-5


def test_bad_input():
    A, B, C, dt = _system()
    with pytest.raises(ValueError, match=r"A must have shape \(H, N/2\)"):
        diag_kernel(A[0], B, C, dt, 4)
    with pytest.raises(ValueError, match="B must have A's shape"):
        diag_kernel(A, B[:2], C, dt, 4)
    with pytest.raises(ValueError, match="C must have shape"):
        diag_kernel(A, B, C[:, :3], dt, 4)
    with pytest.raises(ValueError, match="dt must be real of shape"):
        diag_kernel(A, B, C, dt[:2], 4)
    with pytest.raises(ValueError, match="L must be an int >= 1"):
        diag_kernel(A, B, C, dt, 0)
    with pytest.raises(ValueError, match="disc must be one of"):
        diag_kernel(A, B, C, dt, 4, "euler")
    with pytest.raises(TypeError, match="A must be complex"):
        diag_kernel(A.real, B, C, dt, 4)
