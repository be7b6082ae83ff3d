"""How long does each experiment config take to train? Real optimiser steps on real batches, projected to the full run.

For each config (default: every configs/*_cpu.yaml, the variants promised to "train on a 2-core machine in under an
hour"), in its own process with the config's `train.threads`:

1. the task, model, AdamW and schedule are built exactly as `ssmkit train` builds them (`ssmkit.train.build`); where
   the task's files are missing (`DataMissingError`), a stand-in task of the same kind and shapes (`SYNTHETIC`: random
   inputs at the task's full length, random labels, the real split sizes) replaces it, and the table says so;
2. the batches of epoch 0 (`epoch_batches`, the run's own order) feed `--steps` timed optimiser steps after one
   warm-up step: fetch the batch, forward, loss (`ssmkit.train.metrics.batch_loss`), zero_grad, backward, gradient
   clipping, AdamW, schedule step — what one iteration of the training loop does, without logging or checkpoints;
3. `--eval-batches` evaluation batches of the validation split (the test split when the task has none), no_grad, after
   one warm-up batch;
4. projected time = epochs × (steps per epoch × s/step + validation batches × s/eval batch) + test batches ×
   s/eval batch, with the batch counts the run will use (`train.steps_per_epoch`, `train.max_eval_batches`). Data
   loading, start-up and checkpoints are not in it (seconds).

Times are medians of the timed steps; each step's wall time and the process's CPU time are both recorded, and the
CPU-time projection gives the verdict (see the report for why). Variable-length tasks (ListOps, Text, Retrieval) time
the first batches of the run's epoch 0 order, so their s/step is that of a few real batch lengths; synthetic pairs use
the full L (an upper bound). Every row records the 1-minute load average before and after its measurement.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

from ssmkit.bench import common

NAME = "configs_cpu"

# task -> the shapes and split sizes of its real data, for a stand-in where the files are missing:
# (kind, d_output, d_input, vocab_size, L, (n_train, n_val, n_test), info). L None: from the task's options.
SYNTHETIC: dict[str, tuple[str, int, int, int | None, int | None, tuple[int, int, int], dict[str, Any]]] = {
    # Speech Commands v0.02, official validation / testing lists, 10 or 35 words; 1 s at 16 kHz (data/speech.py)
    "sc10": ("classify", 10, 1, None, 16000, (30769, 3643, 4107), {}),
    "sc35": ("classify", 35, 1, None, 16000, (84843, 9981, 11005), {}),
    # colour CIFAR-10: 50000 train (5000 carved as val, data/images.py) / 10000 test, 32 x 32 pixels of 3 channels
    "scifar": ("classify", 10, 3, None, 1024, (45000, 5000, 10000), {}),
    "scifar_gray": ("classify", 10, 1, None, 1024, (45000, 5000, 10000), {}),
    # Path-X: 200000 images of 128 x 128, split 80 / 10 / 10 (data/pathfinder.py SPLIT)
    "pathx": ("classify", 2, 1, None, 128 * 128, (160000, 20000, 20000), {}),
    # LRA Retrieval (AAN): byte pairs (L, 2), 257 symbols, 147086 / 18090 / 17437 pairs (data/retrieval.py)
    "lra_retrieval": ("classify", 2, 1, 257, None, (147086, 18090, 17437), {"pair": True, "pad_token": 0}),
    # LRA Text (IMDB bytes): 25000 train (2500 carved as val) / 25000 test (data/text.py)
    "lra_text": ("classify", 2, 1, 257, None, (22500, 2500, 25000), {"pad_token": 0}),
}


# ---- the measurement, in the config's own process ------------------------------------------------------------------
def synthetic_task(cfg):
    """A Task with the kind, shapes and split sizes of cfg's task (`SYNTHETIC`), random inputs and labels."""
    import torch
    from torch.utils.data import Dataset

    from ssmkit.data.base import Task

    name = cfg.task.name
    if name not in SYNTHETIC:
        raise ValueError(f"task {name!r} has no data here and no synthetic stand-in in ssmkit.bench.configs.SYNTHETIC")
    kind, d_output, d_input, vocab, L, sizes, info = SYNTHETIC[name]
    if L is None:
        L = int(cfg.task.options.get("l_max", 4096))
    if name == "pathfinder":
        L = int(cfg.task.options.get("resolution", 32)) ** 2

    class RandomItems(Dataset):
        """n items: x (L, d_input) float, (L,) tokens or (L, 2) token pairs, y a random class; item i seeded by i."""

        def __init__(self, n: int) -> None:
            self.n = n

        def __len__(self) -> int:
            return self.n

        def __getitem__(self, i: int):
            g = torch.Generator().manual_seed(i)
            if vocab is not None:
                shape = (L, 2) if info.get("pair") else (L,)
                x = torch.randint(1, vocab, shape, generator=g)
            else:
                x = torch.randn(L, d_input, generator=g)
            return x, torch.randint(0, d_output, (), generator=g)

    n_train, n_val, n_test = sizes
    return Task(
        name, kind, RandomItems(n_train), RandomItems(n_val), RandomItems(n_test), d_output=d_output,
        d_input=d_input, vocab_size=vocab, l_max=L, info=dict(info),
    )  # fmt: skip


