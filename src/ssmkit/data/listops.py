"""LRA ListOps: evaluate a nested list of MAX, MIN, MED and SUM_MOD operations on digits (Tay et al. 2021, "Long Range
Arena", sec. 3.1; the task of Nangia & Bowman 2018).

An example (LRA's TSV: "Source<TAB>Target", header line "Source\\tTarget"):
    ( ( ( [MAX 2 ) 9 ) ( ( [MIN 4 ) 7 ) ] ) 0 ) ] )      ->  9
Each operator applies to its arguments up to the matching "]": MAX, MIN, MED (median, rounded down), SM (sum mod 10).
The parentheses only encode the generator's binary tree; they carry no information and are dropped.

Tokens (a fixed vocabulary, vocab_size = 16): 0 = padding, 1..10 = the digits 0..9, 11 = [MIN, 12 = [MAX, 13 = [MED,
14 = [SM, 15 = "]". LRA's own pipeline tokenised with an alphanumeric-only tokenizer, which also dropped "]"; like the
S4 code we keep "]" (`keep_close=True`) so the nesting is recoverable; `keep_close=False` gives LRA's token stream.
x is long (len_i,) with 500 < len_i < 2000 at the LRA settings, unpadded (`variable_length=True`, batches by
`pad_collate`); y is the value 0..9.

Files: LRA's release (lra_release/listops-1000/) holds basic_train.tsv (96000), basic_val.tsv (2000), basic_test.tsv
(2000); each may be gzipped. Looked for in the data folder, listops/, listops-1000/ and lra_release/listops-1000/. When
there is no test file (../shared/data holds train and val only), the val file becomes the test set and `val_size`
examples (default 2000) are carved from train by a seeded split; `info["splits"]` says which happened.

`generate_listops` is our own generator of the same distribution (the LRA generator's specification, re-implemented):
a node at depth d < max_depth is an operator with probability 0.25, otherwise a digit (always a digit at max_depth);
an operator takes 2..max_args arguments and a uniformly drawn operator; the root is at depth 1; a tree is kept when its
length (digits + 2 per operator, i.e. the token count with "]") lies strictly between min_length and max_length.
"""

from __future__ import annotations

import gzip
import os
import random
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ssmkit.data.base import Task, carve_val, check_split_sizes, find_file, missing, resolve_data_dir

LISTOPS_SOURCE = (
    "the Long Range Arena release (google-research/long-range-arena on GitHub links lra_release.gz; ListOps is in "
    "lra_release/listops-1000/), or generate it with LRA's lra_benchmarks/data/listops.py or task 'listops_synthetic'"
)
OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
CLOSE = "]"
VOCAB = ["<pad>"] + [str(d) for d in range(10)] + list(OPERATORS) + [CLOSE]  # token id = index
VOCAB_SIZE = len(VOCAB)  # 16
VALUE_P = 0.25  # probability that a node above max_depth is a digit is 1 - 0.25

# A whole file is tokenised at once with numpy: a byte lookup table, operators found by their "[".
_OP_ID = {op: 11 + k for k, op in enumerate(OPERATORS)}
_CHAR_ID = {str(d): 1 + d for d in range(10)} | {CLOSE: 15, "\n": 255}


