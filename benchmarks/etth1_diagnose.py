"""ETTh1 horizon-24 diagnosis (issue 7): train S4 with the project's builders and, at chosen steps, split each split's
MSE into its constant part and the rest, next to persistence on the same windows.

    nice -n 19 .venv/bin/python benchmarks/etth1_diagnose.py s4_etth1_cpu 518 100,259,518 out.json \
        task.options.time_features=false task.options.center=last

Per split (train: every 12th window, val / test: every 4th): mse, mae, bias = mean(pred - y) over windows and steps,
mse_debiased = MSE after removing each window's mean error, persist = MSE of repeating the last observed value.
The learning-rate schedule spans TOTAL_STEPS (environment; default 2590 = 10 epochs of s4_etth1_cpu), so the steps
compare with the first epochs of a 10-epoch run. Data: $SSMKIT_DATA_DIR (default /work/shared/data).
"""

import json
import os
import sys
import time

import torch

from ssmkit.train.build import build_model, build_optimizer, build_scheduler, build_task, epoch_batches
from ssmkit.train.config import load_config


def split_metrics(model, ds, input_len: int, stride: int) -> dict[str, float]:
    idx = list(range(0, len(ds), stride))
    model.eval()
    preds, ys, lasts = [], [], []
    with torch.no_grad():
        for i in range(0, len(idx), 128):
            items = [ds[j] for j in idx[i : i + 128]]
            x = torch.stack([a for a, _ in items])  # (B, L + horizon, d_input)
            preds.append(model(x)[..., 0])  # (B, horizon)
            ys.append(torch.stack([b for _, b in items])[..., 0])
            lasts.append(x[:, input_len - 1, :1])  # (B, 1) the last observed value (centred: 0)
    model.train()
    p, y, last = (torch.cat(t).double() for t in (preds, ys, lasts))
    err = p - y
    return {
        "mse": err.pow(2).mean().item(),
        "mae": err.abs().mean().item(),
        "bias": err.mean().item(),
        "mse_debiased": (err - err.mean(1, keepdim=True)).pow(2).mean().item(),
        "persist": (y - last).pow(2).mean().item(),
    }


def main(experiment: str, steps: int, eval_steps: str, out: str, *overrides: str) -> None:
    torch.set_num_threads(1)
    cfg = load_config(experiment, list(overrides))
    cfg.task.data_dir = os.environ.get("SSMKIT_DATA_DIR", "/work/shared/data")
    torch.manual_seed(cfg.train.seed)
    task = build_task(cfg)
    model = build_model(cfg, task)
    opt = build_optimizer(cfg, model)
    sched = build_scheduler(cfg, opt, int(os.environ.get("TOTAL_STEPS", 2590)))
    evals, input_len = {int(s) for s in eval_steps.split(",")}, task.info["input_len"]
    n_batches = len(task.train) // cfg.train.batch_size
    rows, step, epoch, t0 = [], 0, 0, time.time()
    while step < steps:
        for batch in epoch_batches(len(task.train), cfg.train.batch_size, n_batches, cfg.train.seed, epoch):
            x = torch.stack([task.train[j][0] for j in batch])
            y = torch.stack([task.train[j][1] for j in batch])
            loss = (model(x) - y).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip or float("inf"))
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
            if step in evals:
                row = {"step": step, "time_s": round(time.time() - t0)}
                for split, stride in (("train", 12), ("val", 4), ("test", 4)):
                    row[split] = split_metrics(model, getattr(task, split), input_len, stride)
                print(json.dumps(row), flush=True)
                rows.append(row)
            if step >= steps:
                break
        epoch += 1
    with open(out, "w") as f:
        json.dump({"experiment": experiment, "overrides": list(overrides), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], *sys.argv[5:])
