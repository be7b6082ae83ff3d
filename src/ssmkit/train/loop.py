"""`ssmkit train <experiment> [section.key=value ...]`: the training loop, read top to bottom.

config -> data -> model -> optimiser & schedule -> loop (train steps, evaluation, checkpoints) -> test and report.

Built on torch alone, with the pieces a training library would bring taken from torch and well-kept libraries, not
hand-written: AdamW and `torch.optim.lr_scheduler` (LinearLR warmup + CosineAnnealingLR, ReduceLROnPlateau),
`clip_grad_norm_`, `torch.autocast` + GradScaler, DistributedDataParallel (torchrun), tqdm, TensorBoard's SummaryWriter,
csv, matplotlib. What remains is this file's one loop, which keeps exact resume visible: the data order of epoch e is a
permutation seeded by (seed, e), the checkpoint holds the step, optimiser, schedule and RNG states, so a resumed run
skips to the same batch with the same state and logs the same losses as an uninterrupted one.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ssmkit.data.base import DATA_DIR_ENV, DataMissingError, pad_collate
from ssmkit.layers.base import NonFiniteError
from ssmkit.train import distributed
from ssmkit.train.build import (
    build_model,
    build_optimizer,
    build_scheduler,
    build_task,
    count_params,
    epoch_batches,
    eval_subset,
    steps_per_epoch,
)
from ssmkit.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from ssmkit.train.config import ExperimentConfig, apply_overrides, experiment_names, from_dict, load_config, to_yaml
from ssmkit.train.metrics import batch_loss, main_metric, summarize
from ssmkit.train.report import RunLog, append_result, plot_curves


class TrainingDiverged(RuntimeError):
    """The loss, the weights or the activations became NaN or inf; the run stopped and kept its last good checkpoint."""


def train(cfg: ExperimentConfig, resume: str | Path | None = None) -> dict[str, Any]:
    """Train (or resume) the experiment `cfg`; returns the run folder, final metrics and status."""
    # ---- 1. config, processes, run folder ------------------------------------------------------------------------
    t = cfg.train
    d = distributed.setup(t.device)
    if t.threads:
        torch.set_num_threads(t.threads)
    torch.manual_seed(t.seed)
    torch.use_deterministic_algorithms(t.deterministic, warn_only=True)
    ckpt = load_checkpoint(resume, map_location=d.device) if resume is not None else None
    run_dir = _resume_dir(resume) if resume is not None else _new_run_dir(cfg)
    if d.main:
        print(f"# ssmkit train {cfg.experiment}: resolved config (saved to {run_dir / 'config.yaml'})\n{to_yaml(cfg)}")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(to_yaml(cfg))

    # ---- 2. data -------------------------------------------------------------------------------------------------
    task = build_task(cfg)
    collate = pad_collate if task.variable_length else None
    tol = task.info.get("tolerance")
    n_steps_epoch = steps_per_epoch(cfg, task)
    total_steps = t.epochs * n_steps_epoch
    metric, mode = main_metric(task.kind, tol)

    # ---- 3. model ------------------------------------------------------------------------------------------------
    model = build_model(cfg, task).to(d.device)
    n_params = count_params(model)

    # ---- 4. optimiser, schedule, precision, resume ---------------------------------------------------------------
    optimizer = build_optimizer(cfg, model)
    scheduler = build_scheduler(cfg, optimizer, total_steps)
    per_step_schedule = scheduler is not None and cfg.schedule.kind == "cosine"
    autocast = _autocast(t.precision, d.device)
    if t.test_on not in ("best", "last"):
        raise ValueError(f"train.test_on must be best or last; got {t.test_on!r}")
    scaler = torch.amp.GradScaler(d.device.type, enabled=t.precision == "fp16")
    step, best, wall_before = 0, None, 0.0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        step, best, wall_before = ckpt["step"], ckpt["best"], ckpt["wall_time_s"]
        set_rng_state(ckpt["rng"])
    net = nn.parallel.DistributedDataParallel(model) if d.world > 1 else model
    log = RunLog(run_dir, step if ckpt is not None else None) if d.main else None
    last_pt, best_pt = run_dir / "checkpoints" / "last.pt", run_dir / "checkpoints" / "best.pt"

    def checkpoint(path: Path) -> None:
        bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
        if bad:  # a finite loss whose gradient was not: never overwrite a good checkpoint with broken weights
            bar.close()
            raise TrainingDiverged(
                f"parameters {bad[:3]}{' ...' if len(bad) > 3 else ''} became NaN or inf at step {step} (a non-finite "
                f"gradient); stopping. {_kept(last_pt)}. Try a lower optim.lr, train.grad_clip=1.0, or "
                f"train.precision=32."
            )
        if d.main:
            state = {
                "config": cfg.to_dict(), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else {}, "scaler": scaler.state_dict(),
                "step": step, "best": best, "rng": rng_state(), "wall_time_s": time.time() - start, "params": n_params,
            }  # fmt: skip
            save_checkpoint(state, path)

    def evaluate(split: str) -> dict[str, float]:
        return _evaluate(model, getattr(task, split), cfg, task.kind, tol, d, collate, autocast)

    # ---- 5. the loop ---------------------------------------------------------------------------------------------
    stop = _StopFlag()
    start = time.time() - wall_before
    bar = tqdm(total=total_steps, initial=step, desc=cfg.experiment, disable=not (d.main and t.progress), ncols=100)
    status = "finished"
    while step < total_steps and status == "finished":
        epoch, skip = divmod(step, n_steps_epoch)
        batches = [
            b[d.rank :: d.world] for b in epoch_batches(len(task.train), t.batch_size, n_steps_epoch, t.seed, epoch)
        ]
        loader = DataLoader(task.train, batch_sampler=batches[skip:], collate_fn=collate, num_workers=t.num_workers,
                            generator=torch.Generator())  # fmt: skip
        model.train()
        for batch in loader:
            x, y, lengths = batch_to_device(batch, d.device)
            try:
                with autocast:
                    out = net(x, lengths)
            except NonFiniteError as e:  # finite data, yet a layer met NaN / inf: the activations overflowed
                if x.is_floating_point() and not torch.isfinite(x).all():
                    raise
                bar.close()
                raise TrainingDiverged(
                    f"activations became NaN or inf inside the model at step {step + 1} (epoch {epoch}; a layer "
                    f"reported: {e}); stopping. {_kept(last_pt)}. Try a lower optim.lr, a lower learning rate on the "
                    f"recurrent weights (model.layer_options.lr), train.grad_clip=1.0, or train.precision=32."
                ) from e
            loss, _ = _batch_loss(task.kind, out, y, lengths, tol)
            loss_all, stop_all = (d.sum(torch.tensor([loss.item(), float(stop.requested)])) / d.world).tolist()
            if not math.isfinite(loss_all):
                bar.close()
                raise TrainingDiverged(
                    f"loss is {loss_all} at step {step + 1} (epoch {epoch}); stopping. {_kept(last_pt)}. Try a lower "
                    f"optim.lr, train.grad_clip=1.0, or train.precision=32."
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if t.grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            if per_step_schedule:
                scheduler.step()
            step += 1
            bar.update(1)
            if log is not None and (step % t.log_every == 0 or step == total_steps):
                lr = optimizer.param_groups[0]["lr"]
                log.log(step, epoch, "train", {"loss": loss_all}, lr=lr, time_s=time.time() - start)
                bar.set_postfix(loss=f"{loss_all:.4f}", lr=f"{lr:.2e}")
            at_epoch_end = step % n_steps_epoch == 0
            if t.checkpoint_every and step % t.checkpoint_every == 0 and not at_epoch_end:
                checkpoint(last_pt)
            if (stop_all > 0 or step == t.stop_at_step) and not at_epoch_end:
                status = "stopped"
                break
        if status == "finished" or step % n_steps_epoch == 0:  # end of an epoch: validate, keep the best
            val = evaluate("val" if task.val is not None else "test")
            if log is not None:
                log.log(step, epoch, "val", val, time_s=time.time() - start)
            if scheduler is not None and not per_step_schedule:
                scheduler.step(val["loss"])
            improved = best is None or (val[metric] > best if mode == "max" else val[metric] < best)
            best = val[metric] if improved else best
            checkpoint(last_pt)
            if improved:
                checkpoint(best_pt)
            if stop.requested or stop_all > 0 or step == t.stop_at_step:
                status = "stopped"
        else:
            checkpoint(last_pt)
    bar.close()
    stop.restore()
    wall = time.time() - start
    if status == "stopped":
        if d.main:
            print(f"stopped at step {step}/{total_steps}; checkpoint saved: {last_pt}\n"
                  f"continue with: ssmkit train --resume {run_dir}")  # fmt: skip
            log.close()
        _leave_together(d)
        return {"run_dir": run_dir, "status": status, "step": step}

    # ---- 6. test and report --------------------------------------------------------------------------------------
    if t.test_on == "best":  # model selection on the validation split, as the papers report test numbers
        _load_best(model, best_pt, d.world)
    test = evaluate("test")
    # the task's extra test sets (e.g. Speech Commands at half the sampling rate, the S4 paper's zero-shot test: its
    # items at 8 kHz, every layer's Δ times `rate` = 2), scored by the same model and code as the main test
    extra = {name: _extra_test(model, name, spec, cfg, task, d, collate, autocast)
             for name, spec in task.info.get("extra_tests", {}).items()}  # fmt: skip
    extra = {name: m for name, m in extra.items() if m is not None}
    result = {"run_dir": run_dir, "status": status, "step": step, "test": test, "best_val": best, "params": n_params,
              "extra_tests": extra}  # fmt: skip
    if d.main:
        for split, metrics in {"test": test, **extra}.items():
            log.log(step, t.epochs - 1, split, metrics, time_s=wall)
        log.close()
        plot_curves(run_dir / "log.csv", run_dir / "curves.png", f"{cfg.experiment}: {cfg.model.layer}")
        device = _describe(d)
        for split, metrics in {"test": test, **extra}.items():
            append_result(Path(t.runs_dir) / "results.csv", {
                "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"), "experiment": cfg.experiment,
                "model": f"{cfg.model.layer} d={cfg.model.d_model} n={cfg.model.n_layers}", "params": n_params,
                "metric": f"{split} {metric}", "value": f"{metrics[metric]:.4f}", "wall_time_s": f"{wall:.3f}",
                "device": device, "run": str(run_dir),
            })  # fmt: skip
        scores = "; ".join(f"{split} {', '.join(f'{k} {v:.4f}' for k, v in m.items())}"
                           for split, m in {"test": test, **extra}.items())  # fmt: skip
        print(f"done in {wall:.1f} s: {scores}; params {n_params}; run folder {run_dir} (curves.png, log.csv, "
              f"checkpoints/)")  # fmt: skip
    _leave_together(d)
    return result


# ---- helpers ---------------------------------------------------------------------------------------------------------
def _leave_together(d: distributed.Dist) -> None:
    """Every process leaves train() together: one that tears its process group down while the main process still
    writes its files aborted inside gloo (tests/train/test_ddp.py failed ~1 run in 3 without this)."""
    if d.world > 1:
        torch.distributed.barrier()


def _load_best(model: nn.Module, best_pt: Path, world: int) -> None:
    """Every process takes the main process's best weights (read there, broadcast, so no shared file system needed)."""
    if best_pt.exists() and (world == 1 or torch.distributed.get_rank() == 0):
        model.load_state_dict(load_checkpoint(best_pt)["model"])
    if world > 1:
        for tensor in model.state_dict().values():
            torch.distributed.broadcast(tensor, 0)