def cost_settings(cfg) -> dict[str, Any]:
    """The settings a step's and an evaluation batch's cost depend on (task, model, batch sizes, threads), as JSON
    types: a config whose settings still equal the measured ones can be re-projected from the measured times."""
    import dataclasses

    t = cfg.train
    return json.loads(json.dumps({
        "task": {"name": cfg.task.name, "options": cfg.task.options}, "model": dataclasses.asdict(cfg.model),
        "batch_size": t.batch_size, "eval_batch_size": t.eval_batch_size, "grad_clip": t.grad_clip,
        "precision": t.precision, "threads": t.threads,
    }))  # fmt: skip


def n_eval_batches(n_items: int, batch_size: int, max_batches: int | None) -> int:
    """The evaluation batches a run uses on a split of n_items (as ssmkit.train.loop._evaluate counts them)."""
    n = math.ceil(n_items / batch_size)
    return n if max_batches is None else min(max_batches, n)


def project_seconds(
    epochs: int, steps_per_epoch: int, step_s: float, val_batches: int, test_batches: int, eval_s: float
) -> float:
    """epochs × (steps per epoch × s/step + validation batches × s/eval batch) + test batches × s/eval batch."""
    return epochs * (steps_per_epoch * step_s + val_batches * eval_s) + test_batches * eval_s


