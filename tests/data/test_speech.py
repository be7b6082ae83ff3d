"""Speech Commands reader on a tiny dataset in the official layout, written by the test (the real one is not here)."""

import wave

import numpy as np
import pytest
import torch

from ssmkit.data.base import DataMissingError
from ssmkit.data.registry import get_task
from ssmkit.data.speech import SC10, SC35, half_rate, read_wav, resample_fft, speech_commands_task, write_wav

SPEAKERS = ("0a7c2a8d", "0b09edd3", "1a892463", "2aca1e72", "3bb68054")


def clip(word_index: int, speaker: int, n: int, length: int = 12000) -> np.ndarray:
    """A distinct, exactly representable int16 clip: value = word * 100 + speaker * 10 + n, ramped."""
    base = word_index * 100 + speaker * 10 + n
    return ((np.arange(length) % 50) + base).astype(np.int16)


def write_pcm(path, pcm: np.ndarray, rate: int = 16000, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())


@pytest.fixture
def sc_root(tmp_path):
    """<tmp>/speech_commands_v0.02/<word>/<speaker>_nohash_<n>.wav for the 10 SC10 words, 5 speakers, 1 clip each
    (speaker 3 of "yes" has a second, 17000-sample clip), _background_noise_/, and the two split lists."""
    root = tmp_path / "speech_commands_v0.02"
    for k, word in enumerate(SC10):
        (root / word).mkdir(parents=True)
        for s, spk in enumerate(SPEAKERS):
            write_pcm(root / word / f"{spk}_nohash_0.wav", clip(k, s, 0))
    write_pcm(root / "yes" / f"{SPEAKERS[3]}_nohash_1.wav", clip(0, 3, 1, length=17000))
    (root / "_background_noise_").mkdir()
    write_pcm(root / "_background_noise_" / "white_noise.wav", np.zeros(100, dtype=np.int16))
    # speaker 1 -> validation, speaker 2 -> test (the official lists keep speakers apart); an unused word is listed too
    (root / "validation_list.txt").write_text(
        "".join(f"{w}/{SPEAKERS[1]}_nohash_0.wav\n" for w in SC10) + "cat/x.wav\n"
    )
    (root / "testing_list.txt").write_text("".join(f"{w}/{SPEAKERS[2]}_nohash_0.wav\n" for w in SC10))
    return tmp_path


def test_official_layout_and_splits(sc_root):
    task = speech_commands_task(sc_root, subset="sc10")
    assert (task.name, task.kind, task.d_input, task.d_output, task.l_max) == ("sc10", "classify", 1, 10, 16000)
    assert (len(task.train), len(task.val), len(task.test)) == (31, 10, 10)
    assert task.info["classes"] == list(SC10)
    for k, word in enumerate(SC10):
        x, y = task.test[k]  # files are sorted by word, then name
        assert task.test.files[k].parent.name == word
        assert y.item() == k and x.shape == (16000, 1) and x.dtype == torch.float32
        expected = clip(k, 2, 0).astype(np.float32) / 32768
        np.testing.assert_array_equal(x[:12000, 0].numpy(), expected)
        assert torch.all(x[12000:] == 0)  # zero-padded at the end
        assert task.val[k][1].item() == k
    # the 17000-sample clip is cropped to the first 16000 samples
    long_clip = next(i for i, f in enumerate(task.train.files) if f.name == f"{SPEAKERS[3]}_nohash_1.wav")
    x, y = task.train[long_clip]
    assert y.item() == 0
    np.testing.assert_array_equal(x[:, 0].numpy(), clip(0, 3, 1, length=17000)[:16000].astype(np.float32) / 32768)
    assert not any("_background_noise_" in str(f) for f in task.train.files)


def test_half_rate_test_set(sc_root):
    task = get_task("sc10", data_dir=sc_root)
    extra = task.info["extra_tests"]["test_half_rate"]
    assert extra["rate"] == 2.0 and extra["sample_rate"] == 8000 and len(extra["dataset"]) == len(task.test)
    x8, y8 = extra["dataset"][3]
    x16, y16 = task.test[3]
    assert x8.shape == (8000, 1) and y8 == y16
    torch.testing.assert_close(x8, x16[::2])

    fft_task = speech_commands_task(sc_root, half_rate_method="fft")
    x8f, _ = fft_task.info["extra_tests"]["test_half_rate"]["dataset"][0]
    assert x8f.shape == (8000, 1)
    # a 440 Hz tone keeps its samples at 8 kHz; a 6 kHz tone (above the new Nyquist) is removed, not aliased
    t16 = np.arange(16000) / 16000
    low, high = np.sin(2 * np.pi * 440 * t16), np.sin(2 * np.pi * 6000 * t16)
    down = half_rate(torch.from_numpy(low + high).float()[:, None], "fft")[:, 0].numpy()
    np.testing.assert_allclose(down, np.sin(2 * np.pi * 440 * np.arange(8000) / 8000), atol=1e-5)
    with pytest.raises(ValueError, match="half_rate_method"):
        speech_commands_task(sc_root, half_rate_method="linear")


