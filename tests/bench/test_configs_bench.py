"""`ssmkit bench configs`: the projection arithmetic, the synthetic stand-ins' shapes, one config measured in-process on
a task whose files are missing, and the subcommand end to end (table, json, plot, --update, --table-only)."""

import json

import pytest
import torch

from ssmkit.bench import configs as bench_configs
from ssmkit.cli import main
from ssmkit.train.config import load_config
from tests.test_configs import STAND_INS


def test_projection_is_epochs_times_train_and_validation_plus_test():
    # 2 epochs x (10 steps x 1 s + 3 val batches x 0.5 s) + 4 test batches x 0.5 s
    assert bench_configs.project_seconds(2, 10, 1.0, 3, 4, 0.5) == pytest.approx(25.0)
    assert bench_configs.n_eval_batches(100, 32, None) == 4  # the last batch is partial
    assert bench_configs.n_eval_batches(100, 32, 2) == 2


@pytest.mark.parametrize("name", sorted(bench_configs.SYNTHETIC))
def test_synthetic_stand_ins_have_the_real_shapes(name):
    """Same kind, classes, channels, vocabulary, pairing and length as the stand-ins test_configs checks against the
    real loaders."""
    options = ["task.options={l_max: 4000}"] if name.startswith("lra_") else []
    cfg = load_config("tiny", [f"task.name={name}", *options])
    task = bench_configs.synthetic_task(cfg)
    kind, d_out, d_in, vocab, info, L = STAND_INS[name]
    assert (task.kind, task.d_output, task.d_input, task.vocab_size) == (kind, d_out, d_in, vocab)
    x, y = task.train[3]
    if vocab is None:
        assert x.shape == (L, d_in) and x.dtype == torch.float32
    else:
        assert x.shape == ((4000, 2) if info.get("pair") else (4000,)) and int(x.min()) >= 1
    assert 0 <= int(y) < d_out and y.shape == ()
    assert torch.equal(task.train[3][0], x)  # item i is the same every time
    assert bool(task.info.get("pair")) == bool(info.get("pair"))


def tiny_sc10(tmp_path):
    path = tmp_path / "tiny_sc10_cpu.yaml"
    path.write_text(
        "task: {name: sc10}\n"
        "model: {layer: s4d, layer_options: {d_state: 4}, d_model: 4, n_layers: 1}\n"
        "train: {epochs: 3, steps_per_epoch: 7, batch_size: 2, eval_batch_size: 2, max_eval_batches: 5, threads: 1}\n"
    )
    return path


def test_a_config_without_its_data_is_timed_on_synthetic_inputs(tmp_path):
    res = bench_configs.measure_config("cpu", str(tiny_sc10(tmp_path)), steps=2, eval_batches=1, data_dir=tmp_path)
    assert res["data"] == "synthetic" and res["L"] == 16000 and res["lengths_seen"] == [16000] * 3
    assert len(res["step_times"]) == 2 and len(res["eval_times"]) == 1
    assert (res["steps_per_epoch"], res["val_batches"], res["test_batches"]) == (7, 5, 5)
    expected = 3 * (7 * res["step_s"] + 5 * res["eval_s"]) + 5 * res["eval_s"]
    assert res["projected_s"] == pytest.approx(expected)
    assert res["measured"]["model"]["d_model"] == 4 and res["measured"]["batch_size"] == 2
    json.dumps(res)  # what the child process prints
    # shrinking the plan afterwards (epochs only) re-projects from the measured times; a changed model does not
    path = tmp_path / "tiny_sc10_cpu.yaml"
    path.write_text(path.read_text().replace("epochs: 3", "epochs: 1"))
    shrunk = bench_configs.replan(res)
    assert shrunk["epochs"] == 1 and shrunk["replanned_from"].startswith("3 x 7")
    assert shrunk["projected_s"] == pytest.approx(7 * res["step_s"] + 10 * res["eval_s"])
    path.write_text(path.read_text().replace("d_model: 4", "d_model: 8"))
    assert bench_configs.replan(res) == res


def test_bench_configs_end_to_end(tmp_path):
    assert main(["bench", "configs", "--quick", "--out", str(tmp_path), "tiny"]) == 0
    record = json.loads((tmp_path / "configs_cpu.json").read_text())
    (row,) = record["rows"]
    assert row["config"] == "tiny" and row["data"] == "real" and row["threads"] == 1 and "error" not in row
    assert (tmp_path / "configs_cpu.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (tmp_path / "configs_cpu.md").read_text()
    assert "ssmkit bench configs --quick --out" in text and "load average" in text and "torch" in text
    table = [line for line in text.splitlines() if line.startswith("| tiny |")]
    assert len(table) == 1 and "| yes |" in table[0] and "| real |" in table[0]
    # --update keeps the other rows; --table-only measures nothing
    sc10 = str(tiny_sc10(tmp_path))
    assert (
        main(["bench", "configs", "--quick", "--update", "--out", str(tmp_path), "--data-dir", str(tmp_path), sc10])
        == 0
    )
    record = json.loads((tmp_path / "configs_cpu.json").read_text())
    assert len(record["rows"]) == 2 and [r["run"] for r in record["rows"]] == [0, 1] and len(record["runs"]) == 2
    (tmp_path / "configs_cpu.md").unlink()
    assert main(["bench", "configs", "--table-only", "--out", str(tmp_path)]) == 0
    assert "synthetic of the same shape" in (tmp_path / "configs_cpu.md").read_text()
