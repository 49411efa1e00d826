"""Task functions for the sweep tests (imported by worker processes and Ray workers by their import path).

:func:`path` gives a task's ``fn``: the module's name depends on how pytest imported it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, Mapping


def square(config: Mapping[str, Any]) -> dict[str, Any]:
    """x squared, after announcing the start (a file in ``config["started"]``) and sleeping ``config["sleep"]``."""
    if config.get("started"):
        Path(config["started"], f"{config['x']}-{os.getpid()}").write_text("")
    time.sleep(config.get("sleep", 0))
    return {"x": config["x"], "square": config["x"] ** 2}


def fail(config: Mapping[str, Any]) -> None:
    raise ValueError(f"this run fails by design (x={config['x']})")


def die_once(config: Mapping[str, Any]) -> dict[str, Any]:
    """Kill its own worker the first time (as the out-of-memory killer would), then succeed."""
    marker = Path(config["marker"])
    if not marker.exists():
        marker.write_text("died once")
        os.kill(os.getpid(), signal.SIGKILL)
    return square(config)


def die_always(config: Mapping[str, Any]) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def nap(config: Mapping[str, Any]) -> dict[str, Any]:
    time.sleep(config["seconds"])
    return dict(config)


def path(name: str) -> str:
    """The import path of one of these functions, as a task's ``fn``."""
    return f"{__name__}:{name}"


def importable_from() -> str:
    """The folder that must be on a worker's sys.path for ``path(...)`` to import."""
    return str(Path(__file__).resolve().parents[len(__name__.split(".")) - 1])
