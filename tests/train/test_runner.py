"""The runner end to end on the tiny config: CLI outputs, exact resume, NaN stop, Ctrl-C, eval and stream."""

import csv
import math
import os
import signal

import pytest
import torch

from ssmkit.cli import main
from ssmkit.train import loop
from ssmkit.train.checkpoint import load_checkpoint
from ssmkit.train.config import apply_overrides, from_dict, load_config
from ssmkit.train.loop import TrainingDiverged, train

# dropout on, so exact resume also needs the RNG state; BatchNorm, so it needs the running statistics
TINY = ["model.dropout=0.1", "model.norm=batch", "train.progress=false"]


def _cfg(tmp_path, name, *extra):
    return load_config("tiny", [*TINY, f"train.runs_dir={tmp_path}", f"train.name={name}", *extra])


def _rows(run_dir):
    with open(run_dir / "log.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k != "time_s"} for r in csv.DictReader(f)]


def _resume(run_dir, *overrides):
    saved = load_checkpoint(run_dir)["config"]
    return train(from_dict(apply_overrides(saved, ["train.stop_at_step=null", *overrides])), resume=run_dir)


def test_cli_train_writes_config_checkpoint_log_curves_and_results_row(tmp_path, capsys):
    assert main(["train", "tiny", *TINY, f"train.runs_dir={tmp_path}", "train.name=e2e"]) == 0
    out = capsys.readouterr().out
    assert "resolved config" in out and "layer: lstm" in out and "done in" in out
    run_dir = tmp_path / "tiny" / "e2e"
    assert load_config(str(run_dir / "config.yaml")).model.dropout == 0.1
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")  # weights_only
    assert ckpt["step"] == 10 and ckpt["config"]["experiment"] == "tiny"
    splits = [r["split"] for r in _rows(run_dir)]
    assert splits.count("train") == 10 and splits.count("val") == 2 and splits[-1] == "test"
    assert (run_dir / "curves.png").stat().st_size > 1000 and any((run_dir / "tensorboard").iterdir())
    with open(tmp_path / "results.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["experiment"] == "tiny" and row["metric"] == "test acc" and int(row["params"]) > 0
    assert row["device"].startswith("cpu") and float(row["wall_time_s"]) > 0
    # eval and stream read the same run
    assert main(["eval", str(run_dir)]) == 0 and "acc" in capsys.readouterr().out
    assert main(["stream", str(run_dir), "--float64"]) == 0
    out = capsys.readouterr().out
    err = float(out.split("step by step vs parallel: max |diff| ")[1].split()[0])
    assert err < 1e-10 and "per-token latency" in out


@pytest.mark.parametrize("stop_at", [3, 5], ids=["mid_epoch", "epoch_end"])
def test_resume_logs_exactly_the_losses_of_an_uninterrupted_run(tmp_path, stop_at):
    full = train(_cfg(tmp_path, "full"))
    part = train(_cfg(tmp_path, "part", f"train.stop_at_step={stop_at}"))
    assert part["status"] == "stopped" and load_checkpoint(part["run_dir"])["step"] == stop_at
    resumed = _resume(part["run_dir"])
    assert resumed["status"] == "finished"
    assert _rows(resumed["run_dir"]) == _rows(full["run_dir"])  # every logged loss, bit for bit (repr of the floats)
    a, b = load_checkpoint(full["run_dir"])["model"], load_checkpoint(resumed["run_dir"])["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real = loop._batch_loss
    calls = []

    def nan_at_step_4(*args):
        loss, stats = real(*args)
        if torch.is_grad_enabled():
            calls.append(1)
            if len(calls) == 4:
                loss = loss * float("nan")
        return loss, stats

    monkeypatch.setattr(loop, "_batch_loss", nan_at_step_4)
    with pytest.raises(TrainingDiverged, match=r"loss is nan at step 4 .*last good checkpoint .*last.pt \(step 2\)"):
        train(_cfg(tmp_path, "nan", "train.checkpoint_every=2"))
    ckpt = load_checkpoint(tmp_path / "tiny" / "nan")
    assert ckpt["step"] == 2 and all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_activations_that_overflow_inside_the_model_stop_as_a_divergence(tmp_path, monkeypatch):
    """Finite data, yet a layer deeper in the model meets inf (e.g. a linear RNN's state exploding): that is the run
    diverging, reported as such at its step, not as a bad input."""
    from ssmkit.models import lstm

    real, calls = lstm.LSTM.forward, []

    def overflow_from_step_4(self, x, rate=1.0):
        y = real(self, x, rate)
        if self.training:
            calls.append(1)
            if len(calls) >= 7:  # 2 blocks, one call each per step: the first block's output at step 4
                y = y * float("inf")
        return y

    monkeypatch.setattr(lstm.LSTM, "forward", overflow_from_step_4)
    with pytest.raises(TrainingDiverged, match=r"activations became NaN or inf inside the model at step 4 .*x contains "
                       r"NaN or inf.*last good checkpoint .*\(step 2\)"):  # fmt: skip
        train(_cfg(tmp_path, "overflow", "train.checkpoint_every=2"))


def test_nan_via_cli_returns_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(loop, "_batch_loss", lambda *a: (torch.tensor(float("inf"), requires_grad=True), None))
    assert main(["train", "tiny", "train.progress=false", f"train.runs_dir={tmp_path}"]) == 1
    assert "loss is inf at step 1" in capsys.readouterr().err


def test_ctrl_c_saves_and_stops_cleanly(tmp_path, monkeypatch):
    real = loop._batch_loss
    calls = []

    def interrupt_at_step_3(*args):
        if torch.is_grad_enabled():
            calls.append(1)
            if len(calls) == 3:
                os.kill(os.getpid(), signal.SIGINT)
        return real(*args)

    monkeypatch.setattr(loop, "_batch_loss", interrupt_at_step_3)
    before = signal.getsignal(signal.SIGINT)
    result = train(_cfg(tmp_path, "int"))
    assert result["status"] == "stopped" and result["step"] == 3
    assert load_checkpoint(result["run_dir"])["step"] == 3
    assert signal.getsignal(signal.SIGINT) is before  # the previous handler is back


def test_existing_run_folder_is_not_overwritten(tmp_path):
    train(_cfg(tmp_path, "same"))
    with pytest.raises(ValueError, match="--resume"):
        train(_cfg(tmp_path, "same"))


def _lr_per_step(opt, sched, n):
    """The lr of the first n steps (step k's lr, then the optimiser and the schedule step)."""
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_warmup_then_cosine_schedule(tmp_path):
    from ssmkit.train.build import build_scheduler

    cfg = load_config("tiny", ["schedule.warmup_steps=4", "optim.lr=1.0"])
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    lrs = _lr_per_step(opt, build_scheduler(cfg, opt, 14), 14)
    assert lrs[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0]) and lrs[-1] < 0.05
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:], strict=False))


