"""What a run leaves behind: log.csv and TensorBoard events while it runs; learning curves (PNG) and a row in the
results table at the end."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

LOG_FIELDS = ("step", "epoch", "split", "loss", "acc", "mae", "lr", "time_s")
RESULT_FIELDS = ("date", "experiment", "model", "params", "metric", "value", "wall_time_s", "device", "run")


class RunLog:
    """log.csv (one row per logged train step and per evaluation) plus TensorBoard scalars."""

    def __init__(self, run_dir: Path, resume_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = run_dir / "log.csv"
        rows = read_log(self.path) if resume_step is not None and self.path.exists() else []
        rows = [r for r in rows if int(r["step"]) <= (resume_step or 0)]  # drop what came after the checkpoint
        self.file = open(self.path, "w", newline="")  # noqa: SIM115 (closed by close())
        self.writer = csv.DictWriter(self.file, LOG_FIELDS)
        self.writer.writeheader()
        self.writer.writerows(rows)
        self.tb = SummaryWriter(run_dir / "tensorboard", purge_step=resume_step)

    def log(self, step: int, epoch: int, split: str, metrics: dict[str, float], **extra: float) -> None:
        row = {
            "step": step,
            "epoch": epoch,
            "split": split,
            **{k: repr(float(v)) for k, v in {**metrics, **extra}.items()},
        }
        self.writer.writerow(row)
        self.file.flush()
        for k, v in {**metrics, **extra}.items():
            if k != "time_s":
                self.tb.add_scalar(f"{split}/{k}", v, step)

    def close(self) -> None:
        self.file.close()
        self.tb.close()


def read_log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def plot_curves(log_path: Path, png: Path, title: str) -> Path:
    """Train loss and validation loss / accuracy against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(log_path)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for split, style in (("train", "-"), ("val", "o-")):
        pts = [(int(r["step"]), float(r["loss"])) for r in rows if r["split"] == split and r["loss"]]
        if pts:
            axes[0].plot(*zip(*pts, strict=True), style, label=f"{split} loss", ms=3)
        acc = [(int(r["step"]), float(r["acc"])) for r in rows if r["split"] == split and r["acc"]]
        if acc:
            axes[1].plot(*zip(*acc, strict=True), style, label=f"{split} acc", ms=3)
    axes[0].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


def append_result(table: Path, row: dict[str, Any]) -> None:
    """Append one row to the results CSV (header written when the file is new)."""
    table.parent.mkdir(parents=True, exist_ok=True)
    new = not table.exists()
    with open(table, "a", newline="") as f:
        w = csv.DictWriter(f, RESULT_FIELDS)
        if new:
            w.writeheader()
        w.writerow({k: row.get(k, "") for k in RESULT_FIELDS})
