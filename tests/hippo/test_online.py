"""Online function approximation: fast == reference, parallel == step, accuracy, memory windows, bad input."""

import math

import pytest
import torch

from ssmkit.hippo import HiPPO, reconstruct
from ssmkit.hippo.legs import legs_structure, lower_mult, lower_solve

L, DT = 1000, 1e-3
T_GRID = torch.arange(L, dtype=torch.float64) / L  # 1000 samples on [0, 1)


def _benchmark_signal():
    return torch.sin(2 * math.pi * 5 * T_GRID) + 0.5 * torch.cos(2 * math.pi * 13 * T_GRID)


def _smooth_signal():
    return torch.exp(-2 * T_GRID) * torch.sin(2 * math.pi * 3 * T_GRID) + 0.3 * torch.cos(2 * math.pi * 1.5 * T_GRID)


# (measure, theta, measure_kwargs): legs, legt, fout, lagt as the demo uses them, and the other measures
SETUPS = [
    ("legs", 1.0, None),
    ("legt", 0.5, None),
    ("fout", 0.5, None),
    ("lagt", 0.05, None),
    ("lmu", 0.5, None),
    ("glagt", 0.05, {"alpha": 0.5, "beta": 0.3}),
    ("glagt", 0.05, {"alpha": -0.5, "beta": 0.5}),
    ("foud", 0.25, None),
]
TIME_INVARIANT = ["legt", "lagt", "glagt", "fout", "foud", "lmu"]


