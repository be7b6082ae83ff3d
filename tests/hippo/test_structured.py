"""The O(N) structured pieces: the blocked linear recurrence and the LegT product / solve, against dense references."""

import pytest
import torch

from ssmkit.hippo import transition
from ssmkit.hippo.legt import legt_factors, legt_mult, legt_solve
from ssmkit.hippo.recurrence import linear_recurrence, linear_recurrence_reference


@pytest.mark.parametrize(
    "coeffs",
    [
        lambda N: torch.rand(N, dtype=torch.float64) * 2 - 1,  # mixed signs, |a| < 1
        lambda N: torch.full((N,), 1e-3, dtype=torch.float64),  # tiny: products leave float32 range fast
        lambda N: torch.full((N,), 1.5, dtype=torch.float64),  # growing
        lambda N: torch.where(torch.arange(N) % 7 == 3, 0.0, 0.9).to(torch.float64),  # exact zeros
    ],
)
@pytest.mark.parametrize("block", [1, 4, 16, 1000])
def test_linear_recurrence_matches_loop(coeffs, block):
    N = 37
    a = coeffs(N)
    e = torch.randn(3, N, dtype=torch.float64)
    h0 = torch.randn(3, dtype=torch.float64)
    H, h = linear_recurrence(a, e, h0, block=block)
    H0, h_ref = linear_recurrence_reference(a, e, h0)
    scale = H0.abs().max()
    assert torch.allclose(H, H0, rtol=0, atol=1e-12 * scale) and torch.allclose(h, h_ref, rtol=0, atol=1e-12 * scale)
    H32, _ = linear_recurrence(a.float(), e.float(), h0.float(), block=block)
    assert torch.isfinite(H32).all() and (H32.double() - H0).abs().max() <= 1e-5 * scale


def test_linear_recurrence_gradient():
    a = torch.rand(20, dtype=torch.float64) - 0.5
    e = torch.randn(2, 20, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 20, dtype=torch.float64)
    (g,) = torch.autograd.grad((linear_recurrence(a, e, block=6)[0] * w).sum(), e)
    (g0,) = torch.autograd.grad((linear_recurrence_reference(a, e)[0] * w).sum(), e)
    assert torch.allclose(g, g0, atol=1e-12)


@pytest.mark.parametrize("N", [1, 2, 3, 8, 65, 256])
@pytest.mark.parametrize("gamma", [1e-8, 1e-3, 0.5, 1e3])
def test_legt_mult_and_solve_match_dense(N, gamma):
    A, _ = transition("legt", N, convention="paper")  # window 1: A = -R S R
    x = torch.randn(3, N, dtype=torch.float64)
    assert torch.allclose(legt_mult(x), x @ A.T, atol=1e-10 * max(1.0, A.abs().max().item()))
    y = legt_solve(x, gamma, legt_factors(N, gamma))
    y0 = torch.linalg.solve(torch.eye(N, dtype=torch.float64) - gamma * A, x.T).T
    assert (y - y0).abs().max() <= 1e-12 * y0.abs().max()  # measured <= 3e-15
