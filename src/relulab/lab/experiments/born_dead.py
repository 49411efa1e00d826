"""born-dead: the probability that a width-w, depth-d relu network is born dead.

Lu et al. (2019): for a fixed width the probability tends to 1 as depth grows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..report import Column, colour, figure, fmt
from ..stats import wilson_interval
from ..sweep import Sweep, Task
from .base import HOLDS, NOT, PARTLY, Experiment, Plan, Summary

# the sweep's task names the cell by import path: kept as it was when the experiments were one module, so that
# finished cells of an earlier run are found again
CELL = "relulab.lab.experiments:born_dead_cell"


def born_dead_cell(config: Mapping[str, Any]) -> dict[str, Any]:
    """``draws`` relu MLPs of one width and depth, each freshly initialised: how many are born dead?

    A network is born dead when its output is constant over ``points`` inputs evenly spaced in [-1, 1]^d_in:
    every output within ``rtol * max(1, max |f|)`` of the first, the criterion of :func:`relulab.born_dead`.
    Weights and biases come from ``init`` (relulab's He init by default). Each draw is one plain forward pass;
    :func:`relulab.born_dead` (a monitored pass, slower) is run on the first ``checks`` draws and must agree.
    """
    import torch

    from ...monitor import born_dead
    from ..models import initialise, mlp

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


class BornDead(Experiment):
    name = "born-dead"
    title = "Born dead: deep narrow relu networks at initialisation"
    anchor = ("Lu et al. 2019: the probability that a relu network is born dead tends to 1 with depth for a fixed "
              "width.")
    order = 6
    refusal = "it draws random networks at initialisation, without data"

    def plan(self, quick: bool) -> Plan:
        if quick:
            widths, depths, draws, checks = (2, 16), (1, 10, 30), 20, 5
        else:
            widths, depths, draws, checks = (2, 4, 8, 16), (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50), 1000, 20
        settings = {"widths": list(widths), "depths": list(depths), "draws_per_cell": draws, "inputs": "200 points "
                    "in [-1, 1] (d_in = 1)", "init": "he (relulab.nn.init_)", "criterion": "relulab.born_dead"}
        return Plan(widths=widths, depths=depths, draws=draws, checks=checks, settings=settings)

    def measure(self, plan: Plan, sweep: Sweep) -> list:
        tasks = [Task(CELL, {"width": w, "depth": d, "draws": plan.draws, "seed": 0, "d_in": 1, "points": 200,
                             "init": "he", "checks": plan.checks}, label=f"born-dead-w{w}-d{d}")
                 for w in plan.widths for d in plan.depths]
        return sweep.run(tasks, label="cells")

    def summarise(self, plan: Plan, measured: list) -> Summary:
        widths, depths, cells = plan.widths, plan.depths, measured
        table = {(c["width"], c["depth"]): c for c in cells}
        rows = []
        for d in depths:
            row: dict[str, Any] = {"depth": d}
            for w in widths:
                cell = table[(w, d)]
                low, high = wilson_interval(cell["born_dead"], cell["draws"])
                row[f"w{w}"], row[f"w{w}_low"], row[f"w{w}_high"] = cell["probability"], low, high
            rows.append(row)
        checked = sum(c["checked"] for c in cells)
        agreed = sum(c["agreed"] for c in cells)
        if agreed != checked:
            raise RuntimeError(f"born-dead: the plain check and relulab.born_dead disagreed on {checked - agreed} "
                               f"of {checked} networks")
        final = {w: table[(w, depths[-1])]["probability"] for w in widths}
        columns = [Column("depth", "depth", lambda r: str(r["depth"]))] + [
            Column(f"w{w}", f"P(born dead) width {w}", lambda r, w=w: fmt(r[f"w{w}"], 3)) for w in widths]
        numbers = {"probability_at_max_depth": {str(w): final[w] for w in widths},
                   "born_dead_checks": {"checked": checked, "agreed": agreed}}
        cell_rows = [dict(c, low=wilson_interval(c["born_dead"], c["draws"])[0],
                          high=wilson_interval(c["born_dead"], c["draws"])[1]) for c in cells]
        csv_fields = ("width", "depth", "draws", "born_dead", "probability", "low", "high", "checked", "agreed")
        return Summary([("P(born dead) by depth and width", columns, rows)], numbers, [], (csv_fields, cell_rows),
                       facts={"final": final, "shallow": {w: table[(w, depths[0])]["probability"] for w in widths},
                              "checked": checked, "rows": rows})

    def verdict(self, plan: Plan, summary: Summary) -> tuple[str, str]:
        widths, depths, facts = plan.widths, plan.depths, summary.facts
        final, shallow, deepest = facts["final"], facts["shallow"], depths[-1]
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
        listed = lambda ws: ", ".join(map(str, ws))
        rising = [w for w in rose if w not in near_one]
        text = (f"Probability that a relu MLP (1-D input, He init from relulab.nn.init_) is born dead at depth "
                f"{deepest}, {plan.draws} draws per cell: {finals} (at depth {depths[0]}: "
                f"{', '.join(f'{shallow[w]:.3f}' for w in widths)}). Lu et al. (2019) prove that for a fixed width "
                "the probability tends to 1 as depth grows. "
                + {HOLDS: f"Every width is near 1 by depth {deepest}: the anchor holds.",
                   PARTLY: f"It is near 1 by depth {deepest} for width {listed(near_one)}"
                           + (f" and rising for width {listed(rising)}" if rising else "")
                           + (f"; width {listed(flat)} stayed near 0 "
                              f"({', '.join(f'{final[w]:.3f}' for w in flat)})" if flat else "")
                           + f": wider networks need far more depth, so within depth {deepest} the anchor holds "
                             "partly.",
                   NOT: "The probability did not approach 1 with depth here: the anchor does not hold."}[outcome]
                + f" (relulab.born_dead agreed with the plain check on all {facts['checked']} networks it was run "
                  "on.)")
        return outcome, text

    def plot(self, plan: Plan, measured: list, summary: Summary, out: Path) -> list[tuple[str, str]]:
        rows = summary.facts["rows"]
        with figure(out / "born_dead.png", 1, 1, title="Probability of a relu network born dead",
                    size=(7.5, 4.6)) as (fig, axes):
            ax = axes[0, 0]
            for k, w in enumerate(plan.widths):
                p = np.array([r[f"w{w}"] for r in rows])
                low = np.array([r[f"w{w}_low"] for r in rows])
                high = np.array([r[f"w{w}_high"] for r in rows])
                ax.plot(plan.depths, p, "o-", color=colour(k), label=f"width {w}", markersize=3)
                ax.fill_between(plan.depths, low, high, color=colour(k), alpha=0.18, linewidth=0)
            ax.set(xlabel="depth (hidden layers)", ylabel="P(constant output)", ylim=(-0.03, 1.03))
            ax.legend(frameon=False)
        return [("born_dead.png", f"Fraction of {plan.draws} freshly initialised networks per cell whose output is "
                                  "constant over 200 inputs in [-1, 1], with 95% Wilson intervals.")]


EXPERIMENT = BornDead()
