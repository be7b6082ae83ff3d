"""Pixel-level image tasks: the real MNIST / grey CIFAR-10 files, and small files in the official layouts."""

import gzip
import pickle

import numpy as np
import pytest
import torch

from ssmkit.data.base import DataMissingError
from ssmkit.data.images import (
    load_cifar10,
    load_mnist,
    psmnist_task,
    read_idx,
    scifar_gray_task,
    scifar_task,
    smnist_task,
)

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ------------------------------------------------------------------------------------------ real files
def test_mnist_npz_is_the_real_mnist(shared_data):
    m = load_mnist(shared_data)
    assert m["x_train"].shape == (60000, 28, 28) and m["x_test"].shape == (10000, 28, 28)
    assert m["y_train"][:5].tolist() == [5, 0, 4, 1, 9]
    assert m["y_test"][:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(m["y_train"]).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(m["y_test"]).tolist() == MNIST_TEST_COUNTS
    assert m["x_train"].mean() == pytest.approx(33.318, abs=1e-3)
    assert m["x_test"].mean() == pytest.approx(33.791, abs=1e-3)


def test_smnist_task_shapes_splits_and_values(shared_data):
    task = smnist_task(shared_data)
    assert task.kind == "classify" and task.d_output == 10 and task.d_input == 1 and task.l_max == 784
    assert (len(task.train), len(task.val), len(task.test)) == (54000, 6000, 10000)
    x, y = task.test[0]
    assert x.shape == (784, 1) and x.dtype == torch.float32 and y.dtype == torch.long and int(y) == 7
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.max()) == 1.0
    # train and val are disjoint and together are the 60000 training images
    tr, va = task.train.labels.numpy(), task.val.labels.numpy()
    assert np.bincount(np.concatenate([tr, va])).tolist() == MNIST_TRAIN_COUNTS
    # val_size=0: the training set in its original order, no val
    full = smnist_task(shared_data, val_size=0)
    assert full.val is None and [int(full.train[i][1]) for i in range(5)] == [5, 0, 4, 1, 9]


def test_psmnist_is_one_fixed_permutation_from_the_seed(shared_data):
    plain = smnist_task(shared_data, val_size=0)
    perm_task = psmnist_task(shared_data, perm_seed=3, val_size=0)
    perm = perm_task.info["permutation"]
    assert sorted(perm.tolist()) == list(range(784)) and not np.array_equal(perm, np.arange(784))
    for i in (0, 1, 59999):  # the same permutation for every image
        assert torch.equal(perm_task.train[i][0], plain.train[i][0][perm])
    assert np.array_equal(psmnist_task(shared_data, perm_seed=3).info["permutation"], perm)  # deterministic
    assert not np.array_equal(psmnist_task(shared_data, perm_seed=4).info["permutation"], perm)


def test_normalize_standardises_with_training_statistics(shared_data):
    task = smnist_task(shared_data, normalize=True)
    xs = torch.stack([task.train[i][0] for i in range(2000)])  # (2000, 784, 1)
    assert abs(float(xs.mean())) < 0.05 and abs(float(xs.std()) - 1.0) < 0.05


def test_cifar_grey_npz_is_lra_image(shared_data):
    task = scifar_gray_task(shared_data)
    assert (len(task.train), len(task.val), len(task.test)) == (45000, 5000, 10000)
    assert task.d_input == 1 and task.l_max == 1024 and task.d_output == 10
    x, y = task.train[0]
    assert x.shape == (1024, 1) and 0.0 <= float(x.min()) <= float(x.max()) <= 1.0
    full = scifar_gray_task(shared_data, val_size=0)
    train_px, test_px = full.train.pixels, full.test.pixels
    assert float(train_px.double().mean() / 255) == pytest.approx(0.4808, abs=1e-4)
    assert float(test_px.double().mean() / 255) == pytest.approx(0.4838, abs=1e-4)
    assert np.bincount(full.train.labels.numpy()).tolist() == [5000] * 10
    assert np.bincount(full.test.labels.numpy()).tolist() == [1000] * 10
    assert full.train.labels[:5].tolist() == [6, 9, 9, 4, 1]  # the original data_batch_1 order


# ------------------------------------------------------------------------------------------ official layouts
def _write_idx(path, array, gz):
    header = (0x0800 + array.ndim).to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def _fake_mnist(folder, gz=True, n_train=30, n_test=10):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) * 3) % 10,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        _write_idx(folder / (name + (".gz" if gz else "")), a, gz)
    return arrays


@pytest.mark.parametrize("layout,gz", [("mnist", True), ("MNIST/raw", False), (".", True)])
def test_mnist_idx_files_in_each_layout(tmp_path, layout, gz):
    arrays = _fake_mnist(tmp_path / layout, gz=gz)
    task = smnist_task(tmp_path, val_size=5)
    assert (len(task.train), len(task.val), len(task.test)) == (25, 5, 10)
    x, y = task.test[1]
    assert int(y) == 3
    assert torch.allclose(x[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"][1].reshape(-1) / 255).float())


def test_mnist_missing_names_the_files(tmp_path):
    with pytest.raises(DataMissingError, match="train-images-idx3-ubyte") as err:
        smnist_task(tmp_path)
    assert "mnist.npz" in str(err.value) and "where to get it" in str(err.value)
    _fake_mnist(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataMissingError, match="t10k-labels-idx1-ubyte"):
        smnist_task(tmp_path)


def test_truncated_or_wrong_idx_is_a_clear_error(tmp_path):
    _fake_mnist(tmp_path, gz=False)
    f = tmp_path / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte: truncated"):
        smnist_task(tmp_path)
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "train-labels-idx1-ubyte", 3)
    bad_gz = tmp_path / "bad" / "train-images-idx3-ubyte.gz"
    bad_gz.parent.mkdir()
    bad_gz.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot read"):
        read_idx(bad_gz, 3)


def test_mnist_npz_with_wrong_arrays_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match=r"mnist.npz: missing arrays \['x_test', 'y_test'\]"):
        smnist_task(tmp_path)
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="not a readable .npz"):
        smnist_task(tmp_path)


