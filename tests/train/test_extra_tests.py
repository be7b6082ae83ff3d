"""A task's extra test sets (task.info["extra_tests"], e.g. Speech Commands at half the sampling rate) are scored at
the end of training like the main test, with the model at the set's `rate`, and written to log.csv and results.csv."""

import csv
import os
import shutil

import pytest
import torch

from ssmkit.data.speech import HalfRate
from ssmkit.train import distributed, loop
from ssmkit.train.build import build_task
from ssmkit.train.config import load_config
from ssmkit.train.evaluate import evaluate_checkpoint, load_run
from ssmkit.train.loop import _autocast, _evaluate, train

SSM = ["model.layer=s4d", "model.layer_options={d_state: 4}", "model.d_model=8", "model.n_layers=1"]


def _run(tmp_path, *overrides):
    cfg = load_config("tiny", ["train.progress=false", f"train.runs_dir={tmp_path}", "train.name=r", *overrides])
    return cfg, train(cfg)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _check_scored_like_the_test(tmp_path, cfg, result, name, rate):
    """The extra test's numbers = the best checkpoint evaluated on that set at `rate`, by the same code as the test;
    they are in log.csv and results.csv; and the rate matters (rate 1 scores differently)."""
    _, task, model, _ = load_run(result["run_dir"] / "checkpoints" / "best.pt")
    d = distributed.Dist(0, 1, torch.device("cpu"))
    spec = task.info["extra_tests"][name]
    args = (spec["dataset"], cfg, task.kind, task.info.get("tolerance"), d, None, _autocast("32", d.device))
    assert result["extra_tests"][name] == _evaluate(model, *args, rate=rate)
    assert _evaluate(model, *args, rate=1.0)["loss"] != result["extra_tests"][name]["loss"]
    assert evaluate_checkpoint(result["run_dir"] / "checkpoints" / "best.pt", name) == result["extra_tests"][name]
    with pytest.raises(ValueError, match=f"split must be one of train, val, test, {name} for task"):
        evaluate_checkpoint(result["run_dir"] / "checkpoints" / "best.pt", "test_quarter_rate")
    logged = [r for r in _rows(result["run_dir"] / "log.csv") if r["split"] == name]
    assert len(logged) == 1 and float(logged[0]["acc"]) == result["extra_tests"][name]["acc"]
    table = [r["metric"] for r in _rows(tmp_path / "results.csv")]
    assert table == ["test acc", f"{name} acc"]


def _with_half_rate_test(monkeypatch):
    """The tiny copying task plus a "test_half_rate" extra test: its test set at every other step, rate 2."""

    def build(cfg):
        task = build_task(cfg)
        task.info["extra_tests"] = {"test_half_rate": {"dataset": HalfRate(task.test), "rate": 2.0}}
        return task

    monkeypatch.setattr(loop, "build_task", build)
    monkeypatch.setattr("ssmkit.train.evaluate.build_task", build)


def test_extra_test_is_scored_at_its_rate_and_reported(tmp_path, monkeypatch, capsys):
    _with_half_rate_test(monkeypatch)
    cfg, result = _run(tmp_path, *SSM, "task.name=adding", "task.options={length: 24, n_train: 64, n_val: 16, "
                       "n_test: 16}", "train.batch_size=8", "model.pool=last")  # fmt: skip
    assert "; test_half_rate loss " in capsys.readouterr().out
    _check_scored_like_the_test(tmp_path, cfg, result, "test_half_rate", 2.0)


def test_a_model_without_dt_skips_a_rate_test_with_the_reason(tmp_path, monkeypatch, capsys):
    _with_half_rate_test(monkeypatch)
    _, result = _run(tmp_path, "task.name=adding", "task.options={length: 24, n_train: 64, n_val: 16, n_test: 16}",
                     "train.batch_size=8")  # fmt: skip
    assert result["extra_tests"] == {}
    assert "test_half_rate: not scored: rate=2.0: an LSTM has no step size" in capsys.readouterr().err
    assert [r["metric"] for r in _rows(tmp_path / "results.csv")] == ["test acc"]


def test_espeak_digits_half_rate_test_end_to_end(tmp_path):
    """The offline raw-audio task (16 kHz digits; its test set at 8 kHz with rate 2), trained for a few steps."""
    if shutil.which("espeak-ng") is None:
        msg = "espeak-ng is not installed; install it with: apt-get install -y espeak-ng"
        if os.environ.get("CI"):
            pytest.fail(f"{msg} (CI must provide it)")
        pytest.skip(msg)
    small = "{n_train_per_digit: 1, n_val_per_digit: 1, n_test_per_digit: 1, workers: 1}"
    cfg, result = _run(tmp_path, *SSM, "task.name=espeak_digits", f"task.options={small}",
                       f"task.data_dir={tmp_path / 'data'}", "train.batch_size=5", "train.eval_batch_size=5",
                       "train.steps_per_epoch=2", "train.epochs=1", "model.pool=mean")  # fmt: skip
    assert result["extra_tests"]["test_half_rate"].keys() == result["test"].keys()
    _check_scored_like_the_test(tmp_path, cfg, result, "test_half_rate", 2.0)
