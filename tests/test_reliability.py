"""Issue 10's findings outside the family and nn: the one writer, the CLI's validation and its error shape."""

from __future__ import annotations

import errno
import os
import stat
import sys

import numpy as np
import pytest

from relulab import _io
from relulab.cli import main


# -- the one writer ------------------------------------------------------------------------------------------------
def test_write_atomic_replaces_a_symlink_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "results.json"
    link.symlink_to(target)
    _io.write_atomic(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mknod needs root (CI runs as root)")
def test_write_atomic_writes_through_devices_and_never_replaces_them(tmp_path):
    # Was: report.to_json("/dev/full") as root turned the device into a regular file. The devices here are our own
    # nodes for null (1, 3) and full (1, 7) in tmp_path, so a broken writer can only ever replace those.
    null, full = tmp_path / "null", tmp_path / "full"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    _io.write_atomic(null, "discarded")
    assert stat.S_ISCHR(os.stat(null).st_mode)
    with pytest.raises(OSError, match=r"No space left on device: '.*full'") as caught:
        _io.write_atomic(full, "x" * 100_000)
    assert caught.value.errno == errno.ENOSPC
    assert stat.S_ISCHR(os.stat(full).st_mode)
    link = tmp_path / "results.json"  # a symlink to a device is written through too
    link.symlink_to(null)
    _io.write_atomic(link, "discarded")
    assert link.is_symlink() and stat.S_ISCHR(os.stat(null).st_mode)


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/fd is Linux's")
def test_a_proc_fd_path_is_written_through_the_open_file(tmp_path):
    # /dev/stdout and /dev/fd/N are links to /proc/self/fd/N: replacing what they point to would leave the process's
    # own descriptor on a deleted file (a shell's `> out.txt` would lose everything written after).
    target = tmp_path / "out.txt"
    with open(target, "w") as handle:
        inode = os.fstat(handle.fileno()).st_ino
        _io.write_atomic(f"/proc/self/fd/{handle.fileno()}", "through")
        assert os.stat(target).st_ino == inode
    assert target.read_text() == "through"


def test_write_atomic_writes_through_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        _io.write_atomic(fifo, b"hello")
        assert os.read(reader, 100) == b"hello"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_failed_write_keeps_the_old_file_and_names_the_callers_path(tmp_path):
    path = tmp_path / "report.png"
    path.write_bytes(b"old picture")

    def full_disk(handle):
        handle.write(b"half a picture")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as caught:
        _io.write_atomic(path, full_disk)
    assert caught.value.filename == str(path) and ".tmp" not in str(caught.value)
    assert path.read_bytes() == b"old picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.png"]
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        _io.write_atomic(tmp_path, "x")


