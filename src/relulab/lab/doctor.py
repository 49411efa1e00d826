"""``relulab doctor``: what is wrong with training your model on your data, and which remedy measurably helps.

The doctor trains the untouched model briefly with the monitor attached (``seeds`` runs), reads the evidence per
layer, and for every finding tests the remedies the lab's experiments back, each on the same data and seeds, side
by side with the untouched model. Findings (``kind``):

=====================  ===============================================================================================
dead_units             a layer (relu-like member) with >= 10 % of its units dead over the last epoch (mean over
                       seeds); evidence: dead per seed, at initialisation, and the epoch each dead unit died
inactive_units         the same for members whose gradient is small but not zero there (leaky_relu, elu, gelu...)
born_dead              >= 50 % of a layer's units dead at initialisation, before any update
vanishing_gradients    RMS ||dL/dW|| of the first weight layer below 1/100 of the last one's in the first epoch
exploding_gradients    that ratio above 100, or a layer's gradient norm growing more than 100x over the epochs
saturation             >= 20 % of a sigmoid/tanh layer's units with mean output within 5 % of the range of a bound
diverged               a run whose loss became NaN or infinite
unscaled_inputs        an input feature whose std or |mean| over the training split is above 5 (only reported
                       together with a finding about the network, which it may explain)
=====================  ===============================================================================================

Remedies: ``standardize`` (inputs scaled by the training split's mean and std), ``leaky_relu`` and ``elu`` in place
of the member that died (relulab.nn.swap, or the factory's activation argument), ``relu`` in place of a saturating
member, ``he_init`` (relulab.nn.init_), ``lower_lr`` (the learning rate / 10) and ``revive`` (relulab.revive after
half the epochs). A remedy *helped* when it improves a
symptom it targets by the stated margin (dead/inactive/saturated % at most half the untouched model's and at least
5 points lower; the gradient ratio 10x closer to 1; no diverged run where some diverged) and its validation metric
is not worse than the untouched model's by more than the larger spread over seeds (at least 0.01), nor its final
training loss (at least 5 % of it), and it leaves no more than 10 % of the units dead unless the untouched model had
as many (within 5 points). Runs go through
the lab's resumable :class:`~relulab.lab.sweep.Sweep`: each is a task ``relulab.lab.train:run`` with a JSON config.
"""

from __future__ import annotations

import html
import math
import textwrap
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence, TextIO

import numpy as np

from .. import family
from . import report, stats
from .compare import TRAIN, LabResult, render_tables
from .data import Dataset
from .report import Column, band, colour, figure, fmt, integer_ticks, plot_gradient_flow
from .sweep import Backend, Sweep, Task, default_jobs, validate_backend
from .train import RunConfig
from .user import (ModelSource, check_model, main_is_importable, model_source, prepare_data, save_data,
                   write_inputs)
from .validate import OPTIMIZERS, ConfigError, choice, integer, out_dir, positive

__all__ = ["DoctorSettings", "Remedy", "validate_doctor", "run_doctor", "doctor", "diagnose", "propose",
           "FINDING_KINDS", "DEAD_LIMIT", "BORN_DEAD_LIMIT", "VANISHING_LIMIT", "EXPLODING_LIMIT", "SATURATION_LIMIT"]

FINDING_KINDS = ("dead_units", "inactive_units", "born_dead", "vanishing_gradients", "exploding_gradients",
                 "saturation", "diverged", "unscaled_inputs")
DEAD_LIMIT = 0.10
BORN_DEAD_LIMIT = 0.5
VANISHING_LIMIT = 1e-2
EXPLODING_LIMIT = 1e2
SATURATION_LIMIT = 0.2
SCALE_LIMIT = 5.0  # an input feature whose std or |mean| over the training split exceeds this is "unscaled"
_MIN_DROP = 0.05  # a fraction symptom must fall by at least 5 points (and to half) to count as improved
BASELINE = "untouched"


# -- settings ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DoctorSettings:
    """A validated doctor run (see :func:`validate_doctor`): the model's source, the prepared data, the training."""

    model: ModelSource
    data: Dataset
    epochs: int = 10
    lr: float = 1e-3
    optimizer: str = "adam"
    batch_size: int = 64
    seeds: int = 3
    jobs: int = 1
    out: Path = Path("relulab-report/doctor")
    data_label: str = ""

    def run_config(self, data_path: Path, seed: int, **changes: Any) -> RunConfig:
        base = RunConfig(data=str(data_path), model=self.model.spec, activation=self.model.baseline, seed=seed,
                         epochs=self.epochs, lr=self.lr, optimizer=self.optimizer, batch_size=self.batch_size,
                         init="default", probe=True, fingerprint=self.model.fingerprint)
        return replace(base, **changes)


