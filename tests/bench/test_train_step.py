"""The training-step benchmark: the reference example's model as documented, and a quick end-to-end run."""

import json
import shutil

import pytest
import torch

from ssmkit.bench import train_step
from ssmkit.cli import main


def test_reference_model_has_the_example_parameter_counts():
    # the S4 example's sMNIST model: 201K parameters at d_model 128, 665K at 256
    for d_model, params in ((128, 201_226), (256, 664_586)):
        model, _ = train_step.build("reference", d_model)
        assert sum(p.numel() for p in model.parameters()) == params


def test_reference_kernel_is_the_s4d_kernel():
    """The baseline's materialised kernel equals ssmkit's S4D-Lin kernel for the same Λ, C, Δ (B = 1)."""
    from ssmkit.ssm import diag_kernel

    torch.manual_seed(0)
    k = train_step.ReferenceS4DKernel(4, 8).double()
    A = torch.complex(-torch.exp(k.log_A_real), k.A_imag)
    C = torch.view_as_complex(k.C)
    want = diag_kernel(A, torch.ones_like(A), C, torch.exp(k.log_dt), 50)
    torch.testing.assert_close(k(50), want)


def test_models_train_and_the_floor_variant_drops_the_convolution():
    u, y = torch.randn(2, 16, 1), torch.tensor([1, 3])
    for which in train_step.ALL_MODELS:
        model, opt = train_step.build(which, 8)
        loss = torch.nn.functional.cross_entropy(model(u), y)
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)
    floor, _ = train_step.build("ssmkit-noconv", 8)
    assert all(isinstance(b.layer, train_step.SkipOnly) for b in floor.blocks)


def test_quick_run_writes_table_and_plot(tmp_path):
    assert main(["bench", "train_step", "--quick", "--out", str(tmp_path)]) == 0
    table = (tmp_path / "train_step.md").read_text()
    assert "| 32 | 1 |" in table and "x** |" in table  # one row with its ratio
    assert "page faults/step ref / ssmkit |" in table
    assert (tmp_path / "train_step.png").stat().st_size > 0


def test_variant_names_keep_the_model_and_change_only_the_step():
    assert train_step.split_variant("ssmkit-bf16") == ("ssmkit", "bf16")
    assert train_step.split_variant("reference-compile") == ("reference", "compile")
    assert train_step.split_variant("ssmkit-noconv") == ("ssmkit-noconv", None)
    model, _ = train_step.build("reference-bf16", 8)
    assert isinstance(model, train_step.ReferenceS4Model)


def test_bf16_variant_runs_a_step_and_reports_against_the_float32_reference(tmp_path):
    argv = ["bench", "train_step", "--quick", "--out", str(tmp_path), "--models", "reference", "ssmkit", "ssmkit-bf16"]
    assert main(argv) == 0
    table = (tmp_path / "train_step.md").read_text()
    assert "| 32 | 1 | ssmkit-bf16 |" in table
    assert "--models reference ssmkit ssmkit-bf16" in table  # the command that reproduces it


def test_compile_variant_times_a_step():
    if shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("torch.compile on CPU needs a C++ compiler")
    r = train_step.time_steps("ssmkit-compile", 8, batch=2, length=16, warmup=1, repeats=1)
    assert r["model"] == "ssmkit-compile" and r["median_s"] > 0


def test_floor_rows_report_the_glu_matmuls_and_the_ceiling_they_set(tmp_path):
    argv = ["bench", "train_step", "--quick", "--out", str(tmp_path), "--models", "reference", "ssmkit-noconv"]
    assert main(argv) == 0
    lines = (tmp_path / "train_step.md").read_text().splitlines()
    header = [line for line in lines if "GLU matmuls s/step" in line][0]
    assert header.endswith("| reference / GLU matmuls (CPU): the ceiling |")
    start = lines.index(header)
    row = lines[start + 2]  # below the alignment row
    assert row.startswith("| 32 | 1 |") and row.count("|") == header.count("|")
    floor = [r for r in json.loads((tmp_path / "train_step.json").read_text())["rows"] if r["model"] == "ssmkit-noconv"]
    assert floor[0]["glu_matmul_s"] > 0 and floor[0]["glu_matmul_cpu_s"] >= 0


def test_glu_matmul_seconds_times_the_twelve_products():
    wall, cpu = train_step.glu_matmul_seconds(8, batch=2, length=16, repeats=1)
    assert wall > 0 and cpu >= 0
