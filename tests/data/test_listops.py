"""LRA ListOps: the real TSV files, our generator checked by an evaluator written here, and malformed files."""

import gzip
import math
import statistics

import numpy as np
import pytest
import torch

from ssmkit.data.base import DataMissingError, pad_collate
from ssmkit.data.listops import VOCAB, generate_listops, listops_synthetic_task, listops_task, tokenize_sources


def evaluate(source: str) -> tuple[int, int, int, int]:
    """Independent ListOps evaluator on the raw LRA string: (value, max operator depth, max arguments, length)."""
    stack: list[tuple[str, list[int]]] = []
    result, depth, most_args, length = None, 0, 0, 0
    for tok in source.split():
        if tok in ("(", ")"):
            continue
        length += 1
        if tok.startswith("["):
            stack.append((tok, []))
            depth = max(depth, len(stack))
            continue
        if tok == "]":
            op, vals = stack.pop()
            most_args = max(most_args, len(vals))
            value = {
                "[MAX": max,
                "[MIN": min,
                "[MED": lambda v: math.floor(statistics.median(v)),
                "[SM": lambda v: sum(v) % 10,
            }[op](vals)
        else:
            value = int(tok)
        if stack:
            stack[-1][1].append(value)
        else:
            result = value
    assert not stack, "unbalanced expression"
    return result, depth, most_args, length


def read_real(path, n):
    """The first n examples of a real file, streamed."""
    with gzip.open(path, "rt") as f:
        assert f.readline() == "Source\tTarget\n"
        pairs = [line.rstrip("\n").split("\t") for _, line in zip(range(n), f, strict=False)]
    return [p[0] for p in pairs], np.array([int(p[1]) for p in pairs])


def ks_statistic(a, b):
    grid = np.union1d(a, b)
    cdf = lambda s: np.searchsorted(np.sort(s), grid, side="right") / len(s)  # noqa: E731
    return float(np.abs(cdf(a) - cdf(b)).max())


# ------------------------------------------------------------------------------------------ real files
def test_real_listops_files(shared_data):
    with pytest.warns(UserWarning, match="no basic_test.tsv"):
        task = listops_task(shared_data)
    assert (len(task.train), len(task.val), len(task.test)) == (18000, 2000, 2000)  # 20000 train + 2000 val on disk
    assert task.vocab_size == 16 and task.variable_length and task.d_output == 10 and task.kind == "classify"
    lengths = np.diff(task.train.offsets)
    assert lengths.min() > 500 and lengths.max() < 2000  # the LRA length rule holds for the token count with "]"
    # the test split is basic_val in file order: tokens and targets agree with the raw strings
    sources, targets = read_real(shared_data / "listops" / "basic_val.tsv.gz", n=2000)
    assert task.test.labels.tolist() == targets.tolist()
    for i in (0, 1, 1999):
        x, y = task.test[i]
        raw = [t for t in sources[i].split() if t not in "()"]
        assert [VOCAB[t] for t in x.tolist()] == raw and int(y) == targets[i]
    x, y, lens = pad_collate([task.test[i] for i in range(8)])
    assert x.shape == (8, int(lens.max())) and all((x[b, lens[b] :] == 0).all() for b in range(8))


def test_real_targets_agree_with_the_independent_evaluator(shared_data):
    sources, targets = read_real(shared_data / "listops" / "basic_val.tsv.gz", n=500)
    for s, t in zip(sources, targets, strict=True):
        value, depth, most_args, length = evaluate(s)
        assert value == t and depth <= 9 and most_args <= 10 and 500 < length < 2000


def test_lra_tokenisation_without_close():
    src = "( ( ( [MAX 2 ) 9 ) ( ( [SM 4 ) 7 ) ] ) ] )"
    with_close, without = tokenize_sources([src], True)[0], tokenize_sources([src], False)[0]
    assert [VOCAB[t] for t in with_close] == ["[MAX", "2", "9", "[SM", "4", "7", "]", "]"]
    assert [VOCAB[t] for t in without] == ["[MAX", "2", "9", "[SM", "4", "7"]  # LRA's alphanumeric tokenizer
    assert tokenize_sources([src], True, l_max=3)[0].tolist() == with_close[:3].tolist()


# ------------------------------------------------------------------------------------------ generator
@pytest.fixture(scope="module")
def generated():
    return generate_listops(400, seed=0)


def test_generator_targets_depth_args_and_length(generated):
    sources, targets = generated
    assert len(set(sources)) == 400
    for s, t in zip(sources, targets, strict=True):
        value, depth, most_args, length = evaluate(s)
        assert value == t and depth <= 9 and 2 <= most_args <= 10 and 500 < length < 2000


def test_generator_is_deterministic_for_a_seed(generated):
    again = generate_listops(5, seed=0)
    assert again[0] == generated[0][:5] and again[1].tolist() == generated[1][:5].tolist()
    assert generate_listops(5, seed=1)[0] != again[0]


