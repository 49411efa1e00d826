"""convergence: epochs to 25 % train error, relu vs tanh vs sigmoid, learning rate tuned per activation.

Krizhevsky et al. (2012): relu reached 25 % training error on CIFAR-10 six times faster than tanh.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import stats
from ..report import Column, band, colour, figure, fmt
from ..sweep import Sweep
from ..train import RunConfig
from .base import HOLDS, NOT, PARTLY, Experiment, Plan, Summary, plural, train_runs, with_changes

ACTIVATIONS = ("relu", "tanh", "sigmoid")
TUNE_SEED = 100  # tuning never sees the seeds that are measured


class Convergence(Experiment):
    name = "convergence"
    title = "Does relu train faster than tanh and sigmoid?"
    anchor = ("Krizhevsky et al. 2012: a 4-layer CNN with relu reached 25% training error on CIFAR-10 six times "
              "faster than with tanh.")
    order = 1
    accepts = ("data", "model")

    def plan(self, quick: bool) -> Plan:
        target = 0.25
        if quick:
            base = RunConfig(data="digits", model="mlp", depth=2, width=32, epochs=2, batch_size=64,
                             evals_per_epoch=2, target_error=target)
            candidates, seeds = (0.03, 0.1), (0, 1)
        else:
            base = RunConfig(data="mnist1d", model="cnn", epochs=15, batch_size=64, evals_per_epoch=4,
                             target_error=target)
            candidates, seeds = (0.01, 0.03, 0.1, 0.3), tuple(range(6))
        settings = {"data": base.data, "model": base.model, "epochs": base.epochs, "batch_size": base.batch_size,
                    "optimizer": "sgd (momentum 0.9)", "init": base.init, "lr_candidates": list(candidates),
                    "tune_seed": TUNE_SEED, "seeds": list(seeds), "target_error": target,
                    "evals_per_epoch": base.evals_per_epoch}
        # a run that never reached the target: at least this many epochs
        return Plan(quick=quick, base=base, target=target, candidates=candidates, seeds=seeds,
                    horizon=base.epochs + 1.0 / base.evals_per_epoch, settings=settings)

    def measure(self, plan: Plan, sweep: Sweep) -> Plan:
        """Tune the learning rate per activation on a seed of its own, then train every seed at the chosen rate."""
        tuning = train_runs(sweep, [with_changes(plan.base, activation=a, lr=lr, seed=TUNE_SEED)
                                    for a in ACTIVATIONS for lr in plan.candidates], "tune", "lr sweep")
        chosen, sweep_table = {}, {}
        for i, act in enumerate(ACTIVATIONS):
            group = tuning[i * len(plan.candidates):(i + 1) * len(plan.candidates)]
            scores = [(self._epochs(plan, r),
                       r["final"]["train_error"] if r["final"]["train_error"] is not None else 1.0) for r in group]
            best = min(range(len(plan.candidates)), key=lambda k: (scores[k], plan.candidates[k]))
            chosen[act] = plan.candidates[best]
            sweep_table[act] = {f"{lr:g}": (None if s[0] >= plan.horizon else s[0])
                                for lr, s in zip(plan.candidates, scores)}
        runs = train_runs(sweep, [with_changes(plan.base, activation=a, lr=chosen[a], seed=s) for a in ACTIVATIONS
                                  for s in plan.seeds], "measure", "runs")
        by_act = {a: runs[i * len(plan.seeds):(i + 1) * len(plan.seeds)] for i, a in enumerate(ACTIVATIONS)}
        return Plan(tuning=tuning, runs=runs, chosen=chosen, sweep_table=sweep_table, by_act=by_act)

    @staticmethod
    def _epochs(plan: Plan, run: Mapping[str, Any]) -> float:
        reached = run["final"]["epochs_to_target"]
        return plan.horizon if reached is None else reached

    def summarise(self, plan: Plan, measured: Plan) -> Summary:
        seeds, by_act, chosen = plan.seeds, measured.by_act, measured.chosen
        epochs = {a: [self._epochs(plan, r) for r in by_act[a]] for a in ACTIVATIONS}
        censored = {a: sum(r["final"]["epochs_to_target"] is None for r in by_act[a]) for a in ACTIVATIONS}
        rows, numbers = [], {"target_error": plan.target, "horizon": plan.horizon, "learning_rates": chosen,
                             "lr_sweep_epochs_to_target": measured.sweep_table, "epochs_to_target": epochs,
                             "ratios": {}}
        for act in ACTIVATIONS:
            ratios = [e / r for e, r in zip(epochs[act], epochs["relu"])]
            gm, low, high = stats.ratio_interval(ratios)
            numbers["ratios"][act] = {"per_seed": ratios, "geometric_mean": gm, "ci95": [low, high],
                                      "censored": censored[act]}
            rows.append({"activation": act, "lr": chosen[act], "epochs_mean": stats.mean(epochs[act],
                                                                                         finite_only=True),
                         "epochs_std": stats.spread(epochs[act], finite_only=True, single=0.0),
                         "reached": len(seeds) - censored[act], "runs": len(seeds),
                         "ratio": gm, "ratio_low": low, "ratio_high": high,
                         "test_accuracy": stats.mean([100 * r["final"]["test_accuracy"] for r in by_act[act]
                                                      if r["final"]["test_accuracy"] is not None],
                                                     finite_only=True)})
        target = plan.target
        columns = [
            Column("activation", "activation", numeric=False),
            Column("lr", "lr (tuned)", lambda r: f"{r['lr']:g}"),
            Column("epochs_mean", f"epochs to {target:.0%} train err",
                   lambda r: f"{fmt(r['epochs_mean'], 2)} ± {fmt(r['epochs_std'], 2)}"),
            Column("reached", "reached", lambda r: f"{r['reached']}/{r['runs']}"),
            Column("ratio", "x relu's epochs (95% CI)",
                   lambda r: f"{fmt(r['ratio'], 2)} ({fmt(r['ratio_low'], 2)}-{fmt(r['ratio_high'], 2)})"),
            Column("test_accuracy", "test acc %", lambda r: fmt(r["test_accuracy"])),
        ]
        return Summary([("Epochs to target, per activation", columns, rows)], numbers,
                       measured.tuning + measured.runs, facts={"epochs": epochs, "censored": censored})

    def verdict(self, plan: Plan, summary: Summary) -> tuple[str, str]:
        numbers, censored, seeds, target = summary.measured, summary.facts["censored"], plan.seeds, plan.target
        epochs, chosen = summary.facts["epochs"], numbers["learning_rates"]
        tanh = numbers["ratios"]["tanh"]
        gm, (low, high) = tanh["geometric_mean"], tanh["ci95"]
        relu_mean = stats.mean(epochs["relu"], finite_only=True)
        tanh_mean = stats.mean(epochs["tanh"], finite_only=True)
        lower_bound = " (a lower bound: some tanh runs never reached the target)" if censored["tanh"] else ""
        if censored["relu"] == len(seeds):
            outcome = NOT
        elif math.isfinite(low) and low > 1 and gm >= 3:
            outcome = HOLDS
        elif math.isfinite(low) and low > 1:
            outcome = PARTLY
        else:
            outcome = NOT
        sigmoid = numbers["ratios"]["sigmoid"]
        sig_text = (f"Sigmoid needed {sigmoid['geometric_mean']:.2g}x relu's epochs"
                    + (f", and {censored['sigmoid']} of {len(seeds)} sigmoid runs never reached {target:.0%} in "
                       f"{plan.base.epochs} epochs (counted as {plan.horizon:g})" if censored["sigmoid"] else "")
                    + ".")
        data_text = "MNIST-1D with a 1-D CNN" if not plan.quick else "digits with a small MLP"
        text = (f"On {data_text}, relu reached {target:.0%} training error in {relu_mean:.2f} epochs on average and "
                f"tanh in {tanh_mean:.2f} ({plural(len(seeds), 'seed')}, learning rate tuned per activation for "
                f"speed: relu {chosen['relu']:g}, tanh {chosen['tanh']:g}, sigmoid {chosen['sigmoid']:g}): relu was "
                f"{gm:.2f}x faster (95% CI {low:.2f}-{high:.2f}){lower_bound}. Krizhevsky et al. (2012) report 6x on "
                f"CIFAR-10 with a 4-layer CNN. " + sig_text + " "
                + {HOLDS: "Relu is clearly and substantially faster here.",
                   PARTLY: "Relu is faster here, but by far less than 6x.",
                   NOT: "Relu is not reliably faster here."}[outcome])
        return outcome, text

    def plot(self, plan: Plan, measured: Plan, summary: Summary, out: Path) -> list[tuple[str, str]]:
        epochs, target, seeds = summary.facts["epochs"], plan.target, plan.seeds
        with figure(out / "convergence.png", 1, 2, title="Convergence speed (learning rate tuned per activation)") \
                as (fig, axes):
            for i, act in enumerate(ACTIVATIONS):
                curves = [np.array(sum((e["curve"] for e in r["epochs"]), []), dtype=float)
                          for r in measured.by_act[act]]
                curves = [c for c in curves if len(c)]
                if curves:
                    length = min(len(c) for c in curves)
                    band(axes[0, 0], np.stack([100 * c[:length, 1] for c in curves]), x=curves[0][:length, 0],
                         label=f"{act} (lr {measured.chosen[act]:g})", color=colour(i))
                axes[0, 1].scatter(np.full(len(seeds), i) + np.linspace(-0.15, 0.15, len(seeds)), epochs[act],
                                   color=colour(i), s=18)
                axes[0, 1].hlines(np.mean(epochs[act]), i - 0.3, i + 0.3, color=colour(i))
            axes[0, 0].axhline(100 * target, color="0.4", linestyle=":", label=f"target {target:.0%}")
            axes[0, 0].set(title="training error (%), whole training split", xlabel="epoch")
            axes[0, 0].legend(frameon=False, fontsize=8)
            axes[0, 1].axhline(plan.horizon, color="0.6", linestyle="--", linewidth=1,
                               label="never reached (censored)")
            axes[0, 1].set_xticks(range(len(ACTIVATIONS)), ACTIVATIONS)
            axes[0, 1].set(title=f"epochs to {target:.0%} training error, per seed", ylabel="epochs")
            axes[0, 1].legend(frameon=False, fontsize=8)
        return [("convergence.png", "Left: training error over epochs (mean and range over seeds), measured "
                                    f"{plan.base.evals_per_epoch}x per epoch. Right: epochs to {target:.0%} "
                                    "training error for each seed; the bar is the mean.")]


EXPERIMENT = Convergence()
