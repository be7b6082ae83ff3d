"""Data-parallel training with torch.distributed: launched by torchrun (which sets RANK, WORLD_SIZE, LOCAL_RANK),
gloo on CPU, NCCL on GPUs. Without torchrun everything here is a no-op with rank 0 of 1."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """All-reduce sum of a small CPU tensor (a no-op on one process)."""
        if self.world == 1:
            return t
        buf = t.to(self.device)
        dist.all_reduce(buf)
        return buf.to(t.device)


def setup(device: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"train.device must be auto, cpu or cuda; got {device!r}")
    dev = torch.device(f"cuda:{local}" if device == "cuda" else "cpu")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank, world, dev)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
