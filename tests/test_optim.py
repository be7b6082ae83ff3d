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
