"""Moved into the package: this script forwards to `ssmkit bench scan` (src/ssmkit/bench/scan.py).

    .venv/bin/python benchmarks/scan.py [options]   ==   .venv/bin/ssmkit bench scan [options]

Options are those of `ssmkit bench scan --help`; --out is now a folder (scan.md and scan.png go there).
"""

import sys

from ssmkit.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "scan", *sys.argv[1:]]))
