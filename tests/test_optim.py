import torch
from torch import nn

from ssmkit.optim import get_hint, param_groups, set_hint


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.A = set_hint(nn.Parameter(torch.zeros(4, 2)), lr=1e-3, weight_decay=0.0)
        self.log_dt = set_hint(nn.Parameter(torch.zeros(4)), lr=1e-3)


def test_groups_follow_hints_and_cover_every_parameter_once():
    model = Toy()
    groups = param_groups(model, lr=1e-2, weight_decay=0.1)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    by_param = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    assert by_param[id(model.A)] == (1e-3, 0.0)
    assert by_param[id(model.log_dt)] == (1e-3, 0.0)
    assert by_param[id(model.lin.weight)] == (1e-2, 0.1)
    assert by_param[id(model.lin.bias)] == (1e-2, 0.0)
    assert by_param[id(model.norm.weight)] == (1e-2, 0.0)
    torch.optim.AdamW(groups)  # accepted as is


def test_hint_survives_on_parameter():
    p = set_hint(nn.Parameter(torch.ones(2)), lr=5e-4, weight_decay=0.0)
    assert get_hint(p) == {"lr": 5e-4, "weight_decay": 0.0}


def test_ssm_layers_give_their_ssm_parameters_the_hinted_lr_and_no_weight_decay():
    from ssmkit.layers import LSSL, S4, S4D

    model = nn.Sequential(S4(4, d_state=8, channels=2), S4D(4, d_state=8, lr=2e-3), LSSL(4, d_state=8, lr=5e-4))
    groups = param_groups(model, lr=1e-2, weight_decay=0.1)
    by_param = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    assert sorted(by_param) == sorted(id(p) for p in model.parameters())
    s4, s4d, lssl = model
    for p in (s4.log_A_real, s4.A_imag, s4.P, s4.B, s4.log_dt):
        assert by_param[id(p)] == (1e-3, 0.0)
    for p in (s4d.log_A_real, s4d.A_imag, s4d.B, s4d.log_dt):
        assert by_param[id(p)] == (2e-3, 0.0)
    for p in (lssl.A, lssl.B, lssl.log_dt):
        assert by_param[id(p)] == (5e-4, 0.0)
    for p in (s4.C, s4.D, s4.output_linear.weight, s4d.C, lssl.C):  # C, D and the mixing layer: the model's settings
        assert by_param[id(p)] == (1e-2, 0.1)
    assert by_param[id(s4.output_linear.bias)] == (1e-2, 0.0)


def test_per_group_lr_as_the_s4_code_dt_at_the_global_lr():
    """lr {dt: None, A: 1e-3, B: 1e-3} (the S4 repo's LRA configs): Δ at the optimiser's lr, all three without decay;
    a group not named in the mapping gets the optimiser's lr too (the S4 code's Kernel: unnamed groups -> None)."""
    from ssmkit.layers import LSSL, S4, S4D

    s4 = S4(4, d_state=8, lr={"dt": None, "A": 1e-3, "B": 1e-3})
    s4d = S4D(4, d_state=8, lr={"A": 2e-3})
    lssl = LSSL(4, d_state=8, lr={"dt": 5e-4, "A": 1e-4, "B": 2e-4})
    groups = param_groups(nn.Sequential(s4, s4d, lssl), lr=1e-2, weight_decay=0.1)
    by_param = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    assert by_param[id(s4.log_dt)] == (1e-2, 0.0)
    for p in (s4.log_A_real, s4.A_imag, s4.P, s4.B):
        assert by_param[id(p)] == (1e-3, 0.0)
    assert [by_param[id(p)] for p in (s4d.log_A_real, s4d.A_imag, s4d.B, s4d.log_dt)] == [
        (2e-3, 0.0), (2e-3, 0.0), (1e-2, 0.0), (1e-2, 0.0)
    ]  # fmt: skip
    assert [by_param[id(p)] for p in (lssl.log_dt, lssl.A, lssl.B)] == [(5e-4, 0.0), (1e-4, 0.0), (2e-4, 0.0)]


def test_bad_per_group_lr_is_a_clear_error():
    import pytest

    from ssmkit.layers import S4

    with pytest.raises(ValueError, match="unknown group"):
        S4(4, d_state=8, lr={"delta": 1e-3})
    with pytest.raises(ValueError, match="got 'fast' for dt"):
        S4(4, d_state=8, lr={"dt": "fast"})
    assert S4(4, d_state=8, lr={"dt": "1e-3"}).ssm_lr == {"dt": 1e-3, "A": None, "B": None}  # YAML's string 1e-3
    with pytest.raises(ValueError, match=">= 0"):
        S4(4, d_state=8, lr=-1.0)