def measure_config(
    device: str, name: str, steps: int = 3, eval_batches: int = 2, data_dir: str | None = None
) -> dict[str, Any]:
    """Build experiment `name` as `ssmkit train` does; time `steps` optimiser steps and `eval_batches` evaluation
    batches (each after one warm-up); return the timings, batch counts and the projected wall time."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    from ssmkit.data.base import DataMissingError, pad_collate
    from ssmkit.train import build
    from ssmkit.train.config import load_config
    from ssmkit.train.loop import batch_to_device
    from ssmkit.train.metrics import batch_loss

    cfg = load_config(name)
    if data_dir is not None:
        cfg.task.data_dir = data_dir
    t = cfg.train
    if t.precision != "32":
        raise ValueError(f"{name}: train.precision={t.precision}; this benchmark times float32 runs only")
    torch.manual_seed(t.seed)
    start = time.perf_counter()
    try:
        task, data = build.build_task(cfg), "real"
    except DataMissingError:
        task, data = synthetic_task(cfg), "synthetic"
    build_s = time.perf_counter() - start
    dev = torch.device(device)
    model = build.build_model(cfg, task).to(dev)
    optimizer = build.build_optimizer(cfg, model)
    spe = build.steps_per_epoch(cfg, task)
    scheduler = build.build_scheduler(cfg, optimizer, t.epochs * spe)
    per_step_schedule = scheduler is not None and cfg.schedule.kind == "cosine"
    collate = pad_collate if task.variable_length else None
    tol = task.info.get("tolerance")

    # train: one warm-up step, then `steps` timed ones, on the run's first batches of epoch 0
    batches = build.epoch_batches(len(task.train), t.batch_size, steps + 1, t.seed, 0)
    it = iter(DataLoader(task.train, batch_sampler=batches, collate_fn=collate, generator=torch.Generator()))
    model.train()
    step_times, step_cpu, lengths_seen = [], [], []
    for i in range(steps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        x, y, lengths = batch_to_device(next(it), dev)
        loss, _ = batch_loss(task.kind, model(x, lengths), y, lengths, tol)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if t.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()
        if per_step_schedule:
            scheduler.step()
        if not math.isfinite(loss.item()):
            raise ValueError(f"{name}: loss {loss.item()} at timing step {i}")
        if i > 0:
            step_times.append(time.perf_counter() - t0)
            step_cpu.append(time.process_time() - c0)
        lengths_seen.append(int(x.shape[1]))

    # evaluation: one warm-up batch, then `eval_batches` timed ones, of the split validation uses
    split = task.val if task.val is not None else task.test
    bs = t.eval_batch_size
    n = min(len(split), (eval_batches + 1) * bs)
    ebatches = [list(range(i, min(n, i + bs))) for i in range(0, n, bs)]
    it = iter(DataLoader(split, batch_sampler=ebatches, collate_fn=collate, generator=torch.Generator()))
    model.eval()
    eval_times, eval_cpu = [], []
    with torch.no_grad():
        for i in range(len(ebatches)):
            t0, c0 = time.perf_counter(), time.process_time()
            x, y, lengths = batch_to_device(next(it), dev)
            batch_loss(task.kind, model(x, lengths), y, lengths, tol)
            if i > 0 or len(ebatches) == 1:
                eval_times.append(time.perf_counter() - t0)
                eval_cpu.append(time.process_time() - c0)

    step_s, eval_s = statistics.median(step_times), statistics.median(eval_times)
    val_batches = n_eval_batches(len(split), bs, t.max_eval_batches)
    test_batches = n_eval_batches(len(task.test), bs, t.max_eval_batches)
    projected = project_seconds(t.epochs, spe, step_s, val_batches, test_batches, eval_s)
    step_cpu_s, eval_cpu_s = statistics.median(step_cpu), statistics.median(eval_cpu)
    projected_cpu = project_seconds(t.epochs, spe, step_cpu_s, val_batches, test_batches, eval_cpu_s)
    return {
        "config": name, "task": cfg.task.name, "data": data, "params": build.count_params(model),
        "L": task.l_max if task.l_max is not None else max(lengths_seen), "lengths_seen": lengths_seen,
        "variable_length": task.variable_length, "batch": t.batch_size, "epochs": t.epochs, "steps_per_epoch": spe,
        "n_train": len(task.train), "n_val": len(split), "n_test": len(task.test), "eval_batch": bs,
        "val_batches": val_batches, "test_batches": test_batches,
        "step_s": step_s, "step_times": step_times, "eval_s": eval_s, "eval_times": eval_times,
        "projected_s": projected, "step_cpu_s": step_cpu_s, "eval_cpu_s": eval_cpu_s, "projected_cpu_s": projected_cpu,
        "build_s": build_s, "peak_rss_mib": common.rss_mib(),
        "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "measured": cost_settings(cfg),
    }  # fmt: skip


# ---- the subcommand -------------------------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("configs", nargs="*", help="experiments to time (default: every configs/*_cpu.yaml)")
    p.add_argument("--steps", type=int, default=3, help="timed optimiser steps per config, after one warm-up step")
    p.add_argument("--eval-batches", type=int, default=2, help="timed evaluation batches, after one warm-up batch")
    p.add_argument("--quick", action="store_true", help="one timed step and one evaluation batch per config")
    p.add_argument("--out", type=Path, default=common.DEFAULT_OUT, help="folder for configs_cpu.md / .json / .png")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"), help="default cpu: the promise is CPU")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: each config's train.threads)")
    p.add_argument("--data-dir", default=None, help="where datasets live (default $SSMKIT_DATA_DIR or ./data)")
    p.add_argument("--budget-min", type=float, default=60.0, help="the promised wall time, minutes (default 60)")
    p.add_argument(
        "--update", action="store_true", help="re-measure only the configs named; keep the json's other rows"
    )
    p.add_argument("--table-only", action="store_true", help="rebuild the .md and .png from the json; measure nothing")
    p.add_argument("--timeout-s", type=float, default=1800, help="give up on one config after this many seconds")


def run(args: argparse.Namespace) -> int:
    from ssmkit.train.config import experiment_names, load_config

    device = common.resolve_device(args.device)
    json_path = args.out / f"{NAME}.json"
    saved = json.loads(json_path.read_text()) if json_path.exists() and (args.update or args.table_only) else None
    if args.table_only:
        if saved is None:
            raise ValueError(f"--table-only rebuilds {NAME}.md from {json_path}, which does not exist")
        return finish(args, saved)
    names = args.configs or [n for n in experiment_names() if n.endswith("_cpu")]
    steps, eval_batches = (1, 1) if args.quick else (args.steps, args.eval_batches)
    threads_note = args.threads or "each config's train.threads"
    record = {"rows": [], "runs": []}
    if saved is not None:  # keep the other rows, and the runs that measured them
        kept = [r for r in saved["rows"] if r["config"] not in names]
        used = sorted({r["run"] for r in kept})
        record = {"rows": [r | {"run": used.index(r["run"])} for r in kept], "runs": [saved["runs"][i] for i in used]}
    run = {"command": " ".join([common.command_line(args), *args.configs]), "configs": names,
           "before": common.machine_record(device, threads_note)}  # fmt: skip
    record["runs"].append(run)
    for name in names:
        threads = args.threads or load_config(name).train.threads or 1
        kwargs = {"name": name, "steps": steps, "eval_batches": eval_batches, "data_dir": args.data_dir}
        res = common.run_cell(
            "ssmkit.bench.configs:measure_config", kwargs, threads=threads, device=device, timeout_s=args.timeout_s
        )
        res.setdefault("config", name)
        res["threads"], res["run"] = threads, len(record["runs"]) - 1
        record["rows"] = [r for r in record["rows"] if r["config"] != name] + [res]
        if "error" in res:
            print(f"{name}: error: {res['error']}", flush=True)
        else:
            minutes = res["projected_s"] / 60
            print(f"{name}: {res['step_s']:.3f} s/step, {res['eval_s']:.3f} s/eval batch, projected {minutes:.1f} min "
                  f"({res['data']} data; load {res['load'][0]:.1f})", flush=True)  # fmt: skip
        run["after"] = common.machine_record(device, threads_note)
        args.out.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(record, indent=1))
    return finish(args, record)


def finish(args: argparse.Namespace, record: dict[str, Any]) -> int:
    """configs_cpu.md and .png from the measurements in `record` (rows, and the runs that measured them)."""
    rows = {r["config"]: replan(r) for r in record["rows"]}
    path = write_table(args, rows, record["runs"])
    plot(args.out / f"{NAME}.png", rows, args.budget_min)
    print(f"wrote {path} and {args.out / f'{NAME}.png'} (measurements: {args.out / f'{NAME}.json'})")
    return 0


def replan(row: dict[str, Any]) -> dict[str, Any]:
    """The row re-projected for its config's current epochs, steps per epoch and evaluation batches, when the config
    changed only those since it was measured (its `cost_settings` are the measured ones); else the row as measured."""
    from ssmkit.train.config import load_config

    if "error" in row:
        return row
    try:
        cfg = load_config(row["config"])
    except ValueError:  # a config file that is gone: keep the measurement as it was
        return row
    t = cfg.train
    if cost_settings(cfg) != row["measured"]:
        return row
    spe = t.steps_per_epoch or row["n_train"] // t.batch_size
    val, test = (n_eval_batches(row[k], t.eval_batch_size, t.max_eval_batches) for k in ("n_val", "n_test"))
    plan = (t.epochs, spe, val, test)
    if plan == (row["epochs"], row["steps_per_epoch"], row["val_batches"], row["test_batches"]):
        return row
    return row | {
        "epochs": t.epochs, "steps_per_epoch": spe, "val_batches": val, "test_batches": test,
        "projected_s": project_seconds(t.epochs, spe, row["step_s"], val, test, row["eval_s"]),
        "projected_cpu_s": project_seconds(t.epochs, spe, row["step_cpu_s"], val, test, row["eval_cpu_s"]),
        "replanned_from": f"{row['epochs']} x {row['steps_per_epoch']}: {row['projected_cpu_s'] / 60:.0f} min",
    }  # fmt: skip


def table_rows(rows: dict[str, dict[str, Any]], budget_min: float) -> list[list[Any]]:
    out = []
    for name in sorted(rows):
        r = rows[name]
        if "error" in r:
            out.append([name, *[""] * 6, f"error: {r['error']}", *[""] * 5])
            continue
        minutes = r["projected_cpu_s"] / 60
        L = f"{r['L']} (variable)" if r["variable_length"] else r["L"]
        data = "real" if r["data"] == "real" else "synthetic of the same shape"
        out.append(
            [name, f"{r['params']:,}", L, r["batch"], f"{r['epochs']} x {r['steps_per_epoch']}"
             + (f" (was {r['replanned_from']})" if "replanned_from" in r else ""),
             f"{r['step_cpu_s']:.3f} ({r['step_s']:.3f})",
             f"{r['eval_cpu_s']:.3f} ({r['eval_s']:.3f}) x {r['eval_batch']}",
             f"{r['val_batches']} / {r['test_batches']}", f"{minutes:.1f}",
             "yes" if minutes <= budget_min else "**no**", f"{r['projected_s'] / 60:.0f}", data,
             f"{r['threads']}; {len(r['step_times'])} + {len(r['eval_times'])}; {r['load'][0]:.1f}-{r['load'][1]:.1f}; "
             f"{r['time'][11:16]}"]
        )  # fmt: skip
    return out


def write_table(args: argparse.Namespace, rows: dict[str, dict[str, Any]], runs: list[dict[str, Any]]) -> Path:
    ok = [r for r in rows.values() if "error" not in r]
    under = [r for r in ok if r["projected_cpu_s"] / 60 <= args.budget_min]
    over = sorted(r["config"] for r in ok if r["projected_cpu_s"] / 60 > args.budget_min)
    under_wall = [r for r in ok if r["projected_s"] / 60 <= args.budget_min]
    synthetic = sorted(r["config"] for r in ok if r["data"] != "real")
    budget = f"{args.budget_min:g} min"
    from ssmkit.train.config import experiment_names

    unmeasured = [n for n in experiment_names() if n.endswith("_cpu") and n not in rows]
    headers = ["config", "params", "L", "batch", "epochs x steps", "CPU s/step (wall s)",
               "eval CPU s/batch (wall s) x batch", "val / test batches", "projected min (CPU time)",
               f"under {budget}", "projected min (wall, this load)", "data",
               "threads; timed steps + eval batches; load before-after; time (UTC)"]  # fmt: skip
    body = [
        __doc__.split("\n\n", 1)[1].strip(),
        "",
        f"**{len(under)} of {len(rows)} configs are projected under {budget} from their CPU time** (the idle-machine "
        f"estimate, below); over it: {', '.join(over) or 'none'}. {len(under_wall)} of {len(rows)} are projected under "
        f"{budget} from the wall time measured on this loaded machine; {len(rows) - len(ok)} failed to measure. "
        f"Timed on synthetic inputs of the real shapes (their data is not on this machine): "
        f"{', '.join(synthetic) or 'none'}. Not measured yet (a measuring run stopped before it reached them): "
        f"{', '.join(unmeasured) or 'none'}.",
        "",
        "A config shrunk after its measurement (fewer epochs, steps or evaluation batches, nothing that changes the "
        "cost of a step) is re-projected from its measured times with its current plan: the epochs x steps column "
        "says what it was.",
        "",
        "Why CPU time: the machine is shared (the load column: the 1-minute load average before and after each "
        "config's measurement) and the benchmark runs under `nice -n 19`, so its share of a core depends on how many "
        "other processes run at that moment: the wall times in brackets are inflated by each row's wall / CPU "
        "ratio (one measuring run, with three un-niced training runs on the two cores, got under 1 % of a core). "
        "The process's CPU time "
        "(`time.process_time`) for the same step does not count the time it waited: with one thread it is close to "
        "the wall time the step takes on an idle core (cache and memory contention still inflate it a little, so the "
        "estimate errs long). The verdict uses it; the wall projection is listed for the record, and a config under "
        "the budget by it is under the budget on an idle machine too.",
        "",
        common.markdown_table(headers, table_rows(rows, args.budget_min)),
        "",
        "## Measuring runs",
        "",
    ]
    for run in runs:
        after = run.get("after", run["before"])
        body += [f"`{run['command']}` ({len(run['configs'])} configs)", "", *common.machine_lines(run["before"], after)]
        body.append("")
    commands = "\n".join(f"SSMKIT_DATA_DIR=/work/shared/data nice -n 19 {run['command']}" for run in runs)
    return common.write_report(
        args.out, NAME, "Projected training time of the experiment configs", commands or common.command_line(args),
        [], body,
    )  # fmt: skip


def plot(path: Path, rows: dict[str, dict[str, Any]], budget_min: float) -> Path:
    """Horizontal bars: projected minutes per config from CPU time; dots: from the loaded wall time; the budget line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = sorted((r for r in rows.values() if "error" not in r), key=lambda r: r["projected_cpu_s"])
    fig, ax = plt.subplots(figsize=(8, 0.22 * len(ok) + 1.4))
    names = [r["config"] for r in ok]
    colours = ["tab:blue" if r["data"] == "real" else "tab:orange" for r in ok]
    ax.barh(names, [r["projected_cpu_s"] / 60 for r in ok], color=colours)
    ax.plot([r["projected_s"] / 60 for r in ok], names, "k.", ms=4, label="wall time on the loaded machine")
    ax.axvline(budget_min, color="red", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("projected minutes from CPU time (blue: real data; orange: synthetic)")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
