"""`ssmkit bench`: every benchmark of ours runs end to end with --quick and writes a well-formed table and a plot;
the fits, crossover, extrapolation and flatness logic on synthetic numbers; one measurement in its own process."""

import math
import re

import pytest

from ssmkit import bench
from ssmkit.bench import common, layers, streaming
from ssmkit.cli import main


def tables(text: str) -> list[list[list[str]]]:
    """Every markdown table in text, as rows of cells (header first, separator dropped)."""
    found, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif current:
            found.append(current)
            current = []
    for t in found:
        assert all(re.fullmatch(r"-+", c) for c in t[1]), f"second line is not a separator: {t[1]}"
        del t[1]
    return found


def check_report(out, name: str) -> list[list[list[str]]]:
    md, png = out / f"{name}.md", out / f"{name}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = md.read_text()
    assert f"ssmkit bench {name} --quick --out {out}" in text  # the command that made it
    assert "torch" in text and "CPUs" in text and "load average" in text  # the machine record
    found = tables(text)
    assert found
    for t in found:
        assert all(len(row) == len(t[0]) for row in t), f"ragged table in {name}.md: {t}"
    assert "error" not in text.lower() and "Traceback" not in text
    return found


def test_quick_kernels(tmp_path):
    # No budget: on a loaded machine the extrapolated time of a quick cell can pass the default 30 s and the cell
    # would be skipped, which is the budget working, not what this test checks.
    no_budget = ["--budget-s", "1e9", "--budget-gib", "1e9"]
    assert main(["bench", "kernels", "--quick", "--out", str(tmp_path), *no_budget]) == 0
    main_table = check_report(tmp_path, "kernels")[-1]
    assert main_table[0][:3] == ["kernel", "path", "L"]
    body = main_table[1:]
    assert {(r[0], r[1], r[2]) for r in body} == {
        (k, p, str(L)) for k in ("dense", "diag", "dplr") for p in ("fast", "reference") for L in (128, 256)
    }
    for row in body:
        float(row[3].replace(",", "")), float(row[5].replace(",", ""))  # fwd ms, fwd+bwd ms measured
        if row[1] == "fast":
            assert row[9].endswith("%)")  # achieved matmul rate vs the measured peak


def test_quick_layers(tmp_path):
    assert main(["bench", "layers", "--quick", "--out", str(tmp_path)]) == 0
    crossover, fits, main_table = check_report(tmp_path, "layers")
    assert [r[0] for r in crossover[1:]] == list(layers.SSMS)
    assert [r[0] for r in fits[1:]] == list(layers.LAYERS)
    assert len(main_table) == 1 + len(layers.LAYERS) * len(layers.QUICK_LENGTHS)
    assert all(float(r[5].replace(",", "")) > 0 for r in main_table[1:])  # tokens/s


def test_quick_streaming(tmp_path):
    assert main(["bench", "streaming", "--quick", "--out", str(tmp_path)]) == 0
    summary, buckets, ratios = check_report(tmp_path, "streaming")
    assert [r[0] for r in summary[1:]] == list(streaming.MODELS)
    assert buckets[0][1:] == ratios[0][1:] == list(streaming.MODELS)
    assert buckets[-1][0] == ratios[-1][0] == "128 .. 256"  # power-of-two buckets up to the last position
    assert all(float(x) > 0 for row in ratios[1:] for x in row[1:])  # step / control, both measured
    assert summary[0][6] == "load-controlled drift" and all(r[6].endswith("%") for r in summary[1:])
    state_mib = {r[0]: float(r[-2]) for r in summary[1:]}
    assert state_mib["transformer"] > 10 * state_mib["s4d"]  # the KV cache grew; the SSM state did not


def test_quick_flops_through_all(tmp_path, monkeypatch):
    monkeypatch.setitem(bench.__dict__, "BENCHMARKS", {"flops": bench.BENCHMARKS["flops"]})
    assert main(["bench", "all", "--quick", "--out", str(tmp_path)]) == 0
    peak_table, kernel_table = check_report(tmp_path, "flops")
    assert [r[0] for r in peak_table[1:]] == ["128", "256"]
    assert all(float(r[1]) > 0 for r in peak_table[1:])
    assert {r[0] for r in kernel_table[1:]} == {"dense", "diag", "dplr"}


