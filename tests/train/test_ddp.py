"""Data-parallel: the same command under torchrun with 2 CPU processes (gloo) matches one process with the same global
batch, to floating-point tolerance (gradients are averaged in a different order)."""

import csv
import subprocess
import sys

import torch

from ssmkit.train.checkpoint import load_checkpoint
from ssmkit.train.config import load_config
from ssmkit.train.loop import train

# LayerNorm (BatchNorm's batch statistics would be per process), no dropout
OVERRIDES = ["model.norm=layer", "model.dropout=0.0", "train.progress=false", "train.threads=1"]


def _train_losses(run_dir):
    with open(run_dir / "log.csv", newline="") as f:
        return [float(r["loss"]) for r in csv.DictReader(f) if r["split"] in ("train", "val")]


def test_two_processes_match_one(tmp_path):
    single = train(load_config("tiny", [*OVERRIDES, f"train.runs_dir={tmp_path}", "train.name=one"]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ssmkit",
           "train", "tiny", *OVERRIDES, f"train.runs_dir={tmp_path}", "train.name=two"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("resolved config") == 1  # only rank 0 prints, logs and saves
    two = tmp_path / "tiny" / "two"
    a, b = _train_losses(single["run_dir"]), _train_losses(two)
    assert len(a) == len(b) == 12
    torch.testing.assert_close(torch.tensor(b), torch.tensor(a), rtol=1e-5, atol=1e-6)
    wa, wb = load_checkpoint(single["run_dir"])["model"], load_checkpoint(two)["model"]
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-4, atol=1e-5)
    with open(tmp_path / "results.csv", newline="") as f:
        assert [row["device"].split(" (")[0] for row in csv.DictReader(f)] == ["cpu x1", "cpu x2"]
