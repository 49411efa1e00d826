"""The ``relulab`` command: a thin layer over the rooms above it.

Every subcommand parses its arguments, calls library code and prints. Errors a user can cause (an unknown name, a
bad range, a missing optional dependency) end with a one-line message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import inspect
import json
import keyword
import math
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import family
from ._io import check_path, save_figure

EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake in the command line or its inputs: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with relulab's error shape (one line, exit 2) and option values that may be negative numbers.

    argparse takes ``-1e3`` or ``-inf`` for an option unless it looks like ``-1`` or ``-.5``; any float literal is
    a value here (relulab has no option that looks like a number).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(
            r"^-(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE)

    def error(self, message: str):
        command = self.prog if self.prog.startswith("relulab") else "relulab"
        self.exit(EXIT_USAGE, f"{command}: error: {message} (see {command} --help)\n")


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
        lines.append("  weight (positional): one slope per channel, or one slope for all; learned in "
                     f"relulab.nn.{act.nn_class}")
    if not act.params:
        lines.append("  none")
    for p in act.params:
        numpy_only = "" if p.torch else " (NumPy only: relulab.nn does not take it)"
        lines.append(f"  {p.name} = {p.default!r}: {p.doc} Allowed: {p.allowed}.{numpy_only}")
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
    torch_names = [f"torch.nn.{act.torch_class}"] if act.torch_class else []
    torch_names += [f"torch.nn.functional.{act.torch_function}"] if act.torch_function else []
    try:
        gain = f"{act.gain():.6g}"
    except (TypeError, ValueError) as error:
        gain = f"not available ({error})"
    function = (f"relulab.nn.functional.{act.name}" if act.name.isidentifier() and not keyword.iskeyword(act.name)
                else f"relulab.nn.functional.activation(x, {act.name!r})")
    lines += ["", "PyTorch", f"  relulab.nn.{act.nn_class}, {function}; same member as: "
              f"{', '.join(torch_names) or 'nothing in torch'}", f"  gain (1 / sqrt(E[f(z)^2]), z ~ N(0, 1)): {gain}"]
    lines += ["", "Conventions", wrap(act.conventions or "none beyond the family's (README, Conventions)"), "",
              "When to use", wrap(act.use), "", "Known failure mode", wrap(act.failure_mode)]
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
    """Plot f (and f' with ``grad``) of each member over ``x_range`` to an image at ``path`` (PNG, PDF, SVG, ...)."""
    members, plt = check_plot(names, path, x_range)
    return _draw(members, plt, path, grad, x_range)


def check_plot(names: Sequence[str], path: str, x_range: tuple[float, float]):
    """Everything ``relulab plot`` checks before drawing: (members, pyplot) or a UsageError naming the argument."""
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
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise UsageError("relulab plot needs matplotlib: pip install 'relulab[lab]'") from None
    formats = FigureCanvasBase.get_supported_filetypes()
    if Path(path).suffix.lower().lstrip(".") not in formats:
        raise UsageError(f"-o {str(path)!r} has no image suffix matplotlib writes; use one of "
                         f"{', '.join('.' + f for f in sorted(formats))}")
    return members, plt


def _draw(members, plt, path: str, grad: bool, x_range: tuple[float, float]) -> str:
    low, high = x_range
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
    try:
        save_figure(fig, path, "-o", dpi=120)
    except ValueError as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        plt.close(fig)
    return path


def _cmd_plot(args: argparse.Namespace) -> int:
    path = plot_curves(args.names, args.output, grad=args.grad, x_range=tuple(args.range))
    print(f"wrote {path}")
    return 0


# -- compare / run (the lab) ------------------------------------------------------------------------------------
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")


def _number(option: str, text: str | None, kind: type, allowed: str):
    """Parse an option's text as ``kind``; a UsageError names the option, the value and what is allowed.

    Only plain literals: ``2_0`` (Python's digit separator) is not 20, and an integer has no exponent.
    """
    if text is None:
        return None
    if "_" in text or (kind is int and not _INTEGER.match(text)):
        raise UsageError(f"{option} must be {allowed}; got {text!r}")
    try:
        return kind(text)
    except (ValueError, OverflowError):
        raise UsageError(f"{option} must be {allowed}; got {text!r}") from None


def _lab():
    """The lab package, or a UsageError saying which extra to install."""
    try:
        from . import lab
        import matplotlib  # noqa: F401  (the report needs it; fail before any work, not after)
    except ImportError as error:
        raise UsageError(f"the lab needs the lab extra ({error.name} is missing): pip install 'relulab[lab]'") from None
    return lab


def _finish(lab_result, *, as_json: bool, what: str) -> int:
    from .lab.sweep import to_json

    if as_json:
        print(to_json(lab_result.results, indent=2))
        return 0
    print(lab_result.text)
    counts = lab_result.results.get("counts", {})
    skipped = f"; {counts['skipped']} finished runs reused from an earlier run" if counts.get("skipped") else ""
    figures = len(lab_result.results["files"]["figures"])
    print(f"\n{what} report: {lab_result.out / 'index.html'}  (numbers: results.json, results.csv; "
          f"{figures} plot{'' if figures == 1 else 's'}{skipped})")
    return 0


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C so the lab stops its workers and keeps only whole files."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def _stoppable(work: Callable[[], object]):
    """Run ``work`` with SIGTERM turned into KeyboardInterrupt (restored afterwards)."""
    import signal

    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        return work()
    try:
        return work()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted(command: str, out) -> int:
    print(f"relulab {command}: interrupted; every finished run is kept under {out / 'runs'} -- run the same command "
          "again to continue where it stopped", file=sys.stderr)
    return 130


def _backend(lab, args: argparse.Namespace):
    """The validated --backend/--address/--gpus-per-run of a lab command."""
    try:
        return lab.validate_backend(args.backend, args.address,
                                    _number("--gpus-per-run", args.gpus_per_run, float, "a number >= 0"))
    except lab.BackendError as error:
        raise UsageError(str(error)) from None


def _sweeping(lab, command: str, work: Callable[[], object]):
    """Run a lab sweep: Ctrl-C/SIGTERM keep finished runs (exit 130), an unusable backend is a usage error."""
    try:
        return _stoppable(work)
    except lab.BackendError as error:
        raise UsageError(str(error)) from None
    except lab.SweepError as error:
        print(f"relulab {command}: error: {error}", file=sys.stderr)
        return 1


def _bounded_int(option: str, text: str | None):
    """An integer option of the lab (>= 1, and at most the lab's bound for it)."""
    from .lab.validate import LIMITS

    limit = LIMITS.get(option)
    return _number(option, text, int, "an integer >= 1" + (f" and <= {limit}" if limit else ""))


def _cmd_compare(args: argparse.Namespace) -> int:
    lab = _lab()
    backend = _backend(lab, args)
    from .lab.validate import MAX_LR

    integer = _bounded_int
    lr = args.lr if args.lr == "auto" else _number("--lr", args.lr, float, f"'auto' or a number in (0, {MAX_LR:g}]")
    try:
        settings = lab.validate_compare(
            data=args.data, model=args.model, activations=args.activations,
            seeds=integer("--seeds", args.seeds), epochs=integer("--epochs", args.epochs), lr=lr,
            depth=integer("--depth", args.depth), width=integer("--width", args.width), init=args.init,
            optimizer=args.optimizer, batch_size=integer("--batch-size", args.batch_size),
            target_error=_number("--target", args.target, float, "a number between 0 and 1"),
            jobs=integer("--jobs", args.jobs), out=args.out, target=args.target_column, task=args.task)
    except lab.ConfigError as error:
        raise UsageError(str(error)) from None
    command = "relulab " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["compare"] else "relulab compare"
    try:
        result = _sweeping(lab, "compare", lambda: lab.compare(
            settings, progress=not args.quiet, command=command, backend=backend))
    except KeyboardInterrupt:
        return _interrupted("compare", settings.out)
    if isinstance(result, int):
        return result
    code = _finish(result, as_json=args.json, what="compare")
    return 1 if result.results.get("failed") else code  # the report is written; the failed runs are listed in it


def _cmd_run(args: argparse.Namespace) -> int:
    lab = _lab()
    backend = _backend(lab, args)
    try:
        jobs = _bounded_int("--jobs", args.jobs)
        name, out, jobs = lab.validate_experiment(args.name, out=args.out, jobs=jobs)
        from .lab.experiments import validate_user_inputs

        inputs = validate_user_inputs(name, data=args.data, model=args.model, target=args.target, task=args.task,
                                      out=out)
    except lab.ConfigError as error:
        raise UsageError(str(error)) from None
    command = "relulab " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["run"] else f"relulab run {name}"
    try:
        result = _sweeping(lab, "run", lambda: lab.run_experiment(
            name, quick=args.quick, out=out, jobs=jobs, progress=not args.quiet, command=command, inputs=inputs,
            backend=backend))
    except KeyboardInterrupt:
        return _interrupted("run", out)
    if isinstance(result, int):
        return result
    return _finish(result, as_json=args.json, what=name)


def _cmd_doctor(args: argparse.Namespace) -> int:
    lab = _lab()
    backend = _backend(lab, args)
    from .lab.validate import MAX_LR
    from .lab.doctor import run_doctor, validate_doctor

    try:
        settings = validate_doctor(
            args.model, args.data, target=args.target, task=args.task, activation=args.activation,
            epochs=_bounded_int("--epochs", args.epochs),
            lr=_number("--lr", args.lr, float, f"a number in (0, {MAX_LR:g}]"), optimizer=args.optimizer,
            batch_size=_bounded_int("--batch-size", args.batch_size), seeds=_bounded_int("--seeds", args.seeds),
            jobs=_bounded_int("--jobs", args.jobs), out=args.out)
    except lab.ConfigError as error:
        raise UsageError(str(error)) from None
    command = "relulab " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["doctor"] else "relulab doctor"
    try:
        result = _sweeping(lab, "doctor", lambda: run_doctor(settings, progress=not args.quiet, command=command,
                                                             backend=backend))
    except KeyboardInterrupt:
        return _interrupted("doctor", settings.out)
    if isinstance(result, int):
        return result
    for note in result.results["notes"]:
        print(f"note: {note}", file=sys.stderr)
    return _finish(result, as_json=args.json, what="doctor")


# -- bench ------------------------------------------------------------------------------------------------------
def _cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    try:
        sizes = [bench.parse_size(text) for text in args.sizes] if args.sizes else None
        members = [family.get(name).name for name in args.members] if args.members else None
        if args.markdown is not None:  # before a run of minutes, not after it
            bench.check_markdown_target(check_path(args.markdown, "--markdown"))
    except OSError as error:
        raise UsageError(f"--markdown: cannot read {args.markdown!r}: {error.strerror or error}") from None
    except ValueError as error:
        raise UsageError(str(error)) from None
    overrides = {"dtype": args.dtype, "torch": not args.no_torch}
    for key, value in (("sizes", sizes), ("members", members), ("repeats", args.repeats)):
        if value is not None:
            overrides[key] = value
    if args.repeats is not None and args.repeats < 1:
        raise UsageError(f"--repeats must be an integer >= 1; got {args.repeats}")
    config = bench.BenchConfig.quick_config(**overrides) if args.quick else bench.BenchConfig(**overrides)
    progress = None if args.json or args.quiet else (lambda text: print(f"  {text}", file=sys.stderr, flush=True))
    try:
        result = bench.run_bench(config, progress=progress)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.markdown is not None:
        try:
            bench.write_markdown(result, args.markdown)
        except OSError as error:
            raise UsageError(f"--markdown: cannot write {args.markdown!r}: {error.strerror or error}") from None
    print(json.dumps(result, indent=1) if args.json else bench.format_report(result))
    return 0


# -- explore ----------------------------------------------------------------------------------------------------
def _cmd_explore(args: argparse.Namespace) -> int:
    from .explore import serve

    try:
        return _stoppable(lambda: serve(args.host, args.port, open_browser=not args.no_browser))
    except (OSError, ValueError) as error:  # the port is taken, the host does not resolve, a port out of range
        raise UsageError(f"cannot serve on {args.host}:{args.port}: {getattr(error, 'strerror', None) or error}") \
            from None


# -- parser -----------------------------------------------------------------------------------------------------
def library_defaults(function: Callable) -> dict[str, Any]:
    """The keyword defaults of a library function. Every option default of the CLI is read from the library
    this way (or from its settings and registries), never copied, so a change of a library default reaches it."""
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _or(names: Sequence[str], conjunction: str = "or") -> str:
    """'a, b or c'."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {conjunction} {names[-1]}"


def _data_help(default: str | None) -> str:
    """The lab's data sets from its registry: the offline ones, then those that need a package."""
    from .lab.data import REGISTRY

    offline = [n + (" (default)" if n == default else "") for n, spec in REGISTRY.items() if spec.needs is None]
    needing: dict[str, list[str]] = {}
    for name, spec in REGISTRY.items():
        if spec.needs is not None:
            needing.setdefault(spec.needs, []).append(name)
    return "; ".join([", ".join(offline)] + [f"{', '.join(names)} with {package}"
                                              for package, names in needing.items()])


def _backend_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="local", metavar="local|ray",
                   help="where runs go: local worker processes (default) or ray, a task per run on a Ray cluster "
                        "(needs: pip install 'relulab[ray]')")
    p.add_argument("--address", default=None, metavar="HOST:PORT",
                   help="with --backend ray: an existing cluster (default: start Ray on this machine)")
    p.add_argument("--gpus-per-run", default=None, metavar="N",
                   help="with --backend ray: GPUs each run reserves (default 0)")


