"""`ssmkit hippo`: prints the MSE table and writes the PNG."""

import pytest

from ssmkit.cli import main
from ssmkit.hippo.demo import evaluate, make_signals


def test_ssmkit_hippo_writes_table_and_png(tmp_path, capsys):
    out = tmp_path / "rec.png"
    assert main(["hippo", "--N", "8", "16", "--plot-N", "16", "--length", "200", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for label in ["legs ", "legs*", "legt", "fout", "lagt", "lmu", "glagt", "foud", "N=8", "N=16", "two tones"]:
        assert label in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_error_falls_with_N():
    _, f = make_signals(400)
    setups = [
        ("legs", 1.0),
        ("legt", 0.5),
        ("fout", 0.5),
        ("lagt", 0.05),
        ("lmu", 0.5),
        ("glagt", 0.05),
        ("foud", 0.25),
    ]
    for measure, theta in setups:
        coarse, fine = evaluate(measure, theta, 8, f)[1], evaluate(measure, theta, 32, f)[1]
        assert (fine < coarse).all(), (measure, coarse, fine)


def test_demo_rejects_odd_N():
    with pytest.raises(SystemExit, match="must be even"):
        main(["hippo", "--N", "7", "--no-plot"])
