"""``relulab compare``: activations x seeds on one data set, a table and an HTML report.

Settings are validated before anything runs or is written (:class:`ConfigError` names the option, the value and
what is allowed). The grid runs through :class:`~relulab.lab.sweep.Sweep` (parallel, resumable) and the report is
``DIR/index.html`` with PNG plots, ``DIR/results.json`` and ``DIR/results.csv``. The named experiments
(:mod:`relulab.lab.experiments`) reuse the validation helpers and output writers defined here.
"""

from __future__ import annotations

import html
import importlib
import math
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence, TextIO

from .. import family
from . import data as lab_data
from . import report, stats
from .report import Column, fmt
from .sweep import Backend, Sweep, Task, default_jobs, validate_backend
from .train import RunConfig
from .validate import INITS, LIMITS, MAX_LR, MODELS, OPTIMIZERS, ConfigError, choice, integer, out_dir

__all__ = ["ConfigError", "LIMITS", "MAX_LR", "CompareSettings", "LabResult", "validate_compare", "compare",
           "compare_table", "compare_columns", "render_tables", "DEFAULT_ACTIVATIONS", "LR_CANDIDATES", "lr_lines",
           "ran_on", "failed_lines", "train_task", "write_outputs", "TRAIN"]

DEFAULT_ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid")
# Three rates a factor ~3 apart cover where every default activation trains best on the lab's data sets (relu-like
# members pick 0.03, tanh 0.1, sigmoid 0.3 with SGD) and keep the default compare within a minute on two cores.
LR_CANDIDATES = {"sgd": (0.03, 0.1, 0.3), "adam": (3e-4, 1e-3, 3e-3)}
TRAIN = "relulab.lab.train:run"


def _activations(value: str | Sequence[str]) -> tuple[str, ...]:
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    names = [n for n in names if n]
    if not names:
        raise ConfigError(f"--activations must name at least one activation; got {value!r}")
    canonical = []
    for name in names:
        try:
            member = family.get(name)
        except family.UnknownActivationError as error:
            raise ConfigError(f"--activations: {error}") from None
        if member.name not in canonical:
            canonical.append(member.name)
    return tuple(canonical)


def _data(name: str) -> str:
    if name not in lab_data.REGISTRY:
        raise ConfigError(f"--data must be one of {', '.join(lab_data.names())}, a .npz/.csv file or "
                          f"package.module:loader; got {name!r}")
    needs = lab_data.REGISTRY[name].needs
    if needs is not None:
        try:
            importlib.import_module(needs)
        except ImportError:
            raise ConfigError(f"--data {name} needs {needs}, which is not installed: pip install {needs} "
                              f"(offline data sets: {', '.join(lab_data.names(offline=True))})") from None
    return name


def _lr(value: Any) -> str | float:
    if value == "auto":
        return "auto"
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"--lr must be 'auto' or a number > 0; got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not (
            0 < value <= MAX_LR):
        raise ConfigError(f"--lr must be 'auto' or a number in (0, {MAX_LR:g}]; got {value!r}")
    return float(value)


@dataclass(frozen=True)
class CompareSettings:
    """A validated ``relulab compare`` grid (see :func:`validate_compare`)."""

    data: str = "digits"
    model: str = "cnn"
    activations: tuple[str, ...] = DEFAULT_ACTIVATIONS
    seeds: int = 3
    epochs: int = 10
    lr: str | float = "auto"
    depth: int | None = None
    width: int = 64
    init: str = "he"
    optimizer: str = "sgd"
    batch_size: int = 64
    target_error: float = 0.05
    jobs: int = 1
    out: Path = Path("relulab-report/compare")
    # The user's own data and model (relulab.lab.user); then ``data`` is the prepared file and ``model`` the spec.
    user_data: Any = field(default=None, compare=False, repr=False)
    user_model: Any = field(default=None, compare=False, repr=False)

    def run_config(self, activation: str, seed: int, lr: float) -> RunConfig:
        fingerprint = self.user_model.fingerprint if self.user_model is not None else ""
        return RunConfig(data=self.data, model=self.model, activation=activation, seed=seed, epochs=self.epochs,
                         lr=lr, optimizer=self.optimizer, batch_size=self.batch_size, depth=self.depth,
                         width=self.width, init=self.init, target_error=self.target_error, fingerprint=fingerprint)

    @property
    def data_label(self) -> str:
        return self.user_data.name if self.user_data is not None else self.data

    @property
    def model_label(self) -> str:
        return self.user_model.label if self.user_model is not None else self.model

    def as_dict(self) -> dict[str, Any]:
        """The settings for results.json (the user's data and model by their labels)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("user_data", "user_model")}
        out.update(out=str(self.out), activations=list(self.activations), data=self.data_label,
                   model=self.model_label)
        return out


def _user_input(value: Any) -> bool:
    """A file, an import path or a Python object rather than one of the lab's names (None: the default)."""
    if value is None:
        return False
    if not isinstance(value, (str, Path)):
        return True
    text = str(value)
    return ":" in text or text.lower().endswith((".npz", ".csv", ".py"))