def _add_family_commands(sub) -> None:
    """list, explain and plot."""
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
    x_range = library_defaults(plot_curves)["x_range"]
    p.add_argument("--range", nargs=2, type=float, default=list(x_range), metavar=("A", "B"),
                   help=f"x range (default: {x_range[0]:g} {x_range[1]:g})")
    p.add_argument("-o", "--output", required=True, metavar="FILE.png", help="where to write the PNG")
    p.set_defaults(func=_cmd_plot)


def _add_compare(sub) -> None:
    """relulab compare: options and defaults from validate_compare."""
    from .lab.compare import validate_compare
    from .lab.user import TASKS
    from .lab.validate import INITS, MODELS, OPTIMIZERS

    d = library_defaults(validate_compare)
    p = sub.add_parser(
        "compare", help="train activations x seeds on real data: table + HTML report",
        description="Train one model per activation and seed on a real data set (in parallel worker processes), "
                    "print a table and write DIR/index.html with plots, DIR/results.json and DIR/results.csv. "
                    "Finished runs are kept under DIR/runs: rerunning the same command skips them.")
    p.add_argument("--data", default=d["data"], help=f"{_data_help(d['data'])}; or your own: a .npz, a .csv with "
                                                      "--target, or package.module:loader")
    p.add_argument("--model", default=d["model"],
                   help=f"{_or(MODELS)} (cnn is the default for image/sequence data, mlp for 2-D points); or your "
                        "own: package.module:factory or path/to/file.py:factory (f(activation) or f())")
    p.add_argument("--target-column", default=None, metavar="COLUMN",
                   help="the .csv column to predict (your own data; --target is the train error here)")
    p.add_argument("--task", default=d["task"], choices=TASKS, help="override the task inferred from your y")
    activations = ",".join(d["activations"])
    p.add_argument("--activations", default=activations, metavar="A,B,...",
                   help=f"comma-separated member names (default: {activations})")
    p.add_argument("--seeds", default=str(d["seeds"]), metavar="N", help=f"seeds per activation (default {d['seeds']})")
    p.add_argument("--epochs", default=str(d["epochs"]), metavar="N", help=f"epochs per run (default {d['epochs']})")
    p.add_argument("--lr", default=str(d["lr"]), metavar="auto|FLOAT",
                   help=f"learning rate, or auto: tuned per activation on the validation split (default {d['lr']})")
    p.add_argument("--depth", default=d["depth"], metavar="N",
                   help="hidden layers of the mlp (default 3) or conv layers of the cnn (default 2)")
    p.add_argument("--width", default=str(d["width"]), metavar="N", help=f"hidden width (default {d['width']})")
    p.add_argument("--init", default=d["init"],
                   help=f"{_or(INITS)}: he is relulab.nn.init_ (the default for the lab's models), default is "
                        "PyTorch's (your model's own initialisation, the default for it)")
    p.add_argument("--optimizer", default=d["optimizer"],
                   help=f"{_or(OPTIMIZERS)} (default {d['optimizer']}; sgd with momentum 0.9)")
    p.add_argument("--batch-size", default=str(d["batch_size"]), metavar="N",
                   help=f"batch size (default {d['batch_size']})")
    p.add_argument("--target", default=str(d["target_error"]), metavar="ERR",
                   help=f"train error that counts as reached for 'epochs to target' (default {d['target_error']})")
    p.add_argument("--jobs", default=d["jobs"], metavar="N", help="worker processes (default: one per core)")
    p.add_argument("--out", default=str(d["out"]), metavar="DIR", help=f"report directory (default {d['out']})")
    _backend_options(p)
    p.add_argument("--json", action="store_true", help="print results.json instead of the table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_compare)


def _add_run(sub) -> None:
    """relulab run: the names and what each accepts from the experiments' registry."""
    from .lab.experiments import EXPERIMENTS, USER_INPUTS
    from .lab.user import TASKS

    names = list(EXPERIMENTS)
    taking = {option: ", ".join(n for n, accepts in USER_INPUTS.items() if option in accepts)
              for option in ("data", "model")}
    p = sub.add_parser(
        "run", help=f"a named experiment: {', '.join(names)}",
        description="Run a named experiment that tests a ReLU claim against its published anchor and ends with a "
                    f"verdict: {', '.join(names)}. Writes DIR/index.html, PNG plots and DIR/results.json; finished "
                    "runs are kept and skipped on rerun.")
    p.add_argument("name", metavar="NAME", help=_or(names))
    p.add_argument("--quick", action="store_true", help="a seconds-long smoke version (for tests)")
    p.add_argument("--data", default=None, metavar="FILE|SPEC",
                   help=f"your own classification data in place of the preset's ({taking['data']}): a .npz, a .csv "
                        "with --target, or package.module:loader")
    p.add_argument("--model", default=None, metavar="SPEC",
                   help=f"your own model in place of the preset's ({taking['model']}): package.module:factory or "
                        "path/to/file.py:factory")
    p.add_argument("--target", default=None, metavar="COLUMN", help="the .csv column to predict")
    p.add_argument("--task", default=None, choices=TASKS[:1], help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, metavar="DIR", help="report directory (default relulab-report/NAME)")
    p.add_argument("--jobs", default=None, metavar="N", help="worker processes (default: one per core)")
    _backend_options(p)
    p.add_argument("--json", action="store_true", help="print results.json instead of the table and verdict")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run)


