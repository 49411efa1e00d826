"""Reports of the lab: text tables, the HTML page, the CSV, and the PNG plots (matplotlib, Agg backend).

Tables are defined once as columns over rows of raw numbers; the printed table, the HTML table and
``results.json`` all come from the same rows, so the file holds exactly the numbers the table shows.
This module never imports torch.
"""

from __future__ import annotations

import csv
import html
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._io import save_figure, write_atomic
from .stats import geometric_mean_columns
from .sweep import to_json

__all__ = ["Column", "render_text", "render_html", "write_page", "write_csv", "write_results", "fmt",
           "plot_compare", "figure", "colour", "band", "integer_ticks", "error_scale", "series"]


# -- tables ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """A table column: ``key`` into the row, a ``header``, and how to show the row's value(s) as text."""

    key: str
    header: str
    show: Callable[[Mapping[str, Any]], str] | None = None
    numeric: bool = True

    def text(self, row: Mapping[str, Any]) -> str:
        if self.show is not None:
            return self.show(row)
        value = row.get(self.key)
        return "-" if value is None else str(value)


def fmt(value: float | None, digits: int = 1, *, scale: float = 1.0, sci: bool = False) -> str:
    """A number as the tables show it: fixed ``digits`` decimals (or 3 significant digits with ``sci``); None -> '-'."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if sci:
        return f"{value * scale:.3g}"
    return f"{value * scale:.{digits}f}"


def render_text(columns: Sequence[Column], rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table: two spaces between columns, numbers right-aligned, a rule under the header."""
    cells = [[c.text(row) for c in columns] for row in rows]
    widths = [max([len(c.header)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if c.numeric else v.ljust(w) for v, w, c in zip(values, widths, columns)]
        return "  ".join(parts).rstrip()

    return "\n".join([line([c.header for c in columns]), line(["-" * w for w in widths])] + [line(r) for r in cells])


def render_html(columns: Sequence[Column], rows: Sequence[Mapping[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(c.header)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td class=\"{'num' if c.numeric else 'txt'}\">{html.escape(c.text(row))}</td>"
                         for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# -- files -------------------------------------------------------------------------------------------------------
_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; } th { background: #f4f4f4; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { border-left: 5px solid #4472c4; background: #f3f6fb; padding: 0.6em 1em; }
.holds { border-color: #2e8b57; } .partly { border-color: #d8a200; } .not { border-color: #c0392b; }
figure { margin: 1.4em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; } code { background: #f4f4f4; padding: 0 3px; }
"""


def write_page(out: Path, *, title: str, intro: Sequence[str], table_html: str, figures: Sequence[tuple[str, str]],
               verdict: Mapping[str, str] | None = None, settings: Mapping[str, Any] | None = None,
               notes: Sequence[str] = ()) -> Path:
    """DIR/index.html: title, verdict, intro, the table, the figures with captions, settings and notes."""
    parts = [f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>",
             f"<style>{_STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    if verdict:
        css = verdict.get("style") or {"holds": "holds", "holds partly": "partly"}.get(verdict.get("outcome", ""),
                                                                                        "not")
        parts.append(f"<div class=\"verdict {css}\"><p><b>Verdict: {html.escape(verdict['outcome'])}.</b> "
                     f"{html.escape(verdict['text'])}</p></div>")
    parts += [f"<p>{html.escape(p)}</p>" for p in intro]
    parts.append("<h2>Results</h2>" + table_html)
    parts.append("<p>Numbers: <a href=\"results.json\">results.json</a> (everything, per run and per epoch), "
                 "<a href=\"results.csv\">results.csv</a> (one row per run and epoch); finished runs: "
                 "<code>runs/</code>.</p>")
    for name, caption in figures:
        parts.append(f"<figure><img src=\"{html.escape(name)}\" alt=\"{html.escape(caption)}\">"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    if settings:
        items = "".join(f"<li><code>{html.escape(str(k))}</code>: {html.escape(str(v))}</li>"
                        for k, v in settings.items())
        parts.append(f"<h2>Settings</h2><ul>{items}</ul>")
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    parts.append("</body></html>")
    return write_atomic(out / "index.html", "\n".join(parts))


CSV_FIELDS = ("group", "activation", "seed", "lr", "status", "epoch", "train_loss", "train_error", "val_loss",
              "val_accuracy", "test_accuracy", "dead_fraction", "inactive_fraction", "sparsity",
              "grad_first", "grad_last")


def write_csv(out: Path, runs: Sequence[Mapping[str, Any]]) -> Path:
    """DIR/results.csv: one row per run and epoch (runs with no finished epoch get one row with their status)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for run in runs:
        config = run.get("config", {})
        base = {"group": run.get("group", ""), "activation": config.get("activation"), "seed": config.get("seed"),
                "lr": config.get("lr"), "status": run.get("status")}
        epochs = run.get("epochs") or [{}]
        for record in epochs:
            grads = record.get("weight_grad") or [None]
            row = dict(base)
            row.update({k: record.get(k) for k in CSV_FIELDS if k in record})
            row["grad_first"], row["grad_last"] = grads[0], grads[-1]
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return write_atomic(out / "results.csv", buffer.getvalue())


def write_rows_csv(out: Path, fields: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> Path:
    """DIR/results.csv from rows that are not training runs (e.g. born-dead cells)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in fields})
    return write_atomic(out / "results.csv", buffer.getvalue())


def write_results(out: Path, results: Mapping[str, Any]) -> Path:
    return write_atomic(out / "results.json", to_json(results))


# -- plots -------------------------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def colour(index: int) -> str:
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
               "#bcbd22"]
    return palette[index % len(palette)]


class figure:
    """``with figure(out / "x.png", 1, 2) as (fig, axes):`` -- a grid of axes saved (atomically) on exit."""

    def __init__(self, path: Path, rows: int = 1, cols: int = 1, *, size: tuple[float, float] | None = None,
                 title: str | None = None) -> None:
        self.path, self.rows, self.cols, self.title = Path(path), rows, cols, title
        self.size = size or (6.0 * cols, 4.2 * rows)

    def __enter__(self):
        self.plt = _pyplot()
        self.fig, axes = self.plt.subplots(self.rows, self.cols, figsize=self.size, squeeze=False)
        self.axes = axes
        return self.fig, axes

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                for ax in self.axes.flat:
                    ax.grid(alpha=0.3)
                if self.title:
                    self.fig.suptitle(self.title)
                self.fig.tight_layout()
                save_figure(self.fig, self.path, dpi=100)
        finally:
            self.plt.close(self.fig)


def integer_ticks(*axes) -> None:
    """Whole-number ticks on the x axis (epochs, layers)."""
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def error_scale(ax) -> None:
    """Log-like y axis for error rates in % that still shows 0 % (linear below 1 %)."""
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(0, 105)
    ax.set_yticks([0, 0.5, 1, 2, 5, 10, 20, 50, 100], ["0", "0.5", "1", "2", "5", "10", "20", "50", "100"])


def series(runs: Sequence[Mapping[str, Any]], key: str, scale: float = 1.0) -> np.ndarray:
    """(runs, epochs) array of an epoch field; NaN where a run stopped early (diverged)."""
    length = max((len(r["epochs"]) for r in runs), default=0)
    values = np.full((len(runs), length), np.nan)
    for i, run in enumerate(runs):
        for j, record in enumerate(run["epochs"]):
            value = record.get(key)
            if value is not None:
                values[i, j] = value * scale
    return values



def band(ax, values: np.ndarray, *, label: str, color: str, x: np.ndarray | None = None, style: str = "-") -> None:
    """Mean over runs as a line and the range over runs (min to max) as a shaded band."""
    if values.size == 0 or np.all(np.isnan(values)):
        return
    x = np.arange(1, values.shape[1] + 1) if x is None else x
    with np.errstate(all="ignore"):
        counts = np.sum(~np.isnan(values), axis=0)
        safe = np.where(np.isnan(values), 0.0, values)
        mean = np.where(counts > 0, safe.sum(0) / np.maximum(counts, 1), np.nan)
        low = np.where(counts > 0, np.where(np.isnan(values), np.inf, values).min(0), np.nan)
        high = np.where(counts > 0, np.where(np.isnan(values), -np.inf, values).max(0), np.nan)
    ax.plot(x, mean, style, color=color, label=label, linewidth=1.8)
    if values.shape[0] > 1:
        ax.fill_between(x, low, high, color=color, alpha=0.18, linewidth=0)


def _by_activation(runs: Sequence[Mapping[str, Any]], activations: Sequence[str]) -> dict[str, list]:
    return {a: [r for r in runs if r["config"]["activation"] == a] for a in activations}


def plot_gradient_flow(out: Path, groups: Mapping[str, Sequence[Mapping[str, Any]]], *,
                       legend_size: int = 8) -> tuple[str, str]:
    """gradient_flow.png: per group (an activation, a remedy), the geometric mean over its runs of each weight
    layer's RMS gradient norm in the first and the last epoch. Returns (file name, caption)."""
    with figure(out / "gradient_flow.png", 1, 2, title="Gradient flow: RMS ||dL/dW|| per weight layer") as (fig, axes):
        for i, (name, runs) in enumerate(groups.items()):
            if not runs:
                continue
            for ax, pick in ((axes[0, 0], 0), (axes[0, 1], -1)):
                rows = np.array([r["epochs"][pick]["weight_grad"] for r in runs], dtype=float)
                ax.plot(np.arange(1, rows.shape[1] + 1), geometric_mean_columns(rows), "o-", color=colour(i),
                        label=name)
        for ax, when in ((axes[0, 0], "first epoch"), (axes[0, 1], "last epoch")):
            ax.set(title=when, xlabel="weight layer (1 = input side)", yscale="log")
        axes[0, 0].legend(frameon=False, fontsize=legend_size)
        integer_ticks(*axes[0])
    return ("gradient_flow.png", "Root-mean-square norm of each Linear/Conv weight gradient over the first and the "
                                 "last epoch (geometric mean over seeds), input side left.")


def plot_compare(out: Path, runs: Sequence[Mapping[str, Any]], activations: Sequence[str],
                 target_error: float) -> list[tuple[str, str]]:
    """The four plots of ``relulab compare``; returns (file name, caption) pairs."""
    groups = _by_activation(runs, activations)
    figures = []
    with figure(out / "learning_curves.png", 1, 2, title="Learning curves (line: mean over seeds; band: range)") \
            as (fig, axes):
        for i, (act, group) in enumerate(groups.items()):
            band(axes[0, 0], series(group, "train_error", 100), label=act, color=colour(i))
            band(axes[0, 1], series(group, "test_accuracy", 100), label=act, color=colour(i))
        axes[0, 0].axhline(100 * target_error, color="0.4", linestyle=":", linewidth=1,
                           label=f"target {100 * target_error:g}%")
        axes[0, 0].set(title="training error (%)", xlabel="epoch")
        error_scale(axes[0, 0])
        axes[0, 1].set(title="test accuracy (%)", xlabel="epoch")
        axes[0, 0].legend(frameon=False, fontsize=8)
        integer_ticks(*axes[0])
    figures.append(("learning_curves.png", "Training error (whole training split at the end of each epoch; "
                                           "log scale above 1 %, linear below) and test accuracy per epoch."))
    with figure(out / "dead_units.png", 1, 2, title="Dead and inactive units over training") as (fig, axes):
        for i, (act, group) in enumerate(groups.items()):
            band(axes[0, 0], series(group, "dead_fraction", 100), label=act, color=colour(i))
            band(axes[0, 1], series(group, "inactive_fraction", 100), label=act, color=colour(i))
        axes[0, 0].set(title="dead units (% of all hidden units)", xlabel="epoch")
        axes[0, 1].set(title="inactive units: input never > 0 in the epoch (%)", xlabel="epoch")
        axes[0, 0].legend(frameon=False, fontsize=8)
        integer_ticks(*axes[0])
    figures.append(("dead_units.png", "Dead units: never positive over an epoch and exactly zero gradient (relu "
                                      "and relu-like members). Inactive counts the same event for every member, "
                                      "including leaky and smooth ones whose gradient there is small but not zero."))
    figures.append(plot_gradient_flow(out, {act: [r for r in group if r["epochs"]] for act, group in groups.items()}))
    with figure(out / "sparsity.png", 1, 2, title="Sparsity: exact zeros in activation outputs") as (fig, axes):
        for i, (act, group) in enumerate(groups.items()):
            band(axes[0, 0], series(group, "sparsity", 100), label=act, color=colour(i))
            ok = [r for r in group if r["epochs"]]
            if ok:
                rows = np.array([[l["sparsity"] if l["sparsity"] is not None else np.nan
                                  for l in r["epochs"][-1]["layers"]] for r in ok], dtype=float)
                axes[0, 1].plot(np.arange(1, rows.shape[1] + 1), 100 * np.nanmean(rows, 0), "o-", color=colour(i),
                                label=act)
        axes[0, 0].set(title="mean over layers, per epoch (%)", xlabel="epoch", ylim=(-2, 102))
        axes[0, 1].set(title="per activation layer, last epoch (%)", xlabel="activation layer (1 = input side)",
                       ylim=(-2, 102))
        axes[0, 0].legend(frameon=False, fontsize=8)
        integer_ticks(*axes[0])
    figures.append(("sparsity.png", "Fraction of exact zeros in each activation's output during training; "
                                    "only members that are exactly zero for x < 0 produce any."))
    return figures