def _batch_loss(kind, out, y, lengths, tol):  # one indirection so tests can inject a NaN
    return batch_loss(kind, out, y, lengths, tol)


def _extra_test(model, name, spec, cfg, task, d, collate, autocast) -> dict[str, float] | None:
    """One of task.info["extra_tests"] ({"dataset": ..., "rate": r}) scored as the main test, the model called at
    `rate` r (each SSM layer's Δ times r). None, with the reason printed, when the model has no Δ to rescale (an
    LSTM or attention baseline raises for rate != 1): that test is then not scored rather than scored wrongly."""
    rate = float(spec.get("rate", 1.0))
    try:
        return _evaluate(model, spec["dataset"], cfg, task.kind, task.info.get("tolerance"), d, collate, autocast,
                         rate=rate)  # fmt: skip
    except RateNotSupported as e:
        if d.main:
            print(f"{name}: not scored: {e}", file=sys.stderr)
        return None


class RateNotSupported(ValueError):
    """The model was asked for rate != 1 and one of its layers has no step size to rescale."""


@torch.no_grad()
def _evaluate(model, dataset, cfg, kind, tol, d, collate, autocast, rate: float = 1.0) -> dict[str, float]:
    """Metrics over the split (or the fixed, evenly spread subset of max_eval_batches batches that `eval_subset`
    draws with train.seed), each process taking its share of every batch; the model called at sampling-rate factor
    `rate` (the layers' Δ times rate; 1 = as trained)."""
    t = cfg.train
    bs = t.eval_batch_size
    n_keep = len(dataset) if t.max_eval_batches is None else t.max_eval_batches * bs
    items = eval_subset(len(dataset), n_keep, t.seed)
    batches = [items[i : i + bs][d.rank :: d.world] for i in range(0, len(items), bs)]
    batches = [b for b in batches if b]
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=collate, num_workers=t.num_workers,
                        generator=torch.Generator())  # fmt: skip
    was_training = model.training
    model.eval()
    stats = torch.zeros(5, dtype=torch.float64)
    for batch in loader:
        x, y, lengths = batch_to_device(batch, d.device)
        with autocast:
            if rate == 1.0:
                out = model(x, lengths)
            else:
                try:
                    out = model(x, lengths, rate=rate)
                except ValueError as e:
                    if "to rescale" not in str(e):  # the LSTM and attention layers' error for rate != 1
                        raise
                    raise RateNotSupported(str(e)) from e
        stats += _batch_loss(kind, out, y, lengths, tol)[1]
    model.train(was_training)
    return summarize(kind, d.sum(stats), tol)


