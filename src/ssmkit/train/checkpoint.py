"""Checkpoints that survive a kill -9 and can never execute code.

Writing: to a temporary file in the same folder, flushed and fsync'ed, then `os.replace`d over the old one (atomic
on POSIX and Windows), then the folder is fsync'ed; a crash at any moment leaves either the old or the new file, whole.
Reading: `torch.load(weights_only=True)`, so a checkpoint holds only tensors and plain containers (dicts, lists,
numbers, strings) — RNG states are stored as tensors, the config as a plain dict.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def save_checkpoint(obj: dict[str, Any], path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():  # a run folder: its last checkpoint
        path = path / "checkpoints" / "last.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path} (give a .pt file or a run folder holding checkpoints/last.pt)"
        )
    return torch.load(path, map_location=map_location, weights_only=True)


def rng_state() -> dict[str, Any]:
    """The global torch RNG states (CPU and every CUDA device) as tensors."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
