"""init: a 30-layer relu MLP, Xavier vs He init.

He et al. (2015): a 30-layer relu network with Xavier init stalls; with He init it converges.
"""

from __future__ import annotations

import math
from pathlib import Path

from .. import stats
from ..report import Column, band, colour, figure, fmt, integer_ticks, series
from ..sweep import Sweep
from ..train import RunConfig
from .base import HOLDS, NOT, PARTLY, Experiment, Plan, Summary, plural, train_runs, with_changes

INITS = ("xavier", "he")
CHANCE = 90.0  # train error % of a guess among ten balanced classes


class Init(Experiment):
    name = "init"
    title = "Xavier vs He init in a 30-layer relu network"
    anchor = "He et al. 2015: a 30-layer relu network with Xavier init stalls; with He init it converges."
    order = 5
    accepts = ("data",)

    def plan(self, quick: bool) -> Plan:
        if quick:
            base = RunConfig(data="digits", model="mlp", depth=30, width=16, epochs=2, batch_size=64,
                             activation="relu")
            lrs, seeds = (0.003,), (0,)
        else:
            base = RunConfig(data="digits", model="mlp", depth=30, width=64, epochs=20, batch_size=64,
                             activation="relu")
            lrs, seeds = (0.001, 0.003, 0.01), (0, 1, 2)
        settings = {"data": base.data, "model": f"mlp, depth {base.depth}, width {base.width}",
                    "epochs": base.epochs, "learning_rates": list(lrs), "seeds": list(seeds),
                    "optimizer": "sgd (momentum 0.9)"}
        return Plan(base=base, lrs=lrs, seeds=seeds, settings=settings)

    def measure(self, plan: Plan, sweep: Sweep) -> dict:
        return {(i, lr): train_runs(sweep, [with_changes(plan.base, init=i, lr=lr, seed=s) for s in plan.seeds],
                                    "grid", f"{i} {lr:g}")
                for i in INITS for lr in plan.lrs}

    def summarise(self, plan: Plan, measured: dict) -> Summary:
        rows = []
        for (init, lr), group in measured.items():
            ok = [r for r in group if r["status"] == "ok"]
            mean = lambda values: stats.mean(values, finite_only=True)
            rows.append({"init": init, "lr": lr,
                         "train_error": mean([100 * r["final"]["train_error"] for r in ok]),
                         "first_error": mean([100 * r["epochs"][0]["train_error"] for r in ok if r["epochs"]]),
                         "train_loss": mean([r["final"]["train_loss"] for r in ok]),
                         "test_accuracy": mean([100 * r["final"]["test_accuracy"] for r in ok]),
                         "diverged": len(group) - len(ok), "runs": len(group)})
        best = {}
        for init in INITS:
            candidates = [r for r in rows if r["init"] == init and r["train_error"] is not None]
            best[init] = min(candidates, key=lambda r: r["train_error"]) if candidates else None
        he, xavier = best["he"], best["xavier"]
        columns = [
            Column("init", "init", numeric=False), Column("lr", "lr", lambda r: f"{r['lr']:g}"),
            Column("first_error", "train err % epoch 1", lambda r: fmt(r["first_error"])),
            Column("train_error", "train err % last", lambda r: fmt(r["train_error"])),
            Column("train_loss", "train loss last", lambda r: fmt(r["train_loss"], 3)),
            Column("test_accuracy", "test acc %", lambda r: fmt(r["test_accuracy"])),
            Column("diverged", "diverged", lambda r: f"{r['diverged']}/{r['runs']}"),
        ]
        numbers = {"he_best_train_error": he["train_error"] if he else math.nan,
                   "xavier_best_train_error": xavier["train_error"] if xavier else math.nan}
        runs = [r for group in measured.values() for r in group]
        return Summary([("Xavier vs He init", columns, rows)], numbers, runs, facts={"best": best})

    def verdict(self, plan: Plan, summary: Summary) -> tuple[str, str]:
        base, lrs, he = plan.base, plan.lrs, summary.facts["best"]["he"]
        he_err, xavier_err = summary.measured["he_best_train_error"], summary.measured["xavier_best_train_error"]
        if he_err <= 50 and xavier_err >= 80:
            outcome = HOLDS
        elif he_err < xavier_err - 10:
            outcome = PARTLY
        else:
            outcome = NOT
        text = (f"A {base.depth}-layer relu MLP (width {base.width}) on digits, {base.epochs} epochs, best of "
                f"learning rates {', '.join(f'{lr:g}' for lr in lrs)} for each init "
                f"({plural(len(plan.seeds), 'seed')}): with He init the training error fell to {fmt(he_err)}% (lr "
                f"{he['lr']:g}, test accuracy {fmt(he['test_accuracy'])}%); with Xavier init it stayed at "
                f"{fmt(xavier_err)}% (chance is {CHANCE:.0f}%; best of the learning rates tried). He et al. (2015): "
                "a 30-layer relu network with Xavier init stalls, with He init it converges. The anchor "
                + {HOLDS: "holds.", PARTLY: "holds partly: Xavier learned more slowly but did not stall completely.",
                   NOT: "does not hold here."}[outcome])
        return outcome, text

    def plot(self, plan: Plan, measured: dict, summary: Summary, out: Path) -> list[tuple[str, str]]:
        best = summary.facts["best"]
        with figure(out / "init.png", 1, 2, title=f"{plan.base.depth}-layer relu MLP: Xavier vs He init") \
                as (fig, axes):
            for k, init in enumerate(INITS):
                for lr in plan.lrs:
                    style = "-" if best[init] is not None and best[init]["lr"] == lr else ":"
                    band(axes[0, 0], series(measured[(init, lr)], "train_error", 100), color=colour(k),
                         label=f"{init}, lr {lr:g}", style=style)
                    band(axes[0, 1], series(measured[(init, lr)], "train_loss"), color=colour(k),
                         label=f"{init}, lr {lr:g}", style=style)
            axes[0, 0].set(title="training error (%)", xlabel="epoch", ylim=(-2, 102))
            axes[0, 1].set(title="training loss", xlabel="epoch")
            axes[0, 0].legend(frameon=False, fontsize=8)
            integer_ticks(*axes[0])
        return [("init.png", "Training error and loss per epoch (mean and range over seeds); solid: the best "
                             "learning rate of each init, dotted: the others.")]


EXPERIMENT = Init()
