"""Two processes on the gloo backend: a unit active on any rank's data is alive in every rank's report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")


def test_unit_active_only_on_rank_0_is_alive_on_both_ranks(tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    init_file = tmp_path / "init"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([sys.executable, str(worker), str(rank), "2", str(init_file), str(tmp_path / f"{rank}.json")],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for rank in range(2)
    ]
    errors = []
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=180)
            errors.append(err)
    finally:
        for proc in procs:  # never leave a rank behind, also when one failed or hung
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert [proc.returncode for proc in procs] == [0, 0], "\n".join(errors)
    results = [json.loads((tmp_path / f"{rank}.json").read_text()) for rank in range(2)]
    # Locally each rank sees the other rank's unit as dead ...
    assert results[0]["local"] == [1, 2] and results[1]["local"] == [0, 2]
    # ... but the closed window is all-reduced: only unit 2, dead everywhere, is reported dead, on both ranks.
    for result in results:
        layer = result["report"]["layers"][0]
        assert layer["dead_units"] == [2]
        assert result["report"]["samples"] == 5 + 6
        assert result["history"][0]["layers"][0]["dead_units"] == [2]
