"""The same code on a GPU: every layer's contract on CUDA, CUDA == CPU for every layer (outputs and gradients), every
scan implementation against the CPU loop, and a short training run on CUDA whose checkpoint scores the same on CPU.

Skipped without a CUDA device (the CI machines have none): a session with a GPU runs `scripts/gpu_check.sh`, which
runs this file and the benchmarks with `--device cuda`. `SSMKIT_TEST_DEVICE=cpu` runs the file on CPU instead, so the
tests themselves are checked on machines without a GPU (there, CPU is compared with CPU).
"""

from __future__ import annotations

import copy
import math
import os

import pytest
import torch

from ssmkit.ops.scan import IMPLS, scan, scan_loop
from ssmkit.train.config import load_config
from ssmkit.train.evaluate import evaluate_checkpoint
from ssmkit.train.loop import train

from .layers.contract import TOL, assert_layer_contract, rel_err
from .layers.test_contract import CASES

DEVICE = os.environ.get("SSMKIT_TEST_DEVICE", "cuda")
if DEVICE == "cuda" and not torch.cuda.is_available():
    pytest.skip(
        "no CUDA device here: on a GPU machine run scripts/gpu_check.sh (SSMKIT_TEST_DEVICE=cpu dry-runs this file)",
        allow_module_level=True,
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_layer_contract_on_device(case, dtype):
    """parallel == step by step == step_chunk, on the device, to the contract's tolerances."""
    torch.manual_seed(0)
    assert_layer_contract(case[1](), dtype=dtype, device=DEVICE)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_layer_on_device_matches_cpu(case):
    """The same weights give the same outputs and parameter gradients on the device as on CPU (float64)."""
    torch.manual_seed(0)
    cpu = case[1]().double().eval()
    dev = copy.deepcopy(cpu).to(DEVICE)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 37, cpu.d_model, generator=g, dtype=torch.float64)
    w = torch.randn(2, 37, cpu.d_model, generator=g, dtype=torch.float64)
    y_cpu, y_dev = cpu(x), dev(x.to(DEVICE))
    assert rel_err(y_dev.cpu(), y_cpu) <= TOL[torch.float64]
    (y_cpu * w).sum().backward()
    (y_dev * w.to(DEVICE)).sum().backward()
    for (name, p_cpu), p_dev in zip(cpu.named_parameters(), dev.parameters(), strict=True):
        if p_cpu.grad is None:
            assert p_dev.grad is None, name
            continue
        grad_cpu, grad_dev = p_cpu.grad, p_dev.grad.cpu()
        if grad_cpu.is_complex():
            grad_cpu, grad_dev = torch.view_as_real(grad_cpu), torch.view_as_real(grad_dev)
        assert rel_err(grad_dev, grad_cpu) <= 1e-9, f"gradient of {name}"


@pytest.mark.parametrize("time_varying", [False, True], ids=["a(N)", "a_t(B,L,N)"])
@pytest.mark.parametrize("impl", [i for i in IMPLS if i != "loop"])
def test_scan_on_device_matches_the_cpu_loop(impl, time_varying):
    """h_t = a_t h_{t-1} + b_t: each implementation on the device == the float64 loop on CPU, values and gradients."""
    if impl == "fft" and time_varying:
        pytest.skip("the FFT path is for time-invariant a only (it raises for a_t; tested in tests/ops)")
    g = torch.Generator().manual_seed(3)
    B, L, N = 2, 300, 5
    r = 0.5 + 0.49 * torch.rand((B, L, N) if time_varying else (N,), generator=g, dtype=torch.float64)
    phase = torch.rand(r.shape, generator=g, dtype=torch.float64)
    a = torch.polar(r, phase)
    b = torch.complex(*torch.randn(2, B, L, N, generator=g, dtype=torch.float64))
    h0 = torch.complex(*torch.randn(2, B, N, generator=g, dtype=torch.float64))
    w = torch.complex(*torch.randn(2, B, L, N, generator=g, dtype=torch.float64))
    leaves_cpu = [t.clone().requires_grad_() for t in (a, b, h0)]
    leaves_dev = [t.to(DEVICE).requires_grad_() for t in (a, b, h0)]
    h_cpu = scan_loop(*leaves_cpu)
    h_dev = scan(*leaves_dev, impl=impl)
    assert rel_err(torch.view_as_real(h_dev.cpu()), torch.view_as_real(h_cpu.detach())) <= 1e-10
    (h_cpu * w.conj()).real.sum().backward()
    (h_dev * w.to(DEVICE).conj()).real.sum().backward()
    for name, t_cpu, t_dev in zip(("a", "b", "h0"), leaves_cpu, leaves_dev, strict=True):
        err = rel_err(torch.view_as_real(t_dev.grad.cpu()), torch.view_as_real(t_cpu.grad))
        assert err <= 1e-9, f"gradient of {name}: relative error {err:.2e}"


@pytest.mark.parametrize("layer", ["s4d", "s4", "lssl", "lru"])
def test_training_on_device_then_scoring_on_cpu(tmp_path, layer):
    """`ssmkit train` on the device finishes with finite metrics, and its checkpoint scores the same on CPU."""
    overrides = [f"model.layer={layer}", "model.layer_options={d_state: 8}", f"train.device={DEVICE}"]
    overrides += ["train.progress=false", f"train.runs_dir={tmp_path}", "train.name=r", "train.test_on=last"]
    result = train(load_config("tiny", overrides))
    assert result["status"] == "finished", result
    on_device = result["test"]
    assert all(math.isfinite(v) for v in on_device.values()), on_device
    on_cpu = evaluate_checkpoint(result["run_dir"] / "checkpoints" / "last.pt", "test", overrides=["train.device=cpu"])
    assert on_cpu["acc"] == pytest.approx(on_device["acc"], abs=1e-6)
    assert on_cpu["loss"] == pytest.approx(on_device["loss"], rel=1e-4)
