"""Experiment configs: one YAML file per experiment in configs/, dataclasses as the schema, `a.b=value` overrides.

    cfg = load_config("adding", ["model.d_model=64", "train.epochs=3"])

A config has five sections — task, model, optim, schedule, train — whose fields are the dataclasses below. A key that
is not a field is an error listing the valid ones; `task.options` and `model.layer_options` are free-form (the task
builder and the layer check them, with their own errors). Override values are parsed as YAML (3 -> int, 1e-3 -> float,
true -> bool, null -> None, [1, 2] -> list).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONFIGS_ENV = "SSMKIT_CONFIGS"


@dataclass
class TaskConfig:
    name: str = "adding"  # a task in ssmkit.data.registry
    options: dict[str, Any] = field(default_factory=dict)  # the task builder's keyword arguments
    data_dir: str | None = None  # None: $SSMKIT_DATA_DIR or ./data


@dataclass
class ModelConfig:  # ssmkit.models.SequenceModel's arguments; the head and input sizes come from the task
    layer: str = "s4d"
    layer_options: dict[str, Any] = field(default_factory=dict)
    d_model: int = 64
    n_layers: int = 4
    norm: str = "layer"  # layer | batch | none
    prenorm: bool | None = None  # None: the layer paper's default (LRU family prenorm, else postnorm)
    ff: str = "glu"  # glu | mlp | none
    ff_expand: int = 2
    dropout: float = 0.0
    tie_dropout: bool = False  # one dropout mask per sequence and channel, shared over time (the S4 code's tie_dropout)
    pool: str = "mean"  # mean | last (sequence-level heads); per-step tasks use none


@dataclass
class OptimConfig:  # AdamW over ssmkit.optim.param_groups (SSM parameters keep their own hinted lr, no decay)
    lr: float = 3e-3
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999


@dataclass
class ScheduleConfig:
    kind: str = "cosine"  # cosine (linear warmup, then cosine to min_lr_ratio · lr) | plateau | constant
    warmup_steps: int = 0
    # cosine: its length in optimiser steps, warmup included, independent of epochs x steps_per_epoch (the S4 code's
    # scheduler.num_training_steps; e.g. 200000 where 200 epochs of sCIFAR are 180000 steps, so the lr stops short of
    # the minimum). None: the run's length. Must be >= the run's length (a cosine past its end would rise again).
    total_steps: int | None = None
    min_lr_ratio: float = 0.0
    plateau_factor: float = 0.5  # plateau: lr *= factor when the val loss stalls for `patience` evaluations
    plateau_patience: int = 2


@dataclass
class TrainConfig:
    epochs: int = 10
    steps_per_epoch: int | None = None  # None: one pass over the train set (drop_last)
    batch_size: int = 32  # the global batch, split over data-parallel processes
    eval_batch_size: int = 64
    # None: the whole val / test split. A number: that many batches of a fixed subset of the split, drawn once with
    # `seed`, evenly spread over it (one item from each of max_eval_batches x eval_batch_size equal runs of the split;
    # train.build.eval_subset), the same items at every evaluation, so splits ordered by class are not scored on a
    # prefix of one class.
    max_eval_batches: int | None = None
    grad_clip: float = 0.0  # max gradient norm; 0 = no clipping
    precision: str = "32"  # 32 | bf16 | fp16 (torch.autocast)
    seed: int = 0
    deterministic: bool = True  # torch.use_deterministic_algorithms
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # torch.set_num_threads; None leaves torch's default
    num_workers: int = 0
    log_every: int = 10  # steps between train-loss rows in log.csv / TensorBoard
    checkpoint_every: int = 0  # steps between checkpoints; 0 = at the end of each epoch only
    test_on: str = "best"  # best: test the checkpoint with the best validation metric (model selection); last
    stop_at_step: int | None = None  # save and stop at this step, as if interrupted (resume continues exactly)
    runs_dir: str = "runs"
    name: str | None = None  # the run folder's name under runs/<experiment>/; None: a timestamp
    progress: bool = True  # tqdm progress bar


@dataclass
class ExperimentConfig:
    experiment: str = "custom"
    description: str = ""
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FREE_FORM = {("task", "options"), ("model", "layer_options")}


def configs_dir() -> Path:
    """$SSMKIT_CONFIGS, else the configs/ folder of the source tree."""
    env = os.environ.get(CONFIGS_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[3] / "configs"


def experiment_names() -> list[str]:
    return sorted(p.stem for p in configs_dir().glob("*.yaml"))


def load_config(experiment: str, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """The experiment's YAML (a name in configs/ or a path to a .yaml file) with `a.b=value` overrides applied."""
    path = Path(experiment)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = configs_dir() / f"{experiment}.yaml"
        if not path.is_file():
            raise ValueError(
                f"unknown experiment {experiment!r}; valid experiments: {', '.join(experiment_names())} "
                f"(files in {configs_dir()}), or a path to a .yaml file"
            )
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a config file must hold a mapping of sections, got {type(raw).__name__}")
    raw.setdefault("experiment", path.stem)
    return from_dict(apply_overrides(raw, overrides), source=str(path))


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Set each `a.b.c=value` (value parsed as YAML) in a copy of the nested dict `raw`."""
    raw = _copy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} must look like section.key=value, e.g. model.d_model=64")
        *parents, leaf = key.split(".")
        node = raw
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {p!r} is a value, not a section")
        try:
            node[leaf] = yaml.safe_load(text) if text != "" else ""
        except yaml.YAMLError as e:
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ValueError(
                f"override {item!r}: the value {text!r} is not valid YAML ({problem}); quote the whole override "
                f"for the shell, e.g. 'model.layer_options={{d_state: 32}}'"
            ) from None
    return raw


def from_dict(raw: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Build the dataclasses from a nested dict; unknown keys and wrongly typed values are errors."""
    return _build(ExperimentConfig, raw, (), source)


def _build(cls: type, raw: Any, path: tuple[str, ...], source: str) -> Any:
    where = ".".join(path) or "the top level"
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: {where} must be a mapping of keys, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ValueError(
            f"{source}: unknown key(s) {['.'.join((*path, k)) for k in unknown]} in {where}; "
            f"valid keys: {', '.join(fields)}"
        )
    values = {}
    defaults = cls()
    for name, value in raw.items():
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default):
            values[name] = _build(type(default), value, (*path, name), source)
        elif (*path, name) in FREE_FORM:
            if not isinstance(value, dict):
                raise ValueError(f"{source}: {'.'.join((*path, name))} must be a mapping of options, got {value!r}")
            values[name] = value
        else:
            values[name] = _check_type((*path, name), value, default, fields[name].type, source)
    return cls(**values)


def _check_type(path: tuple[str, ...], value: Any, default: Any, hint: Any, source: str) -> Any:
    optional = "None" in str(hint)
    if value is None and (optional or default is None):
        return value
    expected = type(default) if default is not None else _type_from_hint(str(hint))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is float and isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if expected is not None and (not isinstance(value, expected) or (expected is int and isinstance(value, bool))):
        raise ValueError(
            f"{source}: {'.'.join(path)} must be {expected.__name__}{' or null' if optional else ''}, got {value!r}"
        )
    return value


def _type_from_hint(hint: str) -> type | None:
    for name, t in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if hint.startswith(name):
            return t
    return None


def _copy(d: Any) -> Any:
    return {k: _copy(v) for k, v in d.items()} if isinstance(d, dict) else d


def to_yaml(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
