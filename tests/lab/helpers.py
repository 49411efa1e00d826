"""Helpers shared by the lab tests: run the CLI, read a printed table back."""

from __future__ import annotations

import re
import subprocess
import sys

PNG = b"\x89PNG\r\n\x1a\n"


def relulab(*argv: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``relulab ARGV`` in a fresh interpreter (so worker processes and exit codes are the real ones)."""
    return subprocess.run([sys.executable, "-m", "relulab.cli", *argv], capture_output=True, text=True,
                          timeout=timeout, env=env)


def table_rows(text: str) -> list[list[str]]:
    """The rows of the first table in ``text`` (cells split on two or more spaces), header first."""
    lines = text.splitlines()
    rule = next(i for i, line in enumerate(lines) if re.fullmatch(r"[- ]+", line) and "--" in line)
    rows = [re.split(r"\s{2,}", lines[rule - 1].strip())]
    for line in lines[rule + 1:]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def close(shown: str, value: float | None, decimals: int) -> bool:
    """The printed cell is ``value`` rounded to ``decimals`` places ('-' for None)."""
    if value is None:
        return shown == "-"
    return abs(float(shown) - value) <= 0.5 * 10 ** -decimals + 1e-9
