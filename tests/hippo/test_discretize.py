"""Discretisations: orders of convergence to the matrix exponential, diagonal == dense, stability, bad input."""

import math

import pytest
import torch

from ssmkit.hippo import discretize, transition

METHODS = ["euler", "backward_euler", "bilinear", "zoh"]


def _exact(A, B, dt):
    """exp(dt A) and int_0^dt exp(s A) ds B, from an independent route (eigendecomposition; ~1e-12 accurate)."""
    w, V = torch.linalg.eig(A.to(torch.complex128))
    Vi = torch.linalg.inv(V)
    Ab = V @ torch.diag(torch.exp(dt * w)) @ Vi
    Bb = V @ torch.diag(torch.expm1(dt * w) / w) @ Vi @ B.to(torch.complex128)
    return Ab.real, Bb.real


def _one_step_error(A, B, dt, method):
    Ab, Bb = discretize(A, B, dt, method)
    Ae, Be = _exact(A, B, dt)
    return max((Ab - Ae).abs().max().item(), (Bb - Be).abs().max().item())


@pytest.mark.parametrize("method, order", [("euler", 1), ("backward_euler", 1), ("bilinear", 2)])
def test_one_step_order(method, order):
    # local (one-step) error is O(dt^(order + 1)); fit the slope over a decade of dt
    A, B = transition("legs", 8)
    dts = [1e-3 * 2.0**-k for k in range(5)]
    errs = [_one_step_error(A, B, dt, method) for dt in dts]
    slope = (math.log(errs[0]) - math.log(errs[-1])) / (math.log(dts[0]) - math.log(dts[-1]))
    assert abs(slope - (order + 1)) < 0.1, (slope, errs)


@pytest.mark.parametrize("method, order", [("euler", 1), ("backward_euler", 1), ("bilinear", 2)])
def test_global_order(method, order):
    # x(T) by T/dt steps of the homogeneous system against exp(T A) x0: global error O(dt^order)
    A, _ = transition("legt", 6)
    x0 = torch.ones(6, dtype=torch.float64)
    exact = torch.linalg.matrix_exp(A) @ x0
    errs, dts = [], [1 / 64, 1 / 128, 1 / 256]
    for dt in dts:
        Ab, _ = discretize(A, torch.zeros(6, dtype=torch.float64), dt, method)
        errs.append((torch.linalg.matrix_power(Ab, round(1 / dt)) @ x0 - exact).norm().item())
    slope = (math.log(errs[0]) - math.log(errs[-1])) / (math.log(dts[0]) - math.log(dts[-1]))
    assert abs(slope - order) < 0.15, (slope, errs)


@pytest.mark.parametrize("dt", [1e-3, 0.1, 1.0])
def test_zoh_is_exact(dt):
    A, B = transition("legs", 8)
    assert _one_step_error(A, B, dt, "zoh") < 1e-10 * max(1.0, torch.linalg.matrix_exp(dt * A).abs().max().item())


