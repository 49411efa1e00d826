"""The protocol every named experiment follows, and the pieces they share.

An experiment is a subclass of :class:`Experiment` in a file of this package that ends with
``EXPERIMENT = TheClass()``; the registry (:data:`relulab.lab.experiments.EXPERIMENTS`) finds it, and ``relulab
run NAME``, its help and its validation read it from there. Its five stages, each a method:

1. :meth:`~Experiment.plan`: the grid and the settings for ``quick`` or the real measurement (no work done);
2. :meth:`~Experiment.measure`: run the grid through the sweep (parallel, resumable) and keep the runs;
3. :meth:`~Experiment.summarise`: aggregate the runs into table rows and the numbers the verdict rests on;
4. :meth:`~Experiment.verdict`: "holds", "holds partly" or "does not hold here", and the prose stating the
   measured numbers next to the anchor's;
5. :meth:`~Experiment.plot`: the figures, written under ``out``.

:meth:`Experiment.run` chains them into the :class:`Outcome` the report is written from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping, Sequence

from ..compare import train_task
from ..report import Column
from ..sweep import Sweep
from ..train import RunConfig

__all__ = ["HOLDS", "PARTLY", "NOT", "Outcome", "Summary", "Experiment", "Plan", "plural", "quick_note",
           "train_runs", "with_changes"]

HOLDS, PARTLY, NOT = "holds", "holds partly", "does not hold here"

Table = tuple[str, list[Column], list[dict[str, Any]]]  # (title, columns, rows)
Plan = SimpleNamespace  # an experiment's grid and settings: whatever its later stages read


@dataclass
class Outcome:
    """What an experiment hands back to :func:`~relulab.lab.experiments.run_experiment` for its report."""

    settings: dict[str, Any]
    tables: list[Table]
    verdict: dict[str, str]
    figures: list[tuple[str, str]]
    runs: list[dict[str, Any]] = field(default_factory=list)
    measured: dict[str, Any] = field(default_factory=dict)  # the verdict's numbers, for results.json
    csv_rows: tuple[Sequence[str], Sequence[Mapping[str, Any]]] | None = None  # results.csv when not runs


@dataclass
class Summary:
    """What :meth:`Experiment.summarise` makes of the runs."""

    tables: list[Table]
    measured: dict[str, Any]  # the numbers the verdict rests on: results.json["measured"]
    runs: list[dict[str, Any]] = field(default_factory=list)  # the runs results.json and results.csv keep
    csv_rows: tuple[Sequence[str], Sequence[Mapping[str, Any]]] | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # anything else the verdict and the plot read


class Experiment:
    """One named experiment: a claim about relu measured against its published anchor.

    Class attributes: ``name`` (as typed after ``relulab run``), ``title``, ``anchor`` (the claim and its source),
    ``order`` (its place in listings), ``accepts`` (what the user may replace with ``--data``/``--model``: its
    claim must still be about the same thing) and ``refusal`` (why it takes nothing else).
    """

    name: str = ""
    title: str = ""
    anchor: str = ""
    order: int = 100
    accepts: tuple[str, ...] = ()
    refusal: str = "its claim is about the preset's deep MLP"

    def plan(self, quick: bool) -> Plan:
        raise NotImplementedError

    def measure(self, plan: Plan, sweep: Sweep) -> Any:
        raise NotImplementedError

    def summarise(self, plan: Plan, measured: Any) -> Summary:
        raise NotImplementedError

    def verdict(self, plan: Plan, summary: Summary) -> tuple[str, str]:
        """(outcome, text): the outcome is one of HOLDS, PARTLY, NOT."""
        raise NotImplementedError

    def plot(self, plan: Plan, measured: Any, summary: Summary, out: Path) -> list[tuple[str, str]]:
        """The figures written under ``out``, as (file name, caption)."""
        raise NotImplementedError

    def run(self, quick: bool, sweep: Sweep, out: Path) -> Outcome:
        plan = self.plan(quick)
        measured = self.measure(plan, sweep)
        summary = self.summarise(plan, measured)
        outcome, text = self.verdict(plan, summary)
        figures = self.plot(plan, measured, summary, out)
        return Outcome(plan.settings, summary.tables, {"outcome": outcome, "text": text + quick_note(quick)},
                       figures, summary.runs, summary.measured, summary.csv_rows)


def plural(count: int, noun: str) -> str:
    """'1 seed', '3 seeds'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def quick_note(quick: bool) -> str:
    return (" (Quick smoke run: tiny model and few epochs, so this verdict tests the machinery, not the claim; "
            "run without --quick for the real measurement.)") if quick else ""


def train_runs(sweep: Sweep, configs: Sequence[RunConfig], group: str, label: str) -> list[dict[str, Any]]:
    """Train ``configs`` through the sweep; each result tagged with ``group``."""
    results = sweep.run([train_task(c, group) for c in configs], label=label)
    for result in results:
        result["group"] = group
    return results


def with_changes(config: RunConfig, **changes: Any) -> RunConfig:
    """``config`` with ``changes`` applied (validated again, as a new RunConfig)."""
    values = config.to_dict()
    values.update(changes)
    return RunConfig.from_dict(values)