def test_generator_matches_the_real_file_statistics(shared_data, generated):
    real_sources, real_targets = read_real(shared_data / "listops" / "basic_train.tsv.gz", n=2000)
    stats = {}
    for name, sources in (("real", real_sources), ("ours", generated[0])):
        toks = [[t for t in s.split() if t not in "()"] for s in sources]
        ops = np.array([sum(t == op for t in seq) for seq in toks for op in ("[MAX", "[MIN", "[MED", "[SM")])
        ops = ops.reshape(-1, 4).sum(0)
        stats[name] = {
            "length": np.array([len(t) for t in toks]),
            "depth": np.array([evaluate(s)[1] for s in sources]),
            "op_freq": ops / ops.sum(),
            "digits_per_op": sum(t.isdigit() for seq in toks for t in seq) / ops.sum(),
        }
    real, ours = stats["real"], stats["ours"]
    assert ks_statistic(real["length"], ours["length"]) < 0.11  # two-sample KS, n = 2000 vs 400
    assert abs(ours["length"].mean() / real["length"].mean() - 1) < 0.08
    assert np.bincount(real["depth"]).tolist() == [0] * 9 + [2000]  # every real tree reaches depth 9 ...
    assert (ours["depth"] == 9).all()  # ... and so does every generated one
    np.testing.assert_allclose(ours["op_freq"], 0.25, atol=0.02)
    np.testing.assert_allclose(real["op_freq"], 0.25, atol=0.02)
    assert abs(ours["digits_per_op"] / real["digits_per_op"] - 1) < 0.05
    # target distribution: same shape (0 and 9 most frequent, from MIN and MAX)
    p_real = np.bincount(real_targets, minlength=10) / len(real_targets)
    p_ours = np.bincount(generated[1], minlength=10) / len(generated[1])
    assert np.abs(p_real - p_ours).max() < 0.07


def test_synthetic_task():
    task = listops_synthetic_task(n_train=20, n_val=5, n_test=5, seed=3, max_depth=4, min_length=10, max_length=60)
    assert (len(task.train), len(task.val), len(task.test)) == (20, 5, 5) and task.vocab_size == 16
    sources, targets = generate_listops(30, seed=3, max_depth=4, min_length=10, max_length=60)
    x, y = task.test[4]
    assert int(y) == targets[29] == evaluate(sources[29])[0]
    assert [VOCAB[t] for t in x.tolist()] == [t for t in sources[29].split() if t not in "()"]
    assert x.dtype == torch.long and 10 < len(x) < 60
    with pytest.raises(ValueError, match="max_depth"):
        generate_listops(1, max_depth=1)


# ------------------------------------------------------------------------------------------ files
def _write(path, rows, header="Source\tTarget"):
    path.write_text("\n".join([header] + rows) + "\n")


def test_official_layout_with_three_files(tmp_path):
    folder = tmp_path / "lra_release" / "listops-1000"
    folder.mkdir(parents=True)
    sources, targets = generate_listops(9, seed=5, max_depth=4, min_length=5, max_length=80)
    rows = [f"{s}\t{t}" for s, t in zip(sources, targets, strict=True)]
    _write(folder / "basic_train.tsv", rows[:5])
    _write(folder / "basic_val.tsv", rows[5:7])
    with gzip.open(folder / "basic_test.tsv.gz", "wt") as f:
        f.write("Source\tTarget\n" + "\n".join(rows[7:]) + "\n")
    task = listops_task(tmp_path)
    assert (len(task.train), len(task.val), len(task.test)) == (5, 2, 2)
    assert task.info["splits"] == "official train / val / test files"
    assert task.test.labels.tolist() == targets[7:].tolist()


def test_bad_listops_files_are_clear_errors(tmp_path):
    with pytest.raises(DataMissingError, match=r"listops/basic_train.tsv\[.gz\]") as err:
        listops_task(tmp_path)
    assert "lra_release" in str(err.value)
    _write(tmp_path / "basic_train.tsv", ["( [MAX 1 ) 2 ) ] )\t2"])
    with pytest.raises(DataMissingError, match=r"not found: \['basic_val.tsv\[.gz\]'\]"):
        listops_task(tmp_path)
    _write(tmp_path / "basic_val.tsv", ["( [MAX 1 ) 2 ) ] )\t2"], header="text\tlabel")
    with pytest.raises(ValueError, match="basic_val.tsv: first line must be the header"):
        listops_task(tmp_path)
    _write(tmp_path / "basic_val.tsv", ["( [MAX 1 ) 2 ) ] )\t2", "( [MAX 1 ) 2"])  # truncated last line
    with pytest.raises(ValueError, match="basic_val.tsv: line 3 is not 'source<TAB>digit'"):
        listops_task(tmp_path)
    _write(tmp_path / "basic_val.tsv", ["( [MAX 1 ) 2 ) ] )\t2", "( [FIRST 1 ) 2 ) ] )\t1"])
    with pytest.raises(ValueError, match="example 2 holds .* not a ListOps token"):
        listops_task(tmp_path)
    (tmp_path / "basic_val.tsv").unlink()
    (tmp_path / "basic_val.tsv.gz").write_bytes(gzip.compress(b"Source\tTarget\n( [MAX 1 ) 2 ) ] )\t2\n")[:-12])
    with pytest.raises(ValueError, match="basic_val.tsv.gz: cannot read"):
        listops_task(tmp_path)


def test_header_only_file_is_not_an_empty_dataset(tmp_path):
    _write(tmp_path / "basic_train.tsv", ["( [MAX 1 ) 2 ) ] )\t2"] * 3)
    (tmp_path / "basic_val.tsv").write_text("Source\tTarget\n")
    with pytest.raises(ValueError, match=r"basic_val.tsv: no examples after the header"):
        listops_task(tmp_path)
    (tmp_path / "basic_val.tsv").write_text("")
    with pytest.raises(ValueError, match=r"basic_val.tsv: first line must be the header"):
        listops_task(tmp_path)


def test_synthetic_split_sizes_are_checked():
    with pytest.raises(ValueError, match=r"n_train and n_test must be ints >= 1.*'n_train': 0"):
        listops_synthetic_task(n_train=0)
    assert listops_synthetic_task(n_train=2, n_val=0, n_test=1, max_depth=3, min_length=5, max_length=40).val is None
