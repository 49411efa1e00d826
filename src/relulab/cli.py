"""The ``relulab`` command: a thin layer over the rooms above it.

Every subcommand parses its arguments, calls library code and prints. Errors a user can cause (an unknown name, a
bad range, a missing optional dependency) end with a one-line message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
from typing import Callable, Sequence

import numpy as np

from . import family

EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake in the command line or its inputs: reported in one line, exit code 2."""


# -- list / explain ---------------------------------------------------------------------------------------------
def _cmd_list(args: argparse.Namespace) -> int:
    width = max(len(n) for n in family.names())
    for name in family.names():
        act = family.get(name)
        aliases = f"  (also: {', '.join(act.aliases)})" if act.aliases and args.aliases else ""
        print(f"{name:<{width}}  {act.summary}{aliases}")
    return 0


def _bound(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"


def explain_text(name: str) -> str:
    """The text ``relulab explain NAME`` prints: formula, derivative, parameters, properties, notes."""
    act = family.get(name)
    props = act.properties
    wrap = lambda text, indent="  ": textwrap.fill(text, 100, initial_indent=indent, subsequent_indent=indent)
    lines = [f"{act.name}: {act.summary}"]
    if act.aliases:
        lines.append(f"  aliases: {', '.join(act.aliases)}")
    lines += ["", "Formula (LaTeX)", f"  f(x)  = {act.formula}", f"  f'(x) = {act.derivative_formula}", ""]
    lines.append("Parameters")
    if act.takes_weight:
        lines.append("  weight (positional): one slope per channel, or one slope for all; learned in relulab.nn.PReLU")
    if not act.params:
        lines.append("  none")
    for p in act.params:
        lines.append(f"  {p.name} = {p.default!r}: {p.doc} Allowed: {p.allowed}.")
    kinks = ", ".join(f"{k:g}" for k in props.kinks) or "none"
    lines += [
        "",
        "Properties",
        f"  monotonic: {'yes' if props.monotonic else 'no'}",
        f"  range: [{_bound(props.lower_bound)}, {_bound(props.upper_bound)}] "
        "(none = unbounded; bounds are infimum/supremum)",
        f"  smooth (infinitely differentiable): {'yes' if props.smooth else 'no'}; kinks at: {kinks}",
        f"  exactly zero for x < 0 (units can die): {'yes' if props.zero_for_negative else 'no'}",
        f"  piecewise linear: {'yes' if props.piecewise_linear else 'no'}",
    ]
    if not act.takes_weight:
        xs = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
        values, grads = act(xs), act.grad(xs)
        lines += ["", "Values", "  x     " + "".join(f"{v:>10g}" for v in xs),
                  "  f(x)  " + "".join(f"{v:>10.4g}" for v in values),
                  "  f'(x) " + "".join(f"{v:>10.4g}" for v in grads)]
    lines += ["", "Conventions", wrap(act.conventions or "none beyond DESIGN.md's"), "", "When to use", wrap(act.use),
              "", "Known failure mode", wrap(act.failure_mode)]
    if act.paper:
        lines += ["", "Reference", wrap(act.paper)]
    return "\n".join(lines)


def _cmd_explain(args: argparse.Namespace) -> int:
    print(explain_text(args.name))
    return 0


# -- plot -------------------------------------------------------------------------------------------------------
def _curve(values: np.ndarray, xs: np.ndarray, kinks: Sequence[float]) -> np.ndarray:
    """Break a derivative curve at each kink (NaN there) so no vertical segment is drawn where f' jumps."""
    values = values.copy()
    for kink in kinks:
        values[np.argmin(np.abs(xs - kink))] = np.nan
    return values


def plot_curves(names: Sequence[str], path: str, *, grad: bool = False, x_range: tuple[float, float] = (-4.0, 4.0)):
    """Plot f (and f' with ``grad``) of each member over ``x_range`` to a PNG at ``path``."""
    members = [family.get(n) for n in names]
    for act in members:
        if act.takes_weight:
            raise UsageError(f"{act.name} needs a weight array and cannot be plotted by name; plot leaky_relu instead")
    low, high = x_range
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise UsageError(f"--range must be two finite numbers A < B; got {low} {high}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("relulab plot needs matplotlib: pip install 'relulab[lab]'") from None
    xs = np.union1d(np.linspace(low, high, 2001), [k for a in members for k in a.properties.kinks if low < k < high])
    ncols = 2 if grad else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.2 * ncols, 4.4), squeeze=False)
    # Members coincide on x > 0; line styles and decreasing widths keep every curve visible where they overlap.
    styles = ["-", "--", "-.", ":"]
    for i, act in enumerate(members):
        style = dict(label=act.name, linestyle=styles[i % len(styles)], linewidth=max(3.2 - 0.5 * i, 1.2))
        axes[0, 0].plot(xs, act(xs), **style)
        if grad:
            axes[0, 1].plot(xs, _curve(act.grad(xs), xs, act.properties.kinks), **style)
    titles = ["f(x)", "f'(x)  (at a kink: the default convention)"]
    for ax, title in zip(axes[0], titles):
        ax.axhline(0, color="0.6", linewidth=0.8)
        ax.axvline(0, color="0.6", linewidth=0.8)
        ax.set_title(title)
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    fig.suptitle("relulab: " + ", ".join(a.name for a in members))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _cmd_plot(args: argparse.Namespace) -> int:
    path = plot_curves(args.names, args.output, grad=args.grad, x_range=tuple(args.range))
    print(f"wrote {path}")
    return 0


# -- parser -----------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relulab",
        description="The ReLU family, exactly: explain and plot members; the lab and the instruments.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("list", help="list every member", description="List every registered member.")
    p.add_argument("--aliases", action="store_true", help="also show the aliases each name resolves from")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("explain", help="formula, derivative, parameters, properties and notes of a member",
                       description="Show a member's formula, derivative, parameters, properties and plain-words "
                                   "notes: when to use it and its known failure mode.")
    p.add_argument("name", help="member name or alias, e.g. relu, LeakyReLU, swish")
    p.set_defaults(func=_cmd_explain)

    p = sub.add_parser("plot", help="plot members (and derivatives) to a PNG",
                       description="Plot f(x) of each member, and f'(x) with --grad, to a PNG file.")
    p.add_argument("names", nargs="+", metavar="NAME", help="member names or aliases")
    p.add_argument("--grad", action="store_true", help="also plot the derivatives")
    p.add_argument("--range", nargs=2, type=float, default=[-4.0, 4.0], metavar=("A", "B"),
                   help="x range (default: -4 4)")
    p.add_argument("-o", "--output", required=True, metavar="FILE.png", help="where to write the PNG")
    p.set_defaults(func=_cmd_plot)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (UsageError, family.UnknownActivationError) as error:
        print(f"relulab {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("relulab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