def validate_compare(*, data: Any = "digits", model: Any = None,
                     activations: str | Sequence[str] = DEFAULT_ACTIVATIONS, seeds: int = 3, epochs: int = 10,
                     lr: str | float = "auto", depth: int | None = None, width: int = 64, init: str | None = None,
                     optimizer: str = "sgd", batch_size: int = 64, target_error: float = 0.05,
                     jobs: int | None = None, out: str | Path = "relulab-report/compare", target: str | None = None,
                     task: str | None = None) -> CompareSettings:
    """Check every setting and return them resolved; raise :class:`ConfigError` naming the first bad one.

    ``model=None`` picks a CNN for image and sequence data and an MLP for 2-D points. ``data`` and ``model`` may
    be the user's own (see :mod:`relulab.lab.user`: arrays or files, a module or factory or import path; ``target``
    and ``task`` as there). A user model keeps its own initialisation unless ``init`` is given (default "he" for
    the lab's models); candidates are put in by the factory's activation argument or by relulab.nn.swap.
    Nothing is written.
    """
    from . import user

    user_data = user_model = None
    if _user_input(data):
        user_data = user.prepare_data(data, target=target, task=task)
        kind = user_data.kind
    else:
        data = _data(data)
        kind = lab_data.kind_of(data)
    if _user_input(model):
        user_model = user.model_source(model, out=out_dir(out))
    elif model is None:
        model = "mlp" if kind == "points" else "cnn"
    if user_model is None:
        if model not in MODELS:
            raise ConfigError(f"--model must be one of {', '.join(MODELS)}, package.module:factory or "
                              f"path/to/file.py:factory; got {model!r}")
        if model == "cnn" and kind not in ("image", "sequence"):
            raise ConfigError(f"--model cnn needs image or sequence data; "
                              f"{user_data.name if user_data is not None else data} is 2-D points: use --model mlp")
    if init is None:
        init = "default" if user_model is not None else "he"
    if not isinstance(target_error, (int, float)) or isinstance(target_error, bool) or not 0 < target_error < 1:
        raise ConfigError(f"--target must be a train error strictly between 0 and 1; got {target_error!r}")
    settings = CompareSettings(
        data=data, model=model, activations=_activations(activations), seeds=integer("--seeds", seeds),
        epochs=integer("--epochs", epochs), lr=_lr(lr),
        depth=None if depth is None else integer("--depth", depth, 1, 200 if model == "mlp" else 6),
        width=integer("--width", width), init=choice("--init", init, INITS),
        optimizer=choice("--optimizer", optimizer, OPTIMIZERS), batch_size=integer("--batch-size", batch_size),
        target_error=float(target_error), jobs=default_jobs() if jobs is None else integer("--jobs", jobs),
        out=out_dir(out), user_data=user_data, user_model=user_model,
    )
    if user_data is not None:
        settings = replace(settings, data=str(user.data_path(user_data, settings.out)))
    if user_model is not None:
        if user_data is None:
            user_data = lab_data.load(settings.data)
        user.check_model(replace(user_model, baseline=settings.activations[0]), user_data)
        settings = replace(settings, model=user_model.spec, jobs=1 if user_model.in_process else settings.jobs)
    return settings


# -- shared helpers ------------------------------------------------------------------------------------------------
def train_task(config: RunConfig, group: str = "") -> Task:
    """The sweep task that trains ``config``, labelled by its group, activation and seed."""
    label = f"{group}-{config.activation}-s{config.seed}" if group else f"{config.activation}-s{config.seed}"
    return Task(TRAIN, config.to_dict(), label=label)


