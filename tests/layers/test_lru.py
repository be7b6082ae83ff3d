"""The LRU (Orvieto et al. 2023): init, γ normalisation, the paper's parameter names, rate, optimiser hints, bad input.

parallel == step == step_chunk for every option is in the shared contract test (cases_lru.py).
"""

from __future__ import annotations

import math

import pytest
import torch

from ssmkit.layers.base import BidirectionalStepError
from ssmkit.layers.lru import LRU
from ssmkit.optim import param_groups

from .contract import assert_layer_contract


@pytest.mark.parametrize(
    "r_min, r_max, max_phase",
    [(0.0, 1.0, 2 * math.pi), (0.9, 0.999, math.pi / 10), (0.5, 0.5, 1.0), (1.0, 1.0, 1e-3)],
)
def test_ring_init(r_min, r_max, max_phase):
    torch.manual_seed(0)
    layer = LRU(4, 512, r_min=r_min, r_max=r_max, max_phase=max_phase)
    lam = layer.lambda_()
    assert ((lam.abs() >= r_min - 1e-6) & (lam.abs() <= r_max + 1e-6)).all()
    assert (lam.abs() <= 1).all()
    for p in layer.parameters():
        assert torch.isfinite(p).all()  # the edge cases u = 0 and |λ| = 1 stay finite
    theta = torch.exp(layer.theta_log)
    assert ((theta >= 0) & (theta <= max_phase)).all()
    assert torch.isfinite(layer.nu_log).all() and torch.isfinite(layer.theta_log).all()
    # uniform on the ring in area: |λ|² is uniform on [r_min², r_max²]
    if r_max > r_min:
        r2 = (lam.abs() ** 2 - r_min**2) / (r_max**2 - r_min**2)
        assert abs(r2.mean().item() - 0.5) < 0.05
    # γ starts at sqrt(1 - |λ|²)
    torch.testing.assert_close(torch.exp(layer.gamma_log), torch.sqrt(1 - lam.abs() ** 2), atol=1e-3, rtol=1e-4)


def test_init_scales_of_the_paper_code():
    torch.manual_seed(0)
    H, N = 64, 256
    layer = LRU(H, N)
    assert abs(layer.B_re.std().item() - 1 / math.sqrt(2 * H)) < 0.1 / math.sqrt(2 * H)
    assert abs(layer.B_im.std().item() - 1 / math.sqrt(2 * H)) < 0.1 / math.sqrt(2 * H)
    assert abs(layer.C_re.std().item() - 1 / math.sqrt(N)) < 0.1 / math.sqrt(N)
    assert abs(layer.D.std().item() - 1.0) < 0.35


def _stationary_state_variance(layer: LRU, modulus: float) -> torch.Tensor:
    """E|x_n|² / ||B_n||² after many steps of white noise u ~ N(0, I): (N,)."""
    g = torch.Generator().manual_seed(0)
    L = int(12 / (1 - modulus))  # the transient dies as |λ|^(2L) ~ e^-24
    u = torch.randn(256, L, layer.d_model, generator=g, dtype=torch.float64)
    layer = layer.double()
    with torch.no_grad():
        _, x_last = layer.step_chunk(u, layer.initial_state(256))  # (256, N) complex
        B_norm2 = layer.B_re.pow(2).sum(1) + layer.B_im.pow(2).sum(1)  # (N,)
    return x_last.abs().pow(2).mean(0) / B_norm2


@pytest.mark.parametrize("modulus", [0.9, 0.99, 0.999])
def test_gamma_keeps_state_variance_order_one(modulus):
    """E|x|² = γ² ||B_n||² / (1 - |λ|²) = ||B_n||² with γ = sqrt(1 - |λ|²) (Section 3.4), whatever |λ|."""
    torch.manual_seed(0)
    with_gamma = LRU(2, 4, r_min=modulus, r_max=modulus)
    ratio = _stationary_state_variance(with_gamma, modulus)
    assert ((ratio > 0.8) & (ratio < 1.25)).all(), ratio


@pytest.mark.parametrize("modulus", [0.9, 0.99, 0.999])
def test_without_gamma_state_variance_grows_like_inverse_gap(modulus):
    torch.manual_seed(0)
    without = LRU(2, 4, r_min=modulus, r_max=modulus, gamma_norm=False)
    ratio = _stationary_state_variance(without, modulus) * (1 - modulus**2)
    assert ((ratio > 0.8) & (ratio < 1.25)).all(), ratio


