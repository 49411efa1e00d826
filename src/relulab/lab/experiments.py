"""The named experiments of ``relulab run NAME``: the ReLU claims, each measured against its published anchor.

Each experiment is a preset of the lab's machinery (data, models, training loop, resumable sweep) with its own
plot and a verdict that states the measured number next to the anchor's and says "holds", "holds partly" or
"does not hold here". ``quick=True`` runs a seconds-long version of the same code for tests; its verdict is
computed the same way but says that it is a smoke run.

=============  ==========================================================================================
convergence    epochs to 25 % train error, relu vs tanh vs sigmoid, learning rate tuned per activation
               (Krizhevsky et al. 2012: relu six times faster than tanh on CIFAR-10)
vanishing      per-layer gradient norms of a 20-layer MLP, sigmoid/tanh/relu, default vs He init
               (sigmoid's input-layer gradients orders of magnitude below its output layer's)
sparsity       fraction of exact zeros per layer at init and after training (Glorot et al. 2011: about 50 %)
dying          dead % vs learning rate and vs a negative bias shift, relu vs leaky_relu vs elu, and revive
               ("up to 40 % of a network dead" at a too-high learning rate)
init           a 30-layer relu MLP, Xavier vs He init (He et al. 2015: Xavier stalls, He converges)
born-dead      probability that a width-w, depth-d relu network is born dead (Lu et al. 2019: tends to 1)
=============  ==========================================================================================
"""

from __future__ import annotations

import difflib
import math
import textwrap
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TextIO

import numpy as np

from . import report
from .compare import TRAIN, ConfigError, LabResult, _integer, _out, _task, _write_outputs, ran_on, render_tables
from .report import Column, band, colour, figure, fmt, integer_ticks
from .sweep import Backend, Sweep, Task, default_jobs, validate_backend
from .train import RunConfig

__all__ = ["EXPERIMENTS", "Experiment", "Outcome", "run_experiment", "validate_experiment", "born_dead_cell",
           "UserInputs", "validate_user_inputs", "USER_INPUTS",
           "HOLDS", "PARTLY", "NOT"]

HOLDS, PARTLY, NOT = "holds", "holds partly", "does not hold here"


@dataclass
class Outcome:
    """What an experiment hands back to :func:`run_experiment` for its report."""

    settings: dict[str, Any]
    tables: list[tuple[str, list[Column], list[dict[str, Any]]]]
    verdict: dict[str, str]
    figures: list[tuple[str, str]]
    runs: list[dict[str, Any]] = field(default_factory=list)
    measured: dict[str, Any] = field(default_factory=dict)  # the verdict's numbers, for results.json
    csv_rows: tuple[Sequence[str], Sequence[Mapping[str, Any]]] | None = None  # results.csv when not runs


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    anchor: str
    run: Callable[[bool, Sweep, Path], Outcome]


# -- statistics ----------------------------------------------------------------------------------------------------
def _t_quantile(level: float, dof: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, dof))


