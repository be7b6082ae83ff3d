"""LRA Text (byte-level IMDB): the real tarball once per session, and small folders / tarballs written here."""

import io
import tarfile

import numpy as np
import pytest
import torch

from ssmkit.data.base import DataMissingError, pad_collate
from ssmkit.data.text import encode_bytes, imdb_task, load_imdb


@pytest.fixture(scope="module")
def real_imdb():
    from tests.conftest import SHARED_DATA

    return load_imdb(SHARED_DATA, l_max=4096)  # one streamed pass over the 31 MB tarball


def test_real_imdb_has_12500_reviews_per_folder(real_imdb):
    for split in ("train", "test"):
        labels = np.array([r[0] for r in real_imdb[split]])
        ratings = np.array([r[2] for r in real_imdb[split]])
        assert np.bincount(labels).tolist() == [12500, 12500]
        assert ratings[labels == 1].min() >= 7 and ratings[labels == 0].max() <= 4  # the dataset's rating rule
        assert max(len(r[3]) for r in real_imdb[split]) == 4096  # truncated at l_max
        assert len({r[1] for r in real_imdb[split] if r[0] == 1}) == 12500  # ids unique within a folder


def test_real_imdb_task_tokens(shared_data, real_imdb, monkeypatch):
    monkeypatch.setattr("ssmkit.data.text.load_imdb", lambda data_dir, l_max: real_imdb)  # reuse the one read
    task = imdb_task(shared_data)
    assert (len(task.train), len(task.val), len(task.test)) == (22500, 2500, 25000)
    assert task.vocab_size == 257 and task.variable_length and task.l_max == 4096 and task.d_output == 2
    x, y = task.test[0]  # test/neg, lowest id: 0_2.txt
    assert x.dtype == torch.long and x.dim() == 1 and int(y) == 0
    assert bytes((x - 1).tolist()) == real_imdb["test"][0][3]
    assert 1 <= int(x.min()) and int(x.max()) <= 256
    assert np.bincount(np.concatenate([task.train.labels.numpy(), task.val.labels.numpy()])).tolist() == [12500] * 2


def _reviews():
    return {
        ("train", "pos"): {"3_9.txt": "Great film.", "10_8.txt": "Loved it, caf\u00e9!"},
        ("train", "neg"): {"1_1.txt": "Awful.", "2_3.txt": "Bad " * 2000},
        ("test", "pos"): {"0_10.txt": "Superb"},
        ("test", "neg"): {"0_2.txt": "Dull"},
    }


def _write_folder(root):
    for (split, s), files in _reviews().items():
        folder = root / "aclImdb" / split / s
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")


def _write_tarball(path, truncate=False):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for (split, s), files in _reviews().items():
            for name, text in files.items():
                data = text.encode("utf-8")
                info = tarfile.TarInfo(f"aclImdb/{split}/{s}/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    path.write_bytes(raw[: len(raw) // 2] if truncate else raw)


@pytest.mark.parametrize("layout", ["folder", "tarball", "imdb/tarball", "official_name"])
def test_small_imdb_in_each_layout(tmp_path, layout):
    if layout == "folder":
        _write_folder(tmp_path)
    elif layout == "official_name":
        _write_tarball(tmp_path / "aclImdb_v1.tar.gz")
    else:
        folder = tmp_path / "imdb" if layout.startswith("imdb") else tmp_path
        folder.mkdir(exist_ok=True)
        _write_tarball(folder / "aclImdb.tar.gz")
    task = imdb_task(tmp_path, l_max=100, val_size=1, split_seed=0)
    assert (len(task.train), len(task.val), len(task.test)) == (3, 1, 2)
    docs = {bytes((task.train[i][0] - 1).tolist()): int(task.train[i][1]) for i in range(3)}
    docs[bytes((task.val[0][0] - 1).tolist())] = int(task.val[0][1])
    assert docs == {
        b"Awful.": 0,
        ("Bad " * 25).encode(): 0,  # truncated to l_max = 100 bytes
        b"Great film.": 1,
        "Loved it, caf\u00e9!".encode(): 1,  # UTF-8 bytes: é is two tokens
    }
    assert torch.equal(task.test[1][0], encode_bytes("Superb")) and int(task.test[1][1]) == 1


def test_variable_length_batches_carry_lengths(tmp_path):
    _write_folder(tmp_path)
    task = imdb_task(tmp_path, l_max=50, val_size=0)
    x, y, lengths = pad_collate([task.train[i] for i in range(4)])
    assert x.shape == (4, 50) and lengths.tolist() == [6, 50, 11, 16]  # neg sorted by id: 1_1, 2_3; then pos 3_9, 10_8
    for b in range(4):
        assert (x[b, lengths[b] :] == 0).all() and (x[b, : lengths[b]] > 0).all()  # 0 only as padding


def test_missing_or_truncated_imdb_is_a_clear_error(tmp_path):
    with pytest.raises(DataMissingError, match="aclImdb.tar.gz") as err:
        imdb_task(tmp_path)
    assert "aclImdb/{train,test}/{pos,neg}" in str(err.value) and "Stanford" in str(err.value)
    _write_tarball(tmp_path / "aclImdb.tar.gz", truncate=True)
    with pytest.raises(ValueError, match="aclImdb.tar.gz: cannot read the IMDB tarball"):
        imdb_task(tmp_path)


def test_incomplete_folder_is_a_clear_error(tmp_path):
    _write_folder(tmp_path)
    for f in (tmp_path / "aclImdb" / "test" / "pos").iterdir():
        f.unlink()
    with pytest.raises(ValueError, match=r"no pos reviews in test/"):
        imdb_task(tmp_path)
    (tmp_path / "aclImdb" / "test" / "pos").rmdir()
    with pytest.raises(DataMissingError, match="test/pos"):
        imdb_task(tmp_path)