def _describe(d) -> str:
    where = torch.cuda.get_device_name(d.device) if d.device.type == "cuda" else f"{torch.get_num_threads()} threads"
    return f"{d.device.type} x{d.world} ({where})"


def batch_to_device(batch, device):
    """(x, y[, lengths]) from a DataLoader -> x, y, lengths (None when the task has fixed length) on `device`."""
    x, y, *rest = batch
    lengths = rest[0].to(device) if rest else None
    return x.to(device), y.to(device), lengths


def _autocast(precision: str, device: torch.device):
    if precision not in ("32", "bf16", "fp16"):
        raise ValueError(f"train.precision must be 32, bf16 or fp16; got {precision!r}")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype, enabled=precision != "32")


class _StopFlag:
    """Ctrl-C (SIGINT) or SIGTERM asks the loop to save and stop after the current step; a second Ctrl-C kills."""

    def __init__(self) -> None:
        self.requested = False
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no handlers
                pass

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\ninterrupt: finishing this step, saving a checkpoint and stopping (Ctrl-C again to kill)",
              file=sys.stderr)  # fmt: skip

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _new_run_dir(cfg: ExperimentConfig) -> Path:
    name = cfg.train.name or datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(cfg.train.runs_dir) / cfg.experiment / name
    if (path / "checkpoints").exists():
        raise ValueError(f"run folder {path} already holds a run; continue it with --resume {path} or pick train.name")
    return path