def ratio_interval(ratios: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Geometric mean of positive ratios and its t confidence interval (computed on log ratios)."""
    logs = np.log(np.asarray(ratios, dtype=float))
    mean = float(logs.mean())
    if len(logs) < 2:
        return math.exp(mean), math.nan, math.nan
    half = _t_quantile(level, len(logs) - 1) * float(logs.std(ddof=1)) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def wilson(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95 % interval of a binomial proportion."""
    if trials == 0:
        return math.nan, math.nan
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def _mean(values: Sequence[float | None]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else None


def _std(values: Sequence[float | None]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _geomean(values: Sequence[float | None]) -> float | None:
    values = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return float(np.exp(np.mean(np.log(values)))) if values else None


def _n(count: int, noun: str) -> str:
    """'1 seed', '3 seeds'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _quick_note(quick: bool) -> str:
    return (" (Quick smoke run: tiny model and few epochs, so this verdict tests the machinery, not the claim; "
            "run without --quick for the real measurement.)") if quick else ""


def _runs(sweep: Sweep, configs: Sequence[RunConfig], group: str, label: str) -> list[dict[str, Any]]:
    results = sweep.run([_task(c, group) for c in configs], label=label)
    for result in results:
        result["group"] = group
    return results


# -- convergence ---------------------------------------------------------------------------------------------------
def _convergence(quick: bool, sweep: Sweep, out: Path) -> Outcome:
    activations = ("relu", "tanh", "sigmoid")
    target = 0.25
    if quick:
        base = RunConfig(data="digits", model="mlp", depth=2, width=32, epochs=2, batch_size=64, evals_per_epoch=2,
                         target_error=target)
        candidates, seeds = (0.03, 0.1), (0, 1)
    else:
        base = RunConfig(data="mnist1d", model="cnn", epochs=15, batch_size=64, evals_per_epoch=4,
                         target_error=target)
        candidates, seeds = (0.01, 0.03, 0.1, 0.3), tuple(range(6))
    tune_seed = 100  # tuning never sees the seeds that are measured
    tuning = _runs(sweep, [_replace(base, activation=a, lr=lr, seed=tune_seed) for a in activations
                           for lr in candidates], "tune", "lr sweep")
    horizon = base.epochs + 1.0 / base.evals_per_epoch  # a run that never reached the target: at least this

    def epochs_to_target(run: Mapping[str, Any]) -> float:
        reached = run["final"]["epochs_to_target"]
        return horizon if reached is None else reached

    chosen, sweep_table = {}, {}
    for i, act in enumerate(activations):
        group = tuning[i * len(candidates):(i + 1) * len(candidates)]
        scores = [(epochs_to_target(r), r["final"]["train_error"] if r["final"]["train_error"] is not None else 1.0)
                  for r in group]
        best = min(range(len(candidates)), key=lambda k: (scores[k], candidates[k]))
        chosen[act] = candidates[best]
        sweep_table[act] = {f"{lr:g}": (None if s[0] >= horizon else s[0]) for lr, s in zip(candidates, scores)}
    runs = _runs(sweep, [_replace(base, activation=a, lr=chosen[a], seed=s) for a in activations for s in seeds],
                 "measure", "runs")
    by_act = {a: runs[i * len(seeds):(i + 1) * len(seeds)] for i, a in enumerate(activations)}
    epochs = {a: [epochs_to_target(r) for r in by_act[a]] for a in activations}
    censored = {a: sum(r["final"]["epochs_to_target"] is None for r in by_act[a]) for a in activations}
    rows, measured = [], {"target_error": target, "horizon": horizon, "learning_rates": chosen,
                          "lr_sweep_epochs_to_target": sweep_table, "epochs_to_target": epochs, "ratios": {}}
    for act in activations:
        ratios = [e / r for e, r in zip(epochs[act], epochs["relu"])]
        gm, low, high = ratio_interval(ratios)
        measured["ratios"][act] = {"per_seed": ratios, "geometric_mean": gm, "ci95": [low, high],
                                   "censored": censored[act]}
        rows.append({"activation": act, "lr": chosen[act], "epochs_mean": _mean(epochs[act]),
                     "epochs_std": _std(epochs[act]), "reached": len(seeds) - censored[act], "runs": len(seeds),
                     "ratio": gm, "ratio_low": low, "ratio_high": high,
                     "test_accuracy": _mean([100 * r["final"]["test_accuracy"] for r in by_act[act]
                                             if r["final"]["test_accuracy"] is not None])})
    tanh = measured["ratios"]["tanh"]
    gm, (low, high) = tanh["geometric_mean"], tanh["ci95"]
    relu_mean, tanh_mean = _mean(epochs["relu"]), _mean(epochs["tanh"])
    lower_bound = " (a lower bound: some tanh runs never reached the target)" if censored["tanh"] else ""
    if censored["relu"] == len(seeds):
        outcome = NOT
    elif math.isfinite(low) and low > 1 and gm >= 3:
        outcome = HOLDS
    elif math.isfinite(low) and low > 1:
        outcome = PARTLY
    else:
        outcome = NOT
    sigmoid = measured["ratios"]["sigmoid"]
    sig_text = (f"Sigmoid needed {sigmoid['geometric_mean']:.2g}x relu's epochs"
                + (f", and {censored['sigmoid']} of {len(seeds)} sigmoid runs never reached {target:.0%} in "
                   f"{base.epochs} epochs (counted as {horizon:g})" if censored["sigmoid"] else "") + ".")
    data_text = "MNIST-1D with a 1-D CNN" if not quick else "digits with a small MLP"
    text = (f"On {data_text}, relu reached {target:.0%} training error in {relu_mean:.2f} epochs on average and "
            f"tanh in {tanh_mean:.2f} ({_n(len(seeds), 'seed')}, learning rate tuned per activation for speed: relu "
            f"{chosen['relu']:g}, tanh {chosen['tanh']:g}, sigmoid {chosen['sigmoid']:g}): relu was {gm:.2f}x "
            f"faster (95% CI {low:.2f}-{high:.2f}){lower_bound}. Krizhevsky et al. (2012) report 6x on CIFAR-10 "
            f"with a 4-layer CNN. " + sig_text + " "
            + {HOLDS: "Relu is clearly and substantially faster here.",
               PARTLY: "Relu is faster here, but by far less than 6x.",
               NOT: "Relu is not reliably faster here."}[outcome] + _quick_note(quick))
    columns = [
        Column("activation", "activation", numeric=False),
        Column("lr", "lr (tuned)", lambda r: f"{r['lr']:g}"),
        Column("epochs_mean", f"epochs to {target:.0%} train err", lambda r: f"{fmt(r['epochs_mean'], 2)} ± "
                                                                           f"{fmt(r['epochs_std'], 2)}"),
        Column("reached", "reached", lambda r: f"{r['reached']}/{r['runs']}"),
        Column("ratio", "x relu's epochs (95% CI)",
               lambda r: f"{fmt(r['ratio'], 2)} ({fmt(r['ratio_low'], 2)}-{fmt(r['ratio_high'], 2)})"),
        Column("test_accuracy", "test acc %", lambda r: fmt(r["test_accuracy"])),
    ]
    with figure(out / "convergence.png", 1, 2, title="Convergence speed (learning rate tuned per activation)") \
            as (fig, axes):
        for i, act in enumerate(activations):
            curves = [np.array(sum((e["curve"] for e in r["epochs"]), []), dtype=float) for r in by_act[act]]
            curves = [c for c in curves if len(c)]
            if curves:
                length = min(len(c) for c in curves)
                band(axes[0, 0], np.stack([100 * c[:length, 1] for c in curves]), x=curves[0][:length, 0],
                     label=f"{act} (lr {chosen[act]:g})", color=colour(i))
            axes[0, 1].scatter(np.full(len(seeds), i) + np.linspace(-0.15, 0.15, len(seeds)), epochs[act],
                               color=colour(i), s=18)
            axes[0, 1].hlines(np.mean(epochs[act]), i - 0.3, i + 0.3, color=colour(i))
        axes[0, 0].axhline(100 * target, color="0.4", linestyle=":", label=f"target {target:.0%}")
        axes[0, 0].set(title="training error (%), whole training split", xlabel="epoch")
        axes[0, 0].legend(frameon=False, fontsize=8)
        axes[0, 1].axhline(horizon, color="0.6", linestyle="--", linewidth=1, label="never reached (censored)")
        axes[0, 1].set_xticks(range(len(activations)), activations)
        axes[0, 1].set(title=f"epochs to {target:.0%} training error, per seed", ylabel="epochs")
        axes[0, 1].legend(frameon=False, fontsize=8)
    figures = [("convergence.png", "Left: training error over epochs (mean and range over seeds), measured "
                                   f"{base.evals_per_epoch}x per epoch. Right: epochs to {target:.0%} training "
                                   "error for each seed; the bar is the mean.")]
    settings = {"data": base.data, "model": base.model, "epochs": base.epochs, "batch_size": base.batch_size,
                "optimizer": "sgd (momentum 0.9)", "init": base.init, "lr_candidates": list(candidates),
                "tune_seed": tune_seed, "seeds": list(seeds), "target_error": target,
                "evals_per_epoch": base.evals_per_epoch}
    return Outcome(settings, [("Epochs to target, per activation", columns, rows)],
                   {"outcome": outcome, "text": text}, figures, tuning + runs, measured)


def _replace(config: RunConfig, **changes: Any) -> RunConfig:
    values = config.to_dict()
    values.update(changes)
    return RunConfig.from_dict(values)


# -- vanishing -----------------------------------------------------------------------------------------------------
def _vanishing(quick: bool, sweep: Sweep, out: Path) -> Outcome:
    activations, inits = ("sigmoid", "tanh", "relu"), ("default", "he")
    if quick:
        base = RunConfig(data="digits", model="mlp", depth=20, width=16, epochs=1, lr=0.03, batch_size=64, probe=True)
        seeds = (0,)
    else:
        base = RunConfig(data="digits", model="mlp", depth=20, width=64, epochs=10, lr=0.03, batch_size=64,
                         probe=True)
        seeds = (0, 1, 2)
    grid = [(a, i) for a in activations for i in inits]
    runs = _runs(sweep, [_replace(base, activation=a, init=i, seed=s) for a, i in grid for s in seeds], "grid", "runs")
    groups = {(a, i): runs[k * len(seeds):(k + 1) * len(seeds)] for k, (a, i) in enumerate(grid)}
    rows = []
    for (act, init), group in groups.items():
        at_init = [r["init"]["weight_grad"] for r in group]
        trained = [r["epochs"][-1]["weight_grad"] for r in group if r["status"] == "ok" and r["epochs"]]
        rows.append({
            "activation": act, "init": init,
            "input_grad": _geomean([g[0] for g in at_init]), "output_grad": _geomean([g[-1] for g in at_init]),
            "ratio_init": _geomean([g[0] / g[-1] for g in at_init if g[-1] > 0]),
            "ratio_trained": _geomean([g[0] / g[-1] for g in trained if g[-1] > 0]),
            "test_accuracy": _mean([100 * r["final"]["test_accuracy"] for r in group
                                    if r["final"]["test_accuracy"] is not None]),
            "diverged": sum(r["status"] == "diverged" for r in group), "runs": len(group),
        })
    row = {(r["activation"], r["init"]): r for r in rows}
    sigmoid = row[("sigmoid", "default")]["ratio_init"]
    orders = -math.log10(sigmoid) if sigmoid else math.nan
    outcome = HOLDS if orders >= 2 else (PARTLY if orders >= 1 else NOT)
    relu_he, relu_default = row[("relu", "he")]["ratio_init"], row[("relu", "default")]["ratio_init"]
    tanh_default = row[("tanh", "default")]["ratio_init"]
    text = (f"In a {base.depth}-layer MLP (width {base.width}) at initialisation with PyTorch's default init, the "
            f"input layer's weight gradient was {fmt(sigmoid, sci=True)} times the output layer's for sigmoid "
            f"({orders:.1f} orders of magnitude below), {fmt(tanh_default, sci=True)} for tanh and "
            f"{fmt(relu_default, sci=True)} for relu; with He init relu's ratio was {fmt(relu_he, sci=True)}. "
            "The anchor (sigmoid's input-layer gradients orders of magnitude below its output layer's) "
            + {HOLDS: "holds.", PARTLY: "holds only by about one order of magnitude.",
               NOT: "does not hold here."}[outcome]
            + (" Relu by itself does not prevent vanishing here: with PyTorch's default init (weights U(±1/sqrt(fan "
               "in)), too small for relu) its gradients vanish too; with He init they do not."
               if relu_default and relu_he and relu_default < 1e-2 <= relu_he else "") + _quick_note(quick))
    columns = [
        Column("activation", "activation", numeric=False), Column("init", "init", numeric=False),
        Column("input_grad", "input layer |g| at init", lambda r: fmt(r["input_grad"], sci=True)),
        Column("output_grad", "output layer |g| at init", lambda r: fmt(r["output_grad"], sci=True)),
        Column("ratio_init", "input/output at init", lambda r: fmt(r["ratio_init"], sci=True)),
        Column("ratio_trained", "input/output, last epoch", lambda r: fmt(r["ratio_trained"], sci=True)),
        Column("test_accuracy", "test acc %", lambda r: fmt(r["test_accuracy"])),
    ]
    with figure(out / "vanishing.png", 1, 2, title=f"Gradient norm per layer, {base.depth}-layer MLP") as (fig, axes):
        for k, act in enumerate(activations):
            for init, style in zip(inits, ("--", "-")):
                group = groups[(act, init)]
                curves = [("init", [r["init"]["weight_grad"] for r in group]),
                          ("trained", [r["epochs"][-1]["weight_grad"] for r in group if r["epochs"]])]
                for ax, (_, grads) in zip(axes[0], curves):
                    if grads:
                        values = np.exp(np.mean(np.log(np.maximum(np.array(grads), 1e-300)), axis=0))
                        ax.plot(np.arange(1, len(values) + 1), values, style, marker="o", markersize=3,
                                color=colour(k), label=f"{act}, {init} init")
        axes[0, 0].set(title="at initialisation", xlabel="layer (1 = input)", ylabel="RMS ||dL/dW||", yscale="log")
        axes[0, 1].set(title=f"during the last epoch ({base.epochs})", xlabel="layer (1 = input)", yscale="log")
        axes[0, 0].legend(frameon=False, fontsize=8)
        integer_ticks(*axes[0])
    figures = [("vanishing.png", "Root-mean-square weight-gradient norm of every Linear layer, input side left, "
                                 "log scale (geometric mean over seeds). Dashed: PyTorch default init; solid: He init "
                                 "(relulab.nn.init_).")]
    settings = {"data": base.data, "model": f"mlp, depth {base.depth}, width {base.width}", "epochs": base.epochs,
                "lr": base.lr, "optimizer": "sgd (momentum 0.9)", "seeds": list(seeds)}
    measured = {"sigmoid_default_ratio_at_init": sigmoid, "orders_of_magnitude": orders,
                "ratios_at_init": {f"{a}/{i}": row[(a, i)]["ratio_init"] for a, i in grid}}
    return Outcome(settings, [("Gradient ratio input/output layer", columns, rows)],
                   {"outcome": outcome, "text": text}, figures, runs, measured)


# -- sparsity ------------------------------------------------------------------------------------------------------
def _sparsity(quick: bool, sweep: Sweep, out: Path) -> Outcome:
    if quick:
        setups = [("digits", "mlp", 2, 32)]
        inits, seeds, epochs = ("he",), (0,), 1
    else:
        setups = [("digits", "mlp", 3, 256), ("mnist1d", "cnn", 2, 64)]
        inits, seeds, epochs = ("he", "default"), (0, 1, 2), 10
    grid = [(s, i) for s in setups for i in inits]
    configs = [RunConfig(data=d, model=m, depth=depth, width=w, activation="relu", init=i, seed=seed, epochs=epochs,
                         lr=0.03, batch_size=64, probe=True)
               for (d, m, depth, w), i in grid for seed in seeds]
    runs = _runs(sweep, configs, "grid", "runs")
    rows, all_init, all_trained, layer_values = [], [], [], {}
    for k, ((data, model, depth, width), init) in enumerate(grid):
        group = runs[k * len(seeds):(k + 1) * len(seeds)]
        ok = [r for r in group if r["status"] == "ok"]
        at_init = np.array([[l["sparsity"] for l in r["init"]["layers"]] for r in group], dtype=float)
        trained = np.array([[l["sparsity"] for l in r["trained"]["layers"]] for r in ok], dtype=float)
        all_init += list(at_init.ravel())
        all_trained += list(trained.ravel())
        name = f"{data} {model}, {init} init"
        layer_values[name] = (at_init.mean(0), trained.mean(0) if len(trained) else None)
        rows.append({"setup": name, "init_sparsity": 100 * float(at_init.mean()),
                     "init_min": 100 * float(at_init.min()), "init_max": 100 * float(at_init.max()),
                     "trained_sparsity": 100 * float(trained.mean()) if len(trained) else None,
                     "dead_percent": _mean([100 * r["trained"]["dead_fraction"] for r in ok]),
                     "test_accuracy": _mean([100 * r["final"]["test_accuracy"] for r in ok])})
    mean_init, mean_trained = 100 * float(np.mean(all_init)), 100 * float(np.mean(all_trained))
    gap = abs(mean_init - 50)
    outcome = HOLDS if gap <= 5 else (PARTLY if gap <= 10 else NOT)
    spread = f"{100 * min(all_init):.1f}-{100 * max(all_init):.1f}%"
    text = (f"At initialisation {mean_init:.1f}% of relu outputs were exactly zero (mean over layers, seeds and "
            f"set-ups; every layer between {spread}), against Glorot et al.'s (2011) 'about 50%'; after "
            f"{_n(epochs, 'epoch')} of training it was {mean_trained:.1f}%. The anchor "
            + {HOLDS: "holds.", PARTLY: "holds roughly (within 10 points).", NOT: "does not hold here."}[outcome]
            + " Training moved the sparsity by layer in both directions rather than uniformly up; Glorot et al. "
              "trained with an L1 penalty on activations, which this lab does not use." + _quick_note(quick))
    columns = [
        Column("setup", "set-up", numeric=False),
        Column("init_sparsity", "zeros at init %", lambda r: fmt(r["init_sparsity"])),
        Column("init_min", "layer range at init %", lambda r: f"{fmt(r['init_min'])}-{fmt(r['init_max'])}"),
        Column("trained_sparsity", "zeros after training %", lambda r: fmt(r["trained_sparsity"])),
        Column("dead_percent", "dead % after", lambda r: fmt(r["dead_percent"])),
        Column("test_accuracy", "test acc %", lambda r: fmt(r["test_accuracy"])),
    ]
    with figure(out / "sparsity.png", 1, len(layer_values), title="Exact zeros per relu layer",
                size=(4.6 * len(layer_values), 4.0)) as (fig, axes):
        for ax, (name, (before, after)) in zip(axes[0], layer_values.items()):
            x = np.arange(1, len(before) + 1)
            ax.bar(x - 0.2, 100 * before, width=0.4, label="at init", color="#9bb7e0")
            if after is not None:
                ax.bar(x + 0.2, 100 * after, width=0.4, label="after training", color="#1f4e9c")
            ax.axhline(50, color="0.3", linestyle=":", linewidth=1)
            ax.set(title=name, xlabel="relu layer (1 = input side)", ylim=(0, 100), xticks=x)
        axes[0, 0].set_ylabel("exact zeros (%)")
        axes[0, 0].legend(frameon=False, fontsize=8)
    figures = [("sparsity.png", "Fraction of exact zeros in each relu layer's output over the whole training split, "
                                "at initialisation and after training (mean over seeds); dotted line: 50 %.")]
    settings = {"setups": [f"{d} {m} depth {dp} width {w}" for d, m, dp, w in setups], "inits": list(inits),
                "seeds": list(seeds), "epochs": epochs, "lr": 0.03, "optimizer": "sgd (momentum 0.9)"}
    measured = {"mean_sparsity_at_init": mean_init, "mean_sparsity_trained": mean_trained}
    return Outcome(settings, [("Sparsity at init and after training", columns, rows)],
                   {"outcome": outcome, "text": text}, figures, runs, measured)


# -- dying ---------------------------------------------------------------------------------------------------------
def _dying(quick: bool, sweep: Sweep, out: Path) -> Outcome:
    activations = ("relu", "leaky_relu", "elu")
    if quick:
        base = RunConfig(data="digits", model="mlp", depth=2, width=16, epochs=2, lr=0.03, batch_size=64)
        lrs, shifts, seeds, revive_cases = (0.03, 0.5), (0.0, -2.0), (0,), ((0.03, -2.0),)
    else:
        base = RunConfig(data="digits", model="mlp", depth=4, width=64, epochs=10, lr=0.03, batch_size=64)
        lrs, shifts, seeds = (0.01, 0.03, 0.1, 0.2, 0.3, 0.5), (0.0, -0.5, -1.0, -2.0, -4.0), (0, 1, 2)
        revive_cases = ((0.3, 0.0), (0.03, -1.0), (0.03, -2.0))
    revive_after = 1 if quick else 2

    def configs(act: str, lr: float, shift: float, revive: int | None = None) -> list[RunConfig]:
        return [_replace(base, activation=act, lr=lr, bias_shift=shift, seed=s, revive_after=revive) for s in seeds]

    def dead_of(run: Mapping[str, Any]) -> float | None:
        if run["status"] != "ok":
            return None
        key = "dead_fraction" if run["config"]["activation"] == "relu" else "inactive_fraction"
        return 100 * run["final"][key]

    lr_runs = {(a, lr): _runs(sweep, configs(a, lr, 0.0), "lr", f"lr {a} {lr:g}") for a in activations
               for lr in lrs}
    shift_runs = {(a, sh): _runs(sweep, configs(a, base.lr, sh), "shift", f"shift {a} {sh:g}") for a in activations
                  for sh in shifts}
    revive_runs = {case: (_runs(sweep, configs("relu", case[0], case[1]), "lr" if case[1] == 0 else "shift",
                                "revive baseline"),
                          _runs(sweep, configs("relu", case[0], case[1], revive_after), "revive", "revive"))
                   for case in revive_cases}

    def summary(kind: str, act: str, value: float, group: list) -> dict[str, Any]:
        return {"sweep": kind, "activation": act, "value": value, "dead_percent": _mean([dead_of(r) for r in group]),
                "dead_max": max([d for d in map(dead_of, group) if d is not None], default=None),
                "test_accuracy": _mean([100 * r["final"]["test_accuracy"] for r in group if r["status"] == "ok"]),
                "diverged": sum(r["status"] == "diverged" for r in group), "runs": len(group)}

    lr_rows = [summary("lr", a, lr, lr_runs[(a, lr)]) for a in activations for lr in lrs]
    shift_rows = [summary("bias shift", a, sh, shift_runs[(a, sh)]) for a in activations for sh in shifts]
    revive_rows = []
    for (lr, shift), (plain, revived) in revive_runs.items():
        before = [100 * r["epochs"][revive_after - 1]["dead_fraction"] for r in revived
                  if len(r["epochs"]) >= revive_after]
        revive_rows.append({
            "case": f"lr {lr:g}, bias shift {shift:g}", "dead_before": _mean(before),
            "revived_units": _mean([r["revived"] for r in revived if r["revived"] is not None]),
            "dead_plain": _mean([dead_of(r) for r in plain]), "dead_revived": _mean([dead_of(r) for r in revived]),
            "acc_plain": _mean([100 * r["final"]["test_accuracy"] for r in plain if r["status"] == "ok"]),
            "acc_revived": _mean([100 * r["final"]["test_accuracy"] for r in revived if r["status"] == "ok"]),
            "diverged": sum(r["status"] == "diverged" for r in plain + revived), "runs": len(plain + revived),
        })
    relu_lr = [r for r in lr_rows if r["activation"] == "relu"]
    # The worst learning rate among those where most runs finished (a lone survivor is not a measurement).
    measured_lr = [r for r in relu_lr if r["dead_percent"] is not None and 2 * r["diverged"] < r["runs"]] or [
        r for r in relu_lr if r["dead_percent"] is not None]
    worst = max(measured_lr, key=lambda r: r["dead_percent"], default=None)
    lowest = relu_lr[0]
    worst_dead = worst["dead_percent"] if worst else 0.0
    low_dead = lowest["dead_percent"] if lowest["dead_percent"] is not None else math.nan
    if worst is None:
        worst = lowest
    if worst_dead >= 40 and low_dead <= 10:
        outcome = HOLDS
    elif worst_dead >= 20:
        outcome = PARTLY
    else:
        outcome = NOT
    def diverged_note(row: Mapping[str, Any]) -> str:
        return f" ({row['runs'] - row['diverged']} of {row['runs']} runs; the rest diverged)" if row["diverged"] else ""

    lr_text = ", ".join(f"{r['value']:g}: " + ("all diverged" if r["dead_percent"] is None
                                                 else f"{fmt(r['dead_percent'])}%{diverged_note(r)}")
                        for r in relu_lr)
    others = []
    for act in activations[1:]:
        trained = [r for r in lr_rows if r["activation"] == act and r["dead_percent"] is not None]
        failed = [r["value"] for r in lr_rows if r["activation"] == act and r["diverged"] == r["runs"]]
        others.append(f"{act} at most {fmt(max((r['dead_percent'] for r in trained), default=None))}% inactive"
                      + (f", but it diverged at lr {', '.join(f'{v:g}' for v in failed)}" if failed else ""))
    recovered = {}
    for act in activations:
        rows_of = [r for r in shift_rows if r["activation"] == act and r["value"] != 0]
        recovered[act] = [r["value"] for r in rows_of if (r["test_accuracy"] or 0) >= 50]
    shift_text = ", ".join(f"{r['value']:g}: {fmt(r['dead_percent'])}%" for r in shift_rows
                           if r["activation"] == "relu")
    shift_fix = "; ".join(
        f"{act} still trained (test accuracy >= 50%) at shift "
        f"{', '.join(f'{v:g}' for v in recovered[act]) or 'none of them'}" for act in activations)

    def revive_case(r: Mapping[str, Any]) -> str:
        if r["dead_revived"] is None:
            return f"{r['case']}: {fmt(r['dead_plain'])}% dead without revive; with revive every run diverged"
        return (f"{r['case']}: {fmt(r['dead_plain'])}% dead without revive vs {fmt(r['dead_revived'])}% with it "
                f"(test accuracy {fmt(r['acc_plain'])}% vs {fmt(r['acc_revived'])}%)")

    revive_text = "; ".join(revive_case(r) for r in revive_rows)
    text = (f"Relu's dead units at the end of training, by learning rate (mean over {_n(len(seeds), 'seed')}): "
            f"{lr_text}. The anchor says up to 40% of a network can die at a too-high learning rate: it "
            + {HOLDS: f"holds, and here it went further: at lr {worst['value']:g} {fmt(worst_dead)}% died"
                      + (" and accuracy fell to chance" if (worst["test_accuracy"] or 0) < 20 else ""),
               PARTLY: "holds partly (fewer than 40% died)", NOT: "does not hold here"}[outcome]
            + f". Leaky variants cannot die (their gradient is never zero; the same event counts as inactive): "
              f"{'; '.join(others)}. A negative bias shift at init kills relu units at once (dead % by shift: "
              f"{shift_text}); {shift_fix}. Revive after epoch {revive_after}: {revive_text}. Revive repairs units "
              "killed by initialisation; units killed by a too-high learning rate die again (or the run diverges) "
              "unless the rate is lowered." + _quick_note(quick))
    columns_sweep = [
        Column("activation", "activation", numeric=False), Column("sweep", "swept", numeric=False),
        Column("value", "value", lambda r: f"{r['value']:g}"),
        Column("dead_percent", "dead % (relu) / inactive %", lambda r: fmt(r["dead_percent"])),
        Column("test_accuracy", "test acc %", lambda r: fmt(r["test_accuracy"])),
        Column("diverged", "diverged", lambda r: f"{r['diverged']}/{r['runs']}"),
    ]
    columns_revive = [
        Column("case", "relu run", numeric=False),
        Column("dead_before", f"dead % after epoch {revive_after}", lambda r: fmt(r["dead_before"])),
        Column("revived_units", "units revived", lambda r: fmt(r["revived_units"])),
        Column("dead_plain", "dead % end, no revive", lambda r: fmt(r["dead_plain"])),
        Column("dead_revived", "dead % end, revive", lambda r: fmt(r["dead_revived"])),
        Column("acc_plain", "test acc % no revive", lambda r: fmt(r["acc_plain"])),
        Column("acc_revived", "test acc % revive", lambda r: fmt(r["acc_revived"])),
    ]
    with figure(out / "dying.png", 1, 3, title="Dying relu units", size=(16, 4.4)) as (fig, axes):
        for k, act in enumerate(activations):
            label = "relu: dead" if act == "relu" else f"{act}: inactive"
            style = "-" if act == "relu" else "--"
            xs = [r["value"] for r in lr_rows if r["activation"] == act]
            axes[0, 0].plot(xs, [np.nan if r["dead_percent"] is None else r["dead_percent"] for r in lr_rows
                                 if r["activation"] == act], style, marker="o", color=colour(k), label=label)
            xs = [r["value"] for r in shift_rows if r["activation"] == act]
            axes[0, 1].plot(xs, [np.nan if r["dead_percent"] is None else r["dead_percent"] for r in shift_rows
                                 if r["activation"] == act], style, marker="o", color=colour(k), label=label)
        axes[0, 0].axhline(40, color="0.4", linestyle=":", linewidth=1, label="40% (anchor)")
        axes[0, 0].set(title="vs learning rate (end of training)", xlabel="learning rate", xscale="log",
                       ylabel="% of hidden units", ylim=(-3, 103))
        axes[0, 1].set(title=f"vs bias shift at init (lr {base.lr:g})", xlabel="bias shift", ylim=(-3, 103))
        for k, ((lr, shift), (plain, revived)) in enumerate(revive_runs.items()):
            band(axes[0, 2], report._series(plain, "dead_fraction", 100), color=colour(k + 3),
                 label=f"lr {lr:g}, shift {shift:g}", style="--")
            band(axes[0, 2], report._series(revived, "dead_fraction", 100), color=colour(k + 3),
                 label=f"  + revive after epoch {revive_after}")
        axes[0, 2].set(title="relu dead % per epoch: without (dashed) and with revive", xlabel="epoch",
                       ylim=(-3, 103))
        integer_ticks(axes[0, 2])
        for ax in axes[0]:
            ax.legend(frameon=False, fontsize=7)
    figures = [("dying.png", "Left: dead (relu) or inactive (leaky_relu, elu) hidden units after training against "
                             "the learning rate; middle: against a constant added to every hidden bias at init; "
                             "right: relu's dead units per epoch with and without relulab.revive.")]
    settings = {"data": base.data, "model": f"mlp, depth {base.depth}, width {base.width}", "epochs": base.epochs,
                "learning_rates": list(lrs), "bias_shifts": list(shifts), "seeds": list(seeds),
                "optimizer": "sgd (momentum 0.9)", "init": base.init, "revive_after_epoch": revive_after}
    runs = [r for group in lr_runs.values() for r in group] + [r for group in shift_runs.values() for r in group] \
        + [r for _, revived in revive_runs.values() for r in revived]
    measured = {"relu_dead_percent_by_lr": {f"{r['value']:g}": r["dead_percent"] for r in relu_lr},
                "worst_lr": worst["value"] if worst else None, "worst_dead_percent": worst_dead}
    return Outcome(settings, [("Dead / inactive units vs learning rate and bias shift", columns_sweep,
                               lr_rows + shift_rows), ("Revive as a remedy (relu)", columns_revive, revive_rows)],
                   {"outcome": outcome, "text": text}, figures, runs, measured)


# -- init ----------------------------------------------------------------------------------------------------------
def _init(quick: bool, sweep: Sweep, out: Path) -> Outcome:
    inits = ("xavier", "he")
    if quick:
        base = RunConfig(data="digits", model="mlp", depth=30, width=16, epochs=2, batch_size=64, activation="relu")
        lrs, seeds = (0.003,), (0,)
    else:
        base = RunConfig(data="digits", model="mlp", depth=30, width=64, epochs=20, batch_size=64, activation="relu")
        lrs, seeds = (0.001, 0.003, 0.01), (0, 1, 2)
    groups = {(i, lr): _runs(sweep, [_replace(base, init=i, lr=lr, seed=s) for s in seeds], "grid", f"{i} {lr:g}")
              for i in inits for lr in lrs}
    chance = 90.0  # ten balanced classes
    rows = []
    for (init, lr), group in groups.items():
        ok = [r for r in group if r["status"] == "ok"]
        rows.append({"init": init, "lr": lr,
                     "train_error": _mean([100 * r["final"]["train_error"] for r in ok]),
                     "first_error": _mean([100 * r["epochs"][0]["train_error"] for r in ok if r["epochs"]]),
                     "train_loss": _mean([r["final"]["train_loss"] for r in ok]),
                     "test_accuracy": _mean([100 * r["final"]["test_accuracy"] for r in ok]),
                     "diverged": len(group) - len(ok), "runs": len(group)})
    best = {}
    for init in inits:
        candidates = [r for r in rows if r["init"] == init and r["train_error"] is not None]
        best[init] = min(candidates, key=lambda r: r["train_error"]) if candidates else None
    he, xavier = best["he"], best["xavier"]
    he_err = he["train_error"] if he else math.nan
    xavier_err = xavier["train_error"] if xavier else math.nan
    if he_err <= 50 and xavier_err >= 80:
        outcome = HOLDS
    elif he_err < xavier_err - 10:
        outcome = PARTLY
    else:
        outcome = NOT
    text = (f"A {base.depth}-layer relu MLP (width {base.width}) on digits, {base.epochs} epochs, best of learning "
            f"rates {', '.join(f'{lr:g}' for lr in lrs)} for each init ({_n(len(seeds), 'seed')}): with He init the "
            f"training error fell to {fmt(he_err)}% (lr {he['lr']:g}, test accuracy "
            f"{fmt(he['test_accuracy'])}%); with Xavier init it stayed at {fmt(xavier_err)}% (chance is "
            f"{chance:.0f}%; best of the learning rates tried). He et al. (2015): a 30-layer relu network with Xavier "
            "init stalls, with He init it converges. The anchor "
            + {HOLDS: "holds.", PARTLY: "holds partly: Xavier learned more slowly but did not stall completely.",
               NOT: "does not hold here."}[outcome] + _quick_note(quick))
    columns = [
        Column("init", "init", numeric=False), Column("lr", "lr", lambda r: f"{r['lr']:g}"),
        Column("first_error", "train err % epoch 1", lambda r: fmt(r["first_error"])),
        Column("train_error", "train err % last", lambda r: fmt(r["train_error"])),
        Column("train_loss", "train loss last", lambda r: fmt(r["train_loss"], 3)),
        Column("test_accuracy", "test acc %", lambda r: fmt(r["test_accuracy"])),
        Column("diverged", "diverged", lambda r: f"{r['diverged']}/{r['runs']}"),
    ]
    with figure(out / "init.png", 1, 2, title=f"{base.depth}-layer relu MLP: Xavier vs He init") as (fig, axes):
        for k, init in enumerate(inits):
            for j, lr in enumerate(lrs):
                style = "-" if best[init] is not None and best[init]["lr"] == lr else ":"
                band(axes[0, 0], report._series(groups[(init, lr)], "train_error", 100), color=colour(k),
                     label=f"{init}, lr {lr:g}", style=style)
                band(axes[0, 1], report._series(groups[(init, lr)], "train_loss"), color=colour(k),
                     label=f"{init}, lr {lr:g}", style=style)
        axes[0, 0].set(title="training error (%)", xlabel="epoch", ylim=(-2, 102))
        axes[0, 1].set(title="training loss", xlabel="epoch")
        axes[0, 0].legend(frameon=False, fontsize=8)
        integer_ticks(*axes[0])
    figures = [("init.png", "Training error and loss per epoch (mean and range over seeds); solid: the best "
                            "learning rate of each init, dotted: the others.")]
    settings = {"data": base.data, "model": f"mlp, depth {base.depth}, width {base.width}", "epochs": base.epochs,
                "learning_rates": list(lrs), "seeds": list(seeds), "optimizer": "sgd (momentum 0.9)"}
    measured = {"he_best_train_error": he_err, "xavier_best_train_error": xavier_err}
    runs = [r for group in groups.values() for r in group]
    return Outcome(settings, [("Xavier vs He init", columns, rows)], {"outcome": outcome, "text": text}, figures,
                   runs, measured)


# -- born dead -----------------------------------------------------------------------------------------------------
def born_dead_cell(config: Mapping[str, Any]) -> dict[str, Any]:
    """``draws`` relu MLPs of one width and depth, each freshly initialised: how many are born dead?

    A network is born dead when its output is constant over ``points`` inputs evenly spaced in [-1, 1]^d_in:
    every output within ``rtol * max(1, max |f|)`` of the first, the criterion of :func:`relulab.born_dead`.
    Weights and biases come from ``init`` (relulab's He init by default). Each draw is one plain forward pass;
    :func:`relulab.born_dead` (a monitored pass, slower) is run on the first ``checks`` draws and must agree.
    """
    import torch

    from ..monitor import born_dead
    from .models import initialise, mlp

    width, depth, draws = int(config["width"]), int(config["depth"]), int(config["draws"])
    checks, rtol = int(config.get("checks", 0)), 1e-6
    torch.manual_seed(int(config["seed"]) * 1_000_003 + 1009 * width + depth)
    d_in = int(config.get("d_in", 1))
    grid = torch.linspace(-1.0, 1.0, int(config.get("points", 200)))
    inputs = grid.reshape(-1, 1) if d_in == 1 else torch.cartesian_prod(*[grid] * d_in)
    model = mlp(d_in, 1, depth=depth, width=width, activation="relu").eval()
    dead = agreed = 0
    for draw in range(draws):
        initialise(model, config.get("init", "he"))
        with torch.no_grad():
            output = model(inputs).double()
        constant = bool((output - output[:1]).abs().max() <= rtol * max(1.0, float(output.abs().max())))
        dead += constant
        if draw < checks:
            agreed += born_dead(model, inputs, rtol=rtol).born_dead == constant
    return {"width": width, "depth": depth, "draws": draws, "born_dead": dead, "probability": dead / draws,
            "checked": min(checks, draws), "agreed": agreed}


def _born_dead(quick: bool, sweep: Sweep, out: Path) -> Outcome:
    if quick:
        widths, depths, draws, checks = (2, 16), (1, 10, 30), 20, 5
    else:
        widths, depths, draws, checks = (2, 4, 8, 16), (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50), 1000, 20
    tasks = [Task("relulab.lab.experiments:born_dead_cell",
                  {"width": w, "depth": d, "draws": draws, "seed": 0, "d_in": 1, "points": 200, "init": "he",
                   "checks": checks},
                  label=f"born-dead-w{w}-d{d}") for w in widths for d in depths]
    cells = sweep.run(tasks, label="cells")
    table = {(c["width"], c["depth"]): c for c in cells}
    rows = []
    for d in depths:
        row: dict[str, Any] = {"depth": d}
        for w in widths:
            cell = table[(w, d)]
            low, high = wilson(cell["born_dead"], cell["draws"])
            row[f"w{w}"], row[f"w{w}_low"], row[f"w{w}_high"] = cell["probability"], low, high
        rows.append(row)
    checked = sum(c["checked"] for c in cells)
    agreed = sum(c["agreed"] for c in cells)
    if agreed != checked:
        raise RuntimeError(f"born-dead: the plain check and relulab.born_dead disagreed on {checked - agreed} of "
                           f"{checked} networks")
    deepest = depths[-1]
    final = {w: table[(w, deepest)]["probability"] for w in widths}
    shallow = {w: table[(w, depths[0])]["probability"] for w in widths}
    rose = [w for w in widths if final[w] >= shallow[w] + 0.02]  # more than noise of a few draws
    flat = [w for w in widths if w not in rose]
    near_one = [w for w in widths if final[w] >= 0.9]
    if len(near_one) == len(widths):
        outcome = HOLDS
    elif near_one and all(final[w] >= shallow[w] for w in widths):
        outcome = PARTLY
    else:
        outcome = NOT
    finals = ", ".join(f"width {w}: {final[w]:.3f}" for w in widths)
    widths_text = lambda ws: ", ".join(map(str, ws))
    text = (f"Probability that a relu MLP (1-D input, He init from relulab.nn.init_) is born dead at depth "
            f"{deepest}, {draws} draws per cell: {finals} (at depth {depths[0]}: "
            f"{', '.join(f'{shallow[w]:.3f}' for w in widths)}). Lu et al. (2019) prove that for a fixed width the "
            "probability tends to 1 as depth grows. "
            + {HOLDS: f"Every width is near 1 by depth {deepest}: the anchor holds.",
               PARTLY: f"It is near 1 by depth {deepest} for width {widths_text(near_one)}"
                       + (f" and rising for width {widths_text([w for w in rose if w not in near_one])}"
                          if [w for w in rose if w not in near_one] else "")
                       + (f"; width {widths_text(flat)} stayed near 0 ({', '.join(f'{final[w]:.3f}' for w in flat)})"
                          if flat else "")
                       + f": wider networks need far more depth, so within depth {deepest} the anchor holds "
                         "partly.",
               NOT: "The probability did not approach 1 with depth here: the anchor does not hold."}[outcome]
            + f" (relulab.born_dead agreed with the plain check on all {checked} networks it was run on.)"
            + _quick_note(quick))
    columns = [Column("depth", "depth", lambda r: str(r["depth"]))] + [
        Column(f"w{w}", f"P(born dead) width {w}", lambda r, w=w: fmt(r[f"w{w}"], 3)) for w in widths]
    with figure(out / "born_dead.png", 1, 1, title="Probability of a relu network born dead",
                size=(7.5, 4.6)) as (fig, axes):
        ax = axes[0, 0]
        for k, w in enumerate(widths):
            p = np.array([r[f"w{w}"] for r in rows])
            low = np.array([r[f"w{w}_low"] for r in rows])
            high = np.array([r[f"w{w}_high"] for r in rows])
            ax.plot(depths, p, "o-", color=colour(k), label=f"width {w}", markersize=3)
            ax.fill_between(depths, low, high, color=colour(k), alpha=0.18, linewidth=0)
        ax.set(xlabel="depth (hidden layers)", ylabel="P(constant output)", ylim=(-0.03, 1.03))
        ax.legend(frameon=False)
    figures = [("born_dead.png", f"Fraction of {draws} freshly initialised networks per cell whose output is "
                                 "constant over 200 inputs in [-1, 1], with 95% Wilson intervals.")]
    settings = {"widths": list(widths), "depths": list(depths), "draws_per_cell": draws, "inputs": "200 points in "
                "[-1, 1] (d_in = 1)", "init": "he (relulab.nn.init_)", "criterion": "relulab.born_dead"}
    measured = {"probability_at_max_depth": {str(w): final[w] for w in widths},
                "born_dead_checks": {"checked": checked, "agreed": agreed}}
    cell_rows = [dict(c, low=wilson(c["born_dead"], c["draws"])[0], high=wilson(c["born_dead"], c["draws"])[1])
                 for c in cells]
    csv_fields = ("width", "depth", "draws", "born_dead", "probability", "low", "high", "checked", "agreed")
    return Outcome(settings, [("P(born dead) by depth and width", columns, rows)],
                   {"outcome": outcome, "text": text}, figures, [], measured, (csv_fields, cell_rows))


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    Experiment("convergence", "Does relu train faster than tanh and sigmoid?",
               "Krizhevsky et al. 2012: a 4-layer CNN with relu reached 25% training error on CIFAR-10 six times "
               "faster than with tanh.", _convergence),
    Experiment("vanishing", "Vanishing gradients: sigmoid, tanh and relu in a 20-layer MLP",
               "Sigmoid's input-layer gradients are orders of magnitude below its output layer's (Glorot & Bengio "
               "2010); relu mitigates this.", _vanishing),
    Experiment("sparsity", "How sparse are relu activations?",
               "Glorot, Bordes & Bengio 2011: with a symmetric init about 50% of relu outputs are exactly zero.",
               _sparsity),
    Experiment("dying", "Dying relu: learning rate, bias and the remedies",
               "Up to 40% of a network can be dead at a too-high learning rate (CS231n); leaky variants and good "
               "init fix it.", _dying),
    Experiment("init", "Xavier vs He init in a 30-layer relu network",
               "He et al. 2015: a 30-layer relu network with Xavier init stalls; with He init it converges.", _init),
    Experiment("born-dead", "Born dead: deep narrow relu networks at initialisation",
               "Lu et al. 2019: the probability that a relu network is born dead tends to 1 with depth for a fixed "
               "width.", _born_dead),
)}


def validate_experiment(name: str, *, out: str | Path | None = None, jobs: int | None = None) -> tuple[str, Path, int]:
    """Check a ``relulab run`` command line; returns (name, out, jobs) or raises :class:`ConfigError`."""
    if name not in EXPERIMENTS:
        close = difflib.get_close_matches(name, list(EXPERIMENTS), n=2, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(f"unknown experiment {name!r}{hint} Known: {', '.join(EXPERIMENTS)}")
    path = _out(out if out is not None else Path("relulab-report") / name)
    return name, path, default_jobs() if jobs is None else _integer("--jobs", jobs)


# What each experiment can take from the user: its claim must still be about the same thing on other data or
# another model. vanishing and init are about a deep MLP by design (data only); sparsity compares the lab's data
# sets and models, born-dead draws random networks without data (neither).
USER_INPUTS = {"convergence": ("data", "model"), "dying": ("data", "model"), "vanishing": ("data",),
               "init": ("data",), "sparsity": (), "born-dead": ()}


@dataclass(frozen=True)
class UserInputs:
    """The user's data and/or model for ``relulab run`` (see :func:`validate_user_inputs`)."""

    data: Any = None  # a prepared relulab.lab.data.Dataset
    model: Any = None  # a relulab.lab.user.ModelSource

    def note(self) -> str:
        parts = ([f"data {self.data.name}"] if self.data is not None else []) + (
            [f"model {self.model.label} (candidates put in by its factory or relulab.nn.swap)"]
            if self.model is not None else [])
        return "Run on your " + " and your ".join(parts) + " instead of the preset's."


def validate_user_inputs(name: str, *, data: Any = None, model: Any = None, target: str | None = None,
                         task: str | None = None, out: Path) -> UserInputs | None:
    """Check ``--data``/``--model`` for experiment ``name`` (None when neither is given). Writes nothing."""
    if data is None and model is None:
        return None
    from . import user

    accepted = USER_INPUTS.get(name, ())
    for option, value in (("data", data), ("model", model)):
        if value is not None and option not in accepted:
            why = {"sparsity": "it compares the lab's data sets and models",
                   "born-dead": "it draws random networks at initialisation, without data"}.get(
                name, "its claim is about the preset's deep MLP")
            raise ConfigError(f"--{option}: relulab run {name} does not take your {option}: {why} (accepted: "
                              + (", ".join(f"{n} ({'/'.join(v)})" for n, v in USER_INPUTS.items() if v)) + ")")
    prepared = user.prepare_data(data, target=target, task=task) if data is not None else None
    if prepared is not None and prepared.task != "classification":
        raise ConfigError(f"--data: relulab run measures accuracy and train error: it needs classes; "
                          f"{prepared.name} is a regression")
    source = user.model_source(model, out=out) if model is not None else None
    if source is not None:
        from .data import load

        user.check_model(replace(source, baseline="relu"), prepared if prepared is not None else load("digits"))
    return UserInputs(prepared, source)


class _WithUserInputs:
    """The experiment's sweep with every training task pointed at the user's data and/or model."""

    def __init__(self, sweep: Sweep, inputs: UserInputs, out: Path) -> None:
        from . import user

        self.sweep = sweep
        self.data = str(user.save_data(inputs.data, out)) if inputs.data is not None else None
        self.model = inputs.model
        if inputs.model is not None:
            user.write_inputs(inputs.model)

    def run(self, tasks: Sequence[Task], *, label: str = "runs") -> list[Any]:
        return self.sweep.run([self._point(t) for t in tasks], label=label)

    def _point(self, task: Task) -> Task:
        if task.fn != TRAIN:
            return task
        config = dict(task.config)
        if self.data is not None:
            config["data"] = self.data
        if self.model is not None:
            config.update(model=self.model.spec, fingerprint=self.model.fingerprint)
        return Task(task.fn, config, task.label)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sweep, name)


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
        outcome = experiment.run(quick, sweep if inputs is None else _WithUserInputs(sweep, inputs, path), path)
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
    _write_outputs(path, results, title=heading, intro=intro, tables=outcome.tables,
                   figures=outcome.figures, runs=outcome.runs, csv_rows=outcome.csv_rows)
    verdict = f"Verdict: {outcome.verdict['outcome']}. {outcome.verdict['text']}"
    text = "\n\n".join([heading, *intro, render_tables(outcome.tables), textwrap.fill(verdict, 110)])
    return LabResult(results, text, path)
