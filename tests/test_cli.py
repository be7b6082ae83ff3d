import subprocess
import sys

import pytest

from ssmkit.cli import SUBCOMMANDS, build_parser, main, parse


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


def test_overrides_after_an_option_are_kept_in_order():
    parser = build_parser()
    args = parse(parser, ["eval", "run/best.pt", "a.b=1", "--split", "test", "train.threads=2"])
    assert args.checkpoint == "run/best.pt" and args.split == "test"
    assert args.overrides == ["a.b=1", "train.threads=2"]
    assert parse(parser, ["eval", "run", "--split", "val"]).overrides == []


REFUSED = [
    ["eval", "run", "--split", "test", "--nope"],  # an unknown option
    ["eval", "run", "--split", "test", "word"],  # not section.key=value
    ["hippo", "a.b=1"],  # a command without overrides
]


@pytest.mark.parametrize("argv", REFUSED)
def test_unknown_words_are_still_refused(argv, capsys):
    with pytest.raises(SystemExit) as e:
        parse(build_parser(), argv)
    assert e.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err
