"""UCR / UEA .ts reader on the six real datasets in ../shared/data/ucr, and its errors on malformed files."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ssmkit.data.base import DataMissingError, pad_collate
from ssmkit.data.registry import get_task
from ssmkit.data.ucr import fill_nan, read_ts, ucr_task
from ssmkit.models.heads import pool, valid_mask

# name: (n_train, n_test, channels, shortest, longest, classes, train counts per class) from the archive's descriptions
UCR = {
    "ACSF1": (100, 100, 1, 1460, 1460, 10, [10] * 10),
    "ArrowHead": (36, 175, 1, 251, 251, 3, [12, 12, 12]),
    "GunPoint": (50, 150, 1, 150, 150, 2, [24, 26]),
    "JapaneseVowels": (270, 370, 12, 7, 29, 9, [30] * 9),
    "OSULeaf": (200, 242, 1, 427, 427, 6, [34, 29, 33, 53, 36, 15]),
    "PLAID": (537, 537, 1, 100, 1344, 11, [33, 88, 57, 19, 78, 18, 57, 86, 69, 19, 13]),
}


def data_lines(path):
    """The case lines of a .ts file, read independently of the loader: after @data, not blank, not comments."""
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    start = next(i for i, line in enumerate(text) if line.strip().lower() == "@data")
    return [line.strip() for line in text[start + 1 :] if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("name", sorted(UCR))
def test_real_datasets(shared_data, name):
    n_train, n_test, C, shortest, longest, K, counts = UCR[name]
    task = ucr_task(shared_data, dataset=name)
    assert (len(task.train), len(task.test), task.d_input, task.d_output) == (n_train, n_test, C, K)
    assert task.kind == "classify" and task.l_max == longest and task.variable_length == (shortest != longest)
    lengths = [task.train[i][0].shape[0] for i in range(n_train)] + [task.test[i][0].shape[0] for i in range(n_test)]
    assert (min(lengths), max(lengths)) == (shortest, longest)
    ys = torch.stack([task.train[i][1] for i in range(n_train)])
    assert ys.dtype == torch.long and torch.bincount(ys, minlength=K).tolist() == counts

    # the first and last cases against an independent read of the lines
    labels = task.info["class_labels"]
    for split in ("train", "test"):
        lines = data_lines(shared_data / "ucr" / name / f"{name}_{split.upper()}.ts")
        ds = getattr(task, split)
        assert len(lines) == len(ds)
        for i in (0, len(ds) - 1):
            *channels, label = lines[i].split(":")
            x, y = ds[i]
            assert y.item() == labels.index(label)
            expected = np.array([[float(v) for v in c.split(",")] for c in channels]).T  # (L, C)
            np.testing.assert_allclose(x.numpy(), expected, rtol=1e-6)


def test_plaid_unequal_lengths_batch_with_lengths(shared_data):
    task = ucr_task(shared_data, dataset="PLAID")
    lines = data_lines(shared_data / "ucr" / "PLAID" / "PLAID_TRAIN.ts")
    expected_lengths = [len(line.split(":")[0].split(",")) for line in lines]
    assert [x.shape[0] for x, _ in (task.train[i] for i in range(len(task.train)))] == expected_lengths
    assert len(set(expected_lengths)) > 50  # many different lengths

    # pad_collate + lengths: pooling over the valid steps equals pooling each unpadded series
    items = [task.train[i] for i in range(8)]
    x, y, lengths = next(iter(DataLoader(items, batch_size=8, collate_fn=pad_collate)))
    assert x.shape == (8, max(expected_lengths[:8]), 1) and lengths.tolist() == expected_lengths[:8]
    m = valid_mask(lengths, x.shape[1])  # (B, L)
    pooled = pool(x, "mean", lengths)  # (B, 1): the model's own pooling over the valid steps
    maxed = x.masked_fill(~m[..., None], -torch.inf).amax(1)  # (B, 1)
    for b, (xb, yb) in enumerate(items):
        torch.testing.assert_close(pooled[b], xb.mean(0))
        torch.testing.assert_close(maxed[b], xb.amax(0))
        assert y[b] == yb
    assert torch.all(x[~m] == 0)  # padding is zeros, after the valid steps


def test_japanese_vowels_is_multivariate(shared_data):
    task = ucr_task(shared_data, dataset="JapaneseVowels")
    x, y = task.train[0]
    assert x.shape[1] == 12 and 7 <= x.shape[0] <= 29 and y.item() == 0
    x0, x1, lengths = pad_collate([task.test[0], task.test[1]])
    assert x0.shape == (2, int(lengths.max()), 12)


def test_validation_holdout_and_normalize(shared_data):
    a = ucr_task(shared_data, dataset="OSULeaf", val_fraction=0.2, seed=3)
    b = ucr_task(shared_data, dataset="OSULeaf", val_fraction=0.2, seed=3)
    counts = torch.tensor(UCR["OSULeaf"][6])
    assert torch.bincount(a.val.ys).tolist() == torch.round(0.2 * counts).long().tolist()
    assert len(a.train) + len(a.val) == 200
    assert all(torch.equal(u, v) for u, v in zip(a.val.xs, b.val.xs, strict=True))
    train_set = {tuple(x[:5, 0].tolist()) for x in a.train.xs}
    assert not any(tuple(x[:5, 0].tolist()) in train_set for x in a.val.xs)

    n = ucr_task(shared_data, dataset="PLAID", normalize=True)
    allv = torch.cat(n.train.xs)
    assert abs(allv.mean().item()) < 1e-4 and abs(allv.std().item() - 1) < 1e-4
    task = get_task("ucr", data_dir=shared_data, dataset="GunPoint")
    assert task.name == "ucr:GunPoint"


HEADER = "@problemName Toy\n@timeStamps false\n@missing true\n@univariate {uni}\n@classLabel true a b\n@data\n"


def write_toy(folder, train_body, test_body="1,2,3:a\n", uni="true"):
    (folder / "Toy").mkdir(parents=True, exist_ok=True)
    (folder / "Toy" / "Toy_TRAIN.ts").write_text(HEADER.format(uni=uni) + train_body)
    (folder / "Toy" / "Toy_TEST.ts").write_text(HEADER.format(uni=uni) + test_body)


def test_missing_values_are_handled_explicitly(tmp_path):
    write_toy(tmp_path, "1,?,3,NaN:b\n?,2,2,2:a\n")
    with pytest.raises(ValueError, match=r"Toy_TRAIN\.ts, line 7: missing values.*fill_missing"):
        ucr_task(tmp_path, dataset="Toy")
    z = ucr_task(tmp_path, dataset="Toy", fill_missing="zero")
    assert z.train[0][0][:, 0].tolist() == [1, 0, 3, 0] and z.train[0][1].item() == 1
    i = ucr_task(tmp_path, dataset="Toy", fill_missing="interpolate")
    assert i.train[0][0][:, 0].tolist() == [1, 2, 3, 3] and i.train[1][0][:, 0].tolist() == [2, 2, 2, 2]
    assert fill_nan(np.full((3, 1), np.nan), "interpolate").tolist() == [[0.0], [0.0], [0.0]]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("1,2,3:c\n", r"line 7: label 'c' is not one of @classLabel \['a', 'b'\]"),
        ("1,2,x:a\n", r"line 7: could not convert string to float"),
        ("1,2,3:4,5,6:a\n", r"@univariate true but cases have 2 channels"),
        ("1,2:3,4,5:a\n", r"line 7: channels of one case have different lengths"),
        ("", r"@data is followed by no cases"),
        ("1,2,3:a\n1,2,3\n", r"line 8: expected '<values>\[:<values>...\]:<label>'"),  # a line cut short
    ],
)
def test_malformed_cases(tmp_path, body, match):
    write_toy(tmp_path, body)
    with pytest.raises(ValueError, match=match):
        ucr_task(tmp_path, dataset="Toy")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("@problemName Toy\n@classLabel true a b\n1,2:a\n", r"line 3: expected a @tag or # comment before @data"),
        ("@problemName Toy\n@classLabel true a b\n", r"no @data line"),
        ("@problemName Toy\n@univariate maybe\n@data\n", r"line 2: @univariate must be followed by true or false"),
        ("@problemName Toy\n@colour blue\n@data\n", r"line 2: unknown header tag @colour"),
        ("@problemName Toy\n@classLabel false\n@data\n1,2:a\n", r"no '@classLabel true <labels>'"),
        ("@timeStamps true\n@classLabel true a\n@data\n(0,1),(1,2):a\n", r"@timeStamps true .* not supported"),
        ("@seriesLength 3\n@classLabel true a\n@data\n1,2,3:a\n1,2:a\n", r"line 5: a series of length 2"),
        ("@equalLength true\n@classLabel true a\n@data\n1,2,3:a\n1,2:a\n", r"@equalLength true but"),
        ("@dimensions 2\n@classLabel true a\n@data\n1,2,3:a\n", r"@dimensions 2 but cases have 1 channels"),
    ],
)
def test_malformed_headers(tmp_path, text, match):
    path = tmp_path / "Toy_TRAIN.ts"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as e:
        read_ts(path)
    assert "Toy_TRAIN.ts" in str(e.value)


def test_missing_files(tmp_path):
    write_toy(tmp_path, "1,2,3:a\n")
    (tmp_path / "Toy" / "Toy_TEST.ts").unlink()
    with pytest.raises(DataMissingError) as e:
        ucr_task(tmp_path, dataset="Toy")
    msg = str(e.value)
    assert "ucr/Toy/Toy_TRAIN.ts" in msg and "Toy/Toy_TEST.ts" in msg and "timeseriesclassification.com" in msg
    with pytest.raises(ValueError, match="fill_missing"):
        ucr_task(tmp_path, dataset="Toy", fill_missing="mean")


def test_train_and_test_files_that_disagree_are_refused(tmp_path):
    write_toy(tmp_path, "1,2,3:a\n")
    test = tmp_path / "Toy" / "Toy_TEST.ts"
    test.write_text(HEADER.format(uni="true").replace("true a b", "true a b c") + "1,2,3:c\n")
    with pytest.raises(ValueError, match=r"Toy_TRAIN\.ts and .*Toy_TEST\.ts declare different @classLabel lists"):
        ucr_task(tmp_path, dataset="Toy")
    test.write_text(HEADER.format(uni="false") + "1,2,3:4,5,6:a\n")
    with pytest.raises(ValueError, match=r"Toy_TRAIN\.ts has 1 channels, .*Toy_TEST\.ts 2"):
        ucr_task(tmp_path, dataset="Toy")


def test_a_validation_fraction_that_leaves_no_cases_is_refused(tmp_path):
    write_toy(tmp_path, "1,2,3:a\n4,5,6:b\n7,8,9:a\n")
    with pytest.raises(ValueError, match=r"Toy_TRAIN\.ts: val_fraction=0.1 of 3 .* leaves the validation set empty"):
        ucr_task(tmp_path, dataset="Toy", val_fraction=0.1)
    with pytest.raises(ValueError, match=r"val_fraction=0.9 of 3 .* leaves the training set empty"):
        ucr_task(tmp_path, dataset="Toy", val_fraction=0.9)
    task = ucr_task(tmp_path, dataset="Toy", val_fraction=0.5)  # round(0.5 * 2) = 1 of class a, round(0.5) = 0 of b
    assert (len(task.train), len(task.val)) == (2, 1)
