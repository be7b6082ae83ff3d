"""LRA Retrieval: do two papers of the ACL Anthology Network cite one another? (Tay et al. 2021, "Long Range Arena",
sec. 3.3; Radev et al. 2013, AAN.)

Byte level, like LRA Text: each document is its UTF-8 bytes + 1 (0 = padding, vocab_size = 257), truncated to
`l_max` = 4000 bytes per document (LRA's setting; 8000 for the pair). A pair is one item with the two documents side by
side as channels:
    x: long (L, 2), L = max(len_1, len_2), column j = document j + 1, the shorter one padded with 0
    y: long () in {0, 1}
`variable_length=True`: `pad_collate` pads to the longest pair in the batch. Its `lengths` are the longer document's;
each document's own length is `(x[..., j] != 0).sum(-1)` since no real token is 0 (`info["pair"]` and
`info["pad_token"]` say so). A two-tower model encodes each column separately, pools each over its own length and
classifies [u, v, u * v, u - v] (LRA's dual encoder, as in the S4 code).

Files (the LRA release, lra_release/tsv_data/): new_aan_pairs.train.tsv (147086 pairs), new_aan_pairs.eval.tsv
(18090), new_aan_pairs.test.tsv (17437); each line, tab-separated and with no header and no quoting:
    label <TAB> id1 <TAB> id2 <TAB> text1 <TAB> text2      (label written as 0/1 or 0.0/1.0)
the column layout LRA's own reader (lra_benchmarks/matching/input_pipeline.py) declares. Looked for in the data folder,
aan/, retrieval/, tsv_data/ and lra_release/tsv_data/; each file may be gzipped.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ssmkit.data.base import Task, find_file, missing, resolve_data_dir
from ssmkit.data.text import BYTE_VOCAB

AAN_SOURCE = (
    "the Long Range Arena release (lra_release.gz, linked from google-research/long-range-arena on GitHub): "
    "lra_release/tsv_data/new_aan_pairs.{train,eval,test}.tsv"
)
SPLIT_FILES = {"train": "new_aan_pairs.train.tsv", "val": "new_aan_pairs.eval.tsv", "test": "new_aan_pairs.test.tsv"}
COLUMNS = ("label", "id1", "id2", "text1", "text2")


class DocPairs(Dataset):
    """Document pairs as two uint8 buffers plus offsets; item i is (x long (L, 2), y long ())."""

    def __init__(self, docs1: list[bytes], docs2: list[bytes], labels: np.ndarray) -> None:
        self.docs = []
        for docs in (docs1, docs2):
            offsets = np.cumsum([0] + [len(d) for d in docs])  # (N + 1,)
            self.docs.append((np.frombuffer(b"".join(docs), dtype=np.uint8), offsets))
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def document(self, i: int, j: int) -> Tensor:
        """Document j (0 or 1) of pair i as tokens, long (len,) = bytes + 1."""
        buffer, offsets = self.docs[j]
        return torch.from_numpy(buffer[offsets[i] : offsets[i + 1]].astype(np.int64) + 1)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        d1, d2 = self.document(i, 0), self.document(i, 1)
        x = torch.zeros(max(len(d1), len(d2)), 2, dtype=torch.long)  # (L, 2); 0 = padding
        x[: len(d1), 0], x[: len(d2), 1] = d1, d2
        return x, self.labels[i]


def read_aan_tsv(path: Path, l_max: int) -> DocPairs:
    """One LRA Retrieval TSV: label, id1, id2, text1, text2 per line; texts kept as bytes, truncated to l_max."""
    docs1, docs2, labels = [], [], []
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            for k, line in enumerate(f, start=1):
                fields = line.rstrip(b"\r\n").split(b"\t")
                label = _label(fields)
                if label is None:
                    shown = line[:80].decode("utf-8", errors="replace")
                    raise ValueError(
                        f"{path}: line {k} is not 'label<TAB>id1<TAB>id2<TAB>text1<TAB>text2' with label "
                        f"0 or 1 (got {len(fields)} fields: {shown!r}...)"
                    )
                labels.append(label)
                docs1.append(fields[3][:l_max])
                docs2.append(fields[4][:l_max])
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot read ({type(e).__name__}: {e}); the file may be truncated") from e
    if not labels:
        raise ValueError(f"{path}: no document pairs; expected lines 'label<TAB>id1<TAB>id2<TAB>text1<TAB>text2'")
    return DocPairs(docs1, docs2, np.array(labels))


def _label(fields: list[bytes]) -> int | None:
    if len(fields) != len(COLUMNS):
        return None
    try:
        value = float(fields[0])
    except ValueError:
        return None
    return int(value) if value in (0.0, 1.0) else None


def aan_task(data_dir: str | os.PathLike | None = None, l_max: int = 4000) -> Task:
    """LRA Retrieval (AAN): byte-level document pairs, x long (L, 2) with L <= l_max, y in {0, 1}."""
    if l_max < 1:
        raise ValueError(f"l_max must be >= 1, got {l_max}")
    root = resolve_data_dir(data_dir)
    folders = [root, root / "aan", root / "retrieval", root / "tsv_data", root / "lra_release" / "tsv_data"]
    for folder in folders:
        found = {s: find_file([folder], name) for s, name in SPLIT_FILES.items()}
        if any(found.values()):
            break
    absent = [SPLIT_FILES[s] for s, p in found.items() if p is None]
    if absent:
        note = f"(found some in {folder} but not {absent})" if len(absent) < 3 else ""
        raise missing(
            "LRA Retrieval (AAN)",
            root,
            [f"aan/{n}[.gz]" for n in SPLIT_FILES.values()]
            + [f"lra_release/tsv_data/{n}" for n in SPLIT_FILES.values()],
            AAN_SOURCE,
            note,
        )
    splits = {s: read_aan_tsv(p, l_max) for s, p in found.items()}
    return Task(
        name="lra_retrieval",
        kind="classify",
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        d_output=2,
        vocab_size=BYTE_VOCAB,
        l_max=l_max,
        variable_length=True,
        info={
            "pair": True,
            "pad_token": 0,
            "encoding": "utf-8 byte + 1",
            "files": {s: str(p) for s, p in found.items()},
        },
    )
