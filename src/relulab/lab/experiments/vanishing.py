"""vanishing: per-layer gradient norms of a 20-layer MLP, sigmoid/tanh/relu, default vs He init.

Glorot & Bengio (2010): sigmoid's input-layer gradients are orders of magnitude below its output layer's.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import stats
from ..report import Column, colour, figure, fmt, integer_ticks
from ..sweep import Sweep
from ..train import RunConfig
from .base import HOLDS, NOT, PARTLY, Experiment, Plan, Summary, train_runs, with_changes

ACTIVATIONS, INITS = ("sigmoid", "tanh", "relu"), ("default", "he")


class Vanishing(Experiment):
    name = "vanishing"
    title = "Vanishing gradients: sigmoid, tanh and relu in a 20-layer MLP"
    anchor = ("Sigmoid's input-layer gradients are orders of magnitude below its output layer's (Glorot & Bengio "
              "2010); relu mitigates this.")
    order = 2
    accepts = ("data",)

    def plan(self, quick: bool) -> Plan:
        if quick:
            base = RunConfig(data="digits", model="mlp", depth=20, width=16, epochs=1, lr=0.03, batch_size=64,
                             probe=True)
            seeds = (0,)
        else:
            base = RunConfig(data="digits", model="mlp", depth=20, width=64, epochs=10, lr=0.03, batch_size=64,
                             probe=True)
            seeds = (0, 1, 2)
        settings = {"data": base.data, "model": f"mlp, depth {base.depth}, width {base.width}",
                    "epochs": base.epochs, "lr": base.lr, "optimizer": "sgd (momentum 0.9)", "seeds": list(seeds)}
        return Plan(base=base, seeds=seeds, grid=[(a, i) for a in ACTIVATIONS for i in INITS], settings=settings)

    def measure(self, plan: Plan, sweep: Sweep) -> Plan:
        runs = train_runs(sweep, [with_changes(plan.base, activation=a, init=i, seed=s) for a, i in plan.grid
                                  for s in plan.seeds], "grid", "runs")
        n = len(plan.seeds)
        return Plan(runs=runs, groups={(a, i): runs[k * n:(k + 1) * n] for k, (a, i) in enumerate(plan.grid)})

    def summarise(self, plan: Plan, measured: Plan) -> Summary:
        rows = []
        for (act, init), group in measured.groups.items():
            at_init = [r["init"]["weight_grad"] for r in group]
            trained = [r["epochs"][-1]["weight_grad"] for r in group if r["status"] == "ok" and r["epochs"]]
            gm = lambda values: stats.geometric_mean(values, finite_only=True)
            rows.append({
                "activation": act, "init": init,
                "input_grad": gm([g[0] for g in at_init]), "output_grad": gm([g[-1] for g in at_init]),
                "ratio_init": gm([g[0] / g[-1] for g in at_init if g[-1] > 0]),
                "ratio_trained": gm([g[0] / g[-1] for g in trained if g[-1] > 0]),
                "test_accuracy": stats.mean([100 * r["final"]["test_accuracy"] for r in group
                                             if r["final"]["test_accuracy"] is not None], finite_only=True),
                "diverged": sum(r["status"] == "diverged" for r in group), "runs": len(group),
            })
        row = {(r["activation"], r["init"]): r for r in rows}
        sigmoid = row[("sigmoid", "default")]["ratio_init"]
        orders = -math.log10(sigmoid) if sigmoid else math.nan
        columns = [
            Column("activation", "activation", numeric=False), Column("init", "init", numeric=False),
            Column("input_grad", "input layer |g| at init", lambda r: fmt(r["input_grad"], sci=True)),
            Column("output_grad", "output layer |g| at init", lambda r: fmt(r["output_grad"], sci=True)),
            Column("ratio_init", "input/output at init", lambda r: fmt(r["ratio_init"], sci=True)),
            Column("ratio_trained", "input/output, last epoch", lambda r: fmt(r["ratio_trained"], sci=True)),
            Column("test_accuracy", "test acc %", lambda r: fmt(r["test_accuracy"])),
        ]
        numbers = {"sigmoid_default_ratio_at_init": sigmoid, "orders_of_magnitude": orders,
                   "ratios_at_init": {f"{a}/{i}": row[(a, i)]["ratio_init"] for a, i in plan.grid}}
        return Summary([("Gradient ratio input/output layer", columns, rows)], numbers, measured.runs,
                       facts={"row": row})

    def verdict(self, plan: Plan, summary: Summary) -> tuple[str, str]:
        row, base = summary.facts["row"], plan.base
        sigmoid, orders = summary.measured["sigmoid_default_ratio_at_init"], summary.measured["orders_of_magnitude"]
        outcome = HOLDS if orders >= 2 else (PARTLY if orders >= 1 else NOT)
        relu_he, relu_default = row[("relu", "he")]["ratio_init"], row[("relu", "default")]["ratio_init"]
        tanh_default = row[("tanh", "default")]["ratio_init"]
        text = (f"In a {base.depth}-layer MLP (width {base.width}) at initialisation with PyTorch's default init, "
                f"the input layer's weight gradient was {fmt(sigmoid, sci=True)} times the output layer's for "
                f"sigmoid ({orders:.1f} orders of magnitude below), {fmt(tanh_default, sci=True)} for tanh and "
                f"{fmt(relu_default, sci=True)} for relu; with He init relu's ratio was {fmt(relu_he, sci=True)}. "
                "The anchor (sigmoid's input-layer gradients orders of magnitude below its output layer's) "
                + {HOLDS: "holds.", PARTLY: "holds only by about one order of magnitude.",
                   NOT: "does not hold here."}[outcome]
                + (" Relu by itself does not prevent vanishing here: with PyTorch's default init (weights "
                   "U(±1/sqrt(fan in)), too small for relu) its gradients vanish too; with He init they do not."
                   if relu_default and relu_he and relu_default < 1e-2 <= relu_he else ""))
        return outcome, text

    def plot(self, plan: Plan, measured: Plan, summary: Summary, out: Path) -> list[tuple[str, str]]:
        base = plan.base
        with figure(out / "vanishing.png", 1, 2, title=f"Gradient norm per layer, {base.depth}-layer MLP") \
                as (fig, axes):
            for k, act in enumerate(ACTIVATIONS):
                for init, style in zip(INITS, ("--", "-")):
                    group = measured.groups[(act, init)]
                    curves = [("init", [r["init"]["weight_grad"] for r in group]),
                              ("trained", [r["epochs"][-1]["weight_grad"] for r in group if r["epochs"]])]
                    for ax, (_, grads) in zip(axes[0], curves):
                        if grads:
                            # a zero gradient counts as 1e-300: it pulls the mean down instead of being left out
                            values = stats.geometric_mean_columns(np.maximum(np.array(grads), 1e-300))
                            ax.plot(np.arange(1, len(values) + 1), values, style, marker="o", markersize=3,
                                    color=colour(k), label=f"{act}, {init} init")
            axes[0, 0].set(title="at initialisation", xlabel="layer (1 = input)", ylabel="RMS ||dL/dW||",
                           yscale="log")
            axes[0, 1].set(title=f"during the last epoch ({base.epochs})", xlabel="layer (1 = input)", yscale="log")
            axes[0, 0].legend(frameon=False, fontsize=8)
            integer_ticks(*axes[0])
        return [("vanishing.png", "Root-mean-square weight-gradient norm of every Linear layer, input side left, "
                                  "log scale (geometric mean over seeds). Dashed: PyTorch default init; solid: He "
                                  "init (relulab.nn.init_).")]


EXPERIMENT = Vanishing()
