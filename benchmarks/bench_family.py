"""relulab's members against the plain NumPy idioms, PyTorch on the CPU and a copy of the same bytes, in one run.

The engine is relulab.bench; this script is ``relulab bench`` and takes the same options:

    python benchmarks/bench_family.py                  # full run: 64 KiB .. 256 MiB per array
    python benchmarks/bench_family.py --quick --json   # under a minute, JSON rows
"""

from __future__ import annotations

import sys

from relulab.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
