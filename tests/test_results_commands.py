"""Every training command quoted in the docs (README.md, benchmarks/*.md, docs/*.md, the configs' header comments)
still runs as written: its experiment exists in configs/ and its overrides name real keys with values of the right
type. A committed number is only worth its command, so renaming a config or a key without updating the results that
cite it fails here, not for a reader."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from ssmkit.train.config import experiment_names, load_config

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *(ROOT / "benchmarks").glob("*.md"), *(ROOT / "docs").glob("*.md")]
DOCS += sorted((ROOT / "configs").glob("*.yaml"))
TRAIN_COMMAND = re.compile(r"`ssmkit train ([^`]+)`")
COMMAND_START = re.compile(r"(--resume |[a-z0-9_]+( |$))")  # not a placeholder like `ssmkit train / eval / stream`


def quoted_train_commands() -> list[tuple[str, str]]:
    """(document, argument string) for each `ssmkit train ...` in backticks, skipping `--list` and placeholders.
    Commands may wrap across lines, in a YAML header across `# ` comment lines."""
    found = []
    for doc in DOCS:
        text = re.sub(r"\n\s*#? ?", " ", doc.read_text())
        for args in TRAIN_COMMAND.findall(text):
            args = " ".join(args.split())
            if COMMAND_START.match(args) and "<" not in args:  # <rung>: a placeholder, not a command
                found.append((doc.name, args))
    return sorted(set(found))


COMMANDS = quoted_train_commands()


def test_the_results_quote_training_commands() -> None:
    assert sum(doc == "results.md" for doc, _ in COMMANDS) >= 20, COMMANDS


@pytest.mark.parametrize("doc,args", COMMANDS, ids=[a for _, a in COMMANDS])
def test_quoted_command_resolves(doc: str, args: str) -> None:
    words = shlex.split(args)
    if words[0] == "--resume":  # --resume runs/<experiment>/<name> [overrides]: the experiment is the folder above
        experiment, overrides = Path(words[1]).parts[-2], words[2:]
    else:
        experiment, overrides = words[0], words[1:]
    assert experiment in experiment_names(), f"{doc}: `ssmkit train {args}` names no config in configs/"
    assert all("=" in o for o in overrides), f"{doc}: `ssmkit train {args}` has an argument that is not key=value"
    load_config(experiment, overrides)  # unknown keys and wrongly typed values raise here


def test_a_stale_command_fails() -> None:
    """What the check above relies on: a misspelt key or a wrong type is an error, not silently ignored."""
    with pytest.raises(ValueError, match="epoch"):
        load_config("lru_smnist_cpu", ["train.epoch=8"])
    with pytest.raises(ValueError):
        load_config("lru_smnist_cpu", ["train.epochs=eight"])
