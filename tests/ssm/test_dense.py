"""ssmkit.ssm.dense_kernel (LSSL): K[l] = C Ā^l B̄ against a direct float64 evaluation (materialised Ā, powers)."""

import pytest
import torch

from ssmkit.hippo import transition
from ssmkit.ssm import dense_discrete, dense_kernel

F64 = torch.float64
DISCS = ("euler", "backward_euler", "bilinear", "zoh")


def _direct_discretisation(A, B, dt, disc):
    """Textbook formulas, written independently of ssmkit.hippo.discretize."""
    I = torch.eye(A.shape[-1], dtype=F64)
    dtA, dtB = dt[:, None, None] * A, dt[:, None] * B
    if disc == "euler":
        return I + dtA, dtB
    if disc == "backward_euler":
        inv = torch.linalg.inv(I - dtA)
        return inv, (inv @ dtB[..., None])[..., 0]
    if disc == "bilinear":
        inv = torch.linalg.inv(I - dtA / 2)
        return inv @ (I + dtA / 2), (inv @ dtB[..., None])[..., 0]
    Ab = torch.linalg.matrix_exp(dtA)
    return Ab, torch.linalg.solve(A, ((Ab - I) @ B[..., None]))[..., 0]


def _direct_kernel(A, B, C, dt, L, disc):
    Ab, Bb = _direct_discretisation(A, B, dt, disc)
    x, ks = Bb, []
    for _ in range(L):
        ks.append((C * x).sum(-1))
        x = (Ab @ x[..., None])[..., 0]
    return torch.stack(ks, -1)


def _hippo_system(measure="legs", H=3, N=8):
    A, B = transition(measure, N)
    A = A.to(F64).expand(H, N, N).clone()
    B = B.to(F64).expand(H, N).clone()
    C = torch.randn(H, N, dtype=F64)
    dt = torch.logspace(-3, -1, H, dtype=F64)
    return A, B, C, dt


@pytest.mark.parametrize("disc", DISCS)
@pytest.mark.parametrize("L", [1, 7, 300])
def test_equals_direct_evaluation(disc, L):
    A, B, C, dt = _hippo_system()
    K = dense_kernel(A, B, C, dt, L, disc)
    want = _direct_kernel(A, B, C, dt, L, disc)
    assert K.shape == (3, L)
    assert ((K - want).abs().max() / want.abs().max()) < 1e-10


@pytest.mark.parametrize(
    ("measure", "disc"),
    [
        (m, d)
        for m in ("legt", "lagt", "fout")
        for d in ("backward_euler", "bilinear", "zoh")
        if (m, d) != ("fout", "zoh")
    ],
)
def test_other_measures_equal_direct_evaluation(measure, disc):
    """Stable discretisations (forward Euler is unstable for these at this Δ: its kernel grows, see dense_kernel).
    fout with ZOH is left out only because the direct formula above needs A^{-1} and fout's A is singular."""
    A, B, C, dt = _hippo_system(measure)
    K, want = dense_kernel(A, B, C, dt, 1000, disc), _direct_kernel(A, B, C, dt, 1000, disc)
    assert ((K - want).abs().max() / want.abs().max()) < 1e-10


@pytest.mark.parametrize("disc", DISCS)
def test_random_system_and_fast_equals_reference_with_grads(disc):
    H, N, L = 2, 5, 40
    A = (torch.randn(H, N, N, dtype=F64) / N**0.5 - torch.eye(N, dtype=F64)).requires_grad_(True)
    B, C = torch.randn(H, N, dtype=F64, requires_grad=True), torch.randn(H, N, dtype=F64, requires_grad=True)
    dt = (torch.rand(H, dtype=F64) * 0.2 + 0.05).requires_grad_(True)
    outs, grads = [], []
    for impl in ("fast", "reference"):
        K = dense_kernel(A, B, C, dt, L, disc, impl=impl)
        outs.append(K)
        grads.append(torch.autograd.grad((K * torch.linspace(-1, 1, L, dtype=F64)).sum(), (A, B, C, dt)))
    assert ((outs[0] - _direct_kernel(A, B, C, dt, L, disc)).abs().max() / outs[0].abs().max()) < 1e-10
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-10, atol=1e-12)
    for a, b in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("measure", ["legs", "legt", "lagt", "fout"])
def test_stable_and_finite_at_a_million_steps(measure):
    A, B, C, dt = _hippo_system(measure, H=2, N=8)
    for disc in ("bilinear", "zoh", "backward_euler"):
        Ab, _ = dense_discrete(A, B, dt, disc)
        assert torch.linalg.eigvals(Ab).abs().max() <= 1 + 1e-12
        K = dense_kernel(A, B, C, dt, 10**6, disc)
        assert K.shape == (2, 10**6) and torch.isfinite(K).all()


def test_float32_matches_float64():
    A, B, C, dt = _hippo_system(N=16)
    K64 = dense_kernel(A, B, C, dt, 2000)
    K32 = dense_kernel(A.float(), B.float(), C.float(), dt.float(), 2000)
    assert ((K32.double() - K64).abs().max() / K64.abs().max()) < 1e-5


def test_bad_input():
    A, B, C, dt = _hippo_system()
    with pytest.raises(ValueError, match=r"A must have shape \(H, N, N\)"):
        dense_kernel(A[0], B, C, dt, 4)
    with pytest.raises(ValueError, match="B must have shape"):
        dense_kernel(A, B[:2], C, dt, 4)
    with pytest.raises(ValueError, match="C must have shape"):
        dense_kernel(A, B, C[:, :3], dt, 4)
    with pytest.raises(ValueError, match="dt must be real of shape"):
        dense_kernel(A, B, C, dt[:2], 4)
    with pytest.raises(ValueError, match="L must be an int >= 1"):
        dense_kernel(A, B, C, dt, 0)
    with pytest.raises(ValueError, match="disc must be one of"):
        dense_kernel(A, B, C, dt, 4, "rk4")