def test_zoh_singular_A():
    # A = 0: Ab = I, Bb = dt B (no inverse of A needed)
    A, B = torch.zeros(3, 3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    Ab, Bb = discretize(A, B, 0.5, "zoh")
    assert torch.allclose(Ab, torch.eye(3, dtype=torch.float64)) and torch.allclose(Bb, 0.5 * B)
    Ab, Bb = discretize(torch.zeros(3, dtype=torch.float64), B, 0.5, "zoh")
    assert torch.allclose(Ab, torch.ones(3, dtype=torch.float64)) and torch.allclose(Bb, 0.5 * B)


@pytest.mark.parametrize("alpha, method", [(0.0, "euler"), (0.5, "bilinear"), (1.0, "backward_euler")])
def test_gbt_special_cases(alpha, method):
    A, B = transition("lagt", 8)
    for x, y in zip(discretize(A, B, 0.1, "gbt", alpha=alpha), discretize(A, B, 0.1, method), strict=True):
        assert torch.allclose(x, y, atol=1e-14)


@pytest.mark.parametrize("method", METHODS + ["gbt"])
@pytest.mark.parametrize("complex_", [False, True])
def test_diagonal_equals_dense(method, complex_):
    H, N = 3, 5
    re = -torch.rand(H, N, dtype=torch.float64) - 0.1
    a = torch.complex(re, torch.randn(H, N, dtype=torch.float64)) if complex_ else re  # (H, N)
    b = torch.randn(H, N, dtype=a.dtype)
    dt = torch.rand(H, dtype=torch.float64) + 0.05  # (H,)
    alpha = 0.3 if method == "gbt" else None
    Ab_d, Bb_d = discretize(a, b, dt, method, alpha=alpha)  # (H, N)
    Ab, Bb = discretize(torch.diag_embed(a), b, dt, method, alpha=alpha)  # (H, N, N), (H, N)
    assert torch.allclose(torch.diag_embed(Ab_d), Ab, atol=1e-12)
    assert torch.allclose(Bb_d, Bb, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_batched_dense_and_broadcast_dt(method):
    A, B = transition("legs", 4)
    dt = torch.tensor([0.1, 0.2], dtype=torch.float64)
    Ab, Bb = discretize(A, B, dt, method)  # dt (2,) broadcasts against shared A, B
    assert Ab.shape == (2, 4, 4) and Bb.shape == (2, 4)
    for i in range(2):
        Ai, Bi = discretize(A, B, float(dt[i]), method)
        assert torch.allclose(Ab[i], Ai, atol=1e-14) and torch.allclose(Bb[i], Bi, atol=1e-14)


@pytest.mark.parametrize("method", METHODS)
def test_differentiable(method):
    a = torch.complex(-torch.rand(3, dtype=torch.float64) - 0.1, torch.randn(3, dtype=torch.float64))
    a.requires_grad_(True)
    b = torch.randn(3, dtype=torch.complex128, requires_grad=True)
    dt = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, dt: discretize(a, b, dt, method), (a, b, dt))
    A = (torch.randn(3, 3, dtype=torch.float64) - 2 * torch.eye(3, dtype=torch.float64)).requires_grad_(True)
    B = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda A, B, dt: discretize(A, B, dt, method), (A, B, dt))


@pytest.mark.parametrize("method", ["bilinear", "zoh"])
@pytest.mark.parametrize("measure", ["legs", "legt", "lagt", "lmu", "foud", "diagonal"])
@pytest.mark.parametrize("dt", [1e-3, 1.0, 1e3])
def test_stability_preserved(method, measure, dt):
    A, B = transition(measure, 16)
    Ab, _ = discretize(A, B, dt, method)
    assert torch.linalg.eigvals(Ab).abs().max() < 1


def test_stability_preserved_random_stable():
    M = torch.randn(10, 10, dtype=torch.float64)
    A = M - (torch.linalg.eigvals(M).real.max() + 0.01) * torch.eye(10, dtype=torch.float64)
    for method in ["bilinear", "zoh"]:
        for dt in [0.01, 1.0, 100.0]:
            Ab, _ = discretize(A, torch.ones(10, dtype=torch.float64), dt, method)
            assert torch.linalg.eigvals(Ab).abs().max() < 1


def test_bad_input():
    A, B = transition("legs", 4)
    with pytest.raises(ValueError, match="method must be one of euler, backward_euler, bilinear, gbt, zoh"):
        discretize(A, B, 0.1, "rk4")
    for dt in [0.0, -1.0, float("nan"), float("inf"), torch.tensor([0.1, -0.1])]:
        with pytest.raises(ValueError, match="dt must be finite and > 0"):
            discretize(A, B, dt, "zoh")
    with pytest.raises(ValueError, match="A and B must be dense"):
        discretize(A, torch.ones(5, dtype=torch.float64), 0.1, "zoh")
    with pytest.raises(ValueError, match="dt of shape"):
        discretize(A.expand(2, 4, 4), B, torch.ones(3, dtype=torch.float64), "zoh")  # leading dims 2 vs 3
    with pytest.raises(ValueError, match="do not broadcast"):
        discretize(A.expand(2, 4, 4), B.expand(3, 4), 0.1, "zoh")
    with pytest.raises(ValueError, match="alpha must be a number in"):
        discretize(A, B, 0.1, "gbt")
    with pytest.raises(ValueError, match="alpha is only used"):
        discretize(A, B, 0.1, "zoh", alpha=0.5)