class TokenSeqs(Dataset):
    """Token sequences as one uint8 buffer plus offsets; item i is (x long (len_i,), y long ())."""

    def __init__(self, buffer: np.ndarray, offsets: np.ndarray, labels: np.ndarray) -> None:
        if len(offsets) != len(labels) + 1:
            raise ValueError(f"{len(offsets) - 1} sequences but {len(labels)} labels")
        self.buffer, self.offsets = buffer, offsets
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))

    @classmethod
    def from_lists(cls, seqs: list[np.ndarray], labels: np.ndarray) -> TokenSeqs:
        offsets = np.cumsum([0] + [len(s) for s in seqs])
        buffer = np.concatenate(seqs).astype(np.uint8) if seqs else np.zeros(0, np.uint8)
        return cls(buffer, offsets, labels)

    def subset(self, idx: np.ndarray) -> TokenSeqs:
        return TokenSeqs.from_lists(
            [self.buffer[self.offsets[i] : self.offsets[i + 1]] for i in idx], self.labels.numpy()[idx]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return torch.from_numpy(self.buffer[self.offsets[i] : self.offsets[i + 1]].astype(np.int64)), self.labels[i]


# ---------------------------------------------------------------------------------------------------- tokenising
def tokenize_sources(sources: list[str], keep_close: bool = True, l_max: int | None = None, where: str = "") -> list:
    """LRA ListOps source strings -> token id arrays (uint8), parentheses dropped, truncated to l_max."""
    text = "\n".join(sources).encode("ascii", errors="replace").translate(None, delete=b"() \t")
    raw = np.frombuffer(text, dtype=np.uint8)
    table = np.zeros(256, dtype=np.uint8)  # 0 = not a ListOps token
    for c, i in _CHAR_ID.items():
        table[ord(c)] = i
    ids = table[raw]
    # an operator is "[" plus 2 or 3 capitals: its id goes on the "[", its letters are dropped
    starts = np.flatnonzero(raw == ord("["))
    nxt = np.stack([raw[np.minimum(starts + k, len(raw) - 1)] for k in (1, 2, 3)], 1) if len(starts) else None
    for op, i in _OP_ID.items():
        if nxt is not None:
            code = np.frombuffer(op[1:].encode().ljust(3, b"?"), dtype=np.uint8)[: len(op) - 1]
            hit = (nxt[:, : len(code)] == code).all(1)
            ids[starts[hit]] = i
    letters = (raw >= ord("A")) & (raw <= ord("Z"))
    ids[letters] = 254  # removed below; an unknown operator leaves its "[" at 0 and is reported
    keep = ids != 254
    raw, ids = raw[keep], ids[keep]
    if (ids == 0).any():
        pos = int(np.flatnonzero(ids == 0)[0])
        line = int((ids[:pos] == 255).sum())
        raise ValueError(
            f"{where}: example {line + 1} holds {chr(raw[pos])!r}, which is not a ListOps token; "
            f"expected digits, {', '.join(OPERATORS)}, '{CLOSE}', parentheses and spaces"
        )
    seqs = np.split(ids, np.flatnonzero(ids == 255))
    seqs = [s[1:] if k else s for k, s in enumerate(seqs)]  # drop the newline that starts each later piece
    if not keep_close:
        seqs = [s[s != 15] for s in seqs]
    return [s[:l_max] if l_max else s for s in seqs]


# ---------------------------------------------------------------------------------------------------- reading
def read_listops_tsv(path: Path) -> tuple[list[str], np.ndarray]:
    """One LRA ListOps TSV (optionally .gz): header "Source\\tTarget", then one example per line."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read ({type(e).__name__}: {e}); expected an LRA ListOps TSV") from e
    if not lines or lines[0].split("\t") != ["Source", "Target"]:
        raise ValueError(f"{path}: first line must be the header 'Source<TAB>Target', got {lines[:1]!r}")
    sources, targets = [], []
    for k, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].strip().isdigit() or not 0 <= int(parts[1]) <= 9:
            raise ValueError(
                f"{path}: line {k} is not 'source<TAB>digit' (got {line[:60]!r}...); the file may be "
                "truncated or not LRA ListOps"
            )
        sources.append(parts[0])
        targets.append(int(parts[1]))
    if not sources:
        raise ValueError(f"{path}: no examples after the header")
    return sources, np.array(targets)


def listops_task(
    data_dir: str | os.PathLike | None = None,
    task: str = "basic",
    keep_close: bool = True,
    l_max: int = 2000,
    val_size: int = 2000,
    split_seed: int = 0,
) -> Task:
    """LRA ListOps from {task}_train.tsv, {task}_val.tsv and {task}_test.tsv (optionally .gz)."""
    root = resolve_data_dir(data_dir)
    folders = [root, root / "listops", root / "listops-1000", root / "lra_release" / "listops-1000"]
    paths = {s: find_file(folders, f"{task}_{s}.tsv") for s in ("train", "val", "test")}
    if paths["train"] is None or paths["val"] is None:
        absent = [f"{task}_{s}.tsv[.gz]" for s in ("train", "val") if paths[s] is None]
        raise missing(
            "LRA ListOps",
            root,
            [f"listops/{task}_{s}.tsv[.gz]" for s in ("train", "val", "test")],
            LISTOPS_SOURCE,
            f"(not found: {absent})",
        )
    data = {}
    for split, path in paths.items():
        if path is not None:
            sources, targets = read_listops_tsv(path)
            seqs = tokenize_sources(sources, keep_close, l_max, where=str(path))
            data[split] = TokenSeqs.from_lists(seqs, targets)
    if "test" in data:
        splits = "official train / val / test files"
        train, val, test = data["train"], data["val"], data["test"]
    else:
        warnings.warn(
            f"{root}: no {task}_test.tsv; using {paths['val'].name} as test and {val_size} training examples as val",
            stacklevel=2,
        )
        splits = f"no test file: val file used as test, val = {val_size} examples carved from train (seed {split_seed})"
        tr, va = carve_val(len(data["train"]), val_size, split_seed)
        train, val, test = data["train"].subset(tr), data["train"].subset(va), data["val"]
    return Task(
        name="listops",
        kind="classify",
        train=train,
        val=val,
        test=test,
        d_output=10,
        vocab_size=VOCAB_SIZE,
        l_max=l_max,
        variable_length=True,
        info={
            "vocab": VOCAB,
            "pad_token": 0,
            "keep_close": keep_close,
            "splits": splits,
            "files": {s: str(p) for s, p in paths.items() if p},
        },
    )


# ---------------------------------------------------------------------------------------------------- generating
class _TooLong(Exception):
    pass


def _median_floor(values: list[int]) -> int:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) // 2  # int(np.median) of non-negative digits


def _apply(op: str, values: list[int]) -> int:
    if op == "[MIN":
        return min(values)
    if op == "[MAX":
        return max(values)
    if op == "[MED":
        return _median_floor(values)
    return sum(values) % 10  # [SM


def _tree(rng: random.Random, depth: int, max_depth: int, max_args: int, budget: list[int]) -> tuple[str, int]:
    """One random subtree in LRA's string format and its value; budget[0] counts the length left (raises when spent)."""
    if depth >= max_depth or rng.random() > VALUE_P:
        budget[0] -= 1
        if budget[0] < 0:
            raise _TooLong
        value = rng.randrange(10)
        return str(value), value
    budget[0] -= 2  # the operator and its "]"
    n_args = rng.randint(2, max_args)
    args = [_tree(rng, depth + 1, max_depth, max_args, budget) for _ in range(n_args)]
    op = rng.choice(OPERATORS)
    # LRA's binary tree ((((op a0) a1) ...) ]) written out: one "(" per argument plus one for the "]".
    text = "( " * (n_args + 1) + op + " " + " ) ".join(a[0] for a in args) + " ) ] )"
    return text, _apply(op, [a[1] for a in args])


def generate_listops(
    n: int,
    seed: int = 0,
    max_depth: int = 10,
    max_args: int = 10,
    min_length: int = 500,
    max_length: int = 2000,
) -> tuple[list[str], np.ndarray]:
    """n distinct ListOps examples (LRA source strings, targets (n,)) with min_length < length < max_length."""
    if max_depth < 2 or max_args < 2 or not 0 <= min_length < max_length - 1:
        raise ValueError(
            f"need max_depth >= 2, max_args >= 2 and 0 <= min_length < max_length - 1, got "
            f"{max_depth}, {max_args}, {min_length}, {max_length}"
        )
    rng = random.Random(seed)
    sources: list[str] = []
    targets: list[int] = []
    seen: set[str] = set()
    while len(sources) < n:
        budget = [max_length - 1]  # length must stay < max_length
        try:
            text, value = _tree(rng, 1, max_depth, max_args, budget)
        except _TooLong:
            continue
        if max_length - 1 - budget[0] > min_length and text not in seen:
            seen.add(text)
            sources.append(text)
            targets.append(value)
    return sources, np.array(targets)


def listops_synthetic_task(
    n_train: int = 2000,
    n_val: int = 200,
    n_test: int = 200,
    seed: int = 0,
    max_depth: int = 10,
    max_args: int = 10,
    min_length: int = 500,
    max_length: int = 2000,
    keep_close: bool = True,
) -> Task:
    """ListOps drawn by our generator (no files): train, val and test are disjoint draws from one seeded stream."""
    check_split_sizes(n_train, n_val, n_test)
    sources, targets = generate_listops(n_train + n_val + n_test, seed, max_depth, max_args, min_length, max_length)
    seqs = tokenize_sources(sources, keep_close, where="generated")
    data = TokenSeqs.from_lists(seqs, targets)
    cuts = np.cumsum([0, n_train, n_val, n_test])
    train, val, test = (data.subset(np.arange(cuts[k], cuts[k + 1])) for k in range(3))
    return Task(
        name="listops_synthetic",
        kind="classify",
        train=train,
        val=val if n_val > 0 else None,
        test=test,
        d_output=10,
        vocab_size=VOCAB_SIZE,
        l_max=max_length,
        variable_length=True,
        info={"vocab": VOCAB, "pad_token": 0, "keep_close": keep_close, "seed": seed},
    )
