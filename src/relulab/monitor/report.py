"""The monitor's Report: a table to print, a dict/JSON to keep, a PNG to look at.

This module needs NumPy only (matplotlib is imported when a plot is made), so saved reports can be read and
plotted without torch.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .._io import check_path, json_safe, save_figure, write_atomic

__all__ = ["LayerStats", "Report", "report_dict"]

LAYER_KEYS = ("name", "kind", "units", "dead", "dead_units", "dead_fraction", "inactive", "inactive_units",
              "nan_units", "sparsity", "grad_norm", "unit_dim", "how")


@dataclass
class LayerStats:
    """One activation call site over one window.

    ``active_fraction[u]`` is the fraction of positions (samples x spatial positions) where unit u's input was
    > 0; ``mean``/``std`` are the moments of its output. A unit with ``active_fraction == 0`` is *inactive*; it is
    *dead* when ``dead_possible`` (the member is exactly zero for x < 0, so the unit's gradient is exactly zero).
    ``grad_norm`` is the root mean square over backward passes of ||dL/d input||, or None without a backward pass.
    """

    name: str
    kind: str
    units: int | None
    samples: int
    dead_possible: bool
    active_fraction: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    sparsity: float | None
    grad_norm: float | None
    producers: list[str] = field(default_factory=list)
    unit_dim: int | None = None  # the activation's dim that holds the units
    how: str = ""  # how the activation was identified and how its unit axis was found

    @property
    def nan_units(self) -> list[int]:
        """Units whose output was NaN somewhere in the window: neither shown alive nor counted dead."""
        return [int(u) for u in np.flatnonzero(np.isnan(self.active_fraction))] if self.samples else []

    @property
    def inactive_units(self) -> list[int]:
        return [int(u) for u in np.flatnonzero(self.active_fraction == 0)] if self.samples else []

    @property
    def dead_units(self) -> list[int]:
        return self.inactive_units if self.dead_possible else []

    @property
    def dead_fraction(self) -> float | None:
        return len(self.dead_units) / self.units if self.units and self.samples else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "units": self.units,
            "dead": len(self.dead_units),
            "dead_units": self.dead_units,
            "dead_fraction": self.dead_fraction,
            "inactive": len(self.inactive_units),
            "inactive_units": self.inactive_units,
            "nan_units": self.nan_units,
            "sparsity": self.sparsity,
            "grad_norm": self.grad_norm,
            "unit_dim": self.unit_dim,
            "how": self.how,
        }


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


class Report:
    """Per-layer statistics of one monitor window (and the closed windows before it, in ``history``)."""

    def __init__(self, layers: Sequence[LayerStats], history: Sequence[dict[str, Any]] = (),
                 notes: Sequence[str] = (), window: int = 0) -> None:
        self.layers = list(layers)
        self.history = list(history)
        self.notes = list(notes)
        self.window = window

    @property
    def samples(self) -> int:
        return max((layer.samples for layer in self.layers), default=0)

    def __getitem__(self, name: str) -> LayerStats:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer {name!r} in the report; layers: {', '.join(l.name for l in self.layers)}")

    def to_dict(self) -> dict[str, Any]:
        """``{"layers": [{name, kind, units, dead, dead_units, dead_fraction, inactive, inactive_units, sparsity,
        grad_norm}], "samples": N, "window": k, "sources": {layer: [modules feeding it]}, "notes": [...]}``."""
        return {
            "layers": [layer.to_dict() for layer in self.layers],
            "samples": self.samples,
            "window": self.window,
            "sources": {layer.name: list(layer.producers) for layer in self.layers},
            "notes": list(self.notes),
        }

    def to_json(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` (with ``history``) as JSON, atomically."""
        payload = self.to_dict()
        payload["history"] = self.history
        # A diverged window has NaN/inf gradient norms: strict JSON has neither, so they are written as null.
        write_atomic(path, json.dumps(json_safe(payload), indent=2, allow_nan=False))

    def __str__(self) -> str:
        header = ("layer", "kind", "units", "dead", "dead %", "inactive", "sparsity", "grad norm")
        rows = []
        for layer in self.layers:
            d = layer.to_dict()
            rows.append((
                d["name"], d["kind"], "-" if d["units"] is None else str(d["units"]), str(d["dead"]),
                _percent(d["dead_fraction"]), str(d["inactive"]), _percent(d["sparsity"]),
                "-" if d["grad_norm"] is None else f"{d['grad_norm']:.3g}",
            ))
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
        line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        text = [f"relulab monitor: window {self.window}, {self.samples} samples", line(header),
                line(["-" * w for w in widths])]
        text += [line(r) for r in rows]
        text += [f"note: {note}" for note in self.notes]
        return "\n".join(text)

    __repr__ = __str__

    def plot(self, path: str | os.PathLike) -> str:
        """Write a PNG: dead % per layer, sparsity per layer, gradient norm per layer (log scale).

        With closed windows in ``history`` each panel shows every layer over the windows (dead % over time). The
        format follows the suffix (``.png``, ``.pdf``, ``.svg``, ...); the file is written atomically.
        """
        check_path(path)  # before matplotlib is imported or anything drawn
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        windows = [h for h in self.history] + ([self.to_dict()] if self.samples else [])
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        names = [layer.name for layer in self.layers]
        if len(windows) > 1:
            for name in names:
                series = [_layer_value(w, name) for w in windows]
                xs = np.arange(len(windows))
                for ax, key, scale in zip(axes, ("dead_fraction", "sparsity", "grad_norm"), (100, 100, 1)):
                    ys = [np.nan if s is None or s.get(key) is None else s[key] * scale for s in series]
                    ax.plot(xs, ys, marker="o", markersize=3, label=name)
            for ax in axes:
                ax.set_xlabel("window (e.g. epoch)")
            axes[0].legend(fontsize=7, frameon=False, title="layer", title_fontsize=7)
        else:
            current = self.to_dict()["layers"]
            positions = np.arange(len(current))
            for ax, key, scale in zip(axes, ("dead_fraction", "sparsity", "grad_norm"), (100, 100, 1)):
                values = [np.nan if l[key] is None else l[key] * scale for l in current]
                ax.bar(positions, values, color="#4472c4")
                ax.set_xticks(positions, names, rotation=45, ha="right", fontsize=8)
                ax.set_xlabel("layer (input → output)")
        axes[0].set_title("dead units (%)")
        axes[0].set_ylim(0, 100)
        axes[1].set_title("sparsity: exact zeros in the output (%)")
        axes[1].set_ylim(0, 100)
        axes[2].set_title("gradient norm ||dL/d input|| per layer")
        if any(_positive(l.grad_norm) for l in self.layers) or any(
                _positive(_layer_value(w, n) and _layer_value(w, n).get("grad_norm")) for w in windows for n in names):
            axes[2].set_yscale("log")
        for ax in axes:
            ax.grid(alpha=0.3)
        fig.suptitle(f"relulab monitor ({self.samples} samples in the last window)")
        fig.tight_layout()
        try:
            save_figure(fig, path, dpi=110)
        finally:
            plt.close(fig)
        return os.fspath(path)


def report_dict(report: Report | Mapping[str, Any]) -> Mapping[str, Any]:
    """A Report's :meth:`Report.to_dict`, or such a dict itself (e.g. read back from its JSON); TypeError else."""
    if isinstance(report, Report):
        return report.to_dict()
    if isinstance(report, Mapping) and "layers" in report:
        return report
    raise TypeError(f"report must be a relulab Report or its to_dict(); got {type(report).__name__}")


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _layer_value(window: dict[str, Any], name: str) -> dict[str, Any] | None:
    for layer in window.get("layers", []):
        if layer["name"] == name:
            return layer
    return None
