"""Optimiser hints that travel with the parameters, and the one function that turns them into param groups.

The SSM papers train the state-space parameters (A / Λ, P, B, Δ; LRU's ν, θ, γ) with their own, usually smaller,
learning rate and no weight decay; norms and biases get no weight decay either. Layers mark such parameters with
`set_hint(param, lr=..., weight_decay=0.0)`; `param_groups(model, lr, weight_decay)` reads the marks.
"""

from __future__ import annotations

from typing import Any

from torch import nn

_HINT = "_ssmkit_optim"


def set_hint(param: nn.Parameter, lr: float | None = None, weight_decay: float | None = None) -> nn.Parameter:
    """Attach optimiser hints to `param` (None = use the group default). Returns the parameter."""
    hint = {}
    if lr is not None:
        hint["lr"] = float(lr)
    if weight_decay is not None:
        hint["weight_decay"] = float(weight_decay)
    setattr(param, _HINT, hint)
    return param


def get_hint(param: nn.Parameter) -> dict[str, float]:
    return dict(getattr(param, _HINT, {}))


def _no_decay_by_default(module: nn.Module, name: str, param: nn.Parameter) -> bool:
    norms = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)
    return isinstance(module, norms) or name.endswith("bias") or param.dim() < 2


def param_groups(model: nn.Module, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """Optimiser groups for `torch.optim.AdamW(param_groups(model, lr, wd))`.

    - parameters with a hint get the hinted lr / weight_decay (falling back to lr / 0.0);
    - norm weights, biases and other 1-d parameters without a hint: lr, no weight decay;
    - everything else: lr and weight_decay.
    Parameters with equal settings share one group; every trainable parameter appears exactly once.
    """
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            hint = get_hint(param)
            if hint:
                key = (hint.get("lr", lr), hint.get("weight_decay", 0.0))
            elif _no_decay_by_default(module, name, param):
                key = (lr, 0.0)
            else:
                key = (lr, weight_decay)
            groups.setdefault(key, []).append(param)
    return [{"params": ps, "lr": g_lr, "weight_decay": g_wd} for (g_lr, g_wd), ps in groups.items()]