def _fake_cifar(folder, n=4):
    """Five training batches and a test batch in the official pickled format (R plane, G plane, B plane)."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    batches = {}
    for b in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        with open(folder / b, "wb") as f:
            pickle.dump({b"batch_label": b.encode(), b"labels": labels, b"data": data, b"filenames": [b"x.png"] * n}, f)
        batches[b] = (data, labels)
    return batches


def test_cifar_python_batches_colour_and_grey(tmp_path):
    batches = _fake_cifar(tmp_path / "cifar-10-batches-py")
    colour = scifar_task(tmp_path, val_size=0)
    assert (len(colour.train), len(colour.test), colour.d_input, colour.l_max) == (20, 4, 3, 1024)
    data, labels = batches["data_batch_2"]
    x, y = colour.train[4 + 1]  # second image of data_batch_2
    assert int(y) == labels[1]
    R, G, B = data[1, :1024], data[1, 1024:2048], data[1, 2048:]
    assert x.shape == (1024, 3)
    assert torch.allclose(x, torch.from_numpy(np.stack([R, G, B], 1) / 255).float())
    grey = scifar_gray_task(tmp_path, val_size=2)  # no npz: converted from the batches
    g = torch.from_numpy(np.rint(0.2989 * R + 0.5870 * G + 0.1140 * B) / 255).float()
    full = scifar_gray_task(tmp_path, val_size=0)
    assert len(grey.train) == 18 and len(grey.val) == 2
    assert torch.allclose(full.train[5][0][:, 0], g)


def test_cifar_missing_or_corrupt_batch_is_a_clear_error(tmp_path):
    with pytest.raises(DataMissingError, match="cifar-10-batches-py/data_batch_1") as err:
        scifar_task(tmp_path)
    assert "Toronto" in str(err.value)
    with pytest.raises(DataMissingError, match="cifar10_gray.npz"):
        scifar_gray_task(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    _fake_cifar(folder)
    (folder / "test_batch").unlink()
    with pytest.raises(DataMissingError, match=r"test_batch"):
        load_cifar10(tmp_path)
    (folder / "test_batch").write_bytes((folder / "data_batch_1").read_bytes()[:50])
    with pytest.raises(ValueError, match="test_batch: not a readable CIFAR-10 python batch"):
        load_cifar10(tmp_path)


def test_cifar_batch_with_foreign_objects_is_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _fake_cifar(folder)
    with open(folder / "data_batch_3", "wb") as f:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": print}, f)
    with pytest.raises(ValueError, match="data_batch_3.*unexpected object builtins.print"):
        load_cifar10(tmp_path)


def test_registry_builds_the_image_tasks_by_name(shared_data):
    from ssmkit.data.registry import get_task

    task = get_task("psmnist", shared_data, perm_seed=1, val_size=0)
    assert task.name == "psmnist" and len(task.train) == 60000
    with pytest.raises(ValueError, match="no option"):
        get_task("smnist", shared_data, colour=True)
    with pytest.raises(ValueError, match="unknown task 'smnist_colour'"):
        get_task("smnist_colour", shared_data)


def test_npz_in_the_wrong_layout_is_a_clear_error(tmp_path):
    """A grey CIFAR npz holding colour images, an empty split or labels outside 0..9: refused, naming the file."""
    folder = tmp_path / "cifar10_gray"
    folder.mkdir()
    good = {"x_test": np.zeros((3, 32, 32), np.uint8), "y_test": np.zeros(3, np.int64)}
    np.savez(folder / "cifar10_gray.npz", x_train=np.zeros((4, 32, 32, 3), np.uint8), y_train=np.zeros(4), **good)
    with pytest.raises(ValueError, match=r"cifar10_gray.npz: train images must be uint8 \(N, 32, 32\)"):
        scifar_gray_task(tmp_path)
    np.savez(folder / "cifar10_gray.npz", x_train=np.zeros((0, 32, 32), np.uint8), y_train=np.zeros(0), **good)
    with pytest.raises(ValueError, match=r"cifar10_gray.npz: train images must be uint8 .* got uint8 \(0, 32, 32\)"):
        scifar_gray_task(tmp_path, val_size=0)
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((4, 28, 28), np.uint8), y_train=np.array([0, 1, 2, 10]),
             x_test=np.zeros((2, 28, 28), np.uint8), y_test=np.zeros(2, np.uint8))  # fmt: skip
    with pytest.raises(ValueError, match=r"mnist.npz: train labels must be in 0..9, got 0..10"):
        smnist_task(tmp_path, val_size=1)