def _folded_history(f, theta, x, j):
    """foud's target F(x_j) = sum_k exp(-(x_j + k)/2) f(t - theta (x_j + k)), on the sample grid (theta/DT integral)."""
    step = round(theta / DT)
    F = torch.zeros(len(j), dtype=torch.float64)
    for k in range(L // step + 1):
        i = j - k * step
        F += torch.where(i >= 0, torch.exp(-(x + k) / 2) * f[i.clamp_min(0)], torch.zeros(()))
    return F


def _final_error(h, f):
    """Weighted MSE of the reconstruction from the last state over what the measure remembers (reconstruct.py)."""
    c = h(f[None])[0, -1]
    t = h.times(L)
    x = (t[-1] - t) / h.theta
    target = f
    if h.measure == "legs":
        w = torch.ones(L, dtype=torch.float64)
    elif h.measure == "lagt":
        w = torch.exp(-x)
    elif h.measure == "glagt":  # mu(x) = x^(-alpha) exp(-beta x); x = 0 left out (basis 0 or infinite there)
        alpha, beta = h.measure_kwargs["alpha"], h.measure_kwargs["beta"]
        w = torch.where(x > 0, x.clamp_min(1e-12) ** -alpha * torch.exp(-beta * x), torch.zeros(()))
    elif h.measure == "foud":  # the exp(-x/2)-weighted history folded onto one window
        w = (x < 1).to(torch.float64)
        target = _folded_history(f, h.theta, x, torch.arange(L))
    else:  # legt, fout, lmu: the window
        w = (x <= 1).to(torch.float64)
    rec = h.reconstruct(c, t, t[-1])
    rec = torch.where(w > 0, rec, torch.zeros(()))
    return ((w * (rec - target) ** 2).sum() / w.sum()).item()


# ---- LegS structured O(N) operations against dense matrices --------------------------------------------------------
@pytest.mark.parametrize("beta", [0.5, 1 / 6, 0.5 / 7, 1 / 64, 1 / 3.3, 10.0, 1e-5, 0.0])
@pytest.mark.parametrize("block", [1, 5, 16, 100])
def test_lower_solve_matches_dense(beta, block):
    N = 40
    delta, u, v = legs_structure(N)
    A = -(torch.diag(delta) + torch.tril(u[:, None] * v[None, :], -1))
    z = torch.randn(3, N, dtype=torch.float64)
    y = lower_solve(z, beta, delta, u, v, block)
    y0 = torch.linalg.solve_triangular(torch.eye(N, dtype=torch.float64) - beta * A, z.T, upper=False).T
    assert torch.allclose(y, y0, rtol=1e-12, atol=1e-12 * y0.abs().max().item())
    assert torch.allclose(lower_mult(z, delta, u, v), z @ A.T, atol=1e-12)


def test_lower_solve_other_structure():
    # LagT (paper) has the same structure: delta = 1, u = v = 1
    N = 30
    one = torch.ones(N, dtype=torch.float64)
    A = -torch.tril(torch.ones(N, N, dtype=torch.float64))
    z = torch.randn(2, N, dtype=torch.float64)
    for beta in [0.01, 1.0, 3.0]:
        y0 = torch.linalg.solve(torch.eye(N, dtype=torch.float64) - beta * A, z.T).T
        assert torch.allclose(lower_solve(z, beta, one, one, one), y0, atol=1e-12)


@pytest.mark.parametrize("method, alpha", [("bilinear", None), ("euler", None), ("backward_euler", None), ("gbt", 0.3)])
@pytest.mark.parametrize("init", ["zero", "first"])
def test_legs_fast_equals_reference(method, alpha, init):
    f = torch.randn(2, 150, dtype=torch.float64, requires_grad=True)
    fast = HiPPO("legs", 32, method=method, alpha=alpha, init=init)(f)
    ref = HiPPO("legs", 32, method=method, alpha=alpha, init=init, impl="reference")(f)
    assert fast.shape == (2, 150, 32)
    assert torch.allclose(fast, ref, rtol=0, atol=1e-10 * ref.abs().max().item())
    w = torch.randn_like(fast)
    (g_fast,) = torch.autograd.grad((fast * w).sum(), f)
    (g_ref,) = torch.autograd.grad((ref * w).sum(), f)
    assert torch.allclose(g_fast, g_ref, rtol=0, atol=1e-10 * g_ref.abs().max().item())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_legs_fast_at_large_N_both_paths(dtype):
    """N = 200: the first 2 alpha (N - 1) steps go through the blocked recurrence (float64: blocks as long as the
    exp(-300) range allows), the later ones through the one-block tables; both against the dense reference."""
    f = torch.randn(2, 260, dtype=torch.float64)
    ref = HiPPO("legs", 200, impl="reference")(f)
    fast = HiPPO("legs", 200, dtype=dtype)(f.to(dtype))
    tol = {torch.float64: 1e-11, torch.float32: 1e-4}[dtype]  # measured ~3e-14 and ~2e-6
    assert (fast.double() - ref).abs().max() <= tol * ref.abs().max()


# ---- parallel (convolution) == step by step for the time-invariant measures -------------------------------------
@pytest.mark.parametrize("measure", TIME_INVARIANT)
@pytest.mark.parametrize("method", ["bilinear", "zoh", "euler", "backward_euler"])
def test_parallel_equals_step(measure, method):
    f = torch.randn(3, 300, dtype=torch.float64)
    kw = {"alpha": 0.5, "beta": 0.3} if measure == "glagt" else None
    h = HiPPO(measure, 16, dt=1e-2, method=method, theta=0.7, measure_kwargs=kw)
    par = h(f)
    step = HiPPO(measure, 16, dt=1e-2, method=method, theta=0.7, impl="reference", measure_kwargs=kw)(f)
    assert par.shape == step.shape == (3, 300, 16)
    assert (par - step).abs().max() <= 1e-10 * max(1.0, step.abs().max().item())


@pytest.mark.parametrize("measure", ["legs"] + TIME_INVARIANT)
def test_float32_matches_float64(measure):
    f = torch.randn(2, 500, dtype=torch.float64)
    c64 = HiPPO(measure, 32, dt=2e-3, theta=0.5)(f)
    for impl in ["fast", "reference"]:
        c32 = HiPPO(measure, 32, dt=2e-3, theta=0.5, impl=impl, dtype=torch.float32)(f.float())
        assert c32.dtype == torch.float32
        assert (c32.double() - c64).abs().max() <= 1e-4 * c64.abs().max()  # measured 2e-6 .. 2e-5


@pytest.mark.parametrize("measure", TIME_INVARIANT)
@pytest.mark.parametrize("method, alpha", [("bilinear", None), ("euler", None), ("backward_euler", None), ("gbt", 0.7)])
def test_structured_step_equals_dense(measure, method, alpha):
    """The O(N) GBT step (no dense matrix) against the dense Ab step, for every time-invariant measure."""
    f = torch.randn(2, 40, dtype=torch.float64)
    kw = {"alpha": -0.3, "beta": 0.4} if measure == "glagt" else None
    dt = 1e-4 if method == "euler" else 1e-3
    fast = HiPPO(measure, 24, dt=dt, method=method, alpha=alpha, theta=0.3, measure_kwargs=kw)
    ref = HiPPO(measure, 24, dt=dt, method=method, alpha=alpha, theta=0.3, impl="reference", measure_kwargs=kw)
    fast.Ab.fill_(float("nan"))  # the structured step never reads the dense Ab
    # (near-)stable over the 40 steps, so rounding is not amplified (forward Euler on fout: |eig| ~ 1 + 1e-5)
    assert torch.linalg.eigvals(ref.Ab).abs().max() < 1.001
    c_fast, c_ref = fast.initial_state(2), ref.initial_state(2)
    for j in range(40):
        c_fast, c_ref = fast.step(f[:, j], c_fast, j), ref.step(f[:, j], c_ref, j)
    assert torch.allclose(c_fast, c_ref, rtol=0, atol=1e-12 * c_ref.abs().max().item())


@pytest.mark.parametrize("measure", ["legs"] + TIME_INVARIANT)
def test_step_api_streams(measure):
    f = torch.randn(2, 50, dtype=torch.float64)
    h = HiPPO(measure, 8, dt=0.01, theta=0.3)
    c = h.initial_state(2)
    states = []
    for j in range(50):
        c = h.step(f[:, j], c, j)
        states.append(c)
    assert torch.allclose(torch.stack(states, 1), h(f), atol=1e-12)
    assert torch.allclose(h(f[0]), h(f)[0])  # (L,) input -> (L, N)


# ---- accuracy ------------------------------------------------------------------------------------------------------
def test_legs_benchmark_signal():
    # HiPPO paper's LegS test: N = 64, bilinear, 1000 samples on [0, 1); published code 8.5e-4
    f = _benchmark_signal()
    assert _final_error(HiPPO("legs", 64, dt=DT), f) < 1e-3  # measured 1.0e-4
    assert _final_error(HiPPO("legs", 64, dt=DT, init="first"), f) < 1e-4  # measured 9.1e-5


@pytest.mark.parametrize("measure, theta, kw", SETUPS, ids=[f"{m}-{t}-{k}" for m, t, k in SETUPS])
def test_error_falls_with_N(measure, theta, kw):
    # measured (N = 4, 8, 16, 64): lmu 2.7e-2 .. 3.7e-6 (as legt); glagt(0.5, 0.3) 1.0e-2 .. 3.0e-4;
    # glagt(-0.5, 0.5) 1.4e-2 .. 6.4e-6; foud 3.9e-3 .. 2.2e-4 (~1/N: the folded history jumps at the window edge)
    f = _smooth_signal()
    errs = [_final_error(HiPPO(measure, N, dt=DT, theta=theta, measure_kwargs=kw), f) for N in (4, 8, 16)]
    assert errs[0] > errs[1] > errs[2], errs
    big = _final_error(HiPPO(measure, 64, dt=DT, theta=theta, measure_kwargs=kw), f)
    assert big < errs[0] / 15, (errs, big)


def test_lmu_is_legt_in_another_basis():
    """x_lmu = T c_legt with T = diag((-1)^n sqrt(2n+1)) (Voelker et al. 2019 vs HiPPO LegT, window theta)."""
    f = torch.randn(2, 200, dtype=torch.float64)
    n = torch.arange(12, dtype=torch.float64)
    T = (-1.0) ** n * torch.sqrt(2 * n + 1)
    c_legt = HiPPO("legt", 12, dt=1e-2, theta=0.4)(f)
    c_lmu = HiPPO("lmu", 12, dt=1e-2, theta=0.4)(f)
    assert torch.allclose(c_lmu, T * c_legt, rtol=1e-12, atol=1e-12 * c_lmu.abs().max().item())


def test_glagt_alpha0_beta1_is_lagt():
    """glagt with alpha = 0, beta = 1 is the paper's LagT: the same state and the same reconstruction."""
    f = torch.randn(2, 200, dtype=torch.float64)
    g = HiPPO("glagt", 10, dt=1e-2, theta=0.3, measure_kwargs={"alpha": 0.0, "beta": 1.0})
    lag = HiPPO("lagt", 10, dt=1e-2, theta=0.3)
    assert torch.allclose(g(f), lag(f), atol=1e-13)
    s = torch.linspace(0.5, 2.0, 7, dtype=torch.float64)
    c = lag(f)[:, -1]
    assert torch.allclose(g.reconstruct(c, s, 2.0), lag.reconstruct(c, s, 2.0), atol=1e-12)


def test_legs_remembers_whole_history_legt_fout_only_their_window():
    # Two signals that differ only by a bump at t ~ 0.15; at t = 1 the bump is 0.85 in the past
    bump = 2 * torch.exp(-(((T_GRID - 0.15) / 0.05) ** 2))
    f = torch.stack([_benchmark_signal(), _benchmark_signal() + bump])
    t = torch.arange(1, L + 1, dtype=torch.float64) * DT
    early = (t > 0.05) & (t < 0.25)
    # LegS: the bump is in the final state, and the reconstruction shows it where it was
    h = HiPPO("legs", 64, dt=DT)
    c = h(f)[:, -1]
    rec = h.reconstruct(c, t, t[-1])  # (2, L)
    assert ((rec[1] - rec[0]) - bump)[early].abs().max() < 0.1
    assert ((rec - f) ** 2).mean() < 1e-3  # the whole history [0, 1]
    # LegT / FouT with window 0.3: the final state forgets the bump, and reconstructs the window well
    for measure in ["legt", "fout", "lmu"]:
        h = HiPPO(measure, 64, dt=DT, theta=0.3)
        c = h(f)[:, -1]
        assert (c[1] - c[0]).norm() / c[0].norm() < 1e-2, measure  # legt ~1e-16, fout ~7e-4
        window = t > t[-1] - 0.3
        rec = h.reconstruct(c, t[window], t[-1])
        assert ((rec - f[:, window]) ** 2).mean() < 1e-2, measure


def test_reconstruct_shapes_and_trajectory_times():
    h = HiPPO("legt", 8, dt=0.01, theta=0.2)
    c = h(torch.randn(2, 30, dtype=torch.float64))  # (2, 30, 8)
    s = torch.linspace(0.1, 0.3, 5, dtype=torch.float64)
    assert h.reconstruct(c, s, h.times(30)).shape == (2, 30, 5)
    assert reconstruct(c[:, -1], "legt", s, 0.3, theta=0.2).shape == (2, 5)


# ---- bad input ----------------------------------------------------------------------------------------------------
def test_bad_input():
    with pytest.raises(ValueError, match="measure must be one of legs, legt, lagt, glagt, fout, foud, lmu"):
        HiPPO("random", 8)
    with pytest.raises(ValueError, match=r"measure_kwargs \['beta'\] are not accepted for 'lagt'"):
        HiPPO("lagt", 8, measure_kwargs={"beta": 2.0})
    with pytest.raises(ValueError, match="alpha must lie in"):
        HiPPO("glagt", 8, measure_kwargs={"alpha": 1.0})
    with pytest.raises(ValueError, match="N must be even"):
        HiPPO("foud", 7)
    with pytest.raises(ValueError, match="N must be an integer >= 1"):
        HiPPO("legs", 0)
    with pytest.raises(ValueError, match="N must be even"):
        HiPPO("fout", 7)
    for dt in [0.0, -1e-3, float("nan"), float("inf")]:
        with pytest.raises(ValueError, match="dt must be a finite number > 0"):
            HiPPO("legt", 8, dt=dt)
    with pytest.raises(ValueError, match="theta must be a finite number > 0"):
        HiPPO("legt", 8, theta=0.0)
    with pytest.raises(ValueError, match="method must be one of"):
        HiPPO("legt", 8, method="rk4")
    with pytest.raises(ValueError, match="method for legs must be one of"):
        HiPPO("legs", 8, method="zoh")
    with pytest.raises(ValueError, match="init='first' is only defined for legs"):
        HiPPO("legt", 8, init="first")
    with pytest.raises(ValueError, match="impl must be one of fast, reference"):
        HiPPO("legs", 8, impl="cuda")
    with pytest.raises(ValueError, match="f must be a real tensor of shape"):
        HiPPO("legs", 8)(torch.zeros(2, 3, 4))
    h = HiPPO("legt", 8)
    c = h.initial_state(2)
    with pytest.raises(ValueError, match=r"c must be a tensor of shape \(B, N\) = \(B, 8\)"):
        h.step(torch.zeros(2), c[:, :5], 0)
    with pytest.raises(ValueError, match=r"f_j must be a real tensor of shape \(B,\) = \(2,\)"):
        h.step(torch.zeros(3), c, 0)
    with pytest.raises(ValueError, match="j must be an integer >= 0"):
        h.step(torch.zeros(2), c, -1)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        h.initial_state(0)
    with pytest.raises(ValueError, match="measure must be one of"):
        reconstruct(c, "legx", torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match="t of shape"):
        reconstruct(c, "legt", torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="theta must be"):
        reconstruct(c, "legt", torch.zeros(3), 1.0, theta=-1.0)
    with pytest.raises(ValueError, match="measure_kwargs"):
        reconstruct(c, "legt", torch.zeros(3), 1.0, measure_kwargs={"alpha": 0.5})
    with pytest.raises(ValueError, match="glagt needs alpha in"):
        reconstruct(c, "glagt", torch.zeros(3), 1.0, measure_kwargs={"beta": 0.0})