def _add_doctor(sub) -> None:
    """relulab doctor: options and defaults from validate_doctor."""
    from .lab.doctor import validate_doctor
    from .lab.user import TASKS
    from .lab.validate import OPTIMIZERS

    d = library_defaults(validate_doctor)
    p = sub.add_parser(
        "doctor", help="diagnose training your model on your data and test which remedy helps",
        description="Train your model briefly with the monitor attached, report per layer what is wrong (dead, "
                    "born-dead, inactive or saturated units, vanishing or exploding gradients, divergence) with "
                    "the evidence, then test the remedies (leaky_relu/elu/relu swaps, He init, a lower learning "
                    "rate, revive) on the same data and seeds side by side with the untouched model. Writes "
                    "DIR/index.html with plots, DIR/results.json and DIR/results.csv; finished runs are kept under "
                    "DIR/runs and skipped on rerun.")
    p.add_argument("--model", required=True, metavar="SPEC",
                   help="package.module:factory or path/to/file.py:factory; the factory returns a torch.nn.Module "
                        "and may take the activation's name (f(activation) or f())")
    p.add_argument("--data", required=True, metavar="FILE|SPEC",
                   help="a .npz (X, y or X_train, y_train, X_test, y_test), a .csv with --target, or "
                        "package.module:loader returning (X, y), such a mapping or a torch Dataset/DataLoader")
    p.add_argument("--target", "--target-column", dest="target", default=d["target"], metavar="COLUMN",
                   help="the .csv column to predict")
    p.add_argument("--task", default=d["task"], choices=TASKS,
                   help="override the task inferred from y (whole numbers with few values: classification)")
    p.add_argument("--activation", default=d["activation"], metavar="NAME",
                   help="for a factory that needs an activation argument: the member of the untouched model "
                        "(default relu)")
    p.add_argument("--epochs", default=str(d["epochs"]), metavar="N", help=f"epochs per run (default {d['epochs']})")
    p.add_argument("--lr", default=f"{d['lr']:g}", metavar="FLOAT", help=f"learning rate (default {d['lr']:g})")
    p.add_argument("--optimizer", default=d["optimizer"],
                   help=f"{_or(OPTIMIZERS)} (default {d['optimizer']}; sgd with momentum 0.9)")
    p.add_argument("--batch-size", default=str(d["batch_size"]), metavar="N",
                   help=f"batch size (default {d['batch_size']})")
    p.add_argument("--seeds", default=str(d["seeds"]), metavar="N", help=f"seeds per arm (default {d['seeds']})")
    p.add_argument("--jobs", default=d["jobs"], metavar="N", help="worker processes (default: one per core)")
    p.add_argument("--out", default=str(d["out"]), metavar="DIR", help=f"report directory (default {d['out']})")
    p.add_argument("--json", action="store_true", help="print results.json instead of the findings and table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _backend_options(p)
    p.set_defaults(func=_cmd_doctor)


def _add_bench(sub) -> None:
    """relulab bench: defaults and choices from relulab.bench."""
    from . import bench

    p = sub.add_parser(
        "bench", help="speed against NumPy, PyTorch and a memory copy, in one run, as GB/s and ratios",
        description=f"Time {_or(bench.MEMBERS, 'and')} (forward allocating, into a buffer, "
                    "in place, derivative allocating and into a buffer) for relulab, the plain NumPy idioms, "
                    "PyTorch on the CPU and a copy of the same bytes, interleaved in one process; then the fused "
                    "operations against their unfused compositions and what relu costs relative to sigmoid and tanh.")
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats: under a minute")
    p.add_argument("--json", action="store_true", help='print {"rows": [...], "summary": [...], ...} as JSON')
    full, quick = bench.BenchConfig(), bench.BenchConfig.quick_config()
    sizes = lambda config: " ".join(bench.elements_text(n) for n in config.sizes)
    p.add_argument("--sizes", nargs="+", default=None, metavar="N",
                   help=f"elements per array, e.g. 16K 1M 2^26, or bytes per array, the same for every dtype, e.g. "
                        f"64KiB 256MiB (default {sizes(full)}; --quick: {sizes(quick)})")
    p.add_argument("--dtype", nargs="+", default=full.dtype, choices=bench.DTYPES, metavar="DTYPE",
                   help=f"element types, each timed in turn: {' '.join(bench.DTYPES)} (default {full.dtype})")
    p.add_argument("--members", nargs="+", default=None, metavar="NAME",
                   help=f"a subset of {' '.join(bench.MEMBERS)} (default all; "
                        f"{'; '.join(bench.SKIPPED.values())})")
    p.add_argument("--repeats", type=int, default=None, metavar="R",
                   help=f"interleaved repeats per case; the median is reported (default {full.repeats}, --quick "
                        f"{quick.repeats})")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--markdown", default=None, metavar="FILE",
                   help=f"also write the tables as Markdown to FILE, atomically; a FILE with the lines "
                        f"{bench.MARKDOWN_BEGIN} and {bench.MARKDOWN_END} (README.md) keeps all but what lies between "
                        "them")
    p.set_defaults(func=_cmd_bench)