def validate_doctor(model: Any, data: Any, *, target: str | None = None, task: str | None = None,
                    activation: str = "", epochs: int = 10, lr: float = 1e-3, optimizer: str = "adam",
                    batch_size: int = 64, seeds: int = 3, jobs: int | None = None,
                    out: str | Path = "relulab-report/doctor") -> DoctorSettings:
    """Check everything before anything runs or is written; ConfigError names the first bad option.

    ``model``: an ``nn.Module``, a factory, or an import path (``package.module:factory``, ``file.py:factory``);
    ``data``: arrays, a torch Dataset/DataLoader, a .npz/.csv path or a loader's import path (see
    :mod:`relulab.lab.user`); ``activation``: the member a factory that needs one is built with (default relu).
    """
    epochs, seeds = integer("--epochs", epochs), integer("--seeds", seeds)
    lr, batch_size = positive("--lr", lr), integer("--batch-size", batch_size)
    optimizer = choice("--optimizer", optimizer, OPTIMIZERS)
    jobs = default_jobs() if jobs is None else integer("--jobs", jobs)
    if activation:
        try:
            activation = family.get(activation).name
        except family.UnknownActivationError as error:
            raise ConfigError(f"--activation: {error}") from None
    out = out_dir(out)
    prepared = prepare_data(data, target=target, task=task)
    source = model_source(model, out=out, activation=activation)
    check_model(source, prepared)
    if source.in_process or not main_is_importable():
        jobs = 1  # _notes says why
    return DoctorSettings(model=source, data=prepared, epochs=epochs, lr=lr, optimizer=optimizer,
                          batch_size=batch_size, seeds=seeds, jobs=jobs, out=out, data_label=prepared.name)


# -- diagnosis -----------------------------------------------------------------------------------------------------
def _ok(runs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in runs if r["status"] == "ok" and r["epochs"]]


