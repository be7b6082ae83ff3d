"""The espeak-ng spoken-digit task: a small generation, its cache, determinism and the half-rate test set.

espeak-ng is a system package (apt-get install -y espeak-ng). Without it these tests fail when $CI is set (CI must have
it) and are skipped otherwise; the error for a missing espeak-ng is tested either way.
"""

import os
import shutil

import pytest
import torch

from ssmkit.data.base import DataMissingError
from ssmkit.data.espeak_digits import DIGITS, GENERATOR_VERSION, cache_file, espeak_digits_task, utterance_params
from ssmkit.data.registry import get_task

SMALL = {"n_train_per_digit": 2, "n_val_per_digit": 1, "n_test_per_digit": 2}


@pytest.fixture
def espeak():
    if shutil.which("espeak-ng") is None:
        msg = "espeak-ng is not installed; install it with: apt-get install -y espeak-ng"
        if os.environ.get("CI"):
            pytest.fail(f"{msg} (CI must provide it)")
        pytest.skip(msg)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        return None
    root = tmp_path_factory.mktemp("data")
    return root, espeak_digits_task(root, seed=3, **SMALL)


def test_small_generation(espeak, small):
    root, task = small
    assert (task.name, task.kind, task.d_input, task.d_output, task.l_max) == (
        "espeak_digits",
        "classify",
        1,
        10,
        16000,
    )
    assert (len(task.train), len(task.val), len(task.test)) == (20, 10, 20)
    assert task.info["sample_rate"] == 16000 and task.info["classes"] == list(DIGITS)
    for ds, per_digit in ((task.train, 2), (task.val, 1), (task.test, 2)):
        ys = torch.stack([ds[i][1] for i in range(len(ds))])
        assert torch.bincount(ys, minlength=10).tolist() == [per_digit] * 10
    for i in range(len(task.train)):
        x, y = task.train[i]
        assert x.shape == (16000, 1) and x.dtype == torch.float32 and y.dtype == torch.long
        peak = x.abs().max().item()
        assert 0.25 < peak <= 1.0  # the word's peak is drawn in [0.3, 0.9], plus noise
        # the word occupies part of the second, the rest is noise well below it
        energy = x[:, 0].pow(2).unfold(0, 400, 400).mean(1)  # (40,) per 25 ms
        assert energy.max() > 30 * energy.min() and energy.min() > 0
    # different voices / speeds: two renderings of the same digit differ in length and waveform
    assert not torch.equal(task.train[0][0], task.train[10][0])


def test_half_rate_test_set(espeak, small):
    _, task = small
    extra = task.info["extra_tests"]["test_half_rate"]
    assert extra["rate"] == 2.0 and extra["sample_rate"] == 8000 and len(extra["dataset"]) == 20
    x8, y8 = extra["dataset"][5]
    x16, y16 = task.test[5]
    assert x8.shape == (8000, 1) and y8 == y16
    torch.testing.assert_close(x8, x16[::2])


def test_cache_is_reused_and_generation_is_deterministic(espeak, small, tmp_path, monkeypatch):
    root, task = small
    cache = root / "espeak_digits"
    assert [p.name for p in cache.iterdir()] == [os.path.basename(task.info["cache"])]
    assert task.info["generator"]["seed"] == 3 and "eSpeak NG" in task.info["generator"]["espeak_version"]
    # the same seed elsewhere (one worker) gives the same audio; another seed other audio
    again = espeak_digits_task(tmp_path, seed=3, workers=1, **SMALL)
    for a, b in ((task.train, again.train), (task.test, again.test)):
        assert torch.equal(a.pcm, b.pcm) and torch.equal(a.labels, b.labels)
    other = espeak_digits_task(tmp_path, seed=4, **SMALL)
    assert not torch.equal(other.train.pcm, task.train.pcm)
    assert len(list((tmp_path / "espeak_digits").iterdir())) == 2
    # the cache is read without espeak-ng
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    cached = get_task("espeak_digits", data_dir=root, seed=3, **SMALL)
    assert torch.equal(cached.val.pcm, task.val.pcm)


def test_missing_espeak_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DataMissingError, match=r"espeak-ng .* not on PATH.*apt-get install -y espeak-ng"):
        espeak_digits_task(tmp_path, **SMALL)


def test_bad_options_and_corrupt_cache(tmp_path):
    with pytest.raises(ValueError, match="n_train_per_digit must be a positive int"):
        espeak_digits_task(tmp_path, n_train_per_digit=0)
    with pytest.raises(ValueError, match="snr_db"):
        espeak_digits_task(tmp_path, snr_db=(30.0, 10.0))
    with pytest.raises(ValueError, match="half_rate_method"):
        espeak_digits_task(tmp_path, half_rate_method="cubic")
    # the generator's parameters are a pure function of (seed, split, index)
    p, q = utterance_params(0, "train", 7), utterance_params(0, "train", 7)
    assert p["voice"] == q["voice"] and p["speed"] == q["speed"] and p["digit"] == 7
    # a corrupt cache file is refused with its name, not silently regenerated
    options = {"version": GENERATOR_VERSION, "sizes": {"train": 20, "val": 10, "test": 20}, "snr_db": (10.0, 40.0),
               "seed": 0}  # fmt: skip
    path = cache_file(tmp_path / "espeak_digits", options)
    path.parent.mkdir()
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"digits_.*\.npz: the cached digits cannot be read"):
        espeak_digits_task(tmp_path, **SMALL)


def test_truncated_cache_is_a_clear_error(tmp_path):
    """A cache cut short (an interrupted copy) is a zip that zipfile refuses: named, not an anonymous BadZipFile."""
    import numpy as np

    options = {"version": GENERATOR_VERSION, "sizes": {"train": 20, "val": 10, "test": 20}, "snr_db": (10.0, 40.0),
               "seed": 0}  # fmt: skip
    path = cache_file(tmp_path / "espeak_digits", options)
    path.parent.mkdir()
    np.savez(path, x_train=np.zeros((20, 16000), np.int16))
    with pytest.raises(ValueError, match=r"digits_.*\.npz: the cached digits cannot be read \(KeyError"):
        espeak_digits_task(tmp_path, **SMALL)  # a cache without its meta record
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"digits_.*\.npz: the cached digits cannot be read \(BadZipFile"):
        espeak_digits_task(tmp_path, **SMALL)
