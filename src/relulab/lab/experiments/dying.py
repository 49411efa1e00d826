"""dying: dead % vs learning rate and vs a negative bias shift, relu vs leaky_relu vs elu, and revive.

CS231n: "up to 40 % of a network dead" at a too-high learning rate; leaky variants and good init fix it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import stats
from ..report import Column, band, colour, figure, fmt, integer_ticks, series
from ..sweep import Sweep
from ..train import RunConfig
from .base import HOLDS, NOT, PARTLY, Experiment, Plan, Summary, plural, train_runs, with_changes

ACTIVATIONS = ("relu", "leaky_relu", "elu")


def dead_of(run: Mapping[str, Any]) -> float | None:
    """Dead % (relu) or inactive % (the leaky members, which cannot die) at the end of a finished run."""
    if run["status"] != "ok":
        return None
    key = "dead_fraction" if run["config"]["activation"] == "relu" else "inactive_fraction"
    return 100 * run["final"][key]


def accuracy(runs: list) -> float | None:
    """Mean test accuracy (%) of the finished runs."""
    return stats.mean([100 * r["final"]["test_accuracy"] for r in runs if r["status"] == "ok"], finite_only=True)


def diverged_note(row: Mapping[str, Any]) -> str:
    return f" ({row['runs'] - row['diverged']} of {row['runs']} runs; the rest diverged)" if row["diverged"] else ""


class Dying(Experiment):
    name = "dying"
    title = "Dying relu: learning rate, bias and the remedies"
    anchor = ("Up to 40% of a network can be dead at a too-high learning rate (CS231n); leaky variants and good "
              "init fix it.")
    order = 4
    accepts = ("data", "model")

    def plan(self, quick: bool) -> Plan:
        if quick:
            base = RunConfig(data="digits", model="mlp", depth=2, width=16, epochs=2, lr=0.03, batch_size=64)
            lrs, shifts, seeds, revive_cases = (0.03, 0.5), (0.0, -2.0), (0,), ((0.03, -2.0),)
        else:
            base = RunConfig(data="digits", model="mlp", depth=4, width=64, epochs=10, lr=0.03, batch_size=64)
            lrs, shifts, seeds = (0.01, 0.03, 0.1, 0.2, 0.3, 0.5), (0.0, -0.5, -1.0, -2.0, -4.0), (0, 1, 2)
            revive_cases = ((0.3, 0.0), (0.03, -1.0), (0.03, -2.0))
        revive_after = 1 if quick else 2
        settings = {"data": base.data, "model": f"mlp, depth {base.depth}, width {base.width}", "epochs": base.epochs,
                    "learning_rates": list(lrs), "bias_shifts": list(shifts), "seeds": list(seeds),
                    "optimizer": "sgd (momentum 0.9)", "init": base.init, "revive_after_epoch": revive_after}
        return Plan(base=base, lrs=lrs, shifts=shifts, seeds=seeds, revive_cases=revive_cases,
                    revive_after=revive_after, settings=settings)

    def measure(self, plan: Plan, sweep: Sweep) -> Plan:
        def configs(act: str, lr: float, shift: float, revive: int | None = None) -> list[RunConfig]:
            return [with_changes(plan.base, activation=act, lr=lr, bias_shift=shift, seed=s, revive_after=revive)
                    for s in plan.seeds]

        lr_runs = {(a, lr): train_runs(sweep, configs(a, lr, 0.0), "lr", f"lr {a} {lr:g}") for a in ACTIVATIONS
                   for lr in plan.lrs}
        shift_runs = {(a, sh): train_runs(sweep, configs(a, plan.base.lr, sh), "shift", f"shift {a} {sh:g}")
                      for a in ACTIVATIONS for sh in plan.shifts}
        revive_runs = {case: (train_runs(sweep, configs("relu", case[0], case[1]), "lr" if case[1] == 0 else "shift",
                                         "revive baseline"),
                              train_runs(sweep, configs("relu", case[0], case[1], plan.revive_after), "revive",
                                         "revive"))
                       for case in plan.revive_cases}
        return Plan(lr_runs=lr_runs, shift_runs=shift_runs, revive_runs=revive_runs)

    def summarise(self, plan: Plan, measured: Plan) -> Summary:
        def summary(kind: str, act: str, value: float, group: list) -> dict[str, Any]:
            return {"sweep": kind, "activation": act, "value": value,
                    "dead_percent": stats.mean([dead_of(r) for r in group], finite_only=True),
                    "dead_max": max([d for d in map(dead_of, group) if d is not None], default=None),
                    "test_accuracy": accuracy(group),
                    "diverged": sum(r["status"] == "diverged" for r in group), "runs": len(group)}

        lr_rows = [summary("lr", a, lr, measured.lr_runs[(a, lr)]) for a in ACTIVATIONS for lr in plan.lrs]
        shift_rows = [summary("bias shift", a, sh, measured.shift_runs[(a, sh)]) for a in ACTIVATIONS
                      for sh in plan.shifts]
        revive_rows = []
        for (lr, shift), (plain, revived) in measured.revive_runs.items():
            before = [100 * r["epochs"][plan.revive_after - 1]["dead_fraction"] for r in revived
                      if len(r["epochs"]) >= plan.revive_after]
            revive_rows.append({
                "case": f"lr {lr:g}, bias shift {shift:g}", "dead_before": stats.mean(before, finite_only=True),
                "revived_units": stats.mean([r["revived"] for r in revived if r["revived"] is not None],
                                            finite_only=True),
                "dead_plain": stats.mean([dead_of(r) for r in plain], finite_only=True),
                "dead_revived": stats.mean([dead_of(r) for r in revived], finite_only=True),
                "acc_plain": accuracy(plain), "acc_revived": accuracy(revived),
                "diverged": sum(r["status"] == "diverged" for r in plain + revived), "runs": len(plain + revived),
            })
        relu_lr = [r for r in lr_rows if r["activation"] == "relu"]
        # The worst learning rate among those where most runs finished (a lone survivor is not a measurement).
        measured_lr = [r for r in relu_lr if r["dead_percent"] is not None and 2 * r["diverged"] < r["runs"]] or [
            r for r in relu_lr if r["dead_percent"] is not None]
        worst = max(measured_lr, key=lambda r: r["dead_percent"], default=None)
        worst_dead = worst["dead_percent"] if worst else 0.0
        numbers = {"relu_dead_percent_by_lr": {f"{r['value']:g}": r["dead_percent"] for r in relu_lr},
                   "worst_lr": (worst or relu_lr[0])["value"], "worst_dead_percent": worst_dead}
        columns_sweep = [
            Column("activation", "activation", numeric=False), Column("sweep", "swept", numeric=False),
            Column("value", "value", lambda r: f"{r['value']:g}"),
            Column("dead_percent", "dead % (relu) / inactive %", lambda r: fmt(r["dead_percent"])),
            Column("test_accuracy", "test acc %", lambda r: fmt(r["test_accuracy"])),
            Column("diverged", "diverged", lambda r: f"{r['diverged']}/{r['runs']}"),
        ]
        columns_revive = [
            Column("case", "relu run", numeric=False),
            Column("dead_before", f"dead % after epoch {plan.revive_after}", lambda r: fmt(r["dead_before"])),
            Column("revived_units", "units revived", lambda r: fmt(r["revived_units"])),
            Column("dead_plain", "dead % end, no revive", lambda r: fmt(r["dead_plain"])),
            Column("dead_revived", "dead % end, revive", lambda r: fmt(r["dead_revived"])),
            Column("acc_plain", "test acc % no revive", lambda r: fmt(r["acc_plain"])),
            Column("acc_revived", "test acc % revive", lambda r: fmt(r["acc_revived"])),
        ]
        runs = [r for group in measured.lr_runs.values() for r in group] \
            + [r for group in measured.shift_runs.values() for r in group] \
            + [r for _, revived in measured.revive_runs.values() for r in revived]
        tables = [("Dead / inactive units vs learning rate and bias shift", columns_sweep, lr_rows + shift_rows),
                  ("Revive as a remedy (relu)", columns_revive, revive_rows)]
        return Summary(tables, numbers, runs, facts={"lr_rows": lr_rows, "shift_rows": shift_rows,
                                                     "revive_rows": revive_rows, "relu_lr": relu_lr, "worst": worst})

    def verdict(self, plan: Plan, summary: Summary) -> tuple[str, str]:
        facts = summary.facts
        lr_rows, shift_rows, relu_lr, worst = facts["lr_rows"], facts["shift_rows"], facts["relu_lr"], facts["worst"]
        worst_dead = summary.measured["worst_dead_percent"]
        lowest = relu_lr[0]
        low_dead = lowest["dead_percent"] if lowest["dead_percent"] is not None else math.nan
        if worst is None:
            worst = lowest
        if worst_dead >= 40 and low_dead <= 10:
            outcome = HOLDS
        elif worst_dead >= 20:
            outcome = PARTLY
        else:
            outcome = NOT
        lr_text = ", ".join(f"{r['value']:g}: " + ("all diverged" if r["dead_percent"] is None
                                                     else f"{fmt(r['dead_percent'])}%{diverged_note(r)}")
                            for r in relu_lr)
        others = []
        for act in ACTIVATIONS[1:]:
            trained = [r for r in lr_rows if r["activation"] == act and r["dead_percent"] is not None]
            failed = [r["value"] for r in lr_rows if r["activation"] == act and r["diverged"] == r["runs"]]
            others.append(f"{act} at most {fmt(max((r['dead_percent'] for r in trained), default=None))}% inactive"
                          + (f", but it diverged at lr {', '.join(f'{v:g}' for v in failed)}" if failed else ""))
        recovered = {}
        for act in ACTIVATIONS:
            rows_of = [r for r in shift_rows if r["activation"] == act and r["value"] != 0]
            recovered[act] = [r["value"] for r in rows_of if (r["test_accuracy"] or 0) >= 50]
        shift_text = ", ".join(f"{r['value']:g}: {fmt(r['dead_percent'])}%" for r in shift_rows
                               if r["activation"] == "relu")
        shift_fix = "; ".join(
            f"{act} still trained (test accuracy >= 50%) at shift "
            f"{', '.join(f'{v:g}' for v in recovered[act]) or 'none of them'}" for act in ACTIVATIONS)

        def revive_case(r: Mapping[str, Any]) -> str:
            if r["dead_revived"] is None:
                return f"{r['case']}: {fmt(r['dead_plain'])}% dead without revive; with revive every run diverged"
            return (f"{r['case']}: {fmt(r['dead_plain'])}% dead without revive vs {fmt(r['dead_revived'])}% with "
                    f"it (test accuracy {fmt(r['acc_plain'])}% vs {fmt(r['acc_revived'])}%)")

        revive_text = "; ".join(revive_case(r) for r in facts["revive_rows"])
        text = (f"Relu's dead units at the end of training, by learning rate (mean over "
                f"{plural(len(plan.seeds), 'seed')}): {lr_text}. The anchor says up to 40% of a network can die at a "
                "too-high learning rate: it "
                + {HOLDS: f"holds, and here it went further: at lr {worst['value']:g} {fmt(worst_dead)}% died"
                          + (" and accuracy fell to chance" if (worst["test_accuracy"] or 0) < 20 else ""),
                   PARTLY: "holds partly (fewer than 40% died)", NOT: "does not hold here"}[outcome]
                + f". Leaky variants cannot die (their gradient is never zero; the same event counts as inactive): "
                  f"{'; '.join(others)}. A negative bias shift at init kills relu units at once (dead % by shift: "
                  f"{shift_text}); {shift_fix}. Revive after epoch {plan.revive_after}: {revive_text}. Revive "
                  "repairs units killed by initialisation; units killed by a too-high learning rate die again (or "
                  "the run diverges) unless the rate is lowered.")
        return outcome, text

    def plot(self, plan: Plan, measured: Plan, summary: Summary, out: Path) -> list[tuple[str, str]]:
        lr_rows, shift_rows = summary.facts["lr_rows"], summary.facts["shift_rows"]
        with figure(out / "dying.png", 1, 3, title="Dying relu units", size=(16, 4.4)) as (fig, axes):
            for k, act in enumerate(ACTIVATIONS):
                label = "relu: dead" if act == "relu" else f"{act}: inactive"
                style = "-" if act == "relu" else "--"
                for ax, rows in ((axes[0, 0], lr_rows), (axes[0, 1], shift_rows)):
                    mine = [r for r in rows if r["activation"] == act]
                    ax.plot([r["value"] for r in mine],
                            [np.nan if r["dead_percent"] is None else r["dead_percent"] for r in mine], style,
                            marker="o", color=colour(k), label=label)
            axes[0, 0].axhline(40, color="0.4", linestyle=":", linewidth=1, label="40% (anchor)")
            axes[0, 0].set(title="vs learning rate (end of training)", xlabel="learning rate", xscale="log",
                           ylabel="% of hidden units", ylim=(-3, 103))
            axes[0, 1].set(title=f"vs bias shift at init (lr {plan.base.lr:g})", xlabel="bias shift",
                           ylim=(-3, 103))
            for k, ((lr, shift), (plain, revived)) in enumerate(measured.revive_runs.items()):
                band(axes[0, 2], series(plain, "dead_fraction", 100), color=colour(k + 3),
                     label=f"lr {lr:g}, shift {shift:g}", style="--")
                band(axes[0, 2], series(revived, "dead_fraction", 100), color=colour(k + 3),
                     label=f"  + revive after epoch {plan.revive_after}")
            axes[0, 2].set(title="relu dead % per epoch: without (dashed) and with revive", xlabel="epoch",
                           ylim=(-3, 103))
            integer_ticks(axes[0, 2])
            for ax in axes[0]:
                ax.legend(frameon=False, fontsize=7)
        return [("dying.png", "Left: dead (relu) or inactive (leaky_relu, elu) hidden units after training against "
                              "the learning rate; middle: against a constant added to every hidden bias at init; "
                              "right: relu's dead units per epoch with and without relulab.revive.")]


EXPERIMENT = Dying()
