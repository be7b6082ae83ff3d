"""Spoken digits synthesised offline with espeak-ng: a raw-audio task like Speech Commands that runs on any machine.

Speech Commands (data/speech.py) cannot be had everywhere, so this task gives raw-audio training and the S4 paper's
zero-shot half-rate test (Gu et al. 2022, "Raw Speech Classification" in Sec. 4.2) something to run on: the words
"zero" .. "nine", one second at 16 kHz (L = 16000), ten classes.

Each utterance i of a split is drawn from its own generator, seeded by (seed, split, i):
    digit      i mod 10 (balanced classes)
    voice      an English accent (en-us, en, en-gb-scotland, en-gb-x-rp, ...) + an espeak-ng voice variant (m1..m7,
               f1..f5, klatt, croak, ...), i.e. `espeak-ng -v <accent>+<variant>`
    speed      120..220 words per minute (-s);  pitch 20..80 (-p)
    level      peak amplitude 0.3..0.9;  position: a random offset inside the one-second window
    noise      white Gaussian noise at a signal-to-noise ratio drawn from `snr_db` (dB, over the spoken part)
espeak-ng speaks at 22050 Hz; its output is resampled to 16 kHz by band-limited (FFT) resampling, the silence around
the word trimmed, and the result stored as 16-bit PCM. The three splits draw from the same distribution of voices.

Synthesis runs once, `workers` espeak-ng processes at a time, and is cached under `<data dir>/espeak_digits/` (or
`cache_dir`) in one .npz per set of options; later calls only read the cache, and need no espeak-ng. Install it with
`apt-get install -y espeak-ng` (Debian / Ubuntu) or `brew install espeak-ng` (macOS).

Items: x float (16000, 1) in [-1, 1], y long (). `task.info["extra_tests"]["test_half_rate"]` is the test set at
8 kHz (L = 8000) with the layers' `rate = 2`, as for Speech Commands.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import warnings
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ssmkit.data.base import DataMissingError, Task, resolve_data_dir
from ssmkit.data.speech import HALF_RATE_METHODS, SAMPLE_RATE, HalfRate, read_wav, resample_fft

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
VARIANTS = (
    *(f"m{i}" for i in range(1, 8)),
    *(f"f{i}" for i in range(1, 6)),
    *("klatt", "klatt2", "klatt3", "croak", "Alex", "belinda", "david", "john", "linda", "paul", "rob", "steph"),
)
SPEED_WPM = (120, 220)
PITCH = (20, 80)
PEAK = (0.3, 0.9)
SPLITS = ("train", "val", "test")
GENERATOR_VERSION = 1  # bump when the synthesis changes, so old caches are not reused
INSTALL = "apt-get install -y espeak-ng (Debian / Ubuntu) or brew install espeak-ng (macOS)"


def utterance_params(seed: int, split: str, i: int) -> dict:
    """The espeak-ng settings of utterance i of a split (everything but the noise, drawn later from the same rng)."""
    rng = np.random.default_rng((seed, zlib.crc32(split.encode()), i))
    return {
        "digit": i % 10,
        "voice": f"{ACCENTS[rng.integers(len(ACCENTS))]}+{VARIANTS[rng.integers(len(VARIANTS))]}",
        "speed": int(rng.integers(SPEED_WPM[0], SPEED_WPM[1] + 1)),
        "pitch": int(rng.integers(PITCH[0], PITCH[1] + 1)),
        "peak": float(rng.uniform(*PEAK)),
        "rng_state": rng.bit_generator.state,  # continue the same stream for offset and noise
    }


def synthesise(word: str, voice: str, speed: int, pitch: int, workdir: Path) -> np.ndarray:
    """espeak-ng -> (T,) float32 at 16 kHz, the silence around the word trimmed."""
    fd, name = tempfile.mkstemp(suffix=".wav", dir=workdir)
    os.close(fd)
    try:
        cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", name, word]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if done.returncode != 0 or done.stderr.strip():
            raise RuntimeError(f"{' '.join(cmd)} failed (exit {done.returncode}): {done.stderr.strip()}")
        x, rate = read_wav(name)
    finally:
        os.unlink(name)
    if len(x) == 0:
        raise RuntimeError(f"espeak-ng produced no audio for {word!r} with voice {voice}")
    x = resample_fft(x, round(len(x) * SAMPLE_RATE / rate))  # (T',) at 16 kHz
    loud = np.nonzero(np.abs(x) > 0.01 * np.abs(x).max())[0]
    return x[loud[0] : loud[-1] + 1]


def place_and_add_noise(word: np.ndarray, p: dict, snr_db: tuple[float, float], L: int = SAMPLE_RATE) -> np.ndarray:
    """Scale the word to its peak, put it at a random offset in L samples, add white noise: -> (L,) int16."""
    rng = np.random.default_rng()
    rng.bit_generator.state = p["rng_state"]
    word = word[:L] * (p["peak"] / np.abs(word).max())
    offset = int(rng.integers(0, L - len(word) + 1))
    x = np.zeros(L, dtype=np.float64)
    x[offset : offset + len(word)] = word
    snr = rng.uniform(*snr_db)
    sigma = np.sqrt(np.mean(word**2) / 10 ** (snr / 10))
    x += sigma * rng.standard_normal(L)
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)


def generate(sizes: dict[str, int], seed: int, snr_db: tuple[float, float], workers: int) -> dict[str, np.ndarray]:
    """Synthesise every split: {"x_<split>": (N, 16000) int16, "y_<split>": (N,) int64}."""
    if shutil.which("espeak-ng") is None:
        raise DataMissingError(
            "espeak_digits: the espeak-ng program is needed to synthesise the digits the first time (they are cached "
            f"afterwards), and it is not on PATH. Install it: {INSTALL}"
        )
    params = {s: [utterance_params(seed, s, i) for i in range(sizes[s])] for s in SPLITS}
    jobs = [(s, i, p) for s in SPLITS for i, p in enumerate(params[s])]
    with tempfile.TemporaryDirectory(prefix="espeak_digits_") as tmp, ThreadPoolExecutor(max_workers=workers) as pool:

        def speak(p: dict) -> np.ndarray:  # threads only wait on the espeak-ng processes
            return synthesise(DIGITS[p["digit"]], p["voice"], p["speed"], p["pitch"], Path(tmp))

        words = list(pool.map(speak, [p for _, _, p in jobs]))
    out = {}
    for s in SPLITS:
        out[f"x_{s}"] = np.zeros((sizes[s], SAMPLE_RATE), dtype=np.int16)
        out[f"y_{s}"] = np.array([p["digit"] for p in params[s]], dtype=np.int64)
    for (s, i, p), w in zip(jobs, words, strict=True):
        out[f"x_{s}"][i] = place_and_add_noise(w, p, snr_db)
    return out


class PcmClips(Dataset):
    """(N, L) int16 clips and (N,) labels -> items (x (L, 1) float in [-1, 1], y () long)."""

    def __init__(self, pcm: np.ndarray, labels: np.ndarray) -> None:
        self.pcm, self.labels = torch.from_numpy(pcm), torch.from_numpy(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return (self.pcm[i].float() / 32768.0)[:, None], self.labels[i]


def cache_file(folder: Path, options: dict) -> Path:
    """One .npz per set of generation options: <folder>/digits_<hash of the options>.npz."""
    key = hashlib.sha1(json.dumps(options, sort_keys=True).encode()).hexdigest()[:12]
    return folder / f"digits_{key}.npz"


def espeak_version() -> str:
    done = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip()


def espeak_digits_task(
    data_dir: str | os.PathLike | None = None,
    n_train_per_digit: int = 500,
    n_val_per_digit: int = 50,
    n_test_per_digit: int = 100,
    snr_db: tuple[float, float] | list[float] = (10.0, 40.0),
    seed: int = 0,
    half_rate_method: str = "stride",
    cache_dir: str | os.PathLike | None = None,
    workers: int = 4,
) -> Task:
    """Spoken digits "zero".."nine" from espeak-ng, 16 kHz, L = 16000 (see the module docstring)."""
    counts = {"n_train_per_digit": n_train_per_digit, "n_val_per_digit": n_val_per_digit,
              "n_test_per_digit": n_test_per_digit, "workers": workers}  # fmt: skip
    for arg, v in counts.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{arg} must be a positive int, got {v!r}")
    if len(snr_db) != 2 or not snr_db[0] <= snr_db[1]:
        raise ValueError(f"snr_db must be (low, high) in dB with low <= high, got {snr_db!r}")
    if half_rate_method not in HALF_RATE_METHODS:
        raise ValueError(f"half_rate_method must be one of {HALF_RATE_METHODS}, got {half_rate_method!r}")
    snr = (float(snr_db[0]), float(snr_db[1]))
    sizes = {"train": 10 * n_train_per_digit, "val": 10 * n_val_per_digit, "test": 10 * n_test_per_digit}

    folder = Path(cache_dir) if cache_dir is not None else resolve_data_dir(data_dir) / "espeak_digits"
    options = {"version": GENERATOR_VERSION, "sizes": sizes, "snr_db": snr, "seed": seed}
    path = cache_file(folder, options)
    if path.is_file():
        try:
            with np.load(path) as f:
                arrays = {k: f[k] for k in f.files}
            meta = json.loads(str(arrays.pop("meta")))
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:  # BadZipFile: a truncated cache
            raise ValueError(
                f"{path}: the cached digits cannot be read ({type(e).__name__}: {e}); delete the file to regenerate"
            ) from e
    else:
        arrays = generate(sizes, seed, snr, workers)
        meta = {**options, "espeak_version": espeak_version()}
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.npz")
            np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
            os.replace(tmp, path)
        except OSError as e:
            warnings.warn(f"espeak_digits: cannot cache the synthesised digits in {folder} ({e}); kept in memory only")
    for s in SPLITS:
        if arrays[f"x_{s}"].shape != (sizes[s], SAMPLE_RATE) or arrays[f"y_{s}"].shape != (sizes[s],):
            raise ValueError(f"{path}: the cached {s} split has the wrong shape; delete the file to regenerate")
    train, val, test = (PcmClips(arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in SPLITS)
    return Task(
        name="espeak_digits",
        kind="classify",
        train=train,
        val=val,
        test=test,
        d_output=10,
        d_input=1,
        l_max=SAMPLE_RATE,
        info={
            "classes": list(DIGITS),
            "sample_rate": SAMPLE_RATE,
            "cache": str(path),
            "generator": meta,
            "extra_tests": {
                "test_half_rate": {"dataset": HalfRate(test, half_rate_method), "rate": 2.0, "sample_rate": 8000}
            },
        },
    )