def _values(runs: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    return [r["final"][key] for r in runs if r["status"] == "ok" and r["final"].get(key) is not None]


def _choose_lr(runs: Sequence[Mapping[str, Any]], candidates: Sequence[float]) -> tuple[float, dict[str, Any]]:
    """The candidate with the best final validation accuracy (ties: lower validation loss, then smaller lr)."""
    scores = {}
    for lr, run in zip(candidates, runs):
        last = run["epochs"][-1] if run["status"] == "ok" and run["epochs"] else None
        scores[lr] = (last["val_accuracy"], -last["val_loss"]) if last else (-1.0, -math.inf)
    best = max(candidates, key=lambda lr: (scores[lr], -lr))
    table = {f"{lr:g}": (None if scores[lr][0] < 0 else scores[lr][0]) for lr in candidates}
    return best, table


def _strip(run: Mapping[str, Any], group: str = "") -> dict[str, Any]:
    """A run as results.json keeps it, tagged with its group when it has one."""
    out = dict(run)
    if group:
        out["group"] = group
    return out


Table = tuple  # (title or "", columns, rows)


@dataclass
class LabResult:
    """What an experiment hands back: ``results`` (exactly what results.json holds) and ``text`` (what the
    terminal shows: summary, table(s), verdict)."""

    results: dict[str, Any]
    text: str
    out: Path


def render_tables(tables: Sequence[Table]) -> str:
    """The tables as plain text, each under its title."""
    blocks = []
    for title, columns, rows in tables:
        blocks.append((f"{title}\n" if title else "") + report.render_text(columns, rows))
    return "\n\n".join(blocks)


def write_outputs(out: Path, results: dict[str, Any], *, title: str, intro: Sequence[str],
                  tables: Sequence[Table], figures: Sequence[tuple[str, str]],
                  runs: Sequence[Mapping[str, Any]], notes: Sequence[str] = (),
                  csv_rows: tuple[Sequence[str], Sequence[Mapping[str, Any]]] | None = None) -> None:
    """Write the report: index.html, results.json (``results``, with the file names added) and results.csv."""
    results["files"] = {"html": "index.html", "json": "results.json", "csv": "results.csv",
                        "figures": [name for name, _ in figures]}
    tables_html = "".join((f"<h3>{html.escape(t)}</h3>" if t else "") + report.render_html(c, r)
                          for t, c, r in tables)
    if csv_rows is None:
        report.write_csv(out, runs)
    else:
        report.write_rows_csv(out, *csv_rows)
    report.write_results(out, results)
    report.write_page(out, title=title, intro=intro, table_html=tables_html, figures=figures,
                      verdict=results.get("verdict"), settings=results.get("settings"), notes=notes)


# -- compare -------------------------------------------------------------------------------------------------------
def compare_columns(target_error: float, metric: str = "accuracy") -> list[Column]:
    """The columns of the compare table (text and HTML), over rows of raw numbers in results.json["table"].

    ``metric="r2"`` (a regression): the test column holds R^2 x 100 and the error is 1 - R^2."""
    return [
        Column("activation", "activation", numeric=False),
        Column("lr", "lr", lambda r: f"{r['lr']:g}"),
        Column("test_accuracy", "test acc % (mean ± std)" if metric == "accuracy" else "test R^2 x100 (mean ± std)",
               lambda r: fmt(r["test_accuracy"]) if r["test_accuracy_std"] is None else
               f"{fmt(r['test_accuracy'])} ± {fmt(r['test_accuracy_std'])}"),
        Column("epochs_to_target", f"epochs to {100 * target_error:g}% train err",
               lambda r: f"{fmt(r['epochs_to_target'])} ({r['reached']}/{r['runs']})"),
        Column("dead_percent", "dead %", lambda r: fmt(r["dead_percent"])),
        Column("sparsity_percent", "sparsity %", lambda r: fmt(r["sparsity_percent"])),
        Column("grad_ratio", "grad first/last", lambda r: fmt(r["grad_ratio"], sci=True)),
        Column("diverged", "diverged", lambda r: f"{r['diverged']}/{r['runs']}"),
    ]


def compare_table(runs_by_activation: Mapping[str, Sequence[Mapping[str, Any]]],
                  lrs: Mapping[str, float]) -> list[dict[str, Any]]:
    """One row per activation: means over its seeds (diverged runs counted in ``diverged``, not in the means)."""
    rows = []
    for act, runs in runs_by_activation.items():
        accuracy = [100 * v for v in _values(runs, "test_accuracy")]
        reached = [r["final"]["epochs_to_target"] for r in runs
                   if r["status"] != "failed" and r["final"]["epochs_to_target"] is not None]
        rows.append({
            "activation": act,
            "lr": lrs[act],
            "test_accuracy": stats.mean(accuracy),
            "test_accuracy_std": stats.spread(accuracy),
            "epochs_to_target": stats.mean(reached),
            "reached": len(reached),
            "runs": len(runs),
            "dead_percent": stats.mean([100 * v for v in _values(runs, "dead_fraction")]),
            "inactive_percent": stats.mean([100 * v for v in _values(runs, "inactive_fraction")]),
            "sparsity_percent": stats.mean([100 * v for v in _values(runs, "sparsity")]),
            "grad_ratio": stats.geometric_mean(_values(runs, "grad_ratio")),
            "diverged": sum(r["status"] == "diverged" for r in runs),
            "failed": sum(r["status"] == "failed" for r in runs),
        })
    return rows


def compare(settings: CompareSettings, *, progress: bool = True, stream: TextIO | None = None,
            command: str | None = None, backend: str | Backend = "local", address: str | None = None,
            gpus_per_run: float | None = None) -> LabResult:
    """Run the compare grid of ``settings`` and write its report (see :class:`LabResult`).

    ``backend``/``address``/``gpus_per_run`` say where the runs go (see :class:`~relulab.lab.sweep.Sweep`): this
    machine's worker processes by default, or a Ray cluster. A run that fails is counted in the table's ``failed``
    and listed in ``results["failed"]``; the other runs go on.
    """
    started = time.perf_counter()
    backend = validate_backend(backend, address, gpus_per_run)
    if settings.user_data is not None:
        from .user import save_data

        save_data(settings.user_data, settings.out)  # prepared once here; workers read it
    else:
        lab_data.load(settings.data)  # build the cache once here; workers on this machine read it
    if settings.user_model is not None:
        from .user import write_inputs

        write_inputs(settings.user_model)
    out = settings.out
    tuned: dict[str, Any] = {}
    with Sweep(out, jobs=settings.jobs, progress=progress, stream=stream, backend=backend) as sweep:
        if settings.lr == "auto":
            candidates = LR_CANDIDATES[settings.optimizer]
            tasks = [train_task(settings.run_config(a, 0, lr)) for a in settings.activations for lr in candidates]
            tuning = sweep.run(tasks, label="lr sweep", keep_failed=True)
            for i, act in enumerate(settings.activations):
                chosen, scores = _choose_lr(tuning[i * len(candidates):(i + 1) * len(candidates)], candidates)
                tuned[act] = {"chosen": chosen, "val_accuracy": scores}
            lrs = {a: tuned[a]["chosen"] for a in settings.activations}
        else:
            lrs = {a: float(settings.lr) for a in settings.activations}
        tasks = [train_task(settings.run_config(a, s, lrs[a])) for a in settings.activations
                 for s in range(settings.seeds)]
        runs = sweep.run(tasks, label="runs", keep_failed=True)
    by_activation = {a: runs[i * settings.seeds:(i + 1) * settings.seeds] for i, a in enumerate(settings.activations)}
    rows = compare_table(by_activation, lrs)
    settings_dict = settings.as_dict()
    results: dict[str, Any] = {
        "experiment": "compare",
        "command": command,
        "settings": settings_dict,
        "learning_rates": {"mode": "auto" if settings.lr == "auto" else "fixed", "chosen": lrs,
                           "candidates": list(LR_CANDIDATES[settings.optimizer]) if settings.lr == "auto" else None,
                           "tuning": tuned},
        "table": rows,
        "runs": [_strip(r) for r in runs],
        "counts": {"computed": sweep.computed, "skipped": sweep.skipped},
        "failed": [{"label": r["label"], "error": r["error"]} for r in sweep.failed],
        "execution": sweep.describe(),
        "seconds": time.perf_counter() - started,
    }
    figures = report.plot_compare(out, [r for r in runs if r["status"] != "failed"], settings.activations,
                                  settings.target_error)
    summary = compare_summary(settings, lrs, tuned)
    metric = "r2" if settings.user_data is not None and settings.user_data.task == "regression" else "accuracy"
    tables = [("", compare_columns(settings.target_error, metric), rows)]
    write_outputs(out, results, title=f"relulab compare: {settings.data_label}, {settings.model_label}",
                   intro=[summary, ran_on(results["execution"]), *failed_lines(results)[1:]], tables=tables,
                   figures=figures, runs=results["runs"], notes=COMPARE_NOTES)
    text = "\n".join([summary, "", render_tables(tables)] + (["", "lr auto:"] + lr_lines(results) if tuned else [])
                     + failed_lines(results))
    return LabResult(results, text, out)


COMPARE_NOTES = (
    "test acc: accuracy on the held-out test split after the last epoch, mean ± sample std over seeds "
    "(diverged runs excluded and counted in the diverged column).",
    "epochs to target: first epoch whose training error (whole training split, end of epoch) is at or below the "
    "target, averaged over the seeds that reached it; (k/n) says how many did.",
    "dead %: hidden units never positive over the last epoch whose gradient is then exactly zero; sparsity %: "
    "exact zeros in activation outputs over the last epoch (mean over layers).",
    "grad first/last: RMS norm of the first layer's weight gradient over the last layer's during the last epoch "
    "(geometric mean over seeds); far below 1 means vanishing gradients at the input side.",
    "lr auto: each activation trains once (seed 0) at every candidate learning rate; the one with the best "
    "final validation accuracy is used for all seeds (the seed-0 run is reused).",
)


def compare_summary(settings: CompareSettings, lrs: Mapping[str, float], tuned: Mapping[str, Any]) -> str:
    depth = settings.depth if settings.depth is not None else ("3 hidden layers" if settings.model == "mlp"
                                                                else "2 conv layers")
    optimizer = "SGD with momentum 0.9" if settings.optimizer == "sgd" else "Adam"
    if settings.user_model is not None:
        model = f"{settings.model_label} ({'its own' if settings.init == 'default' else settings.init} init)"
    else:
        model = f"{settings.model} ({depth}, width {settings.width}), {settings.init} init"
    text = (f"{settings.data_label}, {model}, {optimizer}, "
            f"batch {settings.batch_size}, {settings.epochs} epoch{'s' if settings.epochs > 1 else ''}, "
            f"{settings.seeds} seed{'s' if settings.seeds > 1 else ''} per activation.")
    if tuned:
        text += " Learning rate tuned per activation on the validation split: " + "; ".join(
            f"{a} {lrs[a]:g}" for a in lrs) + "."
    else:
        text += f" Learning rate {settings.lr:g} for every activation."
    return text


def _plural(count: float, noun: str) -> str:
    """'1 node', '2 nodes', '2 worker processes'."""
    return f"{count:g} {noun}{'' if count == 1 else 'es' if noun.endswith('s') else 's'}"


def ran_on(execution: Mapping[str, Any]) -> str:
    """One sentence for the report: which backend computed the runs, on how many nodes and CPUs."""
    if execution.get("nodes") is None:
        where = f"Backend {execution['backend']}: no run needed computing (all were finished before)."
    elif execution["backend"] == "local":
        where = f"Ran on this machine: {_plural(execution['workers'], 'worker process')}."
    else:
        gpus = f", {_plural(execution['gpus'], 'GPU')}" if execution.get("gpus") else ""
        where = (f"Ran on Ray ({execution['address']}): {_plural(execution['nodes'], 'node')}, "
                 f"{_plural(execution['cpus'], 'CPU')}{gpus}.")
    if execution.get("lost"):
        where += (f" {_plural(execution['lost'], 'attempt')} lost to a dead worker or node "
                  "(each retried, up to 3 attempts per run).")
    return where


def failed_lines(results: Mapping[str, Any]) -> list[str]:
    """Terminal lines for runs that failed (none when every run finished)."""
    failed = results.get("failed") or []
    if not failed:
        return []
    return ["", f"{len(failed)} run{'s' if len(failed) > 1 else ''} failed (not stored; a rerun tries again):"] + [
        f"  {f['label']}: {f['error']}" for f in failed]


def lr_lines(results: Mapping[str, Any]) -> list[str]:
    """'lr auto' lines for the terminal: the chosen rate and the validation accuracy of every candidate."""
    tuning = results["learning_rates"]["tuning"]
    lines = []
    for act, entry in tuning.items():
        scores = ", ".join(f"{lr}: {'diverged' if acc is None else f'{100 * acc:.1f}%'}"
                           for lr, acc in entry["val_accuracy"].items())
        lines.append(f"  {act}: chose {entry['chosen']:g}  (validation accuracy {scores})")
    return lines
