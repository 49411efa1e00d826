"""`relulab compare`: the grid end to end in worker processes, its files, and the table matching results.json."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from relulab.cli import main

from .helpers import PNG, close, relulab, table_rows

FIGURES = ("learning_curves.png", "dead_units.png", "gradient_flow.png", "sparsity.png")


@pytest.fixture(scope="module")
def small_compare(tmp_path_factory):
    """relu and tanh, 2 seeds, 2 epochs, lr auto, two worker processes: the real code path, in seconds."""
    out = tmp_path_factory.mktemp("compare") / "report"
    result = relulab("compare", "--activations", "relu,tanh", "--seeds", "2", "--epochs", "2", "--jobs", "2",
                     "--out", str(out))
    return out, result


def test_compare_prints_the_table_and_writes_the_report(small_compare):
    out, result = small_compare
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for name in ("index.html", "results.json", "results.csv") + FIGURES:
        assert (out / name).is_file(), name
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == PNG
    page = (out / "index.html").read_text()
    assert all(f'src="{name}"' in page for name in FIGURES) and "<table>" in page
    # 2 activations x 3 candidate learning rates (seed 0) + 1 more seed each at the chosen rate.
    assert len(list((out / "runs").glob("*.json"))) == 8
    assert not list(out.rglob("*.tmp"))
    assert f"report: {out / 'index.html'}" in result.stdout
    assert "lr sweep" in result.stderr  # the progress bar


def test_results_json_holds_the_numbers_the_table_shows(small_compare):
    out, result = small_compare
    results = json.loads((out / "results.json").read_text())
    rows = table_rows(result.stdout)
    assert rows[0] == ["activation", "lr", "test acc % (mean ± std)", "epochs to 5% train err", "dead %",
                       "sparsity %", "grad first/last", "diverged"]
    assert [r[0] for r in rows[1:]] == ["relu", "tanh"]
    for printed, row in zip(rows[1:], results["table"]):
        assert printed[0] == row["activation"]
        assert float(printed[1]) == row["lr"] == results["learning_rates"]["chosen"][row["activation"]]
        mean, std = printed[2].split(" ± ")
        assert close(mean, row["test_accuracy"], 1) and close(std, row["test_accuracy_std"], 1)
        epochs, reached = printed[3].split(" ")
        assert close(epochs, row["epochs_to_target"], 1) and reached == f"({row['reached']}/{row['runs']})"
        assert close(printed[4], row["dead_percent"], 1) and close(printed[5], row["sparsity_percent"], 1)
        assert float(printed[6]) == pytest.approx(row["grad_ratio"], rel=5e-3)
        assert printed[7] == f"{row['diverged']}/{row['runs']}"
        # The table's numbers are the seeds' numbers.
        runs = [r for r in results["runs"] if r["config"]["activation"] == row["activation"]]
        assert [r["config"]["seed"] for r in runs] == [0, 1]
        accuracies = [100 * r["final"]["test_accuracy"] for r in runs]
        assert row["test_accuracy"] == pytest.approx(sum(accuracies) / 2)
    # lr auto says what it chose, and from what.
    for act in ("relu", "tanh"):
        chosen = results["learning_rates"]["chosen"][act]
        assert f"{act}: chose {chosen:g}" in result.stdout
        assert set(results["learning_rates"]["tuning"][act]["val_accuracy"]) == {"0.03", "0.1", "0.3"}


def test_results_csv_has_a_row_per_run_and_epoch(small_compare):
    out, _ = small_compare
    lines = (out / "results.csv").read_text().splitlines()
    assert lines[0].startswith("group,activation,seed,lr,status,epoch,train_loss,train_error")
    assert len(lines) == 1 + 4 * 2  # 4 runs (2 activations x 2 seeds) x 2 epochs


def test_json_flag_prints_results_json(small_compare):
    out, _ = small_compare
    again = relulab("compare", "--activations", "relu,tanh", "--seeds", "2", "--epochs", "2", "--jobs", "2",
                    "--out", str(out), "--json")
    assert again.returncode == 0, again.stderr
    printed = json.loads(again.stdout)
    assert printed["table"] == json.loads((out / "results.json").read_text())["table"]
    assert printed["counts"] == {"computed": 0, "skipped": 8}  # everything was finished: nothing recomputed


def test_a_fixed_learning_rate_in_process(tmp_path, capsys):
    out = tmp_path / "fixed"
    code = main(["compare", "--data", "moons", "--activations", "relu,elu", "--seeds", "1", "--epochs", "2",
                 "--lr", "0.1", "--jobs", "1", "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr()
    assert printed.err == ""  # --quiet: no progress bar
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["model"] == "mlp"  # the default for 2-D points
    assert results["learning_rates"]["mode"] == "fixed" and results["learning_rates"]["tuning"] == {}
    assert [r["lr"] for r in results["table"]] == [0.1, 0.1]
    assert "lr auto" not in printed.out


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs must be an integer >= 1 and <= 10000; got 0"),
    (["--epochs", "two"], "--epochs must be an integer >= 1 and <= 10000; got 'two'"),
    (["--lr", "0"], "--lr must be 'auto' or a number in (0, 10]; got 0.0"),
    (["--lr", "-0.1"], "--lr must be 'auto' or a number in (0, 10]; got -0.1"),
    (["--seeds", "0"], "--seeds must be an integer >= 1 and <= 1000; got 0"),
    (["--activations", "relu,swishy"], "unknown activation 'swishy'"),
    (["--data", "imagenet"], "--data must be one of digits, mnist1d"),
    (["--init", "lecun"], "--init must be one of he, default, xavier; got 'lecun'"),
    (["--data", "xor", "--model", "cnn"], "--model cnn needs image or sequence data"),
    (["--jobs", "0"], "--jobs must be an integer >= 1 and <= 512; got 0"),
])
def test_bad_config_exits_2_with_one_line_before_writing_anything(tmp_path, argv, message):
    out = tmp_path / "never"
    result = relulab("compare", *argv, "--out", str(out))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("relulab compare: error: ") and message in result.stderr
    assert not out.exists()


def test_torchvision_data_without_torchvision_is_a_usage_error(tmp_path):
    try:
        import torchvision  # noqa: F401
    except ImportError:
        result = relulab("compare", "--data", "cifar10", "--out", str(tmp_path / "never"))
        assert result.returncode == 2 and "needs torchvision" in result.stderr
        assert not (tmp_path / "never").exists()
    else:
        pytest.skip("torchvision is installed here")


def test_import_relulab_and_the_lab_do_not_import_torch():
    code = "import sys, relulab, relulab.lab, relulab.cli; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_help_for_compare_and_run():
    for command in ("compare", "run"):
        result = relulab(command, "--help")
        assert result.returncode == 0 and f"usage: relulab {command}" in result.stdout


def test_the_library_entry_points_name_a_bad_argument():
    from relulab.lab import compare, validate_compare
    from relulab.lab.validate import ConfigError

    with pytest.raises(ConfigError, match=r"^--activations must be a comma-separated str or a sequence of member "
                                          r"names; got 3 \(type int\)$"):
        validate_compare(activations=3)
    with pytest.raises(TypeError, match=r"^compare: settings must be a CompareSettings \(from "
                                        r"relulab.lab.validate_compare\); got 3 \(type int\)$"):
        compare(3)