def test_cosine_length_in_optimiser_steps_independent_of_the_run():
    """schedule.total_steps (the S4 code's num_training_steps): the cosine decays over 20 steps though the run has 10,
    so the run ends at lr(10) of that cosine, not at the minimum; a total shorter than the run is an error."""
    from ssmkit.train.build import build_scheduler

    cfg = load_config("tiny", ["schedule.warmup_steps=4", "schedule.total_steps=20", "optim.lr=1.0"])
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    lrs = _lr_per_step(opt, build_scheduler(cfg, opt, 10), 11)
    assert lrs[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    cosine = [0.5 * (1 + math.cos(math.pi * (k - 4) / 16)) for k in range(4, 11)]  # T_max = 20 - 4 warmup steps
    assert lrs[4:] == pytest.approx(cosine)
    with pytest.raises(ValueError, match="schedule.total_steps=20 is shorter than the run"):
        build_scheduler(cfg, opt, 21)


def test_regress_kind_with_tolerance_trains_and_reports_acc_and_mae(tmp_path):
    cfg = _cfg(tmp_path, "add", "task.name=adding", "task.options={length: 20, n_train: 160, n_val: 32, n_test: 32}")
    result = train(cfg)
    assert set(result["test"]) == {"loss", "acc", "mae"} and result["test"]["loss"] > 0


def test_missing_data_names_the_files(tmp_path, capsys):
    args = ["train", "tiny", "task.name=smnist", "task.options={}", f"task.data_dir={tmp_path / 'nowhere'}"]
    assert main([*args, f"train.runs_dir={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert "ssmkit train: error:" in err and "nowhere" in err and "expected" in err and "where to get it" in err
    assert str(tmp_path / "nowhere" / "mnist" / "mnist.npz") in err


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_runs_under_autocast(tmp_path, precision):
    cfg = _cfg(
        tmp_path, precision, "model.layer=s4d", "model.layer_options={d_state: 8}", f"train.precision={precision}"
    )
    result = train(cfg)
    assert result["status"] == "finished" and 0 < result["test"]["loss"] < 10
    with open(result["run_dir"] / "log.csv", newline="") as f:
        fp32 = train(_cfg(tmp_path, f"{precision}_ref", "model.layer=s4d", "model.layer_options={d_state: 8}"))
        first = next(csv.DictReader(f))
    assert float(first["loss"]) != float(_rows(fp32["run_dir"])[0]["loss"])  # autocast really changed the arithmetic


def test_test_split_is_scored_with_the_best_validation_checkpoint_unless_told_last(tmp_path):
    from ssmkit.train.evaluate import evaluate_checkpoint

    best = train(_cfg(tmp_path, "best", "train.epochs=3"))
    last = train(_cfg(tmp_path, "last", "train.epochs=3", "train.test_on=last"))
    ckpts = best["run_dir"] / "checkpoints"
    assert load_checkpoint(ckpts / "best.pt")["step"] < best["step"]  # validation peaked before the end: a real choice
    assert best["test"] == evaluate_checkpoint(ckpts / "best.pt", split="test")
    assert last["test"] == evaluate_checkpoint(last["run_dir"] / "checkpoints" / "last.pt", split="test")
    with pytest.raises(ValueError, match="test_on must be best or last"):
        train(_cfg(tmp_path, "bad", "train.test_on=final"))


class _NanGradient(torch.autograd.Function):
    """Identity forward, NaN backward: a finite loss whose gradient is not."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return torch.full_like(g, float("nan"))


def test_a_non_finite_gradient_never_overwrites_the_last_good_checkpoint(tmp_path, monkeypatch):
    real = loop._batch_loss
    calls = []

    def nan_gradient_at_step_4(*args):
        loss, stats = real(*args)
        if torch.is_grad_enabled():
            calls.append(1)
            if len(calls) == 4:
                loss = _NanGradient.apply(loss)
        return loss, stats

    monkeypatch.setattr(loop, "_batch_loss", nan_gradient_at_step_4)
    with pytest.raises(TrainingDiverged, match=r"became NaN or inf at step 4 .*last good checkpoint .*\(step 2\)"):
        train(_cfg(tmp_path, "nangrad", "train.checkpoint_every=2"))
    ckpt = load_checkpoint(tmp_path / "tiny" / "nangrad")
    assert ckpt["step"] == 2 and all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_plateau_schedule_follows_the_validation_loss(tmp_path):
    """schedule.kind=plateau: the logged lr is what torch's ReduceLROnPlateau gives for the logged val losses."""
    run = train(_cfg(tmp_path, "plateau", "schedule.kind=plateau", "schedule.plateau_patience=0",
                     "schedule.plateau_factor=0.5", "train.epochs=4", "optim.lr=0.05"))  # fmt: skip
    rows = _rows(run["run_dir"])
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.05)
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    lrs = []
    for r in rows:
        if r["split"] == "train":
            assert float(r["lr"]) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
            lrs.append(float(r["lr"]))
        elif r["split"] == "val":
            reference.step(float(r["loss"]))
    assert len(lrs) == 20 and min(lrs) < max(lrs)  # it did reduce at least once


def test_gradients_are_clipped_before_each_step(tmp_path, monkeypatch):
    real = torch.nn.utils.clip_grad_norm_
    seen = []

    def spy(params, max_norm, *args, **kwargs):
        params = list(params)
        before = real(params, max_norm, *args, **kwargs)
        after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
        seen.append((float(before), float(after), max_norm))
        return before

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    train(_cfg(tmp_path, "clip", "train.grad_clip=0.01"))
    assert len(seen) == 10 and all(m == 0.01 for _, _, m in seen)
    assert all(before > 0.01 for before, _, _ in seen)  # clipping had work to do ...
    assert all(after <= 0.01 * (1 + 1e-4) for _, after, _ in seen)  # ... and did it
    seen.clear()
    train(_cfg(tmp_path, "noclip"))
    assert seen == []  # grad_clip=0: no clipping


def test_adamw_over_param_groups_gives_ssm_parameters_their_own_lr_and_no_decay():
    from ssmkit.optim import get_hint
    from ssmkit.train.build import build_model, build_optimizer, build_task

    cfg = load_config("tiny", ["model.layer=s4d", "model.layer_options={d_state: 8, lr: 0.001}", "optim.lr=0.01"])
    model = build_model(cfg, build_task(cfg))
    opt = build_optimizer(cfg, model)
    assert isinstance(opt, torch.optim.AdamW)
    group_of = {id(p): (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    assert len(group_of) == sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    for name, p in model.named_parameters():
        if get_hint(p):  # the SSM's own parameters (log_dt, A, B of S4D)
            assert group_of[id(p)] == (0.001, 0.0), name
        elif p.dim() >= 2:
            assert group_of[id(p)] == (0.01, 0.01), name
        else:  # biases and norm weights: no decay
            assert group_of[id(p)] == (0.01, 0.0), name
    assert any("log_dt" in n for n, p in model.named_parameters() if get_hint(p))


def test_layer_lr_per_group_from_the_config_puts_dt_at_the_global_lr():
    """layer_options.lr {dt: null, A, B} as the S4 repo's LRA configs: log Δ at optim.lr, A and B at their lr, all
    three without weight decay (the published configs s4_listops, s4_image, ... use it)."""
    from ssmkit.train.build import build_model, build_optimizer, build_task

    opts = "{d_state: 8, lr: {dt: null, A: 0.001, B: 0.002}}"
    cfg = load_config("tiny", ["model.layer=s4", f"model.layer_options={opts}", "optim.lr=0.01"])
    model = build_model(cfg, build_task(cfg))
    group_of = {id(p): (g["lr"], g["weight_decay"]) for g in build_optimizer(cfg, model).param_groups
                for p in g["params"]}  # fmt: skip
    seen = {}
    for name, p in model.named_parameters():
        seen.setdefault(name.rsplit(".", 1)[-1], set()).add(group_of[id(p)])
    assert seen["log_dt"] == {(0.01, 0.0)}
    assert seen["log_A_real"] == seen["A_imag"] == seen["P"] == {(0.001, 0.0)}
    assert seen["B"] == {(0.002, 0.0)}


@pytest.mark.parametrize(
    "task,options,metric",
    [
        ("ucr", "{dataset: JapaneseVowels, val_fraction: 0.2}", "acc"),  # sequence classification, unequal lengths
        (
            "function_approx",
            "{length: 64, freq: 50.0, target: window, window: 16, n_points: 4, n_train: 160}",
            "mae",
        ),  # per step
    ],
    ids=["classify", "regress_steps"],
)
def test_every_head_kind_trains_evaluates_and_streams(tmp_path, shared_data, capsys, task, options, metric):
    args = [*TINY, "model.norm=layer", f"task.name={task}", f"task.options={options}",
            f"task.data_dir={shared_data}", f"train.runs_dir={tmp_path}", "train.name=h"]  # fmt: skip
    assert main(["train", "tiny", *args]) == 0
    run_dir = tmp_path / "tiny" / "h"
    assert metric in main_metrics(run_dir)
    capsys.readouterr()
    assert main(["stream", str(run_dir), "--float64"]) == 0
    err = float(capsys.readouterr().out.split("step by step vs parallel: max |diff| ")[1].split()[0])
    assert err < 1e-10
    if task == "ucr":  # eval / stream --data-dir replaces the run's data folder
        for command in ("eval", "stream"):
            assert main([command, str(run_dir), "--data-dir", str(tmp_path / "moved")]) == 1
            assert str(tmp_path / "moved" / "ucr" / "JapaneseVowels") in capsys.readouterr().err


def main_metrics(run_dir):
    (test,) = [r for r in _rows(run_dir) if r["split"] == "test"]
    return {k for k, v in test.items() if v and k not in ("step", "epoch", "split")}


def test_unknown_experiment_in_the_cli_lists_the_valid_ones(tmp_path, capsys):
    assert main(["train", "no_such_experiment", f"train.runs_dir={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert "unknown experiment 'no_such_experiment'" in err and "tiny" in err and "copying" in err
    assert main(["train", "tiny", "model.widht=3", f"train.runs_dir={tmp_path}"]) == 1
    assert "valid keys: layer, layer_options, d_model" in capsys.readouterr().err


def test_progress_bar_is_shown(tmp_path, capsys):
    train(_cfg(tmp_path, "bar", "train.progress=true"))
    err = capsys.readouterr().err
    assert "tiny: 100%" in err and "10/10" in err


def test_ctrl_c_in_the_cli_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    """A real SIGINT to a real `ssmkit train` process: exit status 0, a loadable checkpoint, a resume hint."""
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "ssmkit", "train", "tiny", "train.progress=false", "train.epochs=1000",
           f"train.runs_dir={tmp_path}", "train.name=sigint"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "tiny" / "sigint" / "log.csv"
    deadline = time.time() + 300  # a loaded machine can take a minute to import torch and start
    while (not log.exists() or log.read_text().count("\n") < 4) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "interrupt: finishing this step" in err and "Traceback" not in err
    assert "stopped at step" in out and "--resume" in out
    step = load_checkpoint(tmp_path / "tiny" / "sigint")["step"]
    assert 1 <= step < 5000 and int(_rows(tmp_path / "tiny" / "sigint")[-1]["step"]) == step


def test_data_dir_flag_then_environment_variable_then_dot_data(tmp_path, capsys, monkeypatch):
    args = ["train", "tiny", "task.name=smnist", "task.options={}", f"train.runs_dir={tmp_path}"]
    monkeypatch.setenv("SSMKIT_DATA_DIR", str(tmp_path / "env"))
    assert main([*args, "--data-dir", str(tmp_path / "flag")]) == 1
    err = capsys.readouterr().err
    assert f"data not found under {tmp_path / 'flag'}" in err and "SSMKIT_DATA_DIR" in err
    assert main(args) == 1
    assert f"data not found under {tmp_path / 'env'}" in capsys.readouterr().err
    monkeypatch.delenv("SSMKIT_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    assert main(args) == 1
    assert "data not found under data\n" in capsys.readouterr().err


def test_train_seed_fixes_initialisation_data_order_and_dropout(tmp_path):
    a, b = train(_cfg(tmp_path, "a")), train(_cfg(tmp_path, "b"))
    c = train(_cfg(tmp_path, "c", "train.seed=1"))
    assert _rows(a["run_dir"]) == _rows(b["run_dir"])
    assert _rows(a["run_dir"])[0]["loss"] != _rows(c["run_dir"])[0]["loss"]
