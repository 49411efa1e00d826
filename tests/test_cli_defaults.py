"""The CLI's option defaults and choices are the library's: read here from the library's own signatures,
settings and registries, independently of how the CLI reads them."""

from __future__ import annotations

import inspect

import pytest

from relulab import bench
from relulab.cli import build_parser, plot_curves
from relulab.explore.server import serve
from relulab.lab import data, user, validate
from relulab.lab.compare import validate_compare
from relulab.lab.doctor import validate_doctor
from relulab.lab.experiments import EXPERIMENTS


def signature_defaults(function):
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def parsed(*argv):
    return vars(build_parser().parse_args(list(argv)))


def action(command, dest):
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return next(a for a in sub.choices[command]._actions if a.dest == dest)


def test_compare_defaults_are_validate_compares():
    lib, cli = signature_defaults(validate_compare), parsed("compare")
    # the CLI hands options over as text, as a user would type them
    assert cli["data"] == lib["data"] and cli["model"] == lib["model"] and cli["init"] == lib["init"]
    assert cli["activations"].split(",") == list(lib["activations"])
    for option, name in (("seeds", "seeds"), ("epochs", "epochs"), ("width", "width"), ("batch_size", "batch_size")):
        assert int(cli[option]) == lib[name], option
    assert cli["lr"] == lib["lr"] and float(cli["target"]) == lib["target_error"]
    assert cli["optimizer"] == lib["optimizer"] and cli["out"] == str(lib["out"])
    assert cli["depth"] == lib["depth"] and cli["jobs"] == lib["jobs"]
    assert cli["target_column"] == lib["target"] and cli["task"] == lib["task"]


def test_doctor_defaults_are_validate_doctors():
    lib, cli = signature_defaults(validate_doctor), parsed("doctor", "--model", "m.py:f", "--data", "d.npz")
    assert int(cli["epochs"]) == lib["epochs"] and int(cli["seeds"]) == lib["seeds"]
    assert int(cli["batch_size"]) == lib["batch_size"] and float(cli["lr"]) == lib["lr"]
    assert cli["optimizer"] == lib["optimizer"] and cli["activation"] == lib["activation"]
    assert cli["out"] == str(lib["out"]) and cli["jobs"] == lib["jobs"]
    assert cli["target"] == lib["target"] and cli["task"] == lib["task"]


def test_plot_bench_and_explore_defaults():
    assert tuple(parsed("plot", "relu", "-o", "x.png")["range"]) == signature_defaults(plot_curves)["x_range"]
    assert parsed("bench")["dtype"] == bench.BenchConfig().dtype
    served, cli = signature_defaults(serve), parsed("explore")
    assert cli["host"] == served["host"] and cli["port"] == served["port"]


def test_choices_and_help_come_from_the_registries():
    assert tuple(action("bench", "dtype").choices) == bench.DTYPES
    assert tuple(action("compare", "task").choices) == user.TASKS
    compare_data = action("compare", "data").help
    assert all(name in compare_data for name in data.DATASETS)
    run_help = action("run", "name").help
    assert all(name in run_help for name in EXPERIMENTS)
    assert all(name in action("compare", "init").help for name in validate.INITS)


@pytest.mark.parametrize("command", ["compare", "run", "doctor", "bench", "explore"])
def test_help_renders(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0 and f"usage: relulab {command}" in capsys.readouterr().out


def test_the_playground_offers_the_labs_choices():
    from relulab.explore import playground

    assert playground.INITS == validate.INITS and playground.OPTIMIZERS == validate.OPTIMIZERS
    assert set(playground.TOYS) == {name for name, spec in data.REGISTRY.items() if spec.kind == "points"}


def test_a_data_set_added_to_the_registry_reaches_validation_and_the_help(monkeypatch, tmp_path):
    spec = data.DataSpec("tiny", "points", lambda: data.load("xor"), summary="a test entry")
    monkeypatch.setitem(data.REGISTRY, "tiny", spec)
    assert "tiny" in data.names(offline=True) and data.kind_of("tiny") == "points"
    assert "tiny" in action("compare", "data").help
    settings = validate_compare(data="tiny", seeds=1, epochs=1, jobs=1, out=tmp_path / "report")
    assert settings.data == "tiny" and settings.model == "mlp"  # points data: the MLP, by the registry's kind
