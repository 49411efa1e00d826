"""The lab's settings vocabulary: what each option allows, and the checks that say so.

Every check raises :class:`ConfigError` with one message shape, the family's ``Param`` style: it names the option,
says what is allowed and shows the value given (``--seeds must be an integer >= 1 and <= 1000; got 0``). The
entry points (``validate_compare``, ``validate_doctor``, ``validate_experiment``, the CLI) use these and nothing
else, so a bound or a choice is stated once, here.

NumPy only: importing this module loads no torch.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["ConfigError", "LIMITS", "MAX_LR", "MODELS", "INITS", "OPTIMIZERS", "integer", "positive", "choice",
           "out_dir"]

MODELS = ("mlp", "cnn")  # relulab.lab.models.build_model
INITS = ("he", "default", "xavier")  # relulab.lab.models.initialise
OPTIMIZERS = ("sgd", "adam")  # SGD with momentum 0.9, Adam

# Upper bounds: far above anything the lab's data sets and a workstation need, low enough that a typo (--seeds
# 10**22, --width 1e8) is a one-line error instead of a run that fills memory or dies inside torch.
LIMITS = {"--seeds": 1000, "--epochs": 10_000, "--width": 4096, "--batch-size": 65_536, "--jobs": 512}
MAX_LR = 10.0


class ConfigError(ValueError):
    """A bad setting: reported in one line before anything runs or is written."""


def integer(option: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int in [minimum, maximum] (maximum: the option's bound in :data:`LIMITS` when not given)."""
    maximum = LIMITS.get(option) if maximum is None else maximum
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum or (
            maximum is not None and value > maximum):
        allowed = f"an integer >= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
        raise ConfigError(f"{option} must be {allowed}; got {value!r}")
    return int(value)


def positive(option: str, value: Any) -> float:
    """``value`` as a finite float > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{option} must be a finite number > 0; got {value!r}")
    return float(value)


def choice(option: str, value: Any, allowed: Sequence[str]) -> str:
    """``value`` when it is one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"{option} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def out_dir(value: str | Path, option: str = "--out") -> Path:
    """The report directory, checked before anything runs: a directory (or creatable as one) we may write in."""
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} must be a directory; {str(path)!r} is a file")
    missing = []  # the folders the probe below creates, deepest first
    existing = path
    while not existing.exists() and existing.parent != existing:
        missing.append(existing)
        existing = existing.parent
    # the nearest ancestor that exists decides whether path can be created
    if existing != path and not existing.is_dir():
        raise ConfigError(f"{option} {str(path)!r} cannot be created: {str(existing)!r} is a file, not a directory")
    # The only sure test is to write: create the folder and a probe file in it (a read-only mount, /proc, a full
    # quota all fail here, before any training), then remove what the probe made, so that an error found later in
    # the validation still leaves nothing behind (the run creates the folder again when it writes).
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".relulab-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise ConfigError(f"{option} {str(path)!r} is not a writable directory: {error.strerror or error}") from None
    finally:
        for created in missing:  # deepest first
            try:
                created.rmdir()
            except OSError:
                break
    return path