def _resume_dir(resume: str | Path) -> Path:
    resume = Path(resume)
    return resume if resume.is_dir() else resume.parent.parent


def _kept(last_pt: Path) -> str:
    if not last_pt.exists():
        return "no checkpoint was written before it"
    return f"the last good checkpoint is {last_pt} (step {int(load_checkpoint(last_pt)['step'])})"


# ---- the `ssmkit train` subcommand -----------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", nargs="?", help="an experiment in configs/ (or a .yaml path); --list shows them")
    p.add_argument("overrides", nargs="*", help="section.key=value, e.g. model.d_model=64 train.epochs=3")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder (or from this checkpoint)")
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    add_data_dir_argument(p)


def add_data_dir_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir", metavar="DIR", help=f"where datasets live (task.data_dir; default ${DATA_DIR_ENV} or ./data)"
    )


def run(args: argparse.Namespace) -> int:
    if args.list:
        print("\n".join(experiment_names()))
        return 0
    try:
        if args.resume:
            overrides = ([args.experiment] if args.experiment else []) + list(args.overrides)
            saved = load_checkpoint(args.resume)["config"]
            cfg = from_dict(apply_overrides(saved, overrides), source=f"checkpoint {args.resume}")
        elif args.experiment is None:
            print(f"ssmkit train: give an experiment; valid experiments: {', '.join(experiment_names())}",
                  file=sys.stderr)  # fmt: skip
            return 2
        else:
            cfg = load_config(args.experiment, args.overrides)
        if args.data_dir is not None:
            cfg.task.data_dir = args.data_dir
        train(cfg, resume=args.resume)
    except (ValueError, DataMissingError, TrainingDiverged, FileNotFoundError) as e:
        print(f"ssmkit train: error: {e}", file=sys.stderr)
        return 1
    finally:
        distributed.teardown()
    return 0
