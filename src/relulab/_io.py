"""File writes shared by the monitor and the lab: a reader sees the old file or the whole new one.

Every file relulab writes goes through :func:`write_atomic` (figures through :func:`save_figure`, which hands the
encoded image to it). What sits at the path decides how:

* nothing, or a regular file: a temporary file in the same folder, then ``os.replace`` -- atomic;
* a symlink to a regular file (or to nothing): the same at the link's target, so the link stays a link;
* something that is not a regular file (``/dev/null``, a FIFO, a terminal), or any existing path under ``/dev`` or
  ``/proc`` (``/dev/stdout`` redirected to a file): written through, in place -- a device or pipe cannot be
  replaced, and a stream has no "old version" to keep;
* a directory: IsADirectoryError naming the path.

Errors name the path the caller gave, never the temporary file.
"""

from __future__ import annotations

import math
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Mapping

__all__ = ["write_atomic", "save_figure", "check_path", "json_safe"]


def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give (mkstemp's files are private, 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def check_path(path: Any, name: str = "path") -> Path:
    """``path`` as a Path, or TypeError naming ``name`` (None, numbers and open files are not paths)."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or os.PathLike); got {path!r} (type {type(path).__name__})")
    path = Path(path)
    if not path.name:
        raise ValueError(f"{name} must name a file; got {str(path)!r}")
    return path


def _naming(error: OSError, path: Path) -> OSError:
    """The same error, naming the caller's path (a write's own errors name a temporary file or nothing)."""
    if error.errno is None:
        return OSError(f"{path}: {error}")
    return OSError(error.errno, error.strerror or str(error), str(path))


def _write(handle: IO, data: str | bytes | Callable[[IO[bytes]], None]) -> None:
    if callable(data):
        data(handle)
    else:
        handle.write(data)


def write_atomic(path: str | os.PathLike, data: str | bytes | Callable[[IO[bytes]], None]) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    ``data`` is text, bytes, or a function that writes to the binary handle it is given (e.g. ``np.savez``). On any
    error, Ctrl-C included, the temporary file is removed and ``path`` is left as it was; an OSError names ``path``
    (never the temporary file). Symlinks are followed (the target is replaced, the link kept); a path that exists
    and is not a regular file (a device, a FIFO, ``/dev/stdout``) is written through in place.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_atomic(folder / "a.txt", "hello").read_text()
    'hello'
    """
    path = check_path(path)
    mode = "w" if isinstance(data, str) else "wb"
    try:
        info = os.stat(path)  # follows symlinks: what a write would reach
    except FileNotFoundError:
        info = None
    except OSError as error:
        raise _naming(error, path) from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(21, "Is a directory", str(path))
    # /dev/stdout, /dev/fd/N, /proc/self/fd/N are links to whatever the process has open (maybe a regular file the
    # shell redirected to): replacing that file would leave the process's own descriptor on a deleted inode.
    through = os.path.abspath(path).startswith(("/dev/", "/proc/"))
    if info is not None and (through or not stat.S_ISREG(info.st_mode)):
        try:
            with open(path, mode) as handle:
                _write(handle, data)
        except OSError as error:
            raise _naming(error, path) from None
        return path
    # A symlink (even a dangling one) is replaced at its target, so the link itself survives.
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise _naming(error, path) from None
    try:
        with os.fdopen(fd, mode) as handle:
            _write(handle, data)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, target)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _naming(error, path) from None
        raise
    return path


def json_safe(value: Any) -> Any:
    """A copy of ``value`` that strict JSON can hold: NaN and infinities become None, tuples lists, NumPy
    scalars Python numbers, mapping keys strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        return json_safe(value.item())
    return value


def save_figure(fig: Any, path: Any, name: str = "path", **savefig: Any) -> Path:
    """Save a matplotlib figure atomically; the format comes from the file's suffix (``.png``, ``.pdf``, ...).

    TypeError when ``path`` is not a path, ValueError naming it when its suffix is not a format matplotlib
    writes -- both before anything is drawn or written.
    """
    path = check_path(path, name)
    formats = fig.canvas.get_supported_filetypes()
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in formats:
        raise ValueError(f"{name} {str(path)!r} has no image suffix matplotlib writes; use one of "
                         f"{', '.join('.' + f for f in sorted(formats))}")
    return write_atomic(path, lambda handle: fig.savefig(handle, format=suffix, **savefig))