def test_report_plot_is_atomic_and_checks_its_path(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    from relulab import Monitor

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with Monitor(model) as mon:
        model(torch.randn(16, 4))
    report = mon.report()
    with pytest.raises(TypeError, match=r"^path must be a file path .*got None"):
        report.plot(None)
    with pytest.raises(ValueError, match=r"^path '.*x\.xyz' has no image suffix"):
        report.plot(tmp_path / "x.xyz")
    path = tmp_path / "dead.png"
    path.write_bytes(b"old")
    monkeypatch.setattr(_io.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(OSError):
        report.plot(path)
    assert path.read_bytes() == b"old"  # was: truncated in place
    monkeypatch.undo()
    report.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- the CLI -------------------------------------------------------------------------------------------------------
def one_line_error(capsys, argv, code=2):
    try:
        result = main(argv)
    except SystemExit as exit:
        result = exit.code
    err = capsys.readouterr().err
    assert result == code, err
    assert err.count("\n") == 1 and "Traceback" not in err and ".tmp" not in err, err
    return err


@pytest.mark.parametrize(("argv", "pattern"), [
    (["compare", "--lr", "4e38"], r"--lr must be 'auto' or a number in \(0, 10\]; got 4e\+38"),
    (["compare", "--lr", "-inf"], r"--lr must be .*; got -inf"),
    (["compare", "--seeds", str(10**22)], r"--seeds must be an integer >= 1 and <= 1000"),
    (["compare", "--seeds", "2_0"], r"--seeds must be an integer .*; got '2_0'"),
    (["compare", "--batch-size", "1e23"], r"--batch-size must be an integer >= 1 and <= 65536; got '1e23'"),
    (["compare", "--width", "100000000"], r"--width must be an integer >= 1 and <= 4096"),
    (["compare", "--epochs", "-3"], r"--epochs must be an integer >= 1"),
    (["compare", "--jobs", "10**3"], r"--jobs must be an integer"),
    (["compare", "--no-such-option"], r"^relulab: error: unrecognized arguments: --no-such-option"),
    (["compare", "--seeds"], r"^relulab compare: error: argument --seeds: expected one argument"),
    (["run"], r"^relulab run: error: the following arguments are required: NAME"),
    (["run", "dying", "--jobs", "0"], r"--jobs must be an integer >= 1"),
    (["plot", "relu", "--range", "-1e3", "nan", "-o", "x.png"], r"--range must be two finite numbers"),
    (["plot", "relu", "--range", "-1e3", "-inf", "-o", "x.png"], r"--range must be two finite numbers"),
    (["plot", "relu", "-o", "x.xyz"], r"^relulab plot: error: -o 'x\.xyz' has no image suffix matplotlib writes"),
    (["nonsense"], r"^relulab: error: argument COMMAND: invalid choice"),
])
def test_bad_options_are_one_line_errors_naming_the_option(capsys, tmp_path, monkeypatch, argv, pattern):
    monkeypatch.chdir(tmp_path)
    import re

    err = one_line_error(capsys, argv)
    assert re.search(pattern, err), err


def test_a_negative_range_is_a_value_not_an_option(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "wide.png"
    assert main(["plot", "relu", "--range", "-1e3", "1e3", "-o", str(path)]) == 0
    assert path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("command", [["compare"], ["run", "dying"]])
def test_an_unwritable_out_fails_before_anything_runs(tmp_path, capsys, command):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = one_line_error(capsys, command + ["--out", str(blocker / "report")])
    assert f"--out '{blocker / 'report'}' cannot be created: '{blocker}' is a file" in err
    if sys.platform == "linux":
        err = one_line_error(capsys, command + ["--out", "/proc/relulab-no-such-dir"])
        assert "--out '/proc/relulab-no-such-dir' is not a writable directory" in err
    if os.geteuid() != 0:  # root writes into read-only folders
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        try:
            err = one_line_error(capsys, command + ["--out", str(locked / "report")])
            assert "is not a writable directory: Permission denied" in err
        finally:
            locked.chmod(0o755)


def test_a_full_disk_during_the_report_is_one_line_naming_the_path_exit_1(tmp_path, capsys, monkeypatch):
    import relulab.lab

    target = tmp_path / "out" / "results.json"

    def compare(settings, **kwargs):  # the report write fails as on a full disk, after runs finished
        def full(handle):
            raise OSError(errno.ENOSPC, "No space left on device")
        _io.write_atomic(target, full)

    monkeypatch.setattr(relulab.lab, "compare", compare)
    err = one_line_error(capsys, ["compare", "--out", str(tmp_path / "out")], code=1)
    assert err == f"relulab compare: error: cannot write {target}: No space left on device\n"


def test_the_lowest_python_claimed_is_the_one_ci_runs():
    # requires-python said >= 3.10 while relulab.nn needs 3.11 (code.replace(co_qualname=...)); CI (make test) runs
    # the Makefile's python3.11, so the claim and the proof are the same version.
    import pathlib
    import tomllib

    root = pathlib.Path(__file__).resolve().parents[1]
    claimed = tomllib.loads((root / "pyproject.toml").read_text())["project"]["requires-python"]
    assert claimed == ">=3.11"
    assert "PYTHON ?= python3.11" in (root / "Makefile").read_text()
    assert sys.version_info >= (3, 11)
