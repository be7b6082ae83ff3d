"""The ablation ladder (Orvieto et al. 2023, Figure 1): each rung by name, what changes from one rung to the next.

parallel == step == step_chunk for every rung is in the shared contract test (cases_lru.py).
"""

from __future__ import annotations

import pytest
import torch

from ssmkit.layers.ladder import VARIANTS, DenseRNN, make_recurrent
from ssmkit.layers.lru import LRU
from ssmkit.optim import param_groups


def test_each_rung_is_one_change():
    torch.manual_seed(0)
    names = {v: set(make_recurrent(v, 3, 4).state_dict()) for v in VARIANTS}
    assert names["tanh_rnn"] == names["linear_dense"] == {"A", "B", "C", "D"}
    assert names["complex_diag"] == {"lambda_re", "lambda_im", "B_re", "B_im", "C_re", "C_im", "D"}
    assert names["complex_diag_exp"] == names["complex_diag"] - {"lambda_re", "lambda_im"} | {"nu_log", "theta_log"}
    assert names["lru"] == names["complex_diag_exp"] | {"gamma_log"}
    assert isinstance(make_recurrent("lru", 3, 4), LRU)
    assert make_recurrent("tanh_rnn", 3, 4).nonlinearity == "tanh"
    assert make_recurrent("linear_dense", 3, 4).nonlinearity is None


def test_tanh_rnn_matches_its_equation():
    torch.manual_seed(0)
    layer = make_recurrent("tanh_rnn", 3, 4).double()
    u = torch.randn(2, 6, 3, dtype=torch.float64)
    x = torch.zeros(2, 4, dtype=torch.float64)
    ys = []
    for t in range(6):
        x = torch.tanh(x @ layer.A.T + u[:, t] @ layer.B.T)
        ys.append(x @ layer.C.T + layer.D * u[:, t])
    torch.testing.assert_close(layer(u), torch.stack(ys, 1))


def test_linear_dense_is_linear():
    torch.manual_seed(0)
    layer = make_recurrent("linear_dense", 3, 4).double()
    u, v = torch.randn(2, 2, 10, 3, dtype=torch.float64)
    torch.testing.assert_close(layer(2 * u - v), 2 * layer(u) - layer(v))


def test_dense_glorot_init_spectrum_fills_the_unit_disk():
    """A ~ N(0, 1/N): spectral radius ~ 1 and eigenvalues spread over the disk (circular law)."""
    torch.manual_seed(0)
    eig = torch.linalg.eigvals(make_recurrent("linear_dense", 2, 400).A.detach().double())
    assert 0.9 < eig.abs().max().item() < 1.15
    assert abs((eig.abs() ** 2).mean().item() - 0.5) < 0.05  # |λ|² uniform on [0, 1] for the uniform disk


def test_complex_diag_plain_matches_exp_at_the_same_lambda():
    torch.manual_seed(0)
    exp_rung = make_recurrent("complex_diag_exp", 3, 4).double()
    plain = make_recurrent("complex_diag", 3, 4).double()
    lam = exp_rung.lambda_().detach()
    state = {k: v for k, v in exp_rung.state_dict().items() if k not in ("nu_log", "theta_log")}
    plain.load_state_dict(state | {"lambda_re": lam.real, "lambda_im": lam.imag})
    x = torch.randn(2, 11, 3, dtype=torch.float64)
    torch.testing.assert_close(plain(x), exp_rung(x))


def test_dense_rungs_refuse_rate():
    layer = make_recurrent("linear_dense", 3, 4)
    with pytest.raises(ValueError, match="rate"):
        layer(torch.randn(1, 4, 3), rate=2.0)
    with pytest.raises(ValueError, match="rate"):
        layer.step(torch.randn(1, 3), layer.initial_state(1), rate=0.5)


def test_bad_names_and_args():
    with pytest.raises(ValueError, match="variant"):
        make_recurrent("lstm", 3, 4)
    with pytest.raises(TypeError):
        make_recurrent("tanh_rnn", 3, 4, r_min=0.5)  # a diagonal-rung option on a dense rung
    with pytest.raises(ValueError, match="nonlinearity"):
        DenseRNN(3, 4, nonlinearity="relu")
    layer = make_recurrent("tanh_rnn", 3, 4)
    with pytest.raises(ValueError, match="state"):
        layer.step(torch.randn(2, 3), torch.zeros(2, 4, dtype=torch.complex64))
    with pytest.raises(ValueError, match="d_model"):
        layer(torch.randn(2, 5, 2))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_dense_rungs_take_a_learning_rate_hint_for_A(bidirectional):
    layer = make_recurrent("linear_dense", 3, 4, lr=1e-3, bidirectional=bidirectional)
    A = {id(p) for n, p in layer.named_parameters() if n.startswith("A")}
    assert len(A) == (2 if bidirectional else 1)
    hinted = [g for g in param_groups(layer, lr=1e-2, weight_decay=0.1) if {id(p) for p in g["params"]} & A]
    assert len(hinted) == 1 and {id(p) for p in hinted[0]["params"]} == A
    assert hinted[0]["lr"] == 1e-3 and hinted[0]["weight_decay"] == 0.0
    default = param_groups(make_recurrent("tanh_rnn", 3, 4), lr=1e-2, weight_decay=0.1)  # no hint: A with B and C
    assert all(g["lr"] == 1e-2 for g in default)
    for bad in (0, -1e-3, "fast"):
        with pytest.raises(ValueError, match="lr"):
            DenseRNN(3, 4, lr=bad)


def test_every_rung_trains():
    """One gradient step reduces a simple loss for every rung (gradients reach every parameter)."""
    for variant in VARIANTS:
        torch.manual_seed(0)
        layer = make_recurrent(
            variant, 2, 8, **({"r_min": 0.5, "r_max": 0.9} if variant not in ("tanh_rnn", "linear_dense") else {})
        )
        x = torch.randn(4, 12, 2)
        target = torch.roll(x, 1, dims=1)
        loss = (layer(x) - target).square().mean()
        loss.backward()
        for name, p in layer.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), (variant, name)
        with torch.no_grad():
            for p in layer.parameters():
                p -= 1e-2 * p.grad
        assert (layer(x) - target).square().mean() < loss, variant
