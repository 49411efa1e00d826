"""The `relulab` command: list, explain, plot; errors exit 2 with one line and no traceback."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import relulab as rl
from relulab.cli import main


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "relulab.cli", *argv], capture_output=True, text=True, timeout=120)


def test_list_shows_every_member(capsys):
    assert main(["list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == rl.names()
    assert len(listed) == 22


def test_explain_relu_shows_formula_derivative_properties_and_failure_mode(capsys):
    assert main(["explain", "relu"]) == 0
    text = capsys.readouterr().out
    assert r"\max(0, x)" in text
    assert "f'(x)" in text
    assert "monotonic: yes" in text
    assert "kinks at: 0" in text
    assert "units can die): yes" in text
    assert "Dying units" in text
    # The value table: relu at -2..2 and its derivative with f'(0) = 0.
    table = text.split("\nValues\n")[1].splitlines()[:3]
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in table}
    assert rows == {"x": [-2, -1, 0, 1, 2], "f(x)": [0, 0, 0, 1, 2], "f'(x)": [0, 0, 0, 1, 1]}


@pytest.mark.parametrize("alias, canonical", [("swish", "silu"), ("LeakyReLU", "leaky_relu"), ("hard_swish", "hardswish")])
def test_explain_resolves_aliases(capsys, alias, canonical):
    assert main(["explain", alias]) == 0
    assert capsys.readouterr().out.startswith(f"{canonical}:")


def test_explain_prelu_mentions_its_weight(capsys):
    assert main(["explain", "prelu"]) == 0
    assert "weight (positional)" in capsys.readouterr().out


def test_unknown_name_exits_2_with_close_matches_and_no_traceback():
    result = run("explain", "reluu")
    assert result.returncode == 2
    assert "unknown activation 'reluu'" in result.stderr
    assert "did you mean 'relu'" in result.stderr
    assert "Traceback" not in result.stderr
    result = run("plot", "relu", "gelux", "-o", "never.png")
    assert result.returncode == 2 and "'gelu'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [[], ["list"], ["explain"], ["plot"]])
def test_help_on_every_command(command):
    result = run(*command, "--help")
    assert result.returncode == 0
    assert "usage: relulab" in result.stdout


def test_plot_writes_a_png_with_both_panels(tmp_path, capsys):
    import matplotlib.image as mpimg

    path = tmp_path / "curves.png"
    assert main(["plot", "relu", "leaky_relu", "elu", "--grad", "-o", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = mpimg.imread(path)
    height, width = image.shape[:2]
    assert width > 1.8 * height  # two panels side by side (f and f')
    # Not a blank canvas: a good share of the pixels are not white.
    assert (image[..., :3].mean(axis=-1) < 0.95).mean() > 0.02
    assert "wrote" in capsys.readouterr().out


def test_plot_breaks_the_derivative_at_kinks():
    from relulab.cli import _curve

    xs = np.linspace(-1, 1, 201)
    curve = _curve(rl.relu.grad(xs), xs, rl.relu.properties.kinks)
    assert np.isnan(curve[100]) and np.isnan(curve).sum() == 1
    assert curve[99] == 0 and curve[101] == 1


def test_plot_rejects_a_bad_range(tmp_path, capsys):
    assert main(["plot", "relu", "--range", "3", "1", "-o", str(tmp_path / "x.png")]) == 2
    assert "--range must be two finite numbers A < B; got 3.0 1.0" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_plot_refuses_prelu_by_name(tmp_path, capsys):
    assert main(["plot", "prelu", "-o", str(tmp_path / "x.png")]) == 2
    assert "needs a weight" in capsys.readouterr().err


def test_plot_to_an_unwritable_path_is_a_one_line_error(tmp_path, capsys):
    # A missing folder is created (every relulab write does that); a path under a regular file cannot be.
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "x.png"
    assert main(["plot", "relu", "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {target}" in err and "Traceback" not in err and err.count("\n") == 1
    created = tmp_path / "missing" / "x.png"
    assert main(["plot", "relu", "-o", str(created)]) == 0 and created.read_bytes()[:4] == b"\x89PNG"


def test_a_closed_pipe_ends_quietly():
    code = ("import sys; from relulab.cli import main; "
            "sys.argv = ['relulab', 'list']; sys.exit(main(['list']))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader goes away before relulab writes
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert b"Traceback" not in err and b"BrokenPipe" not in err
