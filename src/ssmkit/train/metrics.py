"""Loss and metrics per task kind (data/base.py), as sums that add up over batches and processes.

classify         cross-entropy, accuracy
classify_steps   cross-entropy and accuracy over steps whose target is not -100
regress          mean squared error of the one value (vector) per sequence, and MAE
regress_steps    mean squared error over valid steps (lengths), and MAE
forecast         MSE and MAE over the horizon
With task.info["tolerance"] (regress, forecast), accuracy = the share of items with every value within it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ssmkit.models.heads import valid_mask

STATS = ("loss_sum", "loss_n", "correct", "items", "abs_sum")


def batch_loss(
    kind: str, out: Tensor, y: Tensor, lengths: Tensor | None, tolerance: float | None
) -> tuple[Tensor, Tensor]:
    """Returns (mean loss of the batch, stats (5,) summable: loss_sum, loss_n, correct, items, abs_sum)."""
    out = out.float()
    if kind == "classify":
        loss = F.cross_entropy(out, y)
        n = torch.tensor(float(y.shape[0]))
        correct, items, abs_sum = (out.argmax(-1) == y).sum(), n, torch.tensor(0.0)
    elif kind == "classify_steps":
        valid = y != -100
        loss = F.cross_entropy(out.flatten(0, 1), y.flatten(), ignore_index=-100)
        n = valid.sum().float()
        correct, items, abs_sum = ((out.argmax(-1) == y) & valid).sum(), n, torch.tensor(0.0)
    elif kind in ("regress", "regress_steps", "forecast"):
        if out.shape != y.shape:
            raise ValueError(f"{kind}: model output {tuple(out.shape)} and target {tuple(y.shape)} differ in shape")
        err = out - y  # (B, d), (B, L, d) or (B, horizon, d)
        if kind == "regress_steps" and lengths is not None:
            err = err * valid_mask(lengths, err.shape[1])[..., None]
            n = lengths.sum().float() * err.shape[-1]
        else:
            n = torch.tensor(float(err.numel()))
        loss = err.pow(2).sum() / n
        abs_sum = err.abs().sum()
        items = torch.tensor(float(err.shape[0]))
        correct = (err.abs() <= tolerance).flatten(1).all(1).sum() if tolerance is not None else torch.tensor(0.0)
    else:
        raise ValueError(f"unknown task kind {kind!r}")
    stats = torch.stack([loss.detach() * n, n, correct.float(), items, abs_sum.detach()]).cpu().double()
    return loss, stats


def summarize(kind: str, stats: Tensor, tolerance: float | None) -> dict[str, float]:
    loss_sum, loss_n, correct, items, abs_sum = stats.tolist()
    result = {"loss": loss_sum / max(loss_n, 1)}
    if kind.startswith("classify") or tolerance is not None:
        result["acc"] = correct / max(items, 1)
    if kind in ("regress", "regress_steps", "forecast"):
        result["mae"] = abs_sum / max(loss_n, 1)
    return result


def main_metric(kind: str, tolerance: float | None) -> tuple[str, str]:
    """(name, "max" or "min"): the number a run is judged by."""
    return ("acc", "max") if kind.startswith("classify") or tolerance is not None else ("loss", "min")