def test_loads_the_paper_code_parameter_names():
    """A state_dict with the names and shapes of the paper's Appendix A code loads by name, strictly."""
    H, N = 3, 6
    g = torch.Generator().manual_seed(0)
    published = {
        "nu_log": torch.randn(N, generator=g),
        "theta_log": torch.randn(N, generator=g),
        "gamma_log": torch.randn(N, generator=g),
        "B_re": torch.randn(N, H, generator=g),
        "B_im": torch.randn(N, H, generator=g),
        "C_re": torch.randn(H, N, generator=g),
        "C_im": torch.randn(H, N, generator=g),
        "D": torch.randn(H, generator=g),
    }
    layer = LRU(H, N)
    assert set(layer.state_dict()) == set(published)
    layer.load_state_dict(published, strict=True)
    lam = torch.exp(torch.complex(-torch.exp(published["nu_log"]), torch.exp(published["theta_log"])))
    torch.testing.assert_close(layer.lambda_(), lam)
    # one step from zero: x_1 = γ ⊙ (B u), y = Re(C x_1) + D u
    u = torch.randn(1, H, generator=g)
    B = torch.complex(published["B_re"], published["B_im"]) * torch.exp(published["gamma_log"]).unsqueeze(-1)
    x1 = u.to(B.dtype) @ B.T
    y_expected = (x1 @ torch.complex(published["C_re"], published["C_im"]).T).real + published["D"] * u
    y, _ = layer.step(u, layer.initial_state(1))
    torch.testing.assert_close(y, y_expected)


def test_bidirectional_adds_a_reversed_direction():
    torch.manual_seed(0)
    layer = LRU(3, 4, bidirectional=True).double()
    assert {n for n in layer.state_dict() if n.endswith("_reverse")} == {
        f"{n}_reverse" for n in ("nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im")
    }
    x = torch.randn(2, 9, 3, dtype=torch.float64)
    forward_only = LRU(3, 4).double()
    forward_only.load_state_dict({k: v for k, v in layer.state_dict().items() if not k.endswith("_reverse")})
    y = layer(x)
    # the causal part: the last output's reverse direction has seen only x[:, -1]
    backward_part = y - forward_only(x)
    backward_only = LRU(3, 4).double()
    backward_only.load_state_dict(
        {k.removesuffix("_reverse"): v for k, v in layer.state_dict().items() if k.endswith("_reverse")}
        | {"D": torch.zeros(3, dtype=torch.float64)}
    )
    torch.testing.assert_close(backward_part, backward_only(x.flip(1)).flip(1))
    with pytest.raises(BidirectionalStepError):
        layer.step(x[:, 0], layer.initial_state(2))


def test_rate_is_lambda_to_the_rate():
    """rate r: λ -> λ^r = exp(r (-exp(ν) + i exp(θ))); with r = 2 one step equals two steps at zero input."""
    torch.manual_seed(0)
    layer = LRU(3, 5, r_min=0.8, r_max=0.95).double()
    torch.testing.assert_close(layer.lambda_(rate=2.0), layer.lambda_() ** 2)
    assert_layer_contract(layer, dtype=torch.float64, rate=2.0)
    assert_layer_contract(layer, dtype=torch.float64, rate=0.5)


def test_plain_parameterisation_refuses_rate():
    layer = LRU(3, 4, parameterization="plain")
    with pytest.raises(ValueError, match="rate"):
        layer(torch.randn(1, 5, 3), rate=2.0)


def test_optimizer_hints_on_nu_theta_gamma():
    layer = LRU(3, 4, lr=1e-3)
    groups = param_groups(layer, lr=1e-2, weight_decay=0.1)
    ssm = {id(p) for p in (layer.nu_log, layer.theta_log, layer.gamma_log)}
    for group in groups:
        ids = {id(p) for p in group["params"]}
        if ids & ssm:
            assert ids == ssm and group["lr"] == 1e-3 and group["weight_decay"] == 0.0
    no_lr = param_groups(LRU(3, 4), lr=1e-2, weight_decay=0.1)
    assert sum(len(g["params"]) for g in no_lr) == 8


def test_dtype_and_gradients_flow():
    torch.manual_seed(0)
    layer = LRU(3, 4)
    x = torch.randn(2, 20, 3, requires_grad=True)
    y = layer(x)
    assert y.dtype == torch.float32
    y.square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"r_min": 0.9, "r_max": 0.5}, "r_min"),
        ({"r_max": 1.5}, "r_max"),
        ({"r_max": 0.0}, "r_max"),
        ({"max_phase": 0.0}, "max_phase"),
        ({"dropout": 1.0}, "dropout"),
        ({"lr": -1.0}, "lr"),
        ({"parameterization": "polar"}, "parameterization"),
        ({"scan_impl": "magic"}, "scan_impl"),
    ],
)
def test_bad_constructor_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LRU(3, 4, **kwargs)


def test_unknown_constructor_arg_is_an_error():
    with pytest.raises(TypeError):
        LRU(3, 4, dt_min=0.1)
    with pytest.raises(ValueError, match="d_state"):
        LRU(3, 0)


def test_bad_inputs_are_named():
    layer = LRU(3, 4)
    with pytest.raises(ValueError, match="d_model"):
        layer(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="shape"):
        layer(torch.randn(5, 3))
    with pytest.raises(TypeError, match="floating"):
        layer(torch.ones(2, 5, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="NaN"):
        layer(torch.full((2, 5, 3), float("nan")))
    with pytest.raises(ValueError, match="rate"):
        layer(torch.randn(2, 5, 3), rate=-1.0)
    with pytest.raises(ValueError, match="x_t"):
        layer.step(torch.randn(2, 5, 3), layer.initial_state(2))
    with pytest.raises(ValueError, match="state"):
        layer.step(torch.randn(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="state"):
        layer.step_chunk(torch.randn(2, 5, 3), layer.initial_state(3))
