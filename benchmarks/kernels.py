"""Moved into the package: this script forwards to `ssmkit bench kernels` (src/ssmkit/bench/kernels.py).

    .venv/bin/python benchmarks/kernels.py [options]   ==   .venv/bin/ssmkit bench kernels [options]

Options are those of `ssmkit bench kernels --help`; --out is now a folder (kernels.md and kernels.png go there).
"""

import sys

from ssmkit.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "kernels", *sys.argv[1:]]))
