"""`relulab run NAME --quick`: every named experiment end to end, its files, its table and its verdict."""

from __future__ import annotations

import contextlib
import io
import json
import math

import pytest

from relulab.cli import main
from relulab.lab.experiments import EXPERIMENTS, HOLDS, NOT, PARTLY, ratio_interval, wilson

from .helpers import PNG, close, table_rows

FIGURE = {"convergence": "convergence.png", "vanishing": "vanishing.png", "sparsity": "sparsity.png",
          "dying": "dying.png", "init": "init.png", "born-dead": "born_dead.png"}


def test_every_named_experiment_is_registered():
    assert list(EXPERIMENTS) == ["convergence", "vanishing", "sparsity", "dying", "init", "born-dead"]
    assert set(FIGURE) == set(EXPERIMENTS)


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """Each experiment once, quick, in this process (one job): (exit code, stdout, out dir) by name."""
    root = tmp_path_factory.mktemp("experiments")
    done = {}
    for name in EXPERIMENTS:
        out = root / name
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
            code = main(["run", name, "--quick", "--out", str(out), "--jobs", "1"])
        done[name] = (code, stdout.getvalue(), out)
    return done


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_quick_experiment_writes_its_report(quick_runs, name):
    code, printed, out = quick_runs[name]
    assert code == 0
    for file in ("index.html", "results.json", "results.csv", FIGURE[name]):
        assert (out / file).is_file(), file
    assert (out / FIGURE[name]).read_bytes()[:8] == PNG
    assert not list(out.rglob("*.tmp"))
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"] == name and results["quick"] is True
    verdict = results["verdict"]
    assert verdict["outcome"] in (HOLDS, PARTLY, NOT)
    assert f"Verdict: {verdict['outcome']}." in " ".join(printed.split())
    page = (out / "index.html").read_text()
    assert f"Verdict: {verdict['outcome']}." in page and f'src="{FIGURE[name]}"' in page
    assert "Quick smoke run" in verdict["text"]  # a quick verdict says it is not the real measurement
    assert f"{name} report: {out / 'index.html'}" in printed


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_printed_table_matches_results_json(quick_runs, name):
    _, printed, out = quick_runs[name]
    results = json.loads((out / "results.json").read_text())
    rows = table_rows(printed)[1:]
    stored = results["tables"][0]["rows"]
    assert len(rows) == len(stored) > 0
    # Every numeric cell is its row's number rounded as shown; check the columns each experiment leads with.
    for cells, row in zip(rows, stored):
        if name == "convergence":
            assert cells[0] == row["activation"] and float(cells[1]) == row["lr"]
            mean, std = cells[2].split(" ± ")
            assert close(mean, row["epochs_mean"], 2) and close(std, row["epochs_std"], 2)
            assert cells[3] == f"{row['reached']}/{row['runs']}"
        elif name == "vanishing":
            assert cells[:2] == [row["activation"], row["init"]]
            for cell, key in zip(cells[2:6], ("input_grad", "output_grad", "ratio_init", "ratio_trained")):
                assert float(cell) == pytest.approx(row[key], rel=5e-3)
        elif name == "sparsity":
            assert cells[0] == row["setup"]
            assert close(cells[1], row["init_sparsity"], 1) and close(cells[3], row["trained_sparsity"], 1)
        elif name == "dying":
            assert cells[:2] == [row["activation"], row["sweep"]] and float(cells[2]) == row["value"]
            assert close(cells[3], row["dead_percent"], 1) and close(cells[4], row["test_accuracy"], 1)
        elif name == "init":
            assert cells[0] == row["init"] and float(cells[1]) == row["lr"]
            assert close(cells[3], row["train_error"], 1) and close(cells[4], row["train_loss"], 3)
        elif name == "born-dead":
            assert int(cells[0]) == row["depth"]
            widths = [k for k in row if k.startswith("w") and "_" not in k]
            for cell, key in zip(cells[1:], widths):
                assert close(cell, row[key], 3)


def test_verdict_numbers_are_the_measured_ones(quick_runs):
    results = {name: json.loads((out / "results.json").read_text()) for name, (_, _, out) in quick_runs.items()}
    vanishing = results["vanishing"]
    ratio = vanishing["measured"]["sigmoid_default_ratio_at_init"]
    assert ratio < 1e-2  # even the quick 20-layer sigmoid net loses orders of magnitude
    assert vanishing["verdict"]["outcome"] == HOLDS
    assert f"{ratio:.3g}" in vanishing["verdict"]["text"]
    sparsity = results["sparsity"]["measured"]["mean_sparsity_at_init"]
    assert 35 < sparsity < 65 and f"{sparsity:.1f}%" in results["sparsity"]["verdict"]["text"]
    born = results["born-dead"]
    assert born["measured"]["probability_at_max_depth"]["16"] < born["measured"]["probability_at_max_depth"]["2"]


def test_rerunning_an_experiment_skips_its_finished_runs(quick_runs, capsys):
    _, _, out = quick_runs["dying"]
    before = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    assert main(["run", "dying", "--quick", "--out", str(out), "--jobs", "1", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["counts"] == {"computed": 0, "skipped": len(before)}
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == before


def test_unknown_experiment_exits_2(tmp_path, capsys):
    assert main(["run", "vanish", "--out", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'vanish'; did you mean 'vanishing'?" in err
    assert not (tmp_path / "never").exists()


def test_ratio_interval_is_a_t_interval_on_log_ratios():
    gm, low, high = ratio_interval([2.0, 2.0, 2.0])
    assert gm == pytest.approx(2.0) and low == pytest.approx(2.0) and high == pytest.approx(2.0)
    gm, low, high = ratio_interval([1.0, 4.0])
    # log ratios 0 and log 4: mean log 2, sd log4/sqrt2, t(0.975, 1) = 12.706
    half = 12.7062047 * (math.log(4) / math.sqrt(2)) / math.sqrt(2)
    assert gm == pytest.approx(2.0)
    assert low == pytest.approx(math.exp(math.log(2) - half), rel=1e-6)
    assert high == pytest.approx(math.exp(math.log(2) + half), rel=1e-6)


def test_wilson_interval():
    low, high = wilson(0, 500)
    assert low == pytest.approx(0, abs=1e-12) and high == pytest.approx(0.00762, abs=5e-5)
    low, high = wilson(250, 500)
    assert low == pytest.approx(0.4563, abs=5e-4) and high == pytest.approx(0.5437, abs=5e-4)
