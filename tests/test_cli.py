import subprocess
import sys

from ssmkit.cli import SUBCOMMANDS, main


def test_help_lists_every_subcommand(capsys):
    try:
        main(["--help"])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


def test_python_dash_m_works():
    r = subprocess.run([sys.executable, "-m", "ssmkit", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "usage: ssmkit" in r.stdout