def _layer(record: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    return next((l for l in record["layers"] if l["name"] == name), None)


def _died_at(run: Mapping[str, Any], name: str) -> dict[int, int]:
    """For the units dead at the end of ``run``: how many have been dead without a break since each epoch (0: at
    initialisation, measured before any update)."""
    epochs = run["epochs"]
    sets = [set((_layer(e, name) or {}).get("dead_units", [])) for e in epochs]
    if "init" in run:
        sets.insert(0, set((_layer(run["init"], name) or {}).get("dead_units", [])))
        first = 0
    else:
        first = 1
    if not sets:
        return {}
    counts: dict[int, int] = {}
    for unit in sets[-1]:
        start = len(sets) - 1
        while start > 0 and unit in sets[start - 1]:
            start -= 1
        counts[first + start] = counts.get(first + start, 0) + 1
    return dict(sorted(counts.items()))


def _ratios(run: Mapping[str, Any]) -> list[float | None]:
    out = []
    for record in run["epochs"]:
        grads = record["weight_grad"]
        out.append(grads[0] / grads[-1] if len(grads) > 1 and grads[-1] > 0 else None)
    return out


def diagnose(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The findings (see the module docstring) from the untouched model's runs, one per layer and kind."""
    findings: list[dict[str, Any]] = []
    diverged = [r for r in runs if r["status"] == "diverged"]
    if diverged:
        findings.append({
            "kind": "diverged", "layer": "network",
            "evidence": {"seeds_diverged": len(diverged), "seeds": len(runs),
                         "at_epoch": [r["diverged_at"] for r in diverged], "lr": runs[0]["config"]["lr"]},
        })
    ok = _ok(runs)
    if not ok:
        return findings
    for name in [l["name"] for l in ok[0]["epochs"][-1]["layers"]]:
        last = [_layer(r["epochs"][-1], name) for r in ok]
        last = [l for l in last if l is not None]
        if not last:
            continue
        kind = last[0]["kind"]
        units = last[0]["units"]
        dead_possible = family.get(kind).properties.zero_for_negative
        dead = [l["dead_fraction"] for l in last]
        inactive = [l["inactive_fraction"] for l in last]
        at_init = [(_layer(r["init"], name) or {}).get("dead_fraction") for r in ok if "init" in r]
        history = [stats.mean([(_layer(r["epochs"][e], name) or {}).get("dead_fraction") for r in ok
                          if e < len(r["epochs"])], finite_only=True) for e in range(len(ok[0]["epochs"]))]
        died: dict[int, int] = {}
        for run in ok:
            for epoch, count in _died_at(run, name).items():
                died[epoch] = died.get(epoch, 0) + count
        died = dict(sorted(died.items()))
        base_evidence = {"member": kind, "units": units, "seeds": len(ok)}
        saturated = [l.get("saturated_fraction") for l in last]
        dead_mean, inactive_mean, at_init_mean, saturated_mean = (
            stats.mean(v, finite_only=True) for v in (dead, inactive, at_init, saturated))
        if dead_possible and dead_mean >= DEAD_LIMIT:
            findings.append({"kind": "dead_units", "layer": name, "evidence": {
                **base_evidence, "dead_fraction": dead_mean, "dead_fraction_per_seed": dead,
                "dead_units_seed0": last[0]["dead_units"], "dead_fraction_at_init": at_init_mean,
                "dead_fraction_per_epoch": history, "died_at_epoch": {str(k): v for k, v in died.items()}}})
        elif not dead_possible and not _saturating(kind) and inactive_mean >= DEAD_LIMIT:
            # sigmoid/tanh units with negative inputs still pass gradient (their trouble is saturation, below)
            findings.append({"kind": "inactive_units", "layer": name, "evidence": {
                **base_evidence, "inactive_fraction": inactive_mean, "inactive_fraction_per_seed": inactive}})
        if dead_possible and at_init and at_init_mean >= BORN_DEAD_LIMIT:
            findings.append({"kind": "born_dead", "layer": name, "evidence": {
                **base_evidence, "dead_fraction_at_init": at_init_mean, "dead_fraction_at_init_per_seed": at_init}})
        if saturated_mean is not None and saturated_mean >= SATURATION_LIMIT:
            findings.append({"kind": "saturation", "layer": name, "evidence": {
                **base_evidence, "saturated_fraction": saturated_mean, "saturated_fraction_per_seed": saturated}})
    weights = ok[0]["weight_layers"]
    if len(weights) > 1:
        per_epoch = [stats.geometric_mean([_ratios(r)[e] for r in ok if e < len(r["epochs"])], finite_only=True)
                     for e in range(len(ok[0]["epochs"]))]
        first = per_epoch[0]
        norms = np.array([[r["epochs"][e]["weight_grad"] for e in (0, -1)] for r in ok], dtype=float)
        with np.errstate(all="ignore"):
            growth = np.exp(np.nanmean(np.log(norms[:, 1] / norms[:, 0]), axis=0))  # per layer, over seeds
        evidence = {"first_layer": weights[0], "last_layer": weights[-1], "first_last_ratio_per_epoch": per_epoch,
                    "weight_grad_first_epoch": [stats.geometric_mean(col, finite_only=True) for col in norms[:, 0].T],
                    "growth_over_epochs": [float(g) if math.isfinite(g) else None for g in growth],
                    "weight_layers": weights}
        if first is not None and first < VANISHING_LIMIT:
            findings.append({"kind": "vanishing_gradients", "layer": weights[0],
                             "evidence": {"first_last_ratio": first, **evidence}})
        finite_growth = [g for g in growth if math.isfinite(g)]
        if (first is not None and first > EXPLODING_LIMIT) or (finite_growth and max(finite_growth) > EXPLODING_LIMIT):
            worst = int(np.nanargmax(np.where(np.isfinite(growth), growth, -np.inf)))
            findings.append({"kind": "exploding_gradients", "layer": weights[worst],
                             "evidence": {"first_last_ratio": first, **evidence}})
    return findings


def input_scale(data: Dataset) -> dict[str, Any] | None:
    """The ``unscaled_inputs`` finding for the training split's features, or None when they are near unit scale."""
    flat = data.x_train.reshape(len(data.x_train), -1).astype(np.float64)
    mean, std = flat.mean(0), flat.std(0)
    worst = np.maximum(std, np.abs(mean))
    if not flat.size or worst.max() <= SCALE_LIMIT:
        return None
    order = [int(i) for i in np.argsort(-worst)[:3] if worst[i] > SCALE_LIMIT]
    return {"kind": "unscaled_inputs", "layer": "input", "evidence": {
        "features": int(flat.shape[1]), "unscaled": int(np.sum(worst > SCALE_LIMIT)),
        "worst": [{"feature": i, "mean": float(mean[i]), "std": float(std[i])} for i in order],
        "std_range": [float(std.min()), float(std.max())]}}


def describe(finding: Mapping[str, Any]) -> str:
    """One line of plain words with the numbers behind a finding."""
    e = finding["evidence"]
    kind = finding["kind"]
    where = f"layer {finding['layer']}" + (f" ({e['member']}, {e['units']} units)" if "member" in e else "")
    if kind == "dead_units":
        died = {int(k): v for k, v in e["died_at_epoch"].items()}
        later = {k: v for k, v in died.items() if k > 0}
        when = f"{died.get(0, 0)} dead from initialisation on"
        if later:
            peak = max(later, key=lambda k: later[k])
            when += (f", {sum(later.values())} died during training (epochs {min(later)}-{max(later)}, most in "
                     f"epoch {peak}: {later[peak]})")
        return (f"{where}: {100 * e['dead_fraction']:.0f}% of units dead over the last epoch (per seed: "
                f"{', '.join(f'{100 * v:.0f}%' for v in e['dead_fraction_per_seed'])}); over all seeds {when}")
    if kind == "inactive_units":
        return (f"{where}: {100 * e['inactive_fraction']:.0f}% of units never positive over the last epoch "
                "(their gradient is small, not zero)")
    if kind == "born_dead":
        return f"{where}: {100 * e['dead_fraction_at_init']:.0f}% of units dead at initialisation, before any update"
    if kind == "saturation":
        return (f"{where}: {100 * e['saturated_fraction']:.0f}% of units saturated (mean output within 5% of a "
                "bound), where the derivative is near 0")
    if kind == "vanishing_gradients":
        ratios = e["first_last_ratio_per_epoch"]
        return (f"RMS gradient of the first weight layer ({e['first_layer']}) is {e['first_last_ratio']:.2g}x that "
                f"of the last ({e['last_layer']}) in epoch 1 (epoch {len(ratios)}: {fmt(ratios[-1], sci=True)}x)")
    if kind == "exploding_gradients":
        growth = max((g for g in e["growth_over_epochs"] if g is not None), default=None)
        return (f"gradient norms grow: first/last layer ratio {fmt(e['first_last_ratio'], sci=True)} in epoch 1; "
                f"largest growth over the epochs {fmt(growth, sci=True)}x ({finding['layer']})")
    if kind == "unscaled_inputs":
        worst = "; ".join(f"feature {w['feature']}: mean {w['mean']:.3g}, std {w['std']:.3g}" for w in e["worst"])
        return (f"{e['unscaled']} of {e['features']} input features are far from unit scale ({worst}); "
                "pre-activations then start large and one-sided")
    if kind == "diverged":
        return (f"{e['seeds_diverged']} of {e['seeds']} seeds diverged (loss NaN or infinite) at epoch(s) "
                f"{', '.join(str(a) for a in e['at_epoch'])} with lr {e['lr']:g}")
    return kind


# -- remedies ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Remedy:
    """A change to the training (``changes`` to the run config) and the finding kinds it targets."""

    name: str
    description: str
    changes: Mapping[str, Any]
    targets: tuple[str, ...] = ()


def propose(findings: Sequence[Mapping[str, Any]], settings: DoctorSettings,
            members: Sequence[str] = ()) -> list[Remedy]:
    """The remedies worth testing for these findings, in a fixed order, each once (targets merged).

    ``members``: the activation members of the model; with vanishing gradients its saturating ones (sigmoid,
    tanh) get a relu swap.
    """
    kinds = {f["kind"] for f in findings}
    dead_members = sorted({f["evidence"]["member"] for f in findings if f["kind"] in ("dead_units", "born_dead")})
    bounded = {f["evidence"]["member"] for f in findings if f["kind"] == "saturation"}
    if "vanishing_gradients" in kinds:
        bounded |= {m for m in members if _saturating(m)}
    bounded = sorted(bounded)
    found: dict[str, Remedy] = {}

    def add(remedy: Remedy) -> None:
        if remedy.name in found:
            old = found[remedy.name]
            found[remedy.name] = replace(old, targets=tuple(dict.fromkeys(old.targets + remedy.targets)))
        else:
            found[remedy.name] = remedy

    def swap(new: str, old: str, targets: tuple[str, ...]) -> Remedy:
        how = (f"the factory's activation argument {new!r}" if settings.model.takes_activation
               else f"relulab.nn.swap(model, {old!r}, {new!r})")
        return Remedy(new, f"{new} instead of {old} ({how})", {"activation": new, "swap_from": old}, targets)

    if "unscaled_inputs" in kinds:
        add(Remedy("standardize", "inputs scaled to mean 0 and std 1 per feature with the training split's "
                                  "statistics (do the same in your data pipeline)", {"standardize": True},
                   tuple(k for k in ("dead_units", "born_dead", "inactive_units", "exploding_gradients", "diverged",
                                     "saturation", "vanishing_gradients") if k in kinds)))
    dead_targets = tuple(k for k in ("dead_units", "born_dead") if k in kinds)
    for member in dead_members:
        add(swap("leaky_relu", member, dead_targets))
        add(swap("elu", member, dead_targets))
    for member in bounded:
        add(swap("relu", member, tuple(k for k in ("saturation", "vanishing_gradients") if k in kinds)))
    init_targets = tuple(k for k in ("dead_units", "born_dead", "inactive_units", "vanishing_gradients",
                                     "exploding_gradients", "saturation") if k in kinds)
    if init_targets:
        add(Remedy("he_init", "He-style initialisation for each layer's activation (relulab.nn.init_)",
                   {"init": "he"}, init_targets))
    lr_targets = tuple(k for k in ("dead_units", "inactive_units", "exploding_gradients", "diverged") if k in kinds)
    if lr_targets:
        add(Remedy("lower_lr", f"learning rate {settings.lr / 10:g} instead of {settings.lr:g}",
                   {"lr": settings.lr / 10}, lr_targets))
    if "dead_units" in kinds and settings.epochs >= 2:
        after = settings.epochs // 2
        add(Remedy("revive", f"relulab.revive the dead units after epoch {after}", {"revive_after": after},
                   ("dead_units",)))
    return list(found.values())


def _saturating(member: str) -> bool:
    """Bounded on both sides and not zero for x < 0 (sigmoid, tanh): its derivative vanishes at both ends."""
    properties = family.get(member).properties
    return properties.lower_bound is not None and properties.upper_bound is not None and \
        not properties.zero_for_negative


def _members(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    ok = _ok(runs)
    return sorted({l["kind"] for l in ok[0]["epochs"][-1]["layers"]}) if ok else []


# -- measuring -----------------------------------------------------------------------------------------------------
def arm_metrics(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What a table row shows for one arm (mean and sample std over its seeds; diverged runs counted apart)."""
    ok = _ok(runs)
    last = [r["epochs"][-1] for r in ok]
    metric = runs[0].get("metric", "accuracy") if runs else "accuracy"

    def saturated(record: Mapping[str, Any]) -> float | None:
        values = [l["saturated_fraction"] for l in record["layers"] if "saturated_fraction" in l]
        return float(np.mean(values)) if values else None

    dead = [e["dead_fraction"] for e in last]
    inactive = [e["inactive_fraction"] for e in last]
    loss = [e["train_loss"] for e in last]
    val = [e["val_accuracy"] for e in last]
    test = [e["test_accuracy"] for e in last]
    ratios = [_ratios(r)[-1] for r in ok]
    at_init = [r["init"]["dead_fraction"] for r in ok if "init" in r]
    return {
        "runs": len(runs), "diverged": sum(r["status"] == "diverged" for r in runs), "metric": metric,
        "dead_fraction": stats.mean(dead, finite_only=True), "dead_fraction_std": stats.spread(dead, finite_only=True),
        "inactive_fraction": stats.mean(inactive, finite_only=True),
        "inactive_fraction_std": stats.spread(inactive, finite_only=True),
        "dead_fraction_at_init": stats.mean(at_init, finite_only=True),
        "saturated_fraction": stats.mean([saturated(e) for e in last], finite_only=True),
        "train_loss": stats.mean(loss, finite_only=True), "train_loss_std": stats.spread(loss, finite_only=True),
        "initial_loss": stats.mean([r["init"]["train_loss"] for r in ok if "init" in r], finite_only=True),
        "val_metric": stats.mean(val, finite_only=True), "val_metric_std": stats.spread(val, finite_only=True),
        "test_metric": stats.mean(test, finite_only=True), "test_metric_std": stats.spread(test, finite_only=True),
        "grad_ratio": stats.geometric_mean(ratios, finite_only=True),
    }


def _halved(base: float | None, arm: float | None) -> bool:
    return base is not None and arm is not None and arm <= 0.5 * base and base - arm >= _MIN_DROP


def judge(remedy: Remedy, arm: Mapping[str, Any], base: Mapping[str, Any]) -> tuple[bool, list[str], str]:
    """(helped, the symptoms it improved, why in words) for one remedy against the untouched model."""
    improved = []
    for kind in remedy.targets:
        if kind == "dead_units" and _halved(base["dead_fraction"], arm["dead_fraction"]):
            improved.append("dead %")
        elif kind == "born_dead" and _halved(base["dead_fraction_at_init"], arm["dead_fraction_at_init"]):
            improved.append("dead % at init")
        elif kind == "inactive_units" and _halved(base["inactive_fraction"], arm["inactive_fraction"]):
            improved.append("inactive %")
        elif kind == "saturation" and _halved(base["saturated_fraction"], arm["saturated_fraction"]):
            improved.append("saturated %")
        elif kind == "vanishing_gradients" and base["grad_ratio"] and arm["grad_ratio"] and \
                abs(math.log10(arm["grad_ratio"])) <= abs(math.log10(base["grad_ratio"])) - 1:
            improved.append("gradient ratio")
        elif kind == "exploding_gradients" and base["grad_ratio"] and arm["grad_ratio"] and \
                abs(math.log10(arm["grad_ratio"])) <= abs(math.log10(base["grad_ratio"])) - 1:
            improved.append("gradient ratio")
        elif kind == "diverged" and base["diverged"] and not arm["diverged"]:
            improved.append("no divergence")
    improved = list(dict.fromkeys(improved))
    if arm["val_metric"] is None:
        return False, improved, "every seed diverged"
    if base["val_metric"] is None:
        worse = False
    else:
        tolerance = max(base["val_metric_std"] or 0.0, arm["val_metric_std"] or 0.0, 0.01)
        worse = arm["val_metric"] < base["val_metric"] - tolerance or arm["diverged"] > base["diverged"]
    if not improved:
        return False, improved, "did not improve the symptoms it targets by the required margin"
    if arm["dead_fraction"] is not None and arm["dead_fraction"] >= DEAD_LIMIT and \
            arm["dead_fraction"] > (base["dead_fraction"] or 0.0) + _MIN_DROP:
        return False, improved, (f"improved {', '.join(improved)} but left {100 * arm['dead_fraction']:.0f}% of the "
                                 "units dead")
    if worse:
        return False, improved, f"improved {', '.join(improved)} but the validation {arm['metric']} got worse"
    if base["train_loss"] is not None and arm["train_loss"] is not None:
        tolerance = max(base["train_loss_std"] or 0.0, arm["train_loss_std"] or 0.0, 0.05 * abs(base["train_loss"]))
        if arm["train_loss"] > base["train_loss"] + tolerance:
            return False, improved, (f"improved {', '.join(improved)} but the final training loss got worse "
                                     f"({_number(base['train_loss'])} -> {_number(arm['train_loss'])})")
    return True, improved, f"improved {', '.join(improved)} without a worse validation {arm['metric']}"


# -- running -------------------------------------------------------------------------------------------------------
def _task(config: RunConfig, arm: str) -> Task:
    return Task(TRAIN, config.to_dict(), label=f"doctor-{arm}-s{config.seed}")


def run_doctor(settings: DoctorSettings, *, progress: bool = True, stream: TextIO | None = None,
               command: str | None = None, backend: str | Backend = "local", address: str | None = None,
               gpus_per_run: float | None = None) -> LabResult:
    """Diagnose, test the remedies, write the report (DIR/index.html, results.json, results.csv, plots).

    ``backend``/``address``/``gpus_per_run`` say where the runs go (see :class:`~relulab.lab.sweep.Sweep`); on a
    Ray cluster the workers read the prepared model and data from DIR/inputs, so DIR must be on a file system every
    node sees."""
    backend = validate_backend(backend, address, gpus_per_run)
    started = time.perf_counter()
    out = settings.out
    data_path = save_data(settings.data, out)
    write_inputs(settings.model)
    seeds = range(settings.seeds)
    with Sweep(out, jobs=settings.jobs, progress=progress, stream=stream, backend=backend) as sweep:
        base_runs = sweep.run([_task(settings.run_config(data_path, s), BASELINE) for s in seeds],
                              label="diagnosis")
        findings = diagnose(base_runs)
        scale = input_scale(settings.data)
        if findings and scale is not None:  # a likely cause of what was found, tested like any remedy
            findings.append(scale)
        remedies = propose(findings, settings, _members(base_runs))
        tasks = [_task(settings.run_config(data_path, s, **r.changes), r.name) for r in remedies for s in seeds]
        remedy_runs = sweep.run(tasks, label="remedies") if tasks else []
    for run in base_runs:
        run["group"] = BASELINE
    arms = {BASELINE: base_runs}
    for i, remedy in enumerate(remedies):
        arms[remedy.name] = remedy_runs[i * settings.seeds:(i + 1) * settings.seeds]
        for run in arms[remedy.name]:
            run["group"] = remedy.name
    base = arm_metrics(base_runs)
    rows = [{"name": BASELINE, "description": "the model as given", **base, "helped": None, "why": ""}]
    remedy_results = []
    for remedy in remedies:
        metrics = arm_metrics(arms[remedy.name])
        helped, improved, why = judge(remedy, metrics, base)
        remedy_results.append({"name": remedy.name, "description": remedy.description, "targets": list(remedy.targets),
                               "changes": dict(remedy.changes), "metrics": metrics, "helped": helped,
                               "improved": improved, "why": why})
        rows.append({"name": remedy.name, "description": remedy.description, **metrics, "helped": helped,
                     "why": why})
    verdict = _verdict(findings, remedy_results, base)
    metric = base["metric"]
    results: dict[str, Any] = {
        "experiment": "doctor", "command": command, "model": settings.model.label, "data": _data_summary(settings),
        "settings": {"epochs": settings.epochs, "lr": settings.lr, "optimizer": settings.optimizer,
                     "batch_size": settings.batch_size, "seeds": settings.seeds, "jobs": settings.jobs,
                     "out": str(out), "model": settings.model.label, "baseline_activation": settings.model.baseline
                     or "as built", "worker_spec": settings.model.spec},
        "healthy": not findings, "findings": findings, "remedies": remedy_results, "baseline": base,
        "verdict": verdict, "table": rows, "metric": metric,
        "runs": [r for arm in arms.values() for r in arm],
        "counts": {"computed": sweep.computed, "skipped": sweep.skipped},
        "execution": sweep.describe(),
        "notes": _notes(settings), "seconds": time.perf_counter() - started,
    }
    figures = plot_doctor(out, arms, remedy_results, metric)
    tables = [("Findings", FINDING_COLUMNS, [dict(f, text=describe(f)) for f in findings] or
               [{"kind": "none", "layer": "-", "text": "healthy: nothing above the limits"}]),
              ("Remedies, side by side with the untouched model (mean ± std over seeds)", remedy_columns(metric),
               rows)]
    if remedy_results:
        tables.append(("What each remedy changed, and the judgement", WHY_COLUMNS, remedy_results))
    results["files"] = {"html": "index.html", "json": "results.json", "csv": "results.csv",
                        "figures": [name for name, _ in figures]}
    report.write_csv(out, results["runs"])
    report.write_results(out, results)
    tables_html = "".join(f"<h3>{html.escape(t)}</h3>" + report.render_html(c, r) for t, c, r in tables)
    summary = _summary(settings)
    report.write_page(out, title=f"relulab doctor: {settings.model.label} on {settings.data_label}", intro=[summary],
                      table_html=tables_html, figures=figures, verdict=verdict, settings=results["settings"],
                      notes=results["notes"] + list(DOCTOR_NOTES))
    text = "\n\n".join([summary, render_tables(tables), textwrap.fill(f"Verdict: {verdict['outcome']}. "
                                                                       f"{verdict['text']}", 110)])
    return LabResult(results, text, out)


def doctor(model: Any, data: Any, *, target: str | None = None, task: str | None = None, activation: str = "",
           epochs: int = 10, lr: float = 1e-3, optimizer: str = "adam", batch_size: int = 64, seeds: int = 3,
           jobs: int | None = None, out: str | Path = "relulab-report/doctor", progress: bool = True) -> LabResult:
    """Diagnose training ``model`` on ``data`` and test the remedies; returns the :class:`LabResult`.

    ``result.results["findings"]`` and ``["remedies"]`` hold the diagnosis and the measured remedies; the report is
    in ``out``. See :func:`validate_doctor` for the arguments and the module docstring for the rules.
    """
    settings = validate_doctor(model, data, target=target, task=task, activation=activation, epochs=epochs, lr=lr,
                               optimizer=optimizer, batch_size=batch_size, seeds=seeds, jobs=jobs, out=out)
    return run_doctor(settings, progress=progress)


def _verdict(findings: Sequence[Mapping[str, Any]], remedies: Sequence[Mapping[str, Any]],
             base: Mapping[str, Any]) -> dict[str, str]:
    metric = base["metric"]
    if not findings:
        return {"outcome": "healthy", "style": "holds",
                "text": (f"no dead, born-dead, inactive or saturated layer, no vanishing or exploding gradients and "
                         f"no divergence over {base['runs']} seeds (training loss {_number(base['initial_loss'])} "
                         f"at init -> {_number(base['train_loss'])}, validation {metric} "
                         f"{_pm(base['val_metric'], base['val_metric_std'], metric)}).")}
    helped = [r for r in remedies if r["helped"]]
    kinds = ", ".join(dict.fromkeys(f["kind"] for f in findings))
    if not helped:
        tried = ", ".join(r["name"] for r in remedies) or "none applicable"
        return {"outcome": "no remedy helped", "style": "not",
                "text": f"found {kinds}; tried {tried}: none improved the symptoms it targets without a worse "
                        f"validation {metric}, training loss or dead % (see each remedy's judgement)."}
    best = max(helped, key=lambda r: (r["metrics"]["val_metric"], -(r["metrics"]["train_loss"] or math.inf)))
    m = best["metrics"]
    others = [r["name"] for r in helped if r is not best]
    shown = {"dead %": ("dead", "dead_fraction"), "dead % at init": ("dead at init", "dead_fraction_at_init"),
             "inactive %": ("inactive", "inactive_fraction"), "saturated %": ("saturated", "saturated_fraction")}
    changes = []
    for symptom in best["improved"]:
        if symptom in shown:
            label, key = shown[symptom]
            changes.append(f"{label} {fmt(base[key], scale=100)}% -> {fmt(m[key], scale=100)}%")
        elif symptom == "gradient ratio":
            changes.append(f"gradient first/last {fmt(base['grad_ratio'], sci=True)} -> "
                           f"{fmt(m['grad_ratio'], sci=True)}")
        elif symptom == "no divergence":
            changes.append(f"diverged seeds {base['diverged']} -> 0")
    changes.append(f"final train loss {_number(base['train_loss'])} -> {_number(m['train_loss'])}")
    changes.append(f"validation {metric} {_pm(base['val_metric'], base['val_metric_std'], metric)} -> "
                   f"{_pm(m['val_metric'], m['val_metric_std'], metric)}")
    return {"outcome": "remedy found", "style": "holds",
            "text": (f"found {kinds}. Best remedy: {best['name']}, {best['description']}: {', '.join(changes)}"
                     + (f"; also helped: {', '.join(others)}." if others else "."))}


def _number(value: float | None, digits: int = 3) -> str:
    """Fixed decimals for ordinary numbers, 3 significant digits for huge ones (a diverging loss)."""
    if value is not None and math.isfinite(value) and abs(value) >= 1e4:
        return fmt(value, sci=True)
    return fmt(value, digits)


def _pm(mean: float | None, std: float | None, metric: str, *, unit: bool = True) -> str:
    if metric != "accuracy":
        return _number(mean) + ("" if std is None else f" ± {_number(std)}")
    if mean is None:
        return "-"
    return fmt(mean, scale=100) + ("%" if unit else "") + ("" if std is None else f" ± {fmt(std, scale=100)}")


def _data_summary(settings: DoctorSettings) -> dict[str, Any]:
    data = settings.data
    train, val, test = data.sizes
    return {"name": data.name, "task": data.task, "shape": list(data.shape), "classes": data.num_classes or None,
            "train": train, "val": val, "test": test}


def _summary(settings: DoctorSettings) -> str:
    data = settings.data
    train, val, test = data.sizes
    what = f"{data.num_classes} classes" if data.task == "classification" else "regression"
    optimizer = "SGD with momentum 0.9" if settings.optimizer == "sgd" else "Adam"
    return (f"{settings.model.label} on {data.name} ({what}, inputs {data.shape}, train/val/test "
            f"{train}/{val}/{test}): {settings.epochs} epoch{'s' if settings.epochs > 1 else ''}, {optimizer} lr "
            f"{settings.lr:g}, batch {settings.batch_size}, {settings.seeds} seed{'s' if settings.seeds > 1 else ''} "
            "per arm.")


def _notes(settings: DoctorSettings) -> list[str]:
    notes = []
    if settings.model.note:
        notes.append(settings.model.note)
    elif not main_is_importable():
        notes.append("Runs went one at a time in this process: the calling script is read from standard input, "
                     "which worker processes cannot start from.")
    from torch import nn

    if isinstance(settings.model.obj, nn.Module):
        notes.append("The model was given as an instance: every seed starts from its weights, so seeds differ in "
                     "batch order only (give a factory to vary the initialisation too).")
    return notes


DOCTOR_NOTES = (
    f"dead_units: >= {100 * DEAD_LIMIT:g}% of a layer's units never positive over the last epoch with an exactly zero "
    f"gradient (relu-like members), mean over seeds; inactive_units: the same for leaky/smooth members; born_dead: "
    f">= {100 * BORN_DEAD_LIMIT:g}% dead at initialisation (one pass over the training split, no update).",
    f"vanishing/exploding gradients: RMS ||dL/dW|| of the first weight layer over the last one's in epoch 1 below "
    f"{VANISHING_LIMIT:g} or above {EXPLODING_LIMIT:g}, or a layer's gradient norm growing more than "
    f"{EXPLODING_LIMIT:g}x from the first to the last epoch.",
    f"saturation: >= {100 * SATURATION_LIMIT:g}% of a sigmoid/tanh layer's units whose mean output lies within 5% "
    "of the output range from a bound.",
    "helped: the remedy lowers a symptom it targets (a fraction to at most half and by at least 5 points; the "
    "gradient ratio 10x closer to 1; no diverged seed) and its validation metric is not worse than the untouched "
    "model's by more than the larger std over seeds (at least 0.01), nor its final training loss (at least 5% of "
    "it), and it does not leave >= 10% of the units dead (unless the untouched model had as many).",
    "Every arm runs the same seeds on the same data split; a seed fixes the initialisation (for a factory) and the "
    "batch order.",
)

FINDING_COLUMNS = [
    Column("kind", "finding", numeric=False),
    Column("layer", "layer", numeric=False),
    Column("text", "evidence", numeric=False),
]


WHY_COLUMNS = [
    Column("name", "remedy", numeric=False),
    Column("description", "change", numeric=False),
    Column("why", "judgement", lambda r: ("helped: " if r["helped"] else "no: ") + r["why"], numeric=False),
]


def remedy_columns(metric: str) -> list[Column]:
    name = "val acc %" if metric == "accuracy" else "val R^2"
    return [
        Column("name", "arm", numeric=False),
        Column("dead_fraction", "dead % (network)", lambda r: _pm_percent(r["dead_fraction"], r["dead_fraction_std"])),
        Column("inactive_fraction", "inactive %",
               lambda r: _pm_percent(r["inactive_fraction"], r["inactive_fraction_std"])),
        Column("train_loss", "final loss",
               lambda r: _number(r["train_loss"]) + ("" if r["train_loss_std"] is None
                                                     else f" ± {_number(r['train_loss_std'])}")),
        Column("val_metric", name, lambda r: _pm(r["val_metric"], r["val_metric_std"], metric, unit=False)),
        Column("grad_ratio", "grad first/last", lambda r: fmt(r["grad_ratio"], sci=True)),
        Column("diverged", "diverged", lambda r: f"{r['diverged']}/{r['runs']}"),
        Column("helped", "helped", lambda r: "-" if r["helped"] is None else ("yes" if r["helped"] else "no"),
               numeric=False),
    ]


def _pm_percent(mean: float | None, std: float | None) -> str:
    return fmt(mean, scale=100) + ("" if std is None else f" ± {fmt(std, scale=100)}")


# -- plots ---------------------------------------------------------------------------------------------------------
def _per_layer_dead(runs: Sequence[Mapping[str, Any]]) -> tuple[list[str], np.ndarray]:
    """(layer names, (layers, epochs + 1) mean dead % over seeds, column 0 at initialisation)."""
    ok = _ok(runs)
    if not ok:
        return [], np.zeros((0, 0))
    names = [l["name"] for l in ok[0]["epochs"][-1]["layers"]]
    length = max(len(r["epochs"]) for r in ok) + 1
    values = np.full((len(ok), len(names), length), np.nan)
    for i, run in enumerate(ok):
        records = ([run["init"]] if "init" in run else [None]) + run["epochs"]
        for j, record in enumerate(records):
            if record is None:
                continue
            for k, name in enumerate(names):
                layer = _layer(record, name)
                if layer is not None and layer["dead_fraction"] is not None:
                    values[i, k, j] = 100 * layer["dead_fraction"]
    with np.errstate(all="ignore"):
        return names, np.nanmean(values, axis=0)


def plot_doctor(out: Path, arms: Mapping[str, Sequence[Mapping[str, Any]]], remedies: Sequence[Mapping[str, Any]],
                metric: str) -> list[tuple[str, str]]:
    """dead_units.png (per layer before/after), gradient_flow.png, learning_curves.png; (file, caption) pairs."""
    import warnings

    figures = []
    helped = [r for r in remedies if r["helped"]]
    after = max(helped, key=lambda r: r["metrics"]["val_metric"] or -math.inf)["name"] if helped else (
        min(remedies, key=lambda r: r["metrics"]["dead_fraction"] if r["metrics"]["dead_fraction"] is not None
            else math.inf)["name"] if remedies else None)
    panels = [(BASELINE, "before: untouched model")] + ([(after, f"after: {after}")] if after else [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of all-NaN columns (a diverged arm)
        with figure(out / "dead_units.png", 1, len(panels) + 1, title="Dead units per layer over epochs "
                                                                       "(mean over seeds; epoch 0 = at init)") \
                as (fig, axes):
            top = 5.0
            for ax, (arm, title) in zip(axes[0], panels):
                names, values = _per_layer_dead(arms[arm])
                for k, name in enumerate(names):
                    ax.plot(np.arange(values.shape[1]), values[k], "o-", color=colour(k), label=name, markersize=3)
                if values.size and np.isfinite(values).any():
                    top = max(top, float(np.nanmax(values)))
                ax.set(title=title, xlabel="epoch", ylabel="dead units (% of layer)")
                ax.legend(frameon=False, fontsize=7, title="layer", title_fontsize=7)
            ax = axes[0, -1]
            for i, (arm, runs) in enumerate(arms.items()):
                band(ax, report.series(runs, "dead_fraction", 100), label=arm, color=colour(i))
            ax.set(title="whole network, every arm", xlabel="epoch", ylabel="dead units (% of all)")
            ax.legend(frameon=False, fontsize=7)
            for ax in axes[0]:
                ax.set_ylim(-2, min(102, top * 1.1 + 2))
            integer_ticks(*axes[0])
        figures.append(("dead_units.png", "Dead units (never positive over an epoch, exactly zero gradient) per "
                                          "activation layer, before (untouched) and after the best remedy (or the "
                                          "one with the fewest dead units when none helped), and for the whole "
                                          "network per arm (band: range over seeds)."))
        figures.append(plot_gradient_flow(out, {arm: _ok(runs) for arm, runs in arms.items()}, legend_size=7))
        label = "validation accuracy (%)" if metric == "accuracy" else "validation R^2"
        scale = 100 if metric == "accuracy" else 1
        with figure(out / "learning_curves.png", 1, 2, title="Learning curves (line: mean over seeds; band: range)") \
                as (fig, axes):
            for i, (arm, runs) in enumerate(arms.items()):
                band(axes[0, 0], report.series(runs, "train_loss"), label=arm, color=colour(i))
                band(axes[0, 1], report.series(runs, "val_accuracy", scale), label=arm, color=colour(i))
            axes[0, 0].set(title="training loss (mean over the epoch's batches)", xlabel="epoch", yscale="log")
            axes[0, 1].set(title=label, xlabel="epoch")
            axes[0, 0].legend(frameon=False, fontsize=7)
            integer_ticks(*axes[0])
        figures.append(("learning_curves.png", "Training loss and the validation metric per epoch for the untouched "
                                               "model and every remedy tested."))
    return figures
