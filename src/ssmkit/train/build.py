"""From a config to the objects a run needs: the task, the model (head and input sizes from the task), AdamW over
`ssmkit.optim.param_groups`, and the learning-rate schedule — all from torch and ssmkit, nothing hand-written."""

from __future__ import annotations

import math

import torch
from torch import nn

from ssmkit.data.base import Task
from ssmkit.data.registry import get_task
from ssmkit.models import SequenceModel
from ssmkit.models.dual import DualEncoder
from ssmkit.optim import param_groups
from ssmkit.train.config import ExperimentConfig


def build_task(cfg: ExperimentConfig) -> Task:
    return get_task(cfg.task.name, data_dir=cfg.task.data_dir, **cfg.task.options)


def build_model(cfg: ExperimentConfig, task: Task) -> SequenceModel | DualEncoder:
    m = cfg.model
    if task.info.get("pair"):  # two documents per item (LRA Retrieval): the two-tower model, models/dual.py
        return DualEncoder(
            task.d_output, vocab_size=task.vocab_size, pool=m.pool, pad_token=task.info.get("pad_token", 0),
            d_model=m.d_model, n_layers=m.n_layers, layer=m.layer, layer_options=m.layer_options, norm=m.norm,
            prenorm=m.prenorm, ff=m.ff, ff_expand=m.ff_expand, dropout=m.dropout, tie_dropout=m.tie_dropout,
        )  # fmt: skip
    head, pool, horizon = "sequence", m.pool, 1
    if task.kind in ("classify_steps", "regress_steps"):
        head, pool = "steps", "none"
    elif task.kind == "forecast":
        head = "forecast"
        horizon = int(task.info.get("horizon") or task.train[0][1].shape[0])
        pool = "none" if task.info.get("pad_future") else ("last" if m.pool == "none" else m.pool)
    return SequenceModel(
        task.d_output,
        d_input=task.d_input,
        vocab_size=task.vocab_size,
        d_model=m.d_model,
        n_layers=m.n_layers,
        layer=m.layer,
        layer_options=m.layer_options,
        norm=m.norm,
        prenorm=m.prenorm,
        ff=m.ff,
        ff_expand=m.ff_expand,
        dropout=m.dropout,
        tie_dropout=m.tie_dropout,
        head=head,
        pool=pool,
        horizon=horizon,
    )


def build_optimizer(cfg: ExperimentConfig, model: nn.Module) -> torch.optim.Optimizer:
    o = cfg.optim
    return torch.optim.AdamW(param_groups(model, o.lr, o.weight_decay), lr=o.lr, betas=(o.beta1, o.beta2))


def build_scheduler(cfg: ExperimentConfig, optimizer: torch.optim.Optimizer, run_steps: int):
    """cosine: LinearLR warmup, then CosineAnnealingLR (per step) over schedule.total_steps (or the run's `run_steps`
    when unset); plateau: ReduceLROnPlateau (per evaluation)."""
    s = cfg.schedule
    sched = torch.optim.lr_scheduler
    if s.kind == "constant":
        return None
    if s.kind == "plateau":
        return sched.ReduceLROnPlateau(optimizer, factor=s.plateau_factor, patience=s.plateau_patience)
    if s.kind != "cosine":
        raise ValueError(f"schedule.kind must be one of cosine, plateau, constant; got {s.kind!r}")
    total_steps = run_steps if s.total_steps is None else s.total_steps
    if s.total_steps is not None and not 1 <= run_steps <= s.total_steps:
        raise ValueError(
            f"schedule.total_steps={s.total_steps} is shorter than the run ({run_steps} steps = train.epochs x steps "
            f"per epoch); the cosine would rise again after its end. Raise schedule.total_steps or set it to null "
            f"(the run's length)"
        )
    eta_min = s.min_lr_ratio * cfg.optim.lr
    warmup = min(s.warmup_steps, total_steps - 1)
    cosine = sched.CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup), eta_min=eta_min)
    if warmup <= 0:
        return cosine
    linear = sched.LinearLR(optimizer, start_factor=1.0 / (warmup + 1), total_iters=warmup)
    return sched.SequentialLR(optimizer, [linear, cosine], milestones=[warmup])


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def steps_per_epoch(cfg: ExperimentConfig, task: Task) -> int:
    n = cfg.train.steps_per_epoch or len(task.train) // cfg.train.batch_size
    if n < 1:
        raise ValueError(f"train.batch_size={cfg.train.batch_size} exceeds the train set ({len(task.train)} items)")
    return n


def epoch_batches(n_items: int, batch_size: int, steps: int, seed: int, epoch: int) -> list[list[int]]:
    """The epoch's global batches of item indices: a permutation seeded by (seed, epoch), repeated if needed."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.cat([torch.randperm(n_items, generator=g) for _ in range(math.ceil(steps * batch_size / n_items))])
    return [perm[i * batch_size : (i + 1) * batch_size].tolist() for i in range(steps)]


def eval_subset(n_items: int, n_keep: int, seed: int) -> list[int]:
    """`n_keep` of a split's `n_items` indices, sorted, evenly spread and fixed: the split cut into n_keep equal runs of
    consecutive items, one item drawn from each by a generator seeded with `seed`. The same indices at every
    evaluation (so validation curves compare like with like), and every part of a split that is ordered (e.g. by
    class) is represented in proportion, where a prefix of it would not be. n_keep >= n_items: every index."""
    if n_keep >= n_items:
        return list(range(n_items))
    g = torch.Generator().manual_seed(seed)
    starts = [i * n_items // n_keep for i in range(n_keep + 1)]  # run i = [starts[i], starts[i + 1]), never empty
    offsets = torch.rand(n_keep, generator=g, dtype=torch.float64).tolist()
    return [a + int(u * (b - a)) for a, b, u in zip(starts[:-1], starts[1:], offsets, strict=True)]
