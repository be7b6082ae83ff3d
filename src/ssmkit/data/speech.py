"""Raw-audio classification: Speech Commands (SC10, SC35) at 16 kHz, and the half-rate test of the S4 paper.

Speech Commands v0.02 (Warden 2018, "Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition",
arXiv:1804.03209): one-second 16-bit mono WAVs at 16 kHz in the official folder layout

    <root>/<word>/<speaker>_nohash_<n>.wav      one folder per word (35 words in v0.02), plus _background_noise_/
    <root>/validation_list.txt                   "<word>/<file>.wav" per line
    <root>/testing_list.txt                      train = every other file

SC10 is the ten-word subset (yes no up down left right on off stop go) used by the S4 paper (Gu et al. 2022,
"Raw Speech Classification" in Sec. 4.2: raw audio, L = 16000); SC35 all 35 words. Items: x float (16000, 1) in
[-1, 1] (int16 / 2^15, shorter clips zero-padded at the end, longer ones cropped), y long ().

The S4 paper's zero-shot sampling-rate test feeds the test set at 8 kHz (L = 8000) to a model trained at 16 kHz, every
step now spanning twice the time (the layers' `rate = 2`). It is
`task.info["extra_tests"]["test_half_rate"] = {"dataset": ..., "rate": 2.0, "sample_rate": 8000}`.
The S4 code takes every second sample ("stride", the default); "fft" low-passes at 4 kHz first (no aliasing).

`split="official"` uses the two list files; `split="random"` is the seeded, per-class 70 / 15 / 15 split of the code the
S4 paper built on (Kidger et al. 2020, Neural CDEs; not the same permutation as its sklearn one). That code also drops
the SC10 clips shorter than one second and standardises the audio with the train mean and std; here short clips are
zero-padded and the audio is left in [-1, 1].

WAVs are read with the standard library `wave` module and numpy only.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ssmkit.data.base import Task, missing, resolve_data_dir

SC10 = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SC35 = tuple(
    sorted(
        "backward bed bird cat dog down eight five follow forward four go happy house learn left marvin nine no off on "
        "one right seven sheila six stop three tree two up visual wow yes zero".split()
    )
)
SC_SOURCE = (
    "Speech Commands v0.02 from Google / TensorFlow (speech_commands_v0.02.tar.gz, the 'Speech Commands' dataset by "
    "Pete Warden); extract it so that <word>/ folders, validation_list.txt and testing_list.txt sit in one folder"
)
SC_LAYOUTS = ("speech_commands_v0.02", "SpeechCommands/speech_commands_v0.02", "SpeechCommands", "speech_commands", "")
SAMPLE_RATE = 16000
HALF_RATE_METHODS = ("stride", "fft")


# ----------------------------------------------------------------------------------------------------------------------
# audio helpers (shared with espeak_digits.py)


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """A mono PCM WAV -> (samples (T,) float32 in [-1, 1], sample rate). 8-bit unsigned, 16- and 32-bit signed."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            frames = w.readframes(n)
    except (wave.Error, EOFError) as e:
        raise ValueError(f"{path}: not a readable PCM WAV file ({e})") from e
    if channels != 1:
        raise ValueError(f"{path}: {channels} channels; expected mono audio")
    if width not in (1, 2, 4):
        raise ValueError(f"{path}: {8 * width}-bit samples; expected 8-, 16- or 32-bit PCM")
    if len(frames) != n * width:
        raise ValueError(f"{path}: truncated; the header says {n} samples, the file holds {len(frames) // width}")
    if width == 1:
        x = (np.frombuffer(frames, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        dtype = np.dtype("<i2") if width == 2 else np.dtype("<i4")
        x = np.frombuffer(frames, dtype=dtype).astype(np.float32) / float(2 ** (8 * width - 1))
    return x, rate


def write_wav(path: str | os.PathLike, x: np.ndarray, rate: int) -> None:
    """(T,) float in [-1, 1] -> 16-bit mono PCM WAV."""
    pcm = np.clip(np.round(np.asarray(x) * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def fix_length(x: np.ndarray, L: int) -> np.ndarray:
    """Zero-pad at the end or crop to L samples: (T,) -> (L,)."""
    return x[:L] if len(x) >= L else np.concatenate([x, np.zeros(L - len(x), dtype=x.dtype)])


def resample_fft(x: np.ndarray, n_out: int) -> np.ndarray:
    """Band-limited resampling of (T,) to (n_out,) samples: keep the common low frequencies of the two rates (ideal
    low-pass, periodic boundary), as scipy.signal.resample does. Amplitudes are preserved."""
    n = len(x)
    X = np.fft.rfft(x.astype(np.float64))  # (n // 2 + 1,) complex
    k = min(len(X), n_out // 2 + 1)
    Y = np.zeros(n_out // 2 + 1, dtype=np.complex128)
    Y[:k] = X[:k]
    if n_out % 2 == 0 and k == n_out // 2 + 1:  # the new Nyquist bin of a real signal must be real
        Y[-1] = Y[-1].real
    return (np.fft.irfft(Y, n_out) * (n_out / n)).astype(np.float32)


def half_rate(x: Tensor, method: str = "stride") -> Tensor:
    """(L, 1) at 16 kHz -> (L // 2, 1) at 8 kHz: every second sample ("stride"), or band-limited ("fft")."""
    if method == "stride":
        return x[::2]
    if method == "fft":
        return torch.from_numpy(resample_fft(x[:, 0].numpy(), x.shape[0] // 2))[:, None]
    raise ValueError(f"half_rate_method must be one of {HALF_RATE_METHODS}, got {method!r}")


class HalfRate(Dataset):
    """The same items at half the sampling rate: x (L, 1) -> (L // 2, 1), y unchanged."""

    def __init__(self, base: Dataset, method: str = "stride") -> None:
        if method not in HALF_RATE_METHODS:
            raise ValueError(f"half_rate_method must be one of {HALF_RATE_METHODS}, got {method!r}")
        self.base, self.method = base, method

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x, y = self.base[i]
        return half_rate(x, self.method), y


# ----------------------------------------------------------------------------------------------------------------------
# Speech Commands


class WavFiles(Dataset):
    """Lazily read clips: item i = (x (L, 1) float, y () long) from files[i], padded / cropped to L."""

    def __init__(self, files: list[Path], labels: list[int], L: int = SAMPLE_RATE, rate: int = SAMPLE_RATE) -> None:
        self.files, self.labels, self.L, self.rate = files, torch.tensor(labels, dtype=torch.long), L, rate

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x, rate = read_wav(self.files[i])
        if rate != self.rate:
            raise ValueError(f"{self.files[i]}: sample rate {rate} Hz, expected {self.rate} Hz")
        return torch.from_numpy(fix_length(x, self.L))[:, None], self.labels[i]  # (L, 1), ()


def find_speech_commands(root: Path) -> Path:
    for layout in SC_LAYOUTS:
        folder = root / layout
        if (folder / "validation_list.txt").is_file() and (folder / "testing_list.txt").is_file():
            return folder
    names = ("validation_list.txt", "testing_list.txt", "<word>/<speaker>_nohash_<n>.wav")
    expected = [str(Path(layout) / name) for layout in SC_LAYOUTS for name in names]
    raise missing("speech_commands", root, expected, SC_SOURCE, note="the whole archive is about 2.3 GB, 105829 clips")


def read_split_list(path: Path, folder: Path, words: tuple[str, ...]) -> set[str]:
    """The "<word>/<file>.wav" entries of a split list that belong to `words`; each must exist on disk."""
    entries = set()
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        entry = line.strip()
        if not entry:
            continue
        if entry.count("/") != 1 or not entry.endswith(".wav"):
            raise ValueError(f"{path}, line {line_no}: expected '<word>/<file>.wav', got {entry!r}")
        if entry.split("/")[0] in words:
            if not (folder / entry).is_file():
                raise ValueError(
                    f"{path}, line {line_no}: lists {entry}, which is not on disk (incomplete extraction?)"
                )
            entries.add(entry)
    return entries


def speech_commands_task(
    data_dir: str | os.PathLike | None = None,
    subset: str = "sc10",
    split: str = "official",
    half_rate_method: str = "stride",
    seed: int = 0,
) -> Task:
    """Speech Commands v0.02, raw audio: `subset` "sc10" (10 words) or "sc35" (35 words); see the module docstring."""
    if subset not in ("sc10", "sc35"):
        raise ValueError(f"subset must be 'sc10' or 'sc35', got {subset!r}")
    if split not in ("official", "random"):
        raise ValueError(f"split must be 'official' or 'random', got {split!r}")
    if half_rate_method not in HALF_RATE_METHODS:
        raise ValueError(f"half_rate_method must be one of {HALF_RATE_METHODS}, got {half_rate_method!r}")
    words = SC10 if subset == "sc10" else SC35
    folder = find_speech_commands(resolve_data_dir(data_dir))
    absent = [w for w in words if not (folder / w).is_dir()]
    if absent:
        raise ValueError(f"{folder}: no folder for the words {absent}; expected <word>/<speaker>_nohash_<n>.wav")

    files: list[str] = []
    labels: list[int] = []
    for k, w in enumerate(words):
        clips = sorted(p.name for p in (folder / w).glob("*.wav"))
        if not clips:
            raise ValueError(f"{folder / w}: no .wav files")
        files += [f"{w}/{c}" for c in clips]
        labels += [k] * len(clips)

    if split == "official":
        val_set = read_split_list(folder / "validation_list.txt", folder, words)
        test_set = read_split_list(folder / "testing_list.txt", folder, words)
        part = [2 if f in test_set else 1 if f in val_set else 0 for f in files]
    else:
        part = random_split_parts(labels, seed)
    splits = []
    for s in range(3):
        idx = [i for i, p in enumerate(part) if p == s]
        if not idx:
            raise ValueError(f"{folder}: the {('train', 'validation', 'test')[s]} split of {subset} is empty")
        splits.append(WavFiles([folder / files[i] for i in idx], [labels[i] for i in idx]))
    return Task(
        name=subset,
        kind="classify",
        train=splits[0],
        val=splits[1],
        test=splits[2],
        d_output=len(words),
        d_input=1,
        l_max=SAMPLE_RATE,
        info={
            "classes": list(words),
            "sample_rate": SAMPLE_RATE,
            "folder": str(folder),
            "extra_tests": {
                "test_half_rate": {"dataset": HalfRate(splits[2], half_rate_method), "rate": 2.0, "sample_rate": 8000}
            },
        },
    )


def random_split_parts(labels: list[int], seed: int) -> list[int]:
    """Per class, a seeded 70 / 15 / 15 split: 0 train, 1 validation, 2 test for each item."""
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor(labels)
    part = [0] * len(labels)
    for k in torch.unique(y).tolist():
        idx = torch.nonzero(y == k).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)].tolist()
        n_eval = round(0.15 * len(idx))  # each of validation and test; train gets the rest (~70 %)
        for i in idx[:n_eval]:
            part[i] = 1
        for i in idx[n_eval : 2 * n_eval]:
            part[i] = 2
    return part


def sc10_task(data_dir=None, split="official", half_rate_method="stride", seed=0) -> Task:
    """SC10: yes no up down left right on off stop go (the S4 paper's raw-audio task)."""
    return speech_commands_task(data_dir, "sc10", split, half_rate_method, seed)


def sc35_task(data_dir=None, split="official", half_rate_method="stride", seed=0) -> Task:
    """SC35: all 35 words of Speech Commands v0.02."""
    return speech_commands_task(data_dir, "sc35", split, half_rate_method, seed)