def _add_explore(sub) -> None:
    """relulab explore: host and port from the server's defaults."""
    from .explore.server import serve

    p = sub.add_parser("explore", help="the browser explorer: curves, a playground where units die and revive",
                       description="Serve the explorer on a local port and open it in the browser: every member's "
                                   "curve and derivative with live parameters; a playground that trains an MLP on "
                                   "a 2-D toy and lights each unit alive, dead or inactive, with revive and swap; "
                                   "two activations side by side. Offline; Ctrl-C stops it.")
    d = library_defaults(serve)
    p.add_argument("--host", default=d["host"], help=f"address to listen on (default {d['host']}: this machine only)")
    p.add_argument("--port", type=int, default=d["port"], metavar="N",
                   help=f"port (default {d['port']}; 0: any free port)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser; print the URL only")
    p.set_defaults(func=_cmd_explore)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="relulab",
        description="The ReLU family, exactly: explain and plot members; the lab and the instruments.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for add in (_add_family_commands, _add_compare, _add_run, _add_doctor, _add_bench, _add_explore):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        code = func(args)
        sys.stdout.flush()  # a closed pipe shows up here, inside the handler below, not at interpreter exit
        return code
    except (UsageError, family.UnknownActivationError) as error:
        print(f"relulab {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("relulab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader closed the pipe (`relulab bench --json | head`): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        sys.stdout = open(os.devnull, "w")
        return 0
    except OSError as error:
        # A full disk or a vanished folder while writing: one line naming the path (never a temporary file:
        # relulab's writer reports the caller's path); finished runs are already kept as whole files.
        where = f"cannot write {error.filename}: " if error.filename else ""
        print(f"relulab {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
