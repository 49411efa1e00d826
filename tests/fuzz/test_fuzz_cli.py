"""Fuzz the CLI's validation: ``relulab.cli.main([...])`` for compare, run and plot with fuzzed option values.

Nothing trains and nothing is drawn: the lab's ``compare``/``run_experiment`` and the plot's drawing are replaced by
a sentinel, so a command line either fails validation -- exit 2 with ONE line on stderr naming the option -- or
reaches the sentinel with settings inside the documented bounds.
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

pytest.importorskip("matplotlib")
pytest.importorskip("torch")

import relulab.cli as cli  # noqa: E402
import relulab.lab as lab  # noqa: E402
from relulab.lab.compare import LIMITS, MAX_LR  # noqa: E402

from .conftest import FUZZ  # noqa: E402


class Reached(Exception):
    """Validation passed: the command would now train or draw."""


NUMBERS = st.one_of(
    st.integers(-5, 5000).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["2_0", "1e23", str(10**22), "0x10", " 3", "3.0", "-1e3", "-inf", "nan", "", "auto", "١٢",
                     "1" * 5000, "+4", "--5", "1e-400", "4e38", "-0"]),
    st.text(max_size=6))
COMPARE_OPTIONS = ["--seeds", "--epochs", "--lr", "--depth", "--width", "--batch-size", "--target", "--jobs",
                   "--data", "--model", "--activations", "--init", "--optimizer"]
CHOICES = {"--data": ["digits", "moons", "mnist1d", "nope", ""], "--model": ["mlp", "cnn", "x"],
           "--activations": ["relu", "relu,,gelu", "nope", ",", "prelu"], "--init": ["he", "xavier", "x"],
           "--optimizer": ["sgd", "adam", "x"]}


def _run(argv, monkeypatch, capsys):
    def sentinel(*args, **kwargs):
        raise Reached(args, kwargs)

    monkeypatch.setattr(lab, "compare", sentinel)
    monkeypatch.setattr(lab, "run_experiment", sentinel)
    monkeypatch.setattr(cli, "_draw", sentinel)
    try:
        code = cli.main(argv)
    except SystemExit as exit:
        code = exit.code
    except Reached as reached:
        capsys.readouterr()
        return "reached", reached.args
    return code, capsys.readouterr().err


def _one_line_naming(err: str, options) -> None:
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("relulab"), err
    named = [o for o in options if o in err] + [w for w in ("COMMAND", "NAME", "unrecognized", "--range", "-o")
                                                if w in err]
    assert named, f"the message names no option: {err}"


@FUZZ
@given(data=st.data())
def test_compare_options(data, monkeypatch, capsys, tmp_path):
    chosen = data.draw(st.lists(st.sampled_from(COMPARE_OPTIONS), unique=True, max_size=4))
    argv = ["compare", "--out", str(tmp_path / "out")]
    for option in chosen:
        argv += [option, data.draw(st.sampled_from(CHOICES[option]) if option in CHOICES else NUMBERS)]
    result, detail = _run(argv, monkeypatch, capsys)
    if result == "reached":
        event("validated")
        settings = detail[0][0]
        assert 1 <= settings.seeds <= LIMITS["--seeds"] and 1 <= settings.epochs <= LIMITS["--epochs"]
        assert 1 <= settings.width <= LIMITS["--width"] and 1 <= settings.batch_size <= LIMITS["--batch-size"]
        assert 1 <= settings.jobs <= LIMITS["--jobs"] and 0 < settings.target_error < 1
        assert settings.lr == "auto" or 0 < settings.lr <= MAX_LR
        for option in ("--seeds", "--epochs", "--width", "--batch-size", "--jobs", "--depth"):
            if option in chosen:  # an integer option took exactly the integer written
                text = argv[argv.index(option) + 1]
                assert re.fullmatch(r"\s*[+-]?\d+\s*", text), f"{option} {text!r} accepted"
        return
    event(f"refused with exit {result}")
    assert result == 2, detail
    _one_line_naming(detail, chosen + ["--out"])


@FUZZ
@given(name=st.sampled_from(["dying", "sparsity", "init", "nope", "", "-x"]), jobs=st.one_of(st.none(), NUMBERS),
       out=st.sampled_from(["ok", "file", "under-file", "proc"]))
def test_run_options(name, jobs, out, monkeypatch, capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    where = {"ok": tmp_path / "out", "file": tmp_path / "file", "under-file": tmp_path / "file" / "sub",
             "proc": "/proc/relulab-fuzz"}[out]
    argv = ["run", name, "--out", str(where)] + ([] if jobs is None else ["--jobs", jobs])
    result, detail = _run(argv, monkeypatch, capsys)
    if result == "reached":
        assert out == "ok" and name in ("dying", "sparsity", "init")
        return
    assert result == 2, detail
    _one_line_naming(detail, ["--jobs", "--out", "experiment", "NAME", "name", "unrecognized"])


@FUZZ
@given(names=st.lists(st.sampled_from(["relu", "gelu", "prelu", "nope", "swish"]), min_size=1, max_size=3),
       low=NUMBERS, high=NUMBERS, suffix=st.sampled_from([".png", ".pdf", ".svg", ".xyz", "", ".PNG"]))
def test_plot_options(names, low, high, suffix, monkeypatch, capsys, tmp_path):
    argv = ["plot", *names, "--range", low, high, "-o", str(tmp_path / f"curves{suffix}")]
    result, detail = _run(argv, monkeypatch, capsys)
    if result == "reached":
        a, b = float(low), float(high)
        assert math.isfinite(a) and math.isfinite(b) and a < b
        assert suffix.lower() in (".png", ".pdf", ".svg") and "prelu" not in names and "nope" not in names
        return
    assert result == 2, detail
    _one_line_naming(detail, ["--range", "-o", "prelu", "nope", "unknown activation"])
