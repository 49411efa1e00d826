"""The named experiments of ``relulab run NAME``: the ReLU claims, each measured against its published anchor.

Each experiment is a preset of the lab's machinery (data, models, training loop, resumable sweep) with its own
plot and a verdict that states the measured number next to the anchor's and says "holds", "holds partly" or
"does not hold here". ``quick=True`` runs a seconds-long version of the same code for tests; its verdict is
computed the same way but says that it is a smoke run.

One file of this package per experiment, each a subclass of :class:`~relulab.lab.experiments.base.Experiment`
ending with ``EXPERIMENT = ...``. The registry :data:`EXPERIMENTS` is built from the files it finds here, so
adding an experiment is adding a file: the CLI (``relulab run NAME``, its help and its choices) and the
validation read the registry.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import textwrap
import time
from pathlib import Path
from typing import Any, TextIO

from ..compare import LabResult, ran_on, render_tables, write_outputs
from ..stats import ratio_interval
from ..stats import wilson_interval as wilson
from ..sweep import Backend, Sweep, default_jobs, validate_backend
from ..validate import ConfigError, integer, out_dir
from .base import HOLDS, NOT, PARTLY, Experiment, Outcome
from .born_dead import born_dead_cell
from .inputs import UserInputs, WithUserInputs
from .inputs import validate_user_inputs as _check_inputs

__all__ = ["EXPERIMENTS", "Experiment", "Outcome", "run_experiment", "validate_experiment", "born_dead_cell",
           "UserInputs", "validate_user_inputs", "USER_INPUTS", "HOLDS", "PARTLY", "NOT", "ratio_interval", "wilson"]


def _discover() -> dict[str, Experiment]:
    """Every ``EXPERIMENT`` defined by a module of this package, in the order they declare."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        experiment = getattr(importlib.import_module(f"{__name__}.{info.name}"), "EXPERIMENT", None)
        if isinstance(experiment, Experiment):
            found.append(experiment)
    return {e.name: e for e in sorted(found, key=lambda e: (e.order, e.name))}


EXPERIMENTS: dict[str, Experiment] = _discover()

# What each experiment can take from the user: its claim must still be about the same thing on other data or
# another model (each experiment's ``accepts`` says which, and its ``refusal`` why not).
USER_INPUTS = {name: e.accepts for name, e in EXPERIMENTS.items()}


def validate_experiment(name: str, *, out: str | Path | None = None, jobs: int | None = None) -> tuple[str, Path, int]:
    """Check a ``relulab run`` command line; returns (name, out, jobs) or raises :class:`ConfigError`."""
    if name not in EXPERIMENTS:
        close = difflib.get_close_matches(name, list(EXPERIMENTS), n=2, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(f"unknown experiment {name!r}{hint} Known: {', '.join(EXPERIMENTS)}")
    path = out_dir(out if out is not None else Path("relulab-report") / name)
    return name, path, default_jobs() if jobs is None else integer("--jobs", jobs)


def validate_user_inputs(name: str, *, data: Any = None, model: Any = None, target: str | None = None,
                         task: str | None = None, out: Path) -> UserInputs | None:
    """Check ``--data``/``--model`` for experiment ``name`` (None when neither is given). Writes nothing."""
    experiment = EXPERIMENTS.get(name)
    if experiment is None:  # refuses everything, with the default reason
        experiment = Experiment()
        experiment.name = name
    return _check_inputs(experiment, USER_INPUTS, data=data, model=model, target=target, task=task, out=out)


def run_experiment(name: str, *, quick: bool = False, out: str | Path | None = None, jobs: int | None = None,
                   progress: bool = True, stream: TextIO | None = None, command: str | None = None,
                   inputs: UserInputs | None = None, backend: str | Backend = "local", address: str | None = None,
                   gpus_per_run: float | None = None) -> LabResult:
    """Run the named experiment and write its report (see :class:`~relulab.lab.compare.LabResult`).

    ``inputs`` (from :func:`validate_user_inputs`): the user's data and/or model in place of the preset's.
    ``backend``/``address``/``gpus_per_run`` say where the runs go (see :class:`~relulab.lab.sweep.Sweep`). A run
    that fails raises :class:`~relulab.lab.sweep.SweepError` once the others have finished (and are kept).
    """
    name, path, jobs = validate_experiment(name, out=out, jobs=jobs)
    backend = validate_backend(backend, address, gpus_per_run)
    experiment = EXPERIMENTS[name]
    started = time.perf_counter()
    if inputs is not None and inputs.model is not None and inputs.model.in_process:
        jobs = 1
    with Sweep(path, jobs=jobs, progress=progress, stream=stream, backend=backend) as sweep:
        outcome = experiment.run(quick, sweep if inputs is None else WithUserInputs(sweep, inputs, path), path)
    results: dict[str, Any] = {
        "experiment": name, "title": experiment.title, "anchor": experiment.anchor, "quick": quick,
        "command": command, "verdict": outcome.verdict, "measured": outcome.measured,
        "settings": outcome.settings,
        "tables": [{"title": title, "rows": rows} for title, _, rows in outcome.tables],
        "runs": outcome.runs,
        "counts": {"computed": sweep.computed, "skipped": sweep.skipped},
        "execution": sweep.describe(),
        "seconds": time.perf_counter() - started,
    }
    heading = f"relulab run {name}: {experiment.title}" + (" (quick)" if quick else "")
    intro = [f"Anchor: {experiment.anchor}", ran_on(results["execution"])] + \
        ([inputs.note()] if inputs is not None else [])
    if inputs is not None:
        results["inputs"] = {"data": inputs.data.name if inputs.data is not None else None,
                             "model": inputs.model.label if inputs.model is not None else None}
    write_outputs(path, results, title=heading, intro=intro, tables=outcome.tables,
                  figures=outcome.figures, runs=outcome.runs, csv_rows=outcome.csv_rows)
    verdict = f"Verdict: {outcome.verdict['outcome']}. {outcome.verdict['text']}"
    text = "\n\n".join([heading, *intro, render_tables(outcome.tables), textwrap.fill(verdict, 110)])
    return LabResult(results, text, path)
