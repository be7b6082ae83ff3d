"""LRA Text: byte-level IMDB sentiment classification (Tay et al. 2021, "Long Range Arena", sec. 3.2; Maas et al. 2011).

Each review is read as raw UTF-8 bytes and encoded as LRA's byte encoder does (tfds ByteTextEncoder): token = byte + 1,
so 0 is reserved for padding and vocab_size = 257. Reviews are truncated to `l_max` = 4096 bytes (LRA's 4K; the S4
setting) and left unpadded: x is long (len_i,), len_i <= l_max, `variable_length=True`; batches go through
`pad_collate`, whose lengths keep the padding out of pooling and state. Targets: 0 = negative, 1 = positive.

Splits: the official 25000 train / 25000 test reviews. IMDB has no validation set; `val_size` reviews (default 2500,
10 %) are carved from train by a seeded permutation. `val_size=0` gives no val (LRA and the S4 code select on test).

Files: the Large Movie Review Dataset v1.0 (aclImdb_v1.tar.gz from Andrew Maas' page at Stanford) either unpacked,
aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt, or the tarball itself, read member by member without unpacking.
Looked for in the data folder and in imdb/ under it.
"""

from __future__ import annotations

import os
import re
import tarfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ssmkit.data.base import Task, carve_val, missing, resolve_data_dir

IMDB_SOURCE = (
    "the Large Movie Review Dataset v1.0 (Maas et al. 2011), 'aclImdb_v1.tar.gz' from Andrew Maas' sentiment page at "
    "Stanford (ai.stanford.edu); keep the tarball or unpack it"
)
BYTE_VOCAB = 257  # 256 byte values shifted by one; 0 = padding
TARBALL_NAMES = ("aclImdb.tar.gz", "aclImdb_v1.tar.gz")
REVIEW = re.compile(r"^(?:.*/)?aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")


class ByteDocs(Dataset):
    """Documents as one uint8 buffer plus offsets; item i is (x long (len_i,) = bytes + 1, y long ())."""

    def __init__(self, docs: list[bytes], labels: np.ndarray) -> None:
        if len(docs) != len(labels):
            raise ValueError(f"{len(docs)} documents but {len(labels)} labels")
        self.offsets = np.cumsum([0] + [len(d) for d in docs])  # (N + 1,)
        self.buffer = np.frombuffer(b"".join(docs), dtype=np.uint8)  # (total bytes,)
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def tokens(self, i: int) -> Tensor:
        """Document i as tokens, long (len_i,)."""
        return torch.from_numpy(self.buffer[self.offsets[i] : self.offsets[i + 1]].astype(np.int64) + 1)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.tokens(i), self.labels[i]


def encode_bytes(text: bytes | str) -> Tensor:
    """The LRA byte encoding of one document: long (len,) = UTF-8 bytes + 1."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).long() + 1


Reviews = dict[str, list[tuple[int, int, int, bytes]]]  # split -> [(label, id, rating, text)]


def _read_folder(root: Path, l_max: int) -> Reviews:
    out: Reviews = {"train": [], "test": []}
    for split in out:
        for label, sentiment in enumerate(("neg", "pos")):
            folder = root / split / sentiment
            if not folder.is_dir():
                raise missing(
                    "IMDB (LRA Text)",
                    root.parent,
                    [f"aclImdb/{split}/{sentiment}/<id>_<rating>.txt"],
                    IMDB_SOURCE,
                    f"(the folder {folder} is absent)",
                )
            for path in folder.iterdir():
                m = REVIEW.match(f"aclImdb/{split}/{sentiment}/{path.name}")
                if m:
                    out[split].append((label, int(m[3]), int(m[4]), path.read_bytes()[:l_max]))
    return out


def _read_tarball(path: Path, l_max: int) -> Reviews:
    out: Reviews = {"train": [], "test": []}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:  # streamed: one pass over the gzip, nothing unpacked to disk
                m = REVIEW.match(member.name)
                if m and member.isfile():
                    text = tar.extractfile(member).read(l_max)
                    out[m[1]].append((int(m[2] == "pos"), int(m[3]), int(m[4]), text))
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ValueError(f"{path}: cannot read the IMDB tarball ({type(e).__name__}: {e}); it may be truncated") from e
    return out


def load_imdb(data_dir: str | os.PathLike | None = None, l_max: int = 4096) -> Reviews:
    """The labelled IMDB reviews, each truncated to l_max bytes, sorted by (label, id) within each split."""
    root = resolve_data_dir(data_dir)
    reviews = None
    for folder in (root, root / "imdb"):
        if (folder / "aclImdb").is_dir():
            where, reviews = folder / "aclImdb", _read_folder(folder / "aclImdb", l_max)
            break
        tarballs = [folder / n for n in TARBALL_NAMES if (folder / n).is_file()]
        if tarballs:
            where, reviews = tarballs[0], _read_tarball(tarballs[0], l_max)
            break
    if reviews is None:
        raise missing(
            "IMDB (LRA Text)",
            root,
            [
                "aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt",
                "aclImdb.tar.gz  (or aclImdb_v1.tar.gz)",
                "imdb/aclImdb.tar.gz",
            ],
            IMDB_SOURCE,
        )
    for split, items in reviews.items():
        counts = np.bincount([r[0] for r in items], minlength=2)
        if counts.min() == 0:
            raise ValueError(
                f"{where}: no {('neg', 'pos')[counts.argmin()]} reviews in {split}/ (found {counts} "
                f"neg/pos); expected aclImdb/{split}/{{pos,neg}}/<id>_<rating>.txt"
            )
        items.sort(key=lambda r: (r[0], r[1]))
    return reviews


def imdb_task(
    data_dir: str | os.PathLike | None = None, l_max: int = 4096, val_size: int = 2500, split_seed: int = 0
) -> Task:
    """LRA Text: byte-level IMDB, x long (len <= l_max,) with tokens byte + 1, y in {0 = neg, 1 = pos}."""
    if l_max < 1:
        raise ValueError(f"l_max must be >= 1, got {l_max}")
    reviews = load_imdb(data_dir, l_max)
    make = lambda items: ByteDocs([r[3] for r in items], np.array([r[0] for r in items]))  # noqa: E731
    train = reviews["train"]
    tr, va = carve_val(len(train), val_size, split_seed)
    return Task(
        name="lra_text",
        kind="classify",
        train=make([train[i] for i in tr]),
        val=make([train[i] for i in va]) if val_size > 0 else None,
        test=make(reviews["test"]),
        d_output=2,
        vocab_size=BYTE_VOCAB,
        l_max=l_max,
        variable_length=True,
        info={"pad_token": 0, "encoding": "utf-8 byte + 1", "val_size": val_size, "split_seed": split_seed},
    )
