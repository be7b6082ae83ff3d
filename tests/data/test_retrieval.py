"""LRA Retrieval (AAN): small files in the LRA TSV layout written here (the real set is not on these machines)."""

import gzip

import pytest
import torch

from ssmkit.data.base import DataMissingError, pad_collate
from ssmkit.data.retrieval import aan_task
from ssmkit.data.text import encode_bytes

PAIRS = {
    "train": [
        ("1.0", "P01-1001", "W02-0101", "We cite Smith et al.", "Smith et al. present a parser."),
        ("0.0", "P01-1002", "W03-0202", "Unrelated work on \u00fcber-parsing.", "Speech."),
        ("1", "P01-1003", "W04-0303", "x" * 50, "y" * 10),
    ],
    "eval": [("0", "A", "B", "doc a", "doc b")],
    "test": [("1.0", "C", "D", "doc c", "a somewhat longer doc d"), ("0.0", "E", "F", "e", "f")],
}


def _write(folder, gz=False, rows=PAIRS, skip=()):
    folder.mkdir(parents=True, exist_ok=True)
    for split, pairs in rows.items():
        if split in skip:
            continue
        text = "".join("\t".join(p) + "\n" for p in pairs).encode("utf-8")
        name = f"new_aan_pairs.{split}.tsv"
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(text))
        else:
            (folder / name).write_bytes(text)


@pytest.mark.parametrize("layout,gz", [("lra_release/tsv_data", False), ("aan", True), (".", False)])
def test_pairs_in_the_lra_layout(tmp_path, layout, gz):
    _write(tmp_path / layout, gz=gz)
    task = aan_task(tmp_path, l_max=32)
    assert (len(task.train), len(task.val), len(task.test)) == (3, 1, 2)
    assert task.kind == "classify" and task.d_output == 2 and task.vocab_size == 257 and task.variable_length
    assert task.info["pair"] and task.info["pad_token"] == 0
    assert task.train.labels.tolist() == [1, 0, 1] and task.test.labels.tolist() == [1, 0]
    x, y = task.train[0]
    d1, d2 = encode_bytes("We cite Smith et al."), encode_bytes("Smith et al. present a parser.")
    assert x.shape == (len(d2), 2) and x.dtype == torch.long and int(y) == 1
    assert torch.equal(x[: len(d1), 0], d1) and (x[len(d1) :, 0] == 0).all() and torch.equal(x[:, 1], d2)
    x, _ = task.train[1]  # UTF-8: ü is two bytes
    assert int((x[:, 0] != 0).sum()) == len("Unrelated work on \u00fcber-parsing.".encode())
    x, _ = task.train[2]  # truncated to l_max bytes per document
    assert x.shape == (32, 2) and int((x[:, 1] != 0).sum()) == 10


def test_batches_keep_each_documents_length(tmp_path):
    _write(tmp_path / "aan")
    task = aan_task(tmp_path)
    x, y, lengths = pad_collate([task.train[i] for i in range(3)])
    assert x.shape == (3, 50, 2) and y.tolist() == [1, 0, 1]
    per_doc = (x != 0).sum(1)  # (B, 2): each document's own length
    assert per_doc.tolist() == [[20, 30], [len("Unrelated work on \u00fcber-parsing.".encode()), 7], [50, 10]]
    assert torch.equal(lengths, per_doc.max(1).values)


def test_missing_or_partial_files_are_named(tmp_path):
    with pytest.raises(DataMissingError, match=r"new_aan_pairs.train.tsv") as err:
        aan_task(tmp_path)
    assert "lra_release/tsv_data/new_aan_pairs.eval.tsv" in str(err.value) and "lra_release.gz" in str(err.value)
    _write(tmp_path / "aan", skip=("eval",))
    with pytest.raises(DataMissingError, match=r"not \['new_aan_pairs.eval.tsv'\]"):
        aan_task(tmp_path)


def test_malformed_lines_are_clear_errors(tmp_path):
    bad = dict(PAIRS, eval=[("0", "A", "B", "only four fields")])
    _write(tmp_path, rows=bad)
    with pytest.raises(ValueError, match=r"new_aan_pairs.eval.tsv: line 1 is not 'label<TAB>id1.*got 4 fields"):
        aan_task(tmp_path)
    _write(tmp_path, rows=dict(PAIRS, eval=[("0", "A", "B", "a", "b"), ("2", "A", "B", "a", "b")]))
    with pytest.raises(ValueError, match="eval.tsv: line 2 .* label 0 or 1"):
        aan_task(tmp_path)
    (tmp_path / "new_aan_pairs.eval.tsv").write_bytes(b"")
    with pytest.raises(ValueError, match="eval.tsv: no document pairs"):
        aan_task(tmp_path)
    (tmp_path / "new_aan_pairs.eval.tsv").unlink()
    (tmp_path / "new_aan_pairs.eval.tsv.gz").write_bytes(gzip.compress(b"0\tA\tB\ta\tb\n" * 100)[:-20])
    with pytest.raises(ValueError, match="eval.tsv.gz: cannot read"):
        aan_task(tmp_path)
    with pytest.raises(ValueError, match="l_max"):
        aan_task(tmp_path, l_max=0)