def test_random_split_is_seeded_and_stratified(sc_root):
    a = speech_commands_task(sc_root, split="random", seed=1)
    b = speech_commands_task(sc_root, split="random", seed=1)
    c = speech_commands_task(sc_root, split="random", seed=2)
    assert a.train.files == b.train.files and a.test.files == b.test.files
    assert a.train.files != c.train.files
    assert len(a.train) + len(a.val) + len(a.test) == 51
    assert torch.bincount(a.test.labels, minlength=10).tolist() == [1] * 10  # round(0.15 * 5) = 1 per word
    assert torch.bincount(a.val.labels, minlength=10).tolist() == [1] * 10


def test_sc35_needs_every_word_folder(sc_root):
    with pytest.raises(ValueError, match=r"no folder for the words \['backward', 'bed'"):
        speech_commands_task(sc_root, subset="sc35")
    root = sc_root / "speech_commands_v0.02"
    for w in SC35:
        if w not in SC10:
            (root / w).mkdir()
            write_pcm(root / w / f"{SPEAKERS[0]}_nohash_0.wav", np.zeros(10, dtype=np.int16))
    # the validation list names cat/x.wav, which SC10 ignores but SC35 needs
    with pytest.raises(ValueError, match=r"validation_list\.txt, line 11: lists cat/x\.wav, which is not on disk"):
        speech_commands_task(sc_root, subset="sc35")
    write_pcm(root / "cat" / "x.wav", np.zeros(10, dtype=np.int16))
    task = get_task("sc35", data_dir=sc_root)
    assert task.d_output == 35 and task.info["classes"] == list(SC35)
    assert (len(task.train), len(task.val), len(task.test)) == (31 + 25, 11, 10)


def test_missing_dataset_names_the_layout(tmp_path):
    with pytest.raises(DataMissingError) as e:
        speech_commands_task(tmp_path)
    msg = str(e.value)
    assert "speech_commands_v0.02/validation_list.txt" in msg and "testing_list.txt" in msg
    assert "<word>/<speaker>_nohash_<n>.wav" in msg and "Speech Commands v0.02" in msg


def test_bad_files_are_clear_errors(sc_root):
    root = sc_root / "speech_commands_v0.02"
    # a listed file that is not on disk
    (root / "go" / f"{SPEAKERS[2]}_nohash_0.wav").unlink()
    with pytest.raises(ValueError, match=r"testing_list\.txt, line 10: lists go/.*not on disk"):
        speech_commands_task(sc_root)
    write_pcm(root / "go" / f"{SPEAKERS[2]}_nohash_0.wav", clip(9, 2, 0))
    # a truncated WAV: the header promises more samples than the file holds
    path = root / "up" / f"{SPEAKERS[0]}_nohash_0.wav"
    path.write_bytes(path.read_bytes()[:-1000])
    task = speech_commands_task(sc_root)
    i = task.train.files.index(path)
    with pytest.raises(ValueError, match=r"up/0a7c2a8d_nohash_0\.wav: truncated"):
        task.train[i]
    # stereo, wrong rate, not a WAV
    write_pcm(path, np.zeros(200, dtype=np.int16), channels=2)
    with pytest.raises(ValueError, match="2 channels; expected mono"):
        task.train[i]
    write_pcm(path, np.zeros(200, dtype=np.int16), rate=8000)
    with pytest.raises(ValueError, match="sample rate 8000 Hz, expected 16000 Hz"):
        task.train[i]
    path.write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError, match="not a readable PCM WAV"):
        task.train[i]
    # a malformed list line
    (root / "testing_list.txt").write_text("go\n")
    with pytest.raises(ValueError, match=r"testing_list\.txt, line 1: expected '<word>/<file>.wav'"):
        speech_commands_task(sc_root)
    with pytest.raises(ValueError, match="subset"):
        speech_commands_task(sc_root, subset="sc12")


def test_wav_round_trip_and_fft_resampling(tmp_path):
    x = np.sin(np.linspace(0, 20, 2205)).astype(np.float32) * 0.5
    write_wav(tmp_path / "a.wav", x, 22050)
    y, rate = read_wav(tmp_path / "a.wav")
    assert rate == 22050 and y.dtype == np.float32
    np.testing.assert_allclose(y, x, atol=1 / 32768)
    # band-limited 22.05 kHz -> 16 kHz: a 300 Hz tone sampled at either rate
    t = np.arange(22050) / 22050
    tone = np.sin(2 * np.pi * 300 * t)
    np.testing.assert_allclose(resample_fft(tone, 16000), np.sin(2 * np.pi * 300 * np.arange(16000) / 16000), atol=1e-5)