def test_bench_help_lists_benchmarks(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ("kernels", "layers", "streaming", "flops", "all"):
        assert name in out
    assert main(["bench"]) == 2  # no benchmark named: says which exist


def test_measurement_in_its_own_process():
    kwargs = {"kernel": "diag", "impl": "fast", "L": 64, "H": 4, "N": 4, "repeats": 1, "backward": True,
              "count_flops": True}  # fmt: skip
    res = common.run_cell("ssmkit.bench.kernels:kernel_cell", kwargs, threads=1, device="cpu")
    assert res["threads"] == 1 and res["bwd_s"] > 0 and res["bwd_flops"] > res["fwd_flops"] > 0
    assert len(res["load"]) == 2
    bad = common.run_cell("ssmkit.bench.kernels:kernel_cell", {**kwargs, "kernel": "nope"}, threads=1, device="cpu")
    assert "kernel must be one of" in bad["error"]


# ---- the logic, on synthetic numbers ---------------------------------------------------------------------------------
def test_fit_power_law_recovers_exponent():
    Ls = [2**k for k in range(8, 17)]
    p, c = common.fit_power_law(Ls, [3e-6 * L**1.5 for L in Ls])
    assert p == pytest.approx(1.5, abs=1e-9) and c == pytest.approx(3e-6, rel=1e-6)
    p, _ = common.fit_power_law(Ls, [0.01 * L * math.log(L) for L in Ls])  # L log L: a little above 1
    assert 1.0 < p < 1.2
    with pytest.raises(ValueError, match="needs >= 2"):
        common.fit_power_law([1024], [1.0])


def test_crossover_length_interpolates_and_classifies():
    Ls = [2**k for k in range(8, 13)]
    ssm, attn = [1000.0 * L for L in Ls], [float(L) ** 2 for L in Ls]  # equal at L = 1000
    c = common.crossover_length(Ls, ssm, attn)
    assert c["kind"] == "crossed" and c["length"] == pytest.approx(1000.0, rel=1e-9)
    assert common.crossover_length(Ls, [1.0] * 5, [2.0] * 5) == {"kind": "always", "length": 256}
    assert common.crossover_length(Ls, [2.0] * 5, [1.0] * 5)["kind"] == "never"
    assert common.crossover_length(Ls, [None] * 5, [1.0] * 5)["kind"] == "no_data"
    # cheaper at 256, dearer at 512, cheaper from 1024 on: the crossing counted is the one after which it stays cheaper
    c = common.crossover_length(Ls, [1.0, 4.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0, 2.0])
    assert c["kind"] == "crossed" and 512 < c["length"] < 1024
    # missing cells (skipped over budget) are left out, not treated as cheaper
    c = common.crossover_length(Ls, [4.0, 4.0, 1.0, None, 1.0], [2.0, 2.0, 2.0, 2.0, None])
    assert c["kind"] == "crossed" and 512 < c["length"] < 1024


def test_layers_analysis_on_synthetic_results():
    Ls = [2**k for k in range(8, 14)]
    results = {}
    for L in Ls:
        results[("s4d", L)] = {"bwd_s": 1e-4 * L, "bwd_peak_mib": 0.01 * L}
        results[("transformer", L)] = {"bwd_s": 1e-7 * L**2, "bwd_peak_mib": 0.02 * L}
    results[("transformer", Ls[-1])] = {"skip": "skipped: over budget"}
    out = layers.analyse(["s4d", "transformer"], Ls, results, fit_from=512, B=8)
    assert out["fits"]["s4d"]["bwd_s"][0] == pytest.approx(1.0)
    assert out["fits"]["transformer"]["bwd_s"][0] == pytest.approx(2.0)
    assert out["fits"]["transformer"]["bwd_s"][1:] == (512, 4096)  # the fit's range: measured L >= fit_from
    assert out["crossover"]["s4d"]["time"]["length"] == pytest.approx(1000.0)
    assert out["crossover"]["s4d"]["memory"]["kind"] == "always"


def test_extrapolate_and_budget():
    assert common.extrapolate([(1024, 1.0)], 4096) == pytest.approx(4.0)  # one point: proportional
    # constant + linear: the affine estimate (the local power law, slope 0.58, is smaller)
    assert common.extrapolate([(1024, 2.0), (2048, 3.0)], 4096) == pytest.approx(5.0)
    # quadratic growth: the power law wins
    assert common.extrapolate([(1024, 1.0), (2048, 4.0)], 8192) == pytest.approx(64.0)
    assert common.extrapolate([(1024, 1.0), (2048, 64.0)], 4096) == pytest.approx(64.0 * 2**2.5)  # noise: capped
    assert common.extrapolate([(1024, 3.0), (2048, 2.0)], 4096) == pytest.approx(2.0)  # never below the last cost
    assert common.budget_reason(4.0, 1.0, 3.0, 30.0).startswith("skipped: ~4.0 GiB")
    assert "s per call" in common.budget_reason(1.0, 100.0, 3.0, 30.0)
    assert common.budget_reason(None, None, 3.0, 30.0) is None
    with pytest.raises(ValueError, match="at least one"):
        common.extrapolate([], 10)


def test_flatness_of_flat_and_growing_latency():
    P = 4096
    flat = streaming.flatness([1e-3] * P)
    assert flat["drift"] == pytest.approx(0.0, abs=1e-9) and flat["median_s"] == pytest.approx(1e-3)
    assert [b[:2] for b in flat["buckets"]][-2:] == [(1024, 2048), (2048, P + 1)]
    growing = streaming.flatness([1e-3 + 1e-6 * t for t in range(1, P + 1)])
    assert growing["slope_s_per_position"] == pytest.approx(1e-6, rel=1e-6)
    first_bucket = 1e-3 + 1e-6 * (1 + P // 32) / 2  # median of positions 1 .. 128
    assert growing["drift"] == pytest.approx(1e-6 * (P - 1) / first_bucket, rel=1e-3)
    superlinear = streaming.flatness([1e-3 * (t / 64) ** 2 for t in range(1, P + 1)])  # the line's intercept is < 0
    assert superlinear["drift"] > 10 and math.isfinite(superlinear["drift"])


def test_load_control_cancels_a_load_drift_and_keeps_growth_with_position():
    P = 4096
    load = [1.0 + t / P for t in range(P)]  # the machine gets twice as slow over the run
    flat_step = [1e-3 * x for x in load]  # an SSM: same work at every position
    control = [1e-3 * x for x in load]  # a step at position 1, timed under the same load
    first = 64 / P  # the first of 32 equal buckets has its median at t = 64: drifts are relative to it
    assert streaming.flatness(flat_step)["drift"] == pytest.approx(1 / (1 + first), rel=1e-2)  # raw: looks like +100%
    assert streaming.flatness(streaming.step_over_control(flat_step, control))["drift"] == pytest.approx(0, abs=1e-9)
    growing = [1e-3 * x * (1 + 3 * t / P) for t, x in enumerate(load)]  # attention: work grows with position
    controlled = streaming.flatness(streaming.step_over_control(growing, control))
    assert controlled["drift"] == pytest.approx(3 / (1 + 3 * first), rel=1e-2)
    with pytest.raises(ValueError, match="control"):
        streaming.step_over_control([1.0, 2.0], [1.0])


def test_markdown_table_rejects_ragged_rows():
    assert common.markdown_table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |"
    with pytest.raises(ValueError, match="2 headers|headers have 2"):
        common.markdown_table(["a", "b"], [[1]])


def test_resolve_device():
    assert common.resolve_device("cpu") == "cpu"
    assert common.resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device must be"):
        common.resolve_device("tpu")
